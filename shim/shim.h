/*
 * shim.h: the running shim (settings, pool, start time) and the exchange,
 * one request with everything its answer and log line need.
 */
#ifndef SHIM_SHIM_H
#define SHIM_SHIM_H

#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

#include "config.h"
#include "pool.h"
#include "routes.h"
#include "trace.h"

#define SHIM_VERSION "1.0.0"

struct shim
{
	struct shim_config config;
	struct pool *pool;
	double		started;		/* monotonic seconds */
	time_t		started_wall;
	atomic_int	stopping;		/* SIGTERM came: new requests get 503 */
};

struct mg_connection;
struct mg_request_info;
struct conn;

struct exchange
{
	struct mg_connection *conn;
	struct conn *conn_entry;	/* the connection's entry in conns.c's table; may be NULL */
	struct shim *shim;
	const struct mg_request_info *ri;
	struct trace trace;
	route_id	route;
	unsigned	method;
	char		allow[64];
	double		started;		/* monotonic seconds */
	long long	body_reserved;	/* bytes of the body budget (budget.h) this request holds */

	/* What the answer was, for the log line and the metrics. */
	int			status;
	size_t		bytes;
	int			answered;
	int			close;			/* close the connection after answering */
	char		code[64];
	char		detail[1024];
	char		service_id[80];
	char		package_id[80];
};

double		shim_now(void);

#endif
