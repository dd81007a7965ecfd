/*
 * conns.c: the connection table, admission, shedding and the watchdog.
 *
 * One mutex guards the table.  The watchdog and admission shut sockets
 * down only while holding it, and the shim's close() (accept.c) takes a
 * descriptor out of the table (under it) before the descriptor is closed,
 * so a socket is never shut down after it was closed and its number
 * perhaps reused.  The table is a list, with an index by descriptor for
 * close(): with a few thousand connections at most, a scan per accept and
 * per watchdog tick (ten a second) costs microseconds.
 */
#include "conns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "buf.h"

/* How often the watchdog looks at the deadlines: its precision. */
#define TICK_MS 100

/* The send buffer of an event stream's socket (the kernel doubles it). */
#define STREAM_SNDBUF 65536

/* Under pressure, a connection still waiting for its first request this long is fair game. */
#define SHED_MIN_WAIT_S 1.0

enum phase
{
	PHASE_HEAD,					/* waiting for (the rest of) the request head */
	PHASE_BODY,					/* in the handler, reading the body */
	PHASE_WORK,					/* the request is in: planning, Postgres */
	PHASE_ANSWER,				/* writing the answer */
	PHASE_IDLE,					/* kept alive between requests */
	PHASE_STREAM				/* an event stream: no deadline but while a write is under way */
};

struct conn
{
	struct conn *prev,
			   *next;
	int			fd;
	struct in_addr addr;
	int			port;
	enum phase	phase;
	double		accepted_at;
	double		idle_since;
	double		deadline;		/* 0: none */
	long		requests;
	enum conn_fate fate;
	int			error_sent;		/* civetweb answered an error: the connection ends with it */
};

static struct
{
	pthread_mutex_t mu;
	pthread_cond_t wake;
	pthread_t	watchdog;
	int			watching;		/* the watchdog thread runs */
	int			active;			/* between conns_start() and conns_stop() */
	int			stopping;		/* conns_shutdown_all() ran */
	struct conns_settings settings;
	struct conn *head;
	struct conn **by_fd;		/* read without the lock by close()'s fast path */
	int			by_fd_size;
	int			open;
	long long	refused_per_client;
	long long	refused_busy;
	long long	shed;
	long long	timed_out;
}			table = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
};

/* Monotonic seconds. */
static double
now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Cuts a connection short: the reading side only, so that civetweb's or
 * the handler's answer (408, 503) can still go out; both sides for one
 * whose answer is what is stuck.  Called with the lock held.
 */
static void
cut(struct conn *c, enum conn_fate fate)
{
	c->fate = fate;
	c->deadline = 0;
	shutdown(c->fd, (c->phase == PHASE_ANSWER || c->phase == PHASE_STREAM) ? SHUT_RDWR : SHUT_RD);
}

/* Enforces the deadlines every TICK_MS until conns_stop(). */
static void *
watchdog(void *arg)
{
	(void) arg;
	pthread_mutex_lock(&table.mu);
	while (table.active)
	{
		struct timespec until;
		double		t = now_mono();

		for (struct conn *c = table.head; c; c = c->next)
		{
			if (c->fate != CONN_FINE || c->deadline == 0 || t < c->deadline)
				continue;
			/* An idle connection that expires was simply not reused: no timeout to count. */
			if (c->phase != PHASE_IDLE)
				table.timed_out++;
			cut(c, CONN_TIMED_OUT);
		}
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += TICK_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L)
		{
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&table.wake, &table.mu, &until);
	}
	pthread_mutex_unlock(&table.mu);
	return NULL;
}

/*
 * Starts tracking connections (those with descriptors below max_fd) and
 * the watchdog.
 */
void
conns_start(const struct conns_settings *settings, int max_fd)
{
	pthread_condattr_t attr;

	if (max_fd > (1 << 20))
		max_fd = 1 << 20;
	if (max_fd < 64)
		max_fd = 64;
	table.by_fd = calloc((size_t) max_fd, sizeof(*table.by_fd));
	if (table.by_fd == NULL)
		abort();
	table.by_fd_size = max_fd;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&table.wake, &attr);
	pthread_condattr_destroy(&attr);
	pthread_mutex_lock(&table.mu);
	table.settings = *settings;
	table.active = 1;
	pthread_mutex_unlock(&table.mu);
	/* Without the watchdog, civetweb's own timeouts still apply, and admission still works. */
	table.watching = pthread_create(&table.watchdog, NULL, watchdog, NULL) == 0;
}

/*
 * Stops the watchdog and admission (before mg_stop, which closes queued
 * sockets without telling anyone).  Connections still in the table leave
 * it as civetweb closes them.
 */
void
conns_stop(void)
{
	pthread_mutex_lock(&table.mu);
	if (!table.active)
	{
		pthread_mutex_unlock(&table.mu);
		return;
	}
	table.active = 0;
	pthread_cond_signal(&table.wake);
	pthread_mutex_unlock(&table.mu);
	if (table.watching)
		pthread_join(table.watchdog, NULL);
	table.watching = 0;
}

