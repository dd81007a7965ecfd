/*
 * stream.c: GET /jam/events[?service_id=], the Server-Sent Events of
 * every entry committed to the logs the token may read.
 *
 * An event is a log entry; its id is the stream's position in the logs
 * it follows (sse.h).  A stream starts where the logs stand, or, with
 * Last-Event-ID, right after the position it names, and misses nothing in
 * between, without sending anything twice:
 *
 *   1. it subscribes to the shared listening connection (events.c): every
 *      entry committed from then on is queued for it;
 *   2. it reads, with the client's token, where the logs stand and what
 *      they hold after its position (jam_log_events, jam_roots): every
 *      entry committed before that read;
 *   3. it sends the queued announcements, skipping those at or before its
 *      position in their service's log.
 *
 * Each log's entries commit in seq order (an append holds the service
 * row's lock until commit), so an announcement one past the position is
 * the next entry; one further on, or of a service the stream has not seen
 * yet, sends it back to the log for what lies between (which is also how
 * a stream of every service finds out whether the token may see a
 * service).
 *
 * Every heartbeat interval an idle stream sends a comment (": keep-alive")
 * so that proxies keep it open, and every stream reads its logs again with
 * its token: a revoked or expired token ends it, and whatever an
 * announcement did not bring (jam.events off) arrives then.
 */
#include "stream.h"

#include <civetweb.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "buf.h"
#include "conns.h"
#include "errors.h"
#include "events.h"
#include "pool.h"
#include "request.h"
#include "sse.h"

/* Events per jam_log_events call while catching up. */
#define PAGE 500

/* Announcements taken from the queue at once. */
#define BATCH 256

/* What is waiting to be written is written once it is this large. */
#define FLUSH_BYTES 65536

/* Services a stream of every service remembers the token may not see (beyond: asked again). */
#define HIDDEN_MAX 4096

#define EVENTS_SQL "SELECT jam.jam_log_events($3, $4, $5)" AUTH_FROM
#define ROOTS_SQL "SELECT jam.jam_roots()" AUTH_FROM

struct stream
{
	struct exchange *x;
	struct plan *plan;
	struct subscription *sub;
	struct sse_cursor *cursor;
	const char *single;			/* the one service followed, or NULL: every service the token sees */
	char	  **hidden;			/* services the token may not see */
	int			nhidden;
	struct buf	out;			/* events not yet written */
	int			wrote;			/* something was written since the last heartbeat */
	enum stream_end end;
};

/* A service a stream of every service has to catch up on, and how far. */
struct visible_log
{
	char		service_id[SSE_SERVICE_ID_MAX + 1];
	long long	last;
};

static double
now_ms(void)
{
	return shim_now() * 1000.0;
}

/*
 * Runs one of the stream's statements with the client's token: $3.. are
 * service_id, after and max_events when service_id is not NULL.  Returns
 * the result, or NULL with the error in e.  A connection found dead is
 * replaced and the statement run again: it only reads.
 */
static PGresult *
run(struct stream *s, const char *sql, const char *service_id, long long after, int max,
	struct error_answer *e)
{
	char		after_text[24],
				max_text[16];
	const char *values[5] = {s->plan->values[0], s->plan->values[1], service_id, after_text, max_text};
	const unsigned int types[5] = {PLAN_OID_TEXT, PLAN_OID_TEXT, PLAN_OID_TEXT, PLAN_OID_INT8, PLAN_OID_INT4};
	struct pool *pool = s->x->shim->pool;

	snprintf(after_text, sizeof(after_text), "%lld", after);
	snprintf(max_text, sizeof(max_text), "%d", max);
	for (int attempt = 1;; attempt++)
	{
		int			retry_after;
		char		why[320];
		struct pool_conn *c = pool_acquire(pool, &retry_after, why, sizeof(why));
		PGresult   *res;

		if (c == NULL)
		{
			memset(e, 0, sizeof(*e));
			e->status = 503;
			e->retry_after = pool_closing(pool) ? 1 : retry_after;
			snprintf(e->code, sizeof(e->code), "%s", pool_closing(pool) ? "shutting_down" : "database_unavailable");
			snprintf(e->message, sizeof(e->message), "%s", pool_closing(pool) ?
					 "the server is shutting down; retry" : "the database is unavailable; retry later");
			snprintf(e->detail, sizeof(e->detail), "%s", why);
			return NULL;
		}
		res = pool_exec(pool, c, sql, service_id ? 5 : 2, types, values, NULL, NULL, 0);
		if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		{
			pool_release(pool, c);
			return res;
		}
		error_from_result(res, pool_pg(c), e);
		PQclear(res);
		pool_release(pool, c);
		if (e->connection_lost && attempt < 2)
			continue;
		return NULL;
	}
}

