/*
 * conns.h: every connection the shim has accepted, what it is doing, and
 * how long it may take doing it.
 *
 * civetweb gives each connection a worker thread until it closes, and
 * times slow clients out only loosely: its request timeout starts afresh
 * with every read of a body, a trickled request line gets up to twice the
 * timeout, and an idle connection keeps its worker however many others
 * wait.  So the shim keeps its own table of connections, fed by its
 * accept() and close() (accept.c) and by its request handler, and a
 * watchdog thread enforces the deadlines by shutting a connection's socket
 * down under civetweb, which then sees the end of the stream and frees the
 * worker at once.  The table also decides admission, when the connection is
 * accepted: at most max_per_client connections per client address, and
 * when every worker is taken, an idle connection (or one that has waited
 * a second or more for its request) is shed to make room, or, when none
 * can be, the new connection is refused.
 *
 * Deadlines (T = request_timeout_ms, K = keep_alive_timeout_ms):
 *   - a new connection's first request, head and body, within T of its
 *     acceptance;
 *   - on a kept-alive connection, the next request's head within K of the
 *     previous answer, and all of it within K + T;
 *   - an answer written within T of its start;
 *   - an event stream (GET /jam/events) has no deadline of its own, as it
 *     lasts as long as its client follows it: each of its writes must be
 *     taken by the client within T.
 * Nothing bounds the time a request spends in Postgres here: the pool's
 * wait and the DSN's statement_timeout do.
 */
#ifndef SHIM_CONNS_H
#define SHIM_CONNS_H

#include <netinet/in.h>

struct conn;

struct conns_settings
{
	int			capacity;		/* connections served at once: civetweb's worker threads */
	int			max_per_client; /* per client address; 0: no limit */
	int			request_timeout_ms;
	int			keep_alive_timeout_ms;
};

/* Why the shim cut a connection short. */
enum conn_fate
{
	CONN_FINE,
	CONN_TIMED_OUT,				/* a deadline passed */
	CONN_SHED,					/* made room for a new connection */
	CONN_STOPPED,				/* the shim is shutting down */
	CONN_DROPPED				/* an event stream whose client did not keep up */
};

/* What conns_admit() decided: admit, or the status of the refusal. */
#define CONNS_ADMIT 0
#define CONNS_TOO_MANY_FROM_CLIENT 429
#define CONNS_BUSY 503

struct conns_stats
{
	int			open;
	int			capacity;
	int			max_per_client;
	long long	refused_per_client;
	long long	refused_busy;
	long long	shed;
	long long	timed_out;
};

void		conns_start(const struct conns_settings *settings, int max_fd);
void		conns_stop(void);
int			conns_admit(int fd, const struct sockaddr_in *peer);
void		conns_count_refused_busy(void);
void		conns_forget_fd(int fd);
struct conn *conns_attach(const char *remote_addr, int remote_port);
void		conns_request_begin(struct conn *c);
void		conns_request_received(struct conn *c);
void		conns_answer_begin(struct conn *c);
void		conns_request_end(struct conn *c);
void		conns_mark_error_sent(struct conn *c);
int			conns_error_sent(struct conn *c);
enum conn_fate conns_fate(struct conn *c);
void		conns_stream_begin(struct conn *c);
void		conns_stream_write(struct conn *c, int writing);
void		conns_cut_stream(struct conn *c, enum conn_fate fate);
int			conns_shutdown_all(void);
void		conns_stats(struct conns_stats *out);

#endif
