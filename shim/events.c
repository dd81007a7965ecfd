/*
 * events.c: the listening connection and the streams' queues (events.h).
 *
 * One mutex guards the subscriptions and the listener's state.  The
 * listener takes it once per announcement, to copy the event into the
 * queue of each stream that follows its service: a few microseconds,
 * whatever the clients do, so that a slow client never holds up the
 * listener (nor, through Postgres' notification queue, which fills when a
 * listener stops reading, the writers).  It never waits on a client.
 *
 * A subscription's connection entry (conns.c) stays valid while it is
 * subscribed: the stream unsubscribes before its handler returns, and
 * civetweb closes the socket only after that.
 */
#include "events.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "conns.h"
#include "log.h"

/* The channel the extension announces on (src/events.h). */
#define CHANNEL "jam_events"

/* A listening connection idle this long runs a statement, to find out that it is still there. */
#define PROBE_IDLE_S 30.0

struct subscription
{
	struct subscription *prev,
			   *next;
	char		service_id[SSE_SERVICE_ID_MAX + 1]; /* "": every service */
	struct conn *conn;
	pthread_cond_t wake;
	struct sse_event *ring;
	int			cap,
				head,
				count;
	int			lost;			/* announcements did not fit: the stream reads the log */
	double		writing_since;	/* monotonic seconds; 0: not writing */
	enum events_end end;
};

static struct
{
	pthread_mutex_t mu;
	pthread_cond_t listening_changed;
	int			started;
	int			stopping;
	int			listening;
	char	   *dsn;
	int			queue_events;
	int			max_streams;
	int			wake[2];		/* a pipe: wakes the listener from poll() */
	struct subscription *subs;
	int			nsubs;
	long long	received;
	long long	ended[STREAM_END__COUNT];
}			hub = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.wake = {-1, -1},
};

