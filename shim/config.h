/*
 * config.h: the shim's own settings (what only the shim needs; everything
 * else is a jam.* GUC in Postgres).  Defaults, then a key=value file given
 * with --config, then JAM_* environment variables, each overriding the one
 * before.
 */
#ifndef SHIM_CONFIG_H
#define SHIM_CONFIG_H

struct shim_config
{
	char		listen[64];		/* host:port */
	char		dsn[1024];		/* libpq conninfo; "" = libpq's PG* defaults */
	int			pool_size;
	int			threads;
	long long	max_body_bytes;
	long long	max_batch_body_bytes;	/* POST /jam/packages/batch */
	long long	max_body_memory_bytes;	/* bodies held at once; 0: 4 x max_batch_body_bytes */
	char		tls_cert[1024];	/* PEM with certificate and key; "" = plain HTTP */
	int			pool_wait_ms;	/* longest wait for a free connection */
	int			request_timeout_ms;	/* a whole request (head and body), and an answer's writing */
	int			keep_alive;
	int			keep_alive_timeout_ms;	/* an idle kept-alive connection's wait for its next request */
	int			max_connections_per_client;	/* per client address; 0: no limit */
	int			shutdown_grace_ms;	/* SIGTERM: how long requests in flight may finish before cancelling */
	int			events_queue;	/* announcements an event stream may have waiting before it is dropped */
	int			events_heartbeat_ms;	/* an idle event stream's keep-alive comment, and token check */
	int			events_max_streams;	/* event streams open at once; 0: a quarter of threads */

	/* Derived by config_finish(). */
	char		listen_host[48];
	int			listen_port;
};

void		config_defaults(struct shim_config *c);
int			config_load_file(struct shim_config *c, const char *path, char *err, int err_size);
int			config_load_env(struct shim_config *c, char *err, int err_size);
int			config_finish(struct shim_config *c, char *err, int err_size);
void		config_usage(const char *argv0);

#endif