/* The first column of a result as JSON; NULL when it is not. */
static struct json_object *
result_json(PGresult *res)
{
	struct json_object *doc = json_tokener_parse(PQgetvalue(res, 0, 0));

	PQclear(res);
	return doc;
}

/* Answers an error before the stream starts. */
static void
refuse(struct stream *s, const struct error_answer *e)
{
	if (e->status >= 500)
		snprintf(s->x->detail, sizeof(s->x->detail), "%s%s%s", e->sqlstate, e->sqlstate[0] ? ": " : "", e->detail);
	if (e->status == 503 && strcmp(e->code, "shutting_down") == 0)
		answer_shutting_down(s->x);
	else
		answer_error(s->x, e->status, e->code, e->message, e->retry_after);
}

/* Ends the stream for a reason; returns -1, for callers to pass on. */
static int
end(struct stream *s, enum stream_end why)
{
	s->end = why;
	return -1;
}

/*
 * Writes what is waiting.  The client has request_timeout_ms to take each
 * write (conns.c); a client that does not is cut, as one that the
 * listener found behind (events.c).
 */
static int
flush(struct stream *s)
{
	int			n;

	if (s->out.len == 0)
		return 0;
	conns_stream_write(s->x->conn_entry, 1);
	events_writing(s->sub, 1);
	n = mg_write(s->x->conn, s->out.data, s->out.len);
	events_writing(s->sub, 0);
	conns_stream_write(s->x->conn_entry, 0);
	if (n < 0 || (size_t) n != s->out.len)
	{
		switch (conns_fate(s->x->conn_entry))
		{
			case CONN_TIMED_OUT:
			case CONN_DROPPED:
				return end(s, STREAM_END_SLOW);
			case CONN_STOPPED:
				return end(s, STREAM_END_SHUTDOWN);
			default:
				return end(s, STREAM_END_CLIENT);
		}
	}
	s->x->bytes += s->out.len;
	s->out.len = 0;
	s->wrote = 1;
	return 0;
}

static int
is_hidden(struct stream *s, const char *service_id)
{
	for (int i = 0; i < s->nhidden; i++)
		if (strcmp(s->hidden[i], service_id) == 0)
			return 1;
	return 0;
}

/* The token may not see a service (any longer): its events are not this stream's. */
static void
hide(struct stream *s, const char *name)
{
	char		service_id[SSE_SERVICE_ID_MAX + 1];

	/* name may be the cursor's own copy, which the removal moves. */
	snprintf(service_id, sizeof(service_id), "%s", name);
	sse_cursor_remove(s->cursor, service_id);
	if (is_hidden(s, service_id) || s->nhidden >= HIDDEN_MAX)
		return;
	s->hidden = xrealloc(s->hidden, sizeof(*s->hidden) * (size_t) (s->nhidden + 1));
	s->hidden[s->nhidden++] = xstrdup(service_id);
}

static void
unhide(struct stream *s, const char *service_id)
{
	for (int i = 0; i < s->nhidden; i++)
		if (strcmp(s->hidden[i], service_id) == 0)
		{
			free(s->hidden[i]);
			s->hidden[i] = s->hidden[--s->nhidden];
			return;
		}
}

/*
 * Adds an event that is one past its service's position (or the first of
 * a service new to the stream) to what is to be written, advancing the
 * position.  -1 when a stream of every service would need more than
 * SSE_MAX_SERVICES positions.
 */
static int
emit(struct stream *s, const struct sse_event *e)
{
	struct sse_position *p = sse_cursor_find(s->cursor, e->service_id);

	if (p == NULL && (p = sse_cursor_add(s->cursor, e->service_id, -1)) == NULL)
		return end(s, STREAM_END_ERROR);
	p->seq = e->seq;
	sse_write_event(s->cursor, e, &s->out);
	return s->out.len >= FLUSH_BYTES ? flush(s) : 0;
}