static double
now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The absolute CLOCK_MONOTONIC time ms from now, for pthread_cond_timedwait. */
static struct timespec
deadline_in(int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long) (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L)
	{
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

static void
cond_init_monotonic(pthread_cond_t *c)
{
	pthread_condattr_t attr;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(c, &attr);
	pthread_condattr_destroy(&attr);
}

static int
stopping(void)
{
	int			s;

	pthread_mutex_lock(&hub.mu);
	s = hub.stopping;
	pthread_mutex_unlock(&hub.mu);
	return s;
}

/*
 * Ends a subscription (with the lock held).  A client that is not kept up
 * with, or a shutdown, also has its connection cut, so that a write
 * blocked on a client that does not read returns at once.
 */
static void
end_subscription(struct subscription *s, enum events_end why)
{
	if (s->end != EVENTS_OPEN)
		return;
	s->end = why;
	if (why == EVENTS_SLOW)
		conns_cut_stream(s->conn, CONN_DROPPED);
	else if (why == EVENTS_STOPPING)
		conns_cut_stream(s->conn, CONN_STOPPED);
	pthread_cond_signal(&s->wake);
}

/* Hands one announcement to every stream following its service. */
static void
dispatch(const struct sse_event *e)
{
	pthread_mutex_lock(&hub.mu);
	hub.received++;
	for (struct subscription *s = hub.subs; s; s = s->next)
	{
		if (s->end != EVENTS_OPEN || (s->service_id[0] && strcmp(s->service_id, e->service_id) != 0))
			continue;
		if (s->count == s->cap)
		{
			if (s->writing_since > 0 && now_mono() - s->writing_since >= EVENTS_STALLED_S)
				end_subscription(s, EVENTS_SLOW);
			else
			{
				s->lost = 1;
				pthread_cond_signal(&s->wake);
			}
			continue;
		}
		s->ring[(s->head + s->count) % s->cap] = *e;
		s->count++;
		pthread_cond_signal(&s->wake);
	}
	pthread_mutex_unlock(&hub.mu);
}

/* Up or down; going down ends every subscription, which may have missed announcements. */
static void
set_listening(int up)
{
	pthread_mutex_lock(&hub.mu);
	hub.listening = up;
	if (!up)
		for (struct subscription *s = hub.subs; s; s = s->next)
			end_subscription(s, hub.stopping ? EVENTS_STOPPING : EVENTS_LOST);
	pthread_cond_broadcast(&hub.listening_changed);
	pthread_mutex_unlock(&hub.mu);
}

/* Sleeps up to seconds, or until events_stop() writes to the wake pipe. */
static void
nap(double seconds)
{
	struct pollfd p = {.fd = hub.wake[0],.events = POLLIN};
	char		drain[64];

	if (poll(&p, 1, (int) (seconds * 1000)) > 0)
		while (read(hub.wake[0], drain, sizeof(drain)) > 0)
			;
}

/* Hands over every announcement libpq has read; the channel's only. */
static void
drain_notifies(PGconn *pg)
{
	PGnotify   *n;

	while ((n = PQnotifies(pg)) != NULL)
	{
		struct sse_event e;

		if (strcmp(n->relname, CHANNEL) == 0)
		{
			if (sse_event_parse(n->extra, strlen(n->extra), &e) == 0)
				dispatch(&e);
			else
				log_event("warning", "events: an announcement that is not an event: %.200s", n->extra);
		}
		PQfreemem(n);
	}
}

/*
 * Listens on pg until the connection is lost or the shim stops.  Returns
 * the reason it was lost ("" when stopping).
 */
static void
listen_on(PGconn *pg, char *why, size_t why_size)
{
	int			sock = PQsocket(pg);
	double		active = now_mono();

	why[0] = '\0';
	for (;;)
	{
		struct pollfd fds[2] = {{.fd = sock,.events = POLLIN}, {.fd = hub.wake[0],.events = POLLIN}};
		int			rc = poll(fds, 2, 1000);
		char		drain[64];

		if (stopping())
			return;
		if (rc > 0 && fds[1].revents)
			while (read(hub.wake[0], drain, sizeof(drain)) > 0)
				;
		if (rc > 0 && fds[0].revents)
		{
			if (!PQconsumeInput(pg))
				break;
			active = now_mono();
		}
		drain_notifies(pg);
		if (now_mono() - active >= PROBE_IDLE_S)
		{
			PGresult   *res = PQexec(pg, "SELECT 1");
			int			ok = PQresultStatus(res) == PGRES_TUPLES_OK;

			PQclear(res);
			if (!ok)
				break;
			drain_notifies(pg);
			active = now_mono();
		}
	}
	snprintf(why, why_size, "%s", PQerrorMessage(pg));
	why[strcspn(why, "\n")] = '\0';
}

/* Opens the listening connection; NULL with the reason in why. */
static PGconn *
open_listener(char *why, size_t why_size)
{
	/*
	 * The DSN comes last, so that whatever it sets wins.  TCP keepalives
	 * let a connection to a server that vanished fail within a minute or
	 * so, rather than when the kernel gives up on it.
	 */
	const char *keys[] = {"connect_timeout", "application_name", "keepalives", "keepalives_idle",
	"keepalives_interval", "keepalives_count", "dbname", NULL};
	const char *vals[] = {"5", "jam-shim events", "1", "30", "10", "3", hub.dsn, NULL};
	PGconn	   *pg = PQconnectdbParams(keys, vals, 1);
	PGresult   *res;

	if (pg == NULL || PQstatus(pg) != CONNECTION_OK)
	{
		snprintf(why, why_size, "%s", pg ? PQerrorMessage(pg) : "out of memory");
		why[strcspn(why, "\n")] = '\0';
		PQfinish(pg);
		return NULL;
	}
	res = PQexec(pg, "LISTEN " CHANNEL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		snprintf(why, why_size, "LISTEN: %s", PQerrorMessage(pg));
		why[strcspn(why, "\n")] = '\0';
		PQclear(res);
		PQfinish(pg);
		return NULL;
	}
	PQclear(res);
	return pg;
}

/* The listener thread: connect, listen, and again after a loss, backing off from 0.5 s to 5 s. */
static void *
listener(void *arg)
{
	double		backoff = 0.5;
	int			complained = 0;

	(void) arg;
	while (!stopping())
	{
		char		why[512];
		PGconn	   *pg = open_listener(why, sizeof(why));

		if (pg == NULL)
		{
			if (!complained)
				log_event("warning", "events: cannot listen on %s (retrying): %s", CHANNEL, why);
			complained = 1;
			nap(backoff);
			backoff = backoff * 2 > 5 ? 5 : backoff * 2;
			continue;
		}
		complained = 0;
		backoff = 0.5;
		set_listening(1);
		log_event("info", "events: listening on %s", CHANNEL);
		listen_on(pg, why, sizeof(why));
		set_listening(0);
		PQfinish(pg);
		if (why[0])
			log_event("warning", "events: lost the listening connection; streams end and resume: %s", why);
	}
	return NULL;
}

/* Starts the listener thread. */
void
events_start(const struct events_settings *settings)
{
	pthread_t	t;

	hub.dsn = xstrdup(settings->dsn);
	hub.queue_events = settings->queue_events;
	hub.max_streams = settings->max_streams;
	cond_init_monotonic(&hub.listening_changed);
	if (pipe(hub.wake) != 0)
	{
		log_event("fatal", "events: cannot make a pipe: %s", strerror(errno));
		abort();
	}
	fcntl(hub.wake[0], F_SETFL, fcntl(hub.wake[0], F_GETFL) | O_NONBLOCK);
	fcntl(hub.wake[1], F_SETFL, fcntl(hub.wake[1], F_GETFL) | O_NONBLOCK);
	/* Detached: a shutdown never waits for a connect in progress. */
	if (pthread_create(&t, NULL, listener, NULL) != 0)
	{
		log_event("fatal", "events: cannot start the listener thread");
		abort();
	}
	pthread_detach(t);
	hub.started = 1;
}

/* Shutting down: every stream ends at once (their connections cut), and the listener stops. */
void
events_stop(void)
{
	if (!hub.started)
		return;
	pthread_mutex_lock(&hub.mu);
	hub.stopping = 1;
	for (struct subscription *s = hub.subs; s; s = s->next)
		end_subscription(s, EVENTS_STOPPING);
	pthread_cond_broadcast(&hub.listening_changed);
	pthread_mutex_unlock(&hub.mu);
	/* A full pipe means the listener is being woken anyway. */
	{
		ssize_t		w = write(hub.wake[1], "x", 1);

		(void) w;
	}
}

/*
 * Subscribes a stream to the announcements of service_id (NULL: every
 * service), waiting up to wait_ms for the listener to be up.  Returns
 * NULL, with the reason, when it may not.  Announcements committed after
 * this returns are in the queue; earlier ones the stream reads from the log.
 */
struct subscription *
events_subscribe(const char *service_id, struct conn *conn, int wait_ms, enum events_refusal *why)
{
	struct timespec until = deadline_in(wait_ms);
	struct subscription *s;

	pthread_mutex_lock(&hub.mu);
	while (!hub.listening && !hub.stopping &&
		   pthread_cond_timedwait(&hub.listening_changed, &hub.mu, &until) != ETIMEDOUT)
		;
	if (hub.stopping || !hub.listening || hub.nsubs >= hub.max_streams)
	{
		*why = hub.stopping ? EVENTS_SHUTTING_DOWN : !hub.listening ? EVENTS_NOT_LISTENING : EVENTS_TOO_MANY;
		pthread_mutex_unlock(&hub.mu);
		return NULL;
	}
	s = xmalloc(sizeof(*s));
	memset(s, 0, sizeof(*s));
	if (service_id)
		snprintf(s->service_id, sizeof(s->service_id), "%s", service_id);
	s->conn = conn;
	cond_init_monotonic(&s->wake);
	s->cap = hub.queue_events;
	s->ring = xmalloc(sizeof(*s->ring) * (size_t) s->cap);
	s->end = EVENTS_OPEN;
	s->next = hub.subs;
	if (hub.subs)
		hub.subs->prev = s;
	hub.subs = s;
	hub.nsubs++;
	pthread_mutex_unlock(&hub.mu);
	return s;
}

/*
 * Takes up to max queued announcements, waiting up to timeout_ms for one.
 * Returns how many (0: none came in time), or -1 once the subscription
 * has ended and its queue is empty, with the reason in *end.  *lost says
 * that announcements did not fit since the last call: the log holds them.
 */
int
events_next(struct subscription *s, struct sse_event *out, int max, int timeout_ms, enum events_end *end,
			int *lost)
{
	struct timespec until = deadline_in(timeout_ms);
	int			n = 0;

	pthread_mutex_lock(&hub.mu);
	while (s->count == 0 && !s->lost && s->end == EVENTS_OPEN &&
		   pthread_cond_timedwait(&s->wake, &hub.mu, &until) != ETIMEDOUT)
		;
	*lost = s->lost;
	s->lost = 0;
	/* A client that fell behind gets nothing more: its connection is cut. */
	if (s->end == EVENTS_SLOW)
		s->count = 0;
	while (n < max && s->count > 0)
	{
		out[n++] = s->ring[s->head];
		s->head = (s->head + 1) % s->cap;
		s->count--;
	}
	*end = s->end;
	pthread_mutex_unlock(&hub.mu);
	return (n == 0 && *end != EVENTS_OPEN) ? -1 : n;
}

/* The stream starts (writing 1) or ends (0) a write to its client. */
void
events_writing(struct subscription *s, int writing)
{
	pthread_mutex_lock(&hub.mu);
	s->writing_since = writing ? now_mono() : 0;
	pthread_mutex_unlock(&hub.mu);
}

void
events_unsubscribe(struct subscription *s)
{
	pthread_mutex_lock(&hub.mu);
	if (s->prev)
		s->prev->next = s->next;
	else
		hub.subs = s->next;
	if (s->next)
		s->next->prev = s->prev;
	hub.nsubs--;
	pthread_mutex_unlock(&hub.mu);
	pthread_cond_destroy(&s->wake);
	free(s->ring);
	free(s);
}

/* Counts a stream that ended, by why. */
void
events_count_end(enum stream_end reason)
{
	pthread_mutex_lock(&hub.mu);
	hub.ended[reason]++;
	pthread_mutex_unlock(&hub.mu);
}

const char *
events_end_label(enum stream_end reason)
{
	static const char *const labels[STREAM_END__COUNT] = {
		"client", "slow", "revoked", "database", "shutdown", "error"
	};

	return labels[reason];
}

/* A snapshot, for /metrics. */
void
events_stats(struct events_stats *out)
{
	pthread_mutex_lock(&hub.mu);
	out->listening = hub.listening;
	out->streams = hub.nsubs;
	out->received = hub.received;
	memcpy(out->ended, hub.ended, sizeof(out->ended));
	pthread_mutex_unlock(&hub.mu);
}
