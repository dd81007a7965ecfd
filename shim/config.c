/*
 * config.c: defaults, the config file, JAM_* variables, validation.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

/* The settings before any file or variable. */
void
config_defaults(struct shim_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->listen, sizeof(c->listen), "127.0.0.1:8080");
	c->pool_size = 8;
	/*
	 * civetweb serves each connection on a thread of its own until it
	 * closes, so the threads bound the connections open at once, slow and
	 * idle ones included.  Its worker stacks are small (100 kB, little of it
	 * touched): a thousand threads cost about 30 MB.
	 */
	c->threads = 1024;
	c->max_body_bytes = 16 * 1024 * 1024;
	/* A batch carries many packages: a cap of its own, above one package's. */
	c->max_batch_body_bytes = 64 * 1024 * 1024;
	c->pool_wait_ms = 5000;
	c->request_timeout_ms = 30000;
	c->keep_alive = 1;
	c->keep_alive_timeout_ms = 5000;
	c->max_connections_per_client = 64;
	c->shutdown_grace_ms = 5000;
	c->events_queue = 1024;
	c->events_heartbeat_ms = 15000;
}

/* A decimal integer within [min, max]; -1 otherwise. */
static int
parse_long(const char *v, long long min, long long max, long long *out)
{
	char	   *end;
	long long	n;

	errno = 0;
	n = strtoll(v, &end, 10);
	if (end == v || *end != '\0' || errno != 0 || n < min || n > max)
		return -1;
	*out = n;
	return 0;
}

