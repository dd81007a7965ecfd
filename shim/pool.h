/*
 * pool.h: a fixed pool of libpq connections shared by the HTTP threads.
 *
 * A thread takes a connection for one statement and gives it back.
 * Connections are opened lazily and reopened by themselves: a connection
 * that the server closed is noticed before use and replaced.  When Postgres
 * cannot be reached, the pool says so at once (with how long to wait)
 * instead of letting every request wait on a connect: one request at a
 * time probes, with a backoff from 0.5 s up to 5 s.  At shutdown the pool
 * closes (no more connections handed out) and can cancel what its busy
 * connections run.
 */
#ifndef SHIM_POOL_H
#define SHIM_POOL_H

#include <libpq-fe.h>

struct pool;
struct pool_conn;

struct pool_stats
{
	int			size;
	int			connected;
	int			busy;
	int			waiting;
	int			database_up;
	long long	connects;
	long long	connect_failures;
	long long	waits_timed_out;
	char		last_error[256];
};

struct pool *pool_create(const char *dsn, int size, int wait_ms);
void		pool_destroy(struct pool *pool);
struct pool_conn *pool_acquire(struct pool *pool, int *retry_after, char *why, size_t why_size);
void		pool_release(struct pool *pool, struct pool_conn *c);
PGconn	   *pool_pg(struct pool_conn *c);
PGresult   *pool_exec(struct pool *pool, struct pool_conn *c, const char *sql, int nparams,
					  const unsigned int *types, const char *const *values,
					  const int *lengths, const int *formats, int result_format);
PGresult   *pool_send_rows(struct pool *pool, struct pool_conn *c, const char *sql, int nparams,
						   const unsigned int *types, const char *const *values,
						   const int *lengths, const int *formats, int result_format);
void		pool_cancel(struct pool *pool, struct pool_conn *c);
void		pool_stats(struct pool *pool, struct pool_stats *out);
void		pool_close(struct pool *pool);
int			pool_closing(struct pool *pool);
int			pool_cancel_busy(struct pool *pool);

#endif