/*
 * The connection to give up for a new one when every worker is taken: the
 * one idle the longest, else the one that has waited the longest (and at
 * least SHED_MIN_WAIT_S) for its first request; NULL when none may go.
 * Connections with a request in progress are never shed.
 */
static struct conn *
choose_victim(double t)
{
	struct conn *idle = NULL,
			   *waiting = NULL;

	for (struct conn *c = table.head; c; c = c->next)
	{
		if (c->fate != CONN_FINE)
			continue;
		if (c->phase == PHASE_IDLE && (idle == NULL || c->idle_since < idle->idle_since))
			idle = c;
		else if (c->phase == PHASE_HEAD && c->requests == 0 && t - c->accepted_at >= SHED_MIN_WAIT_S &&
				 (waiting == NULL || c->accepted_at < waiting->accepted_at))
			waiting = c;
	}
	return idle ? idle : waiting;
}

/*
 * Decides whether a connection just accepted (by civetweb's master thread)
 * is served: CONNS_ADMIT, with the connection in the table, or the status
 * to refuse it with.
 */
int
conns_admit(int fd, const struct sockaddr_in *peer)
{
	struct conn *c;
	double		t = now_mono();
	int			same = 0;

	pthread_mutex_lock(&table.mu);
	if (!table.active)
	{
		pthread_mutex_unlock(&table.mu);
		return CONNS_ADMIT;
	}
	if (table.settings.max_per_client > 0)
	{
		for (c = table.head; c; c = c->next)
			if (c->addr.s_addr == peer->sin_addr.s_addr)
				same++;
		if (same >= table.settings.max_per_client)
		{
			table.refused_per_client++;
			pthread_mutex_unlock(&table.mu);
			return CONNS_TOO_MANY_FROM_CLIENT;
		}
	}
	if (table.open >= table.settings.capacity || fd >= table.by_fd_size)
	{
		struct conn *victim = choose_victim(t);

		if (victim == NULL || fd >= table.by_fd_size)
		{
			table.refused_busy++;
			pthread_mutex_unlock(&table.mu);
			return CONNS_BUSY;
		}
		table.shed++;
		cut(victim, CONN_SHED);
	}
	c = xmalloc(sizeof(*c));
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->addr = peer->sin_addr;
	c->port = ntohs(peer->sin_port);
	c->phase = PHASE_HEAD;
	c->accepted_at = t;
	if (table.settings.request_timeout_ms > 0)
		c->deadline = t + table.settings.request_timeout_ms / 1000.0;
	c->fate = table.stopping ? CONN_STOPPED : CONN_FINE;
	c->next = table.head;
	if (table.head)
		table.head->prev = c;
	table.head = c;
	__atomic_store_n(&table.by_fd[fd], c, __ATOMIC_RELEASE);
	table.open++;
	pthread_mutex_unlock(&table.mu);
	return CONNS_ADMIT;
}

/* Counts a connection refused before it could be admitted (no descriptor left). */
void
conns_count_refused_busy(void)
{
	pthread_mutex_lock(&table.mu);
	table.refused_busy++;
	pthread_mutex_unlock(&table.mu);
}

/*
 * The entry of a connection a worker serves, found by its peer (civetweb
 * shows a connection's client address and port, never its socket), or
 * NULL when it is not in the table.  An address and port name one open
 * connection: the server's side is the one listening socket.
 */
struct conn *
conns_attach(const char *remote_addr, int remote_port)
{
	struct in_addr a;
	struct conn *c;

	if (remote_addr == NULL || inet_pton(AF_INET, remote_addr, &a) != 1)
		return NULL;
	pthread_mutex_lock(&table.mu);
	for (c = table.head; c; c = c->next)
		if (c->addr.s_addr == a.s_addr && c->port == remote_port)
			break;
	pthread_mutex_unlock(&table.mu);
	return c;
}

/*
 * A descriptor is being closed (the shim's close()): if it is a
 * connection in the table, the connection leaves it.
 */
void
conns_forget_fd(int fd)
{
	struct conn *c;

	if (fd < 0 || fd >= table.by_fd_size || __atomic_load_n(&table.by_fd[fd], __ATOMIC_ACQUIRE) == NULL)
		return;
	pthread_mutex_lock(&table.mu);
	c = table.by_fd[fd];
	if (c)
	{
		__atomic_store_n(&table.by_fd[fd], NULL, __ATOMIC_RELEASE);
		if (c->prev)
			c->prev->next = c->next;
		else
			table.head = c->next;
		if (c->next)
			c->next->prev = c->prev;
		table.open--;
	}
	pthread_mutex_unlock(&table.mu);
	free(c);
}

/* The handler begins a request: its body must be in by the request's deadline. */
void
conns_request_begin(struct conn *c)
{
	double		clock;

	if (c == NULL)
		return;
	pthread_mutex_lock(&table.mu);
	clock = c->requests == 0 ? c->accepted_at :
		c->idle_since + table.settings.keep_alive_timeout_ms / 1000.0;
	c->requests++;
	c->phase = PHASE_BODY;
	if (c->fate == CONN_FINE && table.settings.request_timeout_ms > 0)
		c->deadline = clock + table.settings.request_timeout_ms / 1000.0;
	pthread_mutex_unlock(&table.mu);
}