/* on/off, true/false, yes/no or 1/0; -1 otherwise. */
static int
parse_flag(const char *v, int *out)
{
	if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1"))
		*out = 1;
	else if (!strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0"))
		*out = 0;
	else
		return -1;
	return 0;
}

/* The settings, by file key; the environment variable is JAM_ + the key in capitals. */
static const struct
{
	const char *key;
	const char *help;
}			settings[] = {
	{"listen", "host:port to listen on (IPv4 address or localhost; default 127.0.0.1:8080)"},
	{"dsn", "libpq connection string of the jam database (default: libpq's PG* variables)"},
	{"pool_size", "Postgres connections (default 8)"},
	{"threads", "HTTP worker threads: connections served at once (default 1024)"},
	{"max_body_bytes", "largest request body accepted, in bytes (default 16777216)"},
	{"max_batch_body_bytes", "largest body of POST /jam/packages/batch, in bytes (default 67108864)"},
	{"max_body_memory_bytes", "request bodies held in memory at once, in bytes (default 4 x max_batch_body_bytes)"},
	{"tls_cert", "PEM file with the certificate and private key: serve HTTPS (default: plain HTTP)"},
	{"pool_wait_ms", "longest wait for a free Postgres connection before 503 (default 5000)"},
	{"request_timeout_ms", "longest time to receive a whole request, or to send an answer (default 30000)"},
	{"keep_alive", "HTTP keep-alive on or off (default on)"},
	{"keep_alive_timeout_ms", "longest wait of an idle kept-alive connection for its next request (default 5000)"},
	{"max_connections_per_client", "most connections open at once from one client address; 0: no limit (default 64)"},
	{"shutdown_grace_ms", "on SIGTERM, how long requests in flight may finish before they are cancelled (default 5000)"},
	{"events_queue", "events a stream of GET /jam/events may have waiting; a client further behind is dropped (default 1024)"},
	{"events_heartbeat_ms", "an idle event stream's keep-alive comment, and its token's check (default 15000)"},
	{"events_max_streams", "event streams open at once, each holding a thread (default: a quarter of threads)"},
};

/* Sets one setting from its text form. */
static int
config_set(struct shim_config *c, const char *key, const char *value, char *err, int err_size)
{
	long long	n;

	if (!strcmp(key, "listen"))
	{
		if (strlen(value) >= sizeof(c->listen))
			goto bad;
		snprintf(c->listen, sizeof(c->listen), "%s", value);
	}
	else if (!strcmp(key, "dsn"))
	{
		if (strlen(value) >= sizeof(c->dsn))
			goto bad;
		snprintf(c->dsn, sizeof(c->dsn), "%s", value);
	}
	else if (!strcmp(key, "tls_cert"))
	{
		if (strlen(value) >= sizeof(c->tls_cert))
			goto bad;
		snprintf(c->tls_cert, sizeof(c->tls_cert), "%s", value);
	}
	else if (!strcmp(key, "pool_size"))
	{
		if (parse_long(value, 1, 1000, &n) < 0)
			goto bad;
		c->pool_size = (int) n;
	}
	else if (!strcmp(key, "threads"))
	{
		if (parse_long(value, 1, 10000, &n) < 0)
			goto bad;
		c->threads = (int) n;
	}
	else if (!strcmp(key, "max_body_bytes"))
	{
		/* Postgres' own limit for one value is 1 GB. */
		if (parse_long(value, 1, 1024LL * 1024 * 1024, &n) < 0)
			goto bad;
		c->max_body_bytes = n;
	}
	else if (!strcmp(key, "max_batch_body_bytes"))
	{
		if (parse_long(value, 1, 1024LL * 1024 * 1024, &n) < 0)
			goto bad;
		c->max_batch_body_bytes = n;
	}
	else if (!strcmp(key, "max_body_memory_bytes"))
	{
		if (parse_long(value, 1, 1LL << 40, &n) < 0)
			goto bad;
		c->max_body_memory_bytes = n;
	}
	else if (!strcmp(key, "pool_wait_ms"))
	{
		if (parse_long(value, 1, 600000, &n) < 0)
			goto bad;
		c->pool_wait_ms = (int) n;
	}
	else if (!strcmp(key, "request_timeout_ms"))
	{
		if (parse_long(value, 100, 3600000, &n) < 0)
			goto bad;
		c->request_timeout_ms = (int) n;
	}
	else if (!strcmp(key, "keep_alive"))
	{
		if (parse_flag(value, &c->keep_alive) < 0)
			goto bad;
	}
	else if (!strcmp(key, "keep_alive_timeout_ms"))
	{
		if (parse_long(value, 100, 3600000, &n) < 0)
			goto bad;
		c->keep_alive_timeout_ms = (int) n;
	}
	else if (!strcmp(key, "max_connections_per_client"))
	{
		if (parse_long(value, 0, 1000000, &n) < 0)
			goto bad;
		c->max_connections_per_client = (int) n;
	}
	else if (!strcmp(key, "shutdown_grace_ms"))
	{
		if (parse_long(value, 0, 3600000, &n) < 0)
			goto bad;
		c->shutdown_grace_ms = (int) n;
	}
	else if (!strcmp(key, "events_queue"))
	{
		if (parse_long(value, 1, 1000000, &n) < 0)
			goto bad;
		c->events_queue = (int) n;
	}
	else if (!strcmp(key, "events_heartbeat_ms"))
	{
		if (parse_long(value, 100, 3600000, &n) < 0)
			goto bad;
		c->events_heartbeat_ms = (int) n;
	}
	else if (!strcmp(key, "events_max_streams"))
	{
		if (parse_long(value, 1, 10000, &n) < 0)
			goto bad;
		c->events_max_streams = (int) n;
	}
	else
	{
		snprintf(err, err_size, "unknown setting \"%s\"", key);
		return -1;
	}
	return 0;

bad:
	snprintf(err, err_size, "invalid value for %s: \"%.200s\"", key, value);
	return -1;
}

/* The string without leading and trailing white space (trailing cut in place). */
static char *
trim(char *s)
{
	char	   *end;

	while (isspace((unsigned char) *s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char) end[-1]))
		*--end = '\0';
	return s;
}

/*
 * Reads "key = value" lines; blank lines and lines starting with '#' are
 * skipped.  A value may be wrapped in double quotes (to keep spaces at its
 * ends).  An unknown key or a bad value is an error naming the line.
 */
int
config_load_file(struct shim_config *c, const char *path, char *err, int err_size)
{
	FILE	   *f = fopen(path, "r");
	char		line[2048];
	int			lineno = 0;

	if (f == NULL)
	{
		snprintf(err, err_size, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f))
	{
		char	   *key,
				   *value,
				   *eq;
		char		msg[400];

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f))
		{
			snprintf(err, err_size, "%s:%d: line too long", path, lineno);
			fclose(f);
			return -1;
		}
		key = trim(line);
		if (*key == '\0' || *key == '#')
			continue;
		eq = strchr(key, '=');
		if (eq == NULL)
		{
			snprintf(err, err_size, "%s:%d: expected key = value", path, lineno);
			fclose(f);
			return -1;
		}
		*eq = '\0';
		key = trim(key);
		value = trim(eq + 1);
		if (value[0] == '"' && strlen(value) >= 2 && value[strlen(value) - 1] == '"')
		{
			value[strlen(value) - 1] = '\0';
			value++;
		}
		if (config_set(c, key, value, msg, sizeof(msg)) < 0)
		{
			snprintf(err, err_size, "%s:%d: %s", path, lineno, msg);
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	return 0;
}