/*
 * Sends a service's entries after the stream's position from its log, to
 * its end.  A stream of every service that may not see the service (403)
 * hides it; a token that is no longer valid, or may no longer read the one
 * service followed, ends the stream.  So does the database out of reach,
 * unless tolerant (a check that can wait for the next heartbeat).
 */
static int
catch_up(struct stream *s, const char *service_id, int tolerant)
{
	for (;;)
	{
		struct sse_position *p = sse_cursor_find(s->cursor, service_id);
		long long	after = p ? p->seq : -1;
		struct error_answer e;
		PGresult   *res = run(s, EVENTS_SQL, service_id, after, PAGE, &e);
		struct json_object *doc,
				   *events,
				   *next;
		int			more;

		if (res == NULL)
		{
			if (e.status == 403 && !s->single)
			{
				hide(s, service_id);
				return 0;
			}
			if (e.status == 401 || e.status == 403)
				return end(s, STREAM_END_REVOKED);
			if (e.status == 503 && tolerant)
				return 0;
			snprintf(s->x->detail, sizeof(s->x->detail), "catching up on %s: %s%s%s", service_id,
					 e.sqlstate, e.sqlstate[0] ? ": " : "", e.detail);
			return end(s, e.status == 503 ? STREAM_END_DATABASE : STREAM_END_ERROR);
		}
		doc = result_json(res);
		if (!json_object_object_get_ex(doc, "events", &events) || !json_object_is_type(events, json_type_array) ||
			!json_object_object_get_ex(doc, "next_after", &next))
		{
			json_object_put(doc);
			snprintf(s->x->detail, sizeof(s->x->detail), "jam_log_events answered something else");
			return end(s, STREAM_END_ERROR);
		}
		for (size_t i = 0; i < json_object_array_length(events); i++)
		{
			struct sse_event ev;

			if (sse_event_from_object(json_object_array_get_idx(events, i), &ev) < 0 ||
				strcmp(ev.service_id, service_id) != 0)
			{
				json_object_put(doc);
				return end(s, STREAM_END_ERROR);
			}
			p = sse_cursor_find(s->cursor, service_id);
			if ((p == NULL || ev.seq > p->seq) && emit(s, &ev) < 0)
			{
				json_object_put(doc);
				return -1;
			}
		}
		more = next != NULL;
		json_object_put(doc);
		if (!more)
			return 0;
		/* Another page must start further on, or this would never end. */
		p = sse_cursor_find(s->cursor, service_id);
		if ((p ? p->seq : -1) <= after)
			return end(s, STREAM_END_ERROR);
	}
}

/* One announcement from the queue: the next entry, one already sent, or news from a log to read. */
static int
deliver(struct stream *s, const struct sse_event *e)
{
	struct sse_position *p;

	if (s->single ? strcmp(e->service_id, s->single) != 0 : is_hidden(s, e->service_id))
		return 0;
	p = sse_cursor_find(s->cursor, e->service_id);
	if (p && e->seq <= p->seq)
		return 0;
	if (p && e->seq == p->seq + 1)
		return emit(s, e);
	return catch_up(s, e->service_id, 0);
}

/*
 * The services a stream of every service follows, from jam_roots() with
 * the token: into logs (allocated), each with its log's last seq (-1:
 * empty).  Returns how many, or -1 with the error in e.
 */
static int
visible_services(struct stream *s, struct visible_log **logs, struct error_answer *e)
{
	PGresult   *res = run(s, ROOTS_SQL, NULL, 0, 0, e);
	struct json_object *roots;
	int			n = 0;

	*logs = NULL;
	if (res == NULL)
		return -1;
	roots = result_json(res);
	if (!json_object_is_type(roots, json_type_array))
	{
		json_object_put(roots);
		memset(e, 0, sizeof(*e));
		e->status = 500;
		snprintf(e->code, sizeof(e->code), "internal_error");
		snprintf(e->message, sizeof(e->message), "internal error");
		snprintf(e->detail, sizeof(e->detail), "jam_roots answered something else");
		return -1;
	}
	*logs = xmalloc(sizeof(**logs) * (json_object_array_length(roots) + 1));
	for (size_t i = 0; i < json_object_array_length(roots); i++)
	{
		struct json_object *r = json_object_array_get_idx(roots, i),
				   *id,
				   *size;

		if (!json_object_object_get_ex(r, "service_id", &id) || !json_object_object_get_ex(r, "tree_size", &size) ||
			json_object_get_string_len(id) > SSE_SERVICE_ID_MAX)
			continue;
		snprintf((*logs)[n].service_id, sizeof((*logs)[n].service_id), "%s", json_object_get_string(id));
		(*logs)[n].last = json_object_get_int64(size) - 1;
		n++;
	}
	json_object_put(roots);
	return n;
}