/* The request is in: no deadline while it is planned and run. */
void
conns_request_received(struct conn *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&table.mu);
	c->phase = PHASE_WORK;
	if (c->fate == CONN_FINE)
		c->deadline = 0;
	pthread_mutex_unlock(&table.mu);
}

/* The answer starts: a client that does not read it has request_timeout_ms. */
void
conns_answer_begin(struct conn *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&table.mu);
	c->phase = PHASE_ANSWER;
	if (c->fate == CONN_FINE && table.settings.request_timeout_ms > 0)
		c->deadline = now_mono() + table.settings.request_timeout_ms / 1000.0;
	pthread_mutex_unlock(&table.mu);
}

/*
 * The answer is an event stream, which lasts as long as its client
 * follows it: no deadline, but for each write (conns_stream_write), and it
 * is never shed.
 */
void
conns_stream_begin(struct conn *c)
{
	/*
	 * The kernel would let a stream's unread bytes grow to tcp_wmem's
	 * largest (4 MB by default) before a write blocks: held down, a
	 * client that does not read is found out (events.c, the write
	 * deadline) after a few hundred events, and costs little meanwhile.
	 */
	int			sndbuf = STREAM_SNDBUF;

	if (c == NULL)
		return;
	pthread_mutex_lock(&table.mu);
	(void) setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	c->phase = PHASE_STREAM;
	if (c->fate == CONN_FINE)
		c->deadline = 0;
	pthread_mutex_unlock(&table.mu);
}

/* A stream's write starts (writing 1: the client has request_timeout_ms to take it) or ends (0). */
void
conns_stream_write(struct conn *c, int writing)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&table.mu);
	if (c->fate == CONN_FINE)
		c->deadline = (writing && table.settings.request_timeout_ms > 0) ?
			now_mono() + table.settings.request_timeout_ms / 1000.0 : 0;
	pthread_mutex_unlock(&table.mu);
}

/*
 * Cuts a stream's connection, both ways, so that a write blocked on a
 * client that does not read returns at once (events.c: a client that fell
 * behind, or a shutdown).
 */
void
conns_cut_stream(struct conn *c, enum conn_fate fate)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&table.mu);
	if (c->fate == CONN_FINE)
	{
		c->fate = fate;
		c->deadline = 0;
		shutdown(c->fd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&table.mu);
}

/* The request is answered: the connection idles until its next request (or closes). */
void
conns_request_end(struct conn *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&table.mu);
	c->phase = PHASE_IDLE;
	c->idle_since = now_mono();
	if (c->fate == CONN_FINE)
		c->deadline = c->idle_since + table.settings.keep_alive_timeout_ms / 1000.0;
	pthread_mutex_unlock(&table.mu);
}

/* civetweb answered an error on this connection (which then closes). */
void
conns_mark_error_sent(struct conn *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&table.mu);
	c->error_sent = 1;
	pthread_mutex_unlock(&table.mu);
}

/* Whether civetweb answered an error on this connection. */
int
conns_error_sent(struct conn *c)
{
	int			sent;

	if (c == NULL)
		return 0;
	pthread_mutex_lock(&table.mu);
	sent = c->error_sent;
	pthread_mutex_unlock(&table.mu);
	return sent;
}

/* Whether (and why) the shim cut this connection short. */
enum conn_fate
conns_fate(struct conn *c)
{
	enum conn_fate f;

	pthread_mutex_lock(&table.mu);
	f = c ? c->fate : (table.stopping ? CONN_STOPPED : CONN_FINE);
	pthread_mutex_unlock(&table.mu);
	return f;
}

/*
 * Shutting down: cuts every connection's reading side, so that workers
 * waiting for a request let go at once and handlers reading a body stop
 * (and answer 503).  Requests already in Postgres are not affected.
 * Returns how many connections were cut.
 */
int
conns_shutdown_all(void)
{
	int			n = 0;

	pthread_mutex_lock(&table.mu);
	table.stopping = 1;
	for (struct conn *c = table.head; c; c = c->next)
	{
		if (c->fate != CONN_FINE)
			continue;
		c->fate = CONN_STOPPED;
		c->deadline = 0;
		if (c->phase == PHASE_STREAM)
		{
			shutdown(c->fd, SHUT_RDWR);
			n++;
		}
		else if (c->phase != PHASE_WORK && c->phase != PHASE_ANSWER)
		{
			shutdown(c->fd, SHUT_RD);
			n++;
		}
	}
	pthread_mutex_unlock(&table.mu);
	return n;
}

/* A snapshot of the counters, for /system/status and /metrics. */
void
conns_stats(struct conns_stats *out)
{
	pthread_mutex_lock(&table.mu);
	out->open = table.open;
	out->capacity = table.settings.capacity;
	out->max_per_client = table.settings.max_per_client;
	out->refused_per_client = table.refused_per_client;
	out->refused_busy = table.refused_busy;
	out->shed = table.shed;
	out->timed_out = table.timed_out;
	pthread_mutex_unlock(&table.mu);
}