/* Applies every JAM_<KEY> variable that is set. */
int
config_load_env(struct shim_config *c, char *err, int err_size)
{
	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
	{
		char		name[64] = "JAM_";
		const char *value;
		char		msg[400];

		for (size_t k = 0; settings[i].key[k] && k + 5 < sizeof(name); k++)
			name[4 + k] = (char) toupper((unsigned char) settings[i].key[k]);
		value = getenv(name);
		if (value == NULL)
			continue;
		if (config_set(c, settings[i].key, value, msg, sizeof(msg)) < 0)
		{
			snprintf(err, err_size, "%s: %s", name, msg);
			return -1;
		}
	}
	return 0;
}

/* Checks the settings together and derives the listen host and port. */
int
config_finish(struct shim_config *c, char *err, int err_size)
{
	const char *colon = strrchr(c->listen, ':');
	long long	port;
	struct in_addr addr;
	size_t		hlen;

	if (colon == NULL || parse_long(colon + 1, 1, 65535, &port) < 0)
	{
		snprintf(err, err_size, "listen must be host:port with a port from 1 to 65535, not \"%s\"", c->listen);
		return -1;
	}
	hlen = (size_t) (colon - c->listen);
	if (hlen >= sizeof(c->listen_host))
		hlen = sizeof(c->listen_host) - 1;
	memcpy(c->listen_host, c->listen, hlen);
	c->listen_host[hlen] = '\0';
	if (strcmp(c->listen_host, "localhost") == 0)
		snprintf(c->listen_host, sizeof(c->listen_host), "127.0.0.1");
	if (inet_pton(AF_INET, c->listen_host, &addr) != 1)
	{
		snprintf(err, err_size, "listen host must be an IPv4 address or localhost, not \"%s\"", c->listen_host);
		return -1;
	}
	c->listen_port = (int) port;
	if (c->max_body_memory_bytes == 0)
		c->max_body_memory_bytes = 4 * (c->max_batch_body_bytes > c->max_body_bytes ?
										c->max_batch_body_bytes : c->max_body_bytes);
	if (c->max_body_memory_bytes < c->max_body_bytes || c->max_body_memory_bytes < c->max_batch_body_bytes)
	{
		snprintf(err, err_size, "max_body_memory_bytes must be at least max_body_bytes and max_batch_body_bytes");
		return -1;
	}
	if (c->threads < 2)
	{
		snprintf(err, err_size, "threads must be at least 2");
		return -1;
	}
	/* Each stream holds a worker thread for as long as it lasts: streams alone must not take them all. */
	if (c->events_max_streams == 0)
		c->events_max_streams = c->threads / 4 > 0 ? c->threads / 4 : 1;
	if (c->events_max_streams >= c->threads)
	{
		snprintf(err, err_size, "events_max_streams must be less than threads (%d)", c->threads);
		return -1;
	}
	return 0;
}

/* Prints --help. */
void
config_usage(const char *argv0)
{
	printf("usage: %s [--config FILE] [--help] [--version]\n\n"
		   "jam-shim serves jam's HTTP API over a pool of Postgres connections.\n\n"
		   "Settings (file key = value, or environment variable; the environment wins):\n",
		   argv0);
	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
	{
		char		name[64] = "JAM_";

		for (size_t k = 0; settings[i].key[k] && k + 5 < sizeof(name); k++)
			name[4 + k] = (char) toupper((unsigned char) settings[i].key[k]);
		printf("  %-27s %-31s %s\n", settings[i].key, name, settings[i].help);
	}
	printf("\nSIGTERM or SIGINT refuses new requests, lets those in flight finish for shutdown_grace_ms,\n"
		   "then cancels what still runs in Postgres (answering 503 shutting_down) and exits.\n");
}