/*
 * A stream of every service: the services it follows, and where.  A new
 * stream starts at the end of each log; a resumed one keeps its position
 * in each log the token still sees, and catches up on the rest from their
 * beginning.  An error is answered: the head is not out yet.
 */
static int
start_every_service(struct stream *s, struct visible_log **logs, int *nlogs, int resumed)
{
	struct error_answer e;
	int			n = visible_services(s, logs, &e);
	int			with_entries = 0;

	*nlogs = 0;
	if (n < 0)
	{
		refuse(s, &e);
		return -1;
	}
	for (int i = 0; i < n; i++)
		with_entries += (*logs)[i].last >= 0;
	if (with_entries > SSE_MAX_SERVICES)
	{
		char		msg[160];

		snprintf(msg, sizeof(msg), "the token sees %d services with events, more than the %d one stream follows; "
				 "name one with service_id", with_entries, SSE_MAX_SERVICES);
		answer_error(s->x, 400, "invalid_argument", msg, 0);
		return -1;
	}
	/* A resumed position in a log the token no longer sees is dropped; past a log's end, refused. */
	for (int i = s->cursor->n - 1; i >= 0; i--)
	{
		struct sse_position *p = &s->cursor->pos[i];
		int			found = -1;

		for (int k = 0; k < n && found < 0; k++)
			if (strcmp((*logs)[k].service_id, p->service_id) == 0)
				found = k;
		if (found < 0)
			hide(s, p->service_id);
		else if (p->seq > (*logs)[found].last)
		{
			char		msg[200];

			snprintf(msg, sizeof(msg), "Last-Event-ID: %s:%lld is past the end of the service's log",
					 p->service_id, p->seq);
			answer_error(s->x, 400, "invalid_tree_size", msg, 0);
			return -1;
		}
	}
	for (int i = 0; i < n; i++)
		if (!resumed && (*logs)[i].last >= 0)
			sse_cursor_add(s->cursor, (*logs)[i].service_id, (*logs)[i].last);
	*nlogs = n;
	return 0;
}

/*
 * A stream of one service: where it starts, and whether the token may
 * read it.  A resumed position past the log's end is refused by
 * jam_log_events (400 invalid_tree_size).
 */
static int
start_one_service(struct stream *s, int resumed)
{
	struct error_answer e;
	PGresult   *res = run(s, EVENTS_SQL, s->single, resumed ? s->cursor->pos[0].seq : -1, 0, &e);
	struct json_object *doc,
			   *last;

	if (res == NULL)
	{
		refuse(s, &e);
		return -1;
	}
	doc = result_json(res);
	if (!resumed && json_object_object_get_ex(doc, "last_seq", &last))
		s->cursor->pos[0].seq = json_object_get_int64(last);
	json_object_put(doc);
	return 0;
}

/* Catches up on every log a stream follows that has entries past its position. */
static int
catch_up_all(struct stream *s, struct visible_log *logs, int nlogs, int tolerant)
{
	if (s->single)
		return catch_up(s, s->single, tolerant);
	for (int i = 0; i < nlogs; i++)
	{
		struct sse_position *p = sse_cursor_find(s->cursor, logs[i].service_id);

		if (logs[i].last > (p ? p->seq : -1) && catch_up(s, logs[i].service_id, tolerant) < 0)
			return -1;
	}
	return 0;
}

/*
 * Every heartbeat: the token read with again, and anything the
 * announcements did not bring.  A token refused ends the stream; the
 * database out of reach does not (the listener's loss ends streams when
 * it matters).
 */
static int
recheck(struct stream *s)
{
	struct visible_log *logs = NULL;
	struct error_answer e;
	int			n,
				rc;

	if (s->single)
		return catch_up(s, s->single, 1);
	n = visible_services(s, &logs, &e);
	if (n < 0)
	{
		free(logs);
		return (e.status == 401 || e.status == 403) ? end(s, STREAM_END_REVOKED) : 0;
	}
	for (int i = s->cursor->n - 1; i >= 0; i--)
	{
		int			found = 0;

		for (int k = 0; k < n && !found; k++)
			found = strcmp(logs[k].service_id, s->cursor->pos[i].service_id) == 0;
		if (!found)
			hide(s, s->cursor->pos[i].service_id);
	}
	for (int i = 0; i < n; i++)
		unhide(s, logs[i].service_id);
	rc = catch_up_all(s, logs, n, 1);
	free(logs);
	return rc;
}

/* Follows the queue until the stream ends. */
static void
follow(struct stream *s)
{
	int			heartbeat = s->x->shim->config.events_heartbeat_ms;
	double		next_beat = now_ms() + heartbeat;
	struct sse_event *batch = xmalloc(sizeof(*batch) * BATCH);

	for (;;)
	{
		enum events_end why;
		int			lost;
		int			wait = (int) (next_beat - now_ms());
		int			n = events_next(s->sub, batch, BATCH, wait > 0 ? wait : 0, &why, &lost);

		if (n < 0)
		{
			s->end = why == EVENTS_SLOW ? STREAM_END_SLOW : why == EVENTS_LOST ? STREAM_END_DATABASE :
				STREAM_END_SHUTDOWN;
			break;
		}
		for (int i = 0; i < n; i++)
			if (deliver(s, &batch[i]) < 0)
				goto out;
		/* A burst did not fit the queue: the rest is in the log. */
		if (lost && recheck(s) < 0)
			break;
		if (now_ms() >= next_beat)
		{
			/* Idle since the last beat: a comment, which clients ignore and proxies see as traffic. */
			if (!s->wrote && s->out.len == 0)
				buf_puts(&s->out, ": keep-alive\n\n");
			if (recheck(s) < 0 || flush(s) < 0)
				break;
			s->wrote = 0;
			next_beat = now_ms() + heartbeat;
			continue;
		}
		if (flush(s) < 0)
			break;
	}
out:
	free(batch);
}

/* The head of the stream: 200, text/event-stream, and the connection closes when it ends. */
static void
send_head(struct stream *s)
{
	s->x->close = 1;
	answer_sized(s->x, 200, "text/event-stream", NULL, 0, -1,
				 "Cache-Control: no-store\r\nX-Accel-Buffering: no\r\n");
}

/* GET (and HEAD) /jam/events. */
void
stream_serve(struct exchange *x, struct plan *p)
{
	struct stream s;
	struct visible_log *logs = NULL;
	int			nlogs = 0;
	int			resumed = p->last_event_id != NULL;
	enum events_refusal why;
	char		err[160];

	memset(&s, 0, sizeof(s));
	s.x = x;
	s.plan = p;
	s.single = p->events_service[0] ? p->events_service : NULL;
	s.cursor = xmalloc(sizeof(*s.cursor));
	if (resumed)
		(void) sse_cursor_parse(p->last_event_id, s.single, s.cursor, err, sizeof(err));
	else
		sse_cursor_init(s.cursor, s.single);

	/* Subscribed first: what commits after the logs are read below is queued. */
	s.sub = events_subscribe(s.single, x->conn_entry, x->shim->config.pool_wait_ms, &why);
	if (s.sub == NULL)
	{
		if (why == EVENTS_SHUTTING_DOWN)
			answer_shutting_down(x);
		else if (why == EVENTS_NOT_LISTENING)
			answer_error(x, 503, "database_unavailable", "events cannot be followed now (the database is unreachable); retry later", 1);
		else
		{
			x->close = 1;
			answer_error(x, 503, "server_busy", "too many event streams are open; retry later", 1);
		}
		goto done;
	}
	if ((s.single ? start_one_service(&s, resumed) : start_every_service(&s, &logs, &nlogs, resumed)) < 0)
		goto done;
	send_head(&s);
	if (x->method == METHOD_HEAD)
		goto done;
	conns_stream_begin(x->conn_entry);
	/* EventSource reconnects after this many milliseconds, sending the last id it saw. */
	buf_puts(&s.out, "retry: 1000\n\n");
	if (catch_up_all(&s, logs, nlogs, 0) == 0 && flush(&s) == 0)
		follow(&s);
	events_count_end(s.end);

done:
	if (s.sub)
		events_unsubscribe(s.sub);
	for (int i = 0; i < s.nhidden; i++)
		free(s.hidden[i]);
	free(s.hidden);
	free(logs);
	free(s.cursor);
	buf_free(&s.out);
}
