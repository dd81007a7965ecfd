/*
 * handler.c: the life of one request: trace, framing, route, body, plan,
 * call, answer, log line, metrics; and civetweb's other callbacks around
 * it (a connection taken, a connection closing, civetweb's own errors).
 */
#include "handler.h"

#include <civetweb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "answer.h"
#include "buf.h"
#include "budget.h"
#include "calls.h"
#include "conns.h"
#include "errors.h"
#include "framing.h"
#include "log.h"
#include "metrics.h"
#include "plan.h"
#include "request.h"

/* Monotonic seconds, for durations. */
double
shim_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Writes the request's log line and counts it. */
static void
finish(struct exchange *x, const char *path)
{
	double		seconds = shim_now() - x->started;
	struct request_log r = {
		.method = x->ri && x->ri->request_method ? x->ri->request_method : NULL,
		.path = path,
		.route = route_label(x->route),
		.status = x->status,
		.duration_ms = seconds * 1000.0,
		.bytes = x->bytes,
		.code = x->code[0] ? x->code : NULL,
		.service_id = x->service_id,
		.package_id = x->package_id,
		.trace_id = x->trace.trace_id,
		.span_id = x->trace.span_id,
		.remote = x->ri ? x->ri->remote_addr : NULL,
		.error_detail = x->detail,
	};

	log_request(&r);
	metrics_observe(x->route, x->method, x->status, seconds, x->bytes);
}

/* Whether the body comes with Transfer-Encoding (framing_check() has let only chunked through). */
static int
is_chunked(struct mg_connection *conn)
{
	return mg_get_header(conn, "Transfer-Encoding") != NULL;
}

/*
 * Whether civetweb accepted a header line with white space between its
 * name and the colon, which RFC 9112 section 5.1 says to refuse (a proxy
 * may read "Content-Length : 5" as another header than civetweb does).
 * civetweb parses in place, writing NULs over that white space and over
 * the colon: after "Name : v" the byte behind the name's terminator is
 * also NUL and the value starts further on, while after "Name:v",
 * "Name: v" or "Name:" it is the value's first byte, a space, or the
 * value itself (empty) starts right there.
 */
static int
space_before_colon(const struct mg_header *h)
{
	size_t		n = strlen(h->name);

	return h->name[n + 1] == '\0' && h->value != h->name + n + 1;
}

/*
 * Whether civetweb stopped reading header lines before the blank line
 * that ends the head.  It stops silently at a line that does not start
 * like a header name: an obsolete folded line (starting with a space or a
 * tab, RFC 9112 section 5.2) or one starting with a byte outside ASCII.
 * Everything after it is ignored, a Content-Length included, which a
 * proxy in front may well have honoured.
 *
 * civetweb parses in place, writing NULs over each line's CR and LF, so
 * the bytes after the last header's value show where it stopped: its
 * terminator (NUL, or two), then the blank line ('\r', or the final LF,
 * which civetweb has already turned into a NUL), or else the first byte
 * of a line it did not read.  Whether the terminator was one byte (LF) or
 * two (CRLF) shows from the line before (the previous header's gap, or
 * the request line's).  A head whose lines end in LF and whose last
 * header is followed at once by the final LF is ambiguous with CRLF only
 * when a client mixes both; then p[2] is the first byte after the head,
 * still inside civetweb's buffer (max_request_size, 16384 bytes from
 * malloc, whose usable size glibc rounds up past that by 8), and at worst
 * such a request is refused for what its body starts with.
 */
static int
header_lines_ignored(const struct mg_request_info *ri)
{
	int			n = ri->num_headers;
	const struct mg_header *last = &ri->http_headers[n - 1];
	const char *p = last->value + strlen(last->value);
	const char *before = n > 1 ? ri->http_headers[n - 2].value + strlen(ri->http_headers[n - 2].value) :
		ri->http_version + strlen(ri->http_version);
	int			lf_lines = last->name - before == 1;

	if (p[1] == '\r')
		return 0;
	if (p[1] != '\0')
		return 1;
	if (lf_lines)
		return 0;
	return p[2] != '\r' && p[2] != '\n' && p[2] != '\0';
}

/*
 * The request's header lines as request.h's pairs; -1 with the reason when
 * one of them is malformed in a way civetweb lets through.
 */
static int
request_headers(const struct mg_request_info *ri, struct http_header *out, char *why, size_t why_size)
{
	int			n = ri->num_headers;

	/* civetweb keeps the first MG_MAX_HEADERS lines and drops the rest unseen. */
	if (n >= MG_MAX_HEADERS)
	{
		snprintf(why, why_size, "too many header lines (at most %d)", MG_MAX_HEADERS - 1);
		return -1;
	}
	if (n > 0 && header_lines_ignored(ri))
	{
		snprintf(why, why_size, "a header line that is folded or does not start with a header name");
		return -1;
	}
	for (int i = 0; i < n; i++)
	{
		if (space_before_colon(&ri->http_headers[i]))
		{
			snprintf(why, why_size, "white space between a header name and its colon");
			return -1;
		}
		out[i].name = ri->http_headers[i].name;
		out[i].value = ri->http_headers[i].value;
	}
	return n;
}

/*
 * 503 server_busy for a body that does not fit the body budget (budget.h):
 * the body is not read, so the connection closes.  Returns -1.
 */
static int
answer_busy(struct exchange *x)
{
	x->close = 1;
	answer_error(x, 503, "server_busy", "the server holds too many request bodies; retry later", 1);
	return -1;
}

/* Answers a body read that ended early because the shim cut the connection; 0 when it did not. */
static int
answer_cut(struct exchange *x)
{
	char		msg[128];

	switch (conns_fate(x->conn_entry))
	{
		case CONN_TIMED_OUT:
			x->close = 1;
			snprintf(msg, sizeof(msg), "the request was not received within %d ms",
					 x->shim->config.request_timeout_ms);
			answer_error(x, 408, "request_timeout", msg, 0);
			return 1;
		case CONN_STOPPED:
			answer_shutting_down(x);
			return 1;
		case CONN_SHED:
			x->close = 1;
			answer_error(x, 503, "server_busy", "the server is busy; retry later", 1);
			return 1;
		default:
			return 0;
	}
}

/*
 * How much of a refused body the shim still reads and drops, so that the
 * connection can stay open and an ordinary client, which sends its whole
 * body before reading the answer, reliably sees the 413 (closing a socket
 * with unread data makes the kernel reset the connection, and the client
 * may lose the answer).  A larger body, or one the client holds back
 * behind Expect: 100-continue, is not read at all: the connection closes.
 */
#define DRAIN_MAX (1024 * 1024)

/*
 * civetweb's worker threads have small stacks (100 kB in Debian's build):
 * bodies are read straight into heap buffers, and dropped through a small one.
 */
#define READ_STEP 65536

/* Reads and drops up to limit more bytes of the body; 1 when it ended. */
static int
drain(struct mg_connection *conn, long long limit)
{
	char		chunk[4096];
	long long	dropped = 0;

	while (dropped <= limit)
	{
		int			n = mg_read(conn, chunk, sizeof(chunk));

		if (n <= 0)
			return n == 0;
		dropped += n;
	}
	return 0;
}

/*
 * Reads the request body, at most max bytes.  Answers the request itself
 * and returns -1 when the body is too large (413, decided from
 * Content-Length before reading, or as soon as a chunked body passes the
 * cap) or ends early.
 */
static int
read_body(struct exchange *x, long long max, struct buf *body)
{
	long long	declared = x->ri->content_length;
	int			chunked = is_chunked(x->conn);
	const char *expect = mg_get_header(x->conn, "Expect");
	int			expects_continue = expect && strcasecmp(expect, "100-continue") == 0;
	char		msg[160];

	if (!chunked && declared <= 0)
	{
		conns_request_received(x->conn_entry);
		return 0;
	}
	if (!chunked && declared > max)
	{
		/* civetweb drops a small excess after the answer; anything else closes. */
		if (expects_continue || declared - max > DRAIN_MAX)
			x->close = 1;
		snprintf(msg, sizeof(msg), "the body is %lld bytes; the limit is %lld", declared, max);
		answer_error(x, 413, "payload_too_large", msg, 0);
		return -1;
	}
	if (!chunked)
	{
		if (!budget_take(declared))
			return answer_busy(x);
		x->body_reserved = declared;
	}
	if (expects_continue && strcmp(x->ri->http_version, "1.1") == 0)
		mg_write(x->conn, "HTTP/1.1 100 Continue\r\n\r\n", 25);

	if (!chunked)
		buf_reserve(body, (size_t) declared);
	for (;;)
	{
		size_t		want = READ_STEP;
		int			n;

		if (!chunked && body->len >= (size_t) declared)
			break;
		if (!chunked && (size_t) declared - body->len < want)
			want = (size_t) declared - body->len;
		/* A chunked body never needs more than one byte past the cap, to see that it is over. */
		if (chunked && (long long) want > max - (long long) body->len + 1)
			want = (size_t) (max - (long long) body->len + 1);

		/*
		 * A chunked body takes its share of the budget as it grows: what it
		 * holds plus the next read, up to the cap (a byte past the cap is
		 * refused at once).
		 */
		if (chunked && (long long) (body->len + want) > x->body_reserved && x->body_reserved < max)
		{
			long long	target = (long long) (body->len + want) < max ? (long long) (body->len + want) : max;
			long long	more = target - x->body_reserved;

			if (!budget_take(more))
				return answer_busy(x);
			x->body_reserved += more;
		}
		buf_reserve(body, want);
		n = mg_read(x->conn, body->data + body->len, want);
		/* The watchdog cuts a body that does not arrive in time: mg_read then sees its end. */
		if (n <= 0 && answer_cut(x))
			return -1;
		if (n < 0 && chunked)
		{
			x->close = 1;
			answer_error(x, 400, "invalid_argument", "the chunked body is malformed", 0);
			return -1;
		}
		if (n <= 0)
			break;
		if ((long long) (body->len + (size_t) n) > max)
		{
			if (!drain(x->conn, DRAIN_MAX))
				x->close = 1;
			snprintf(msg, sizeof(msg), "the body is larger than the limit of %lld bytes", max);
			answer_error(x, 413, "payload_too_large", msg, 0);
			return -1;
		}
		body->len += (size_t) n;
		body->data[body->len] = '\0';
	}
	if (!chunked && (long long) body->len < declared)
	{
		x->close = 1;
		answer_error(x, 400, "invalid_argument", "the body ended before Content-Length bytes", 0);
		return -1;
	}
	conns_request_received(x->conn_entry);
	return 0;
}

/* The body cap of a route: a batch of packages has one of its own, larger than one package's. */
static long long
body_cap(const struct shim *shim, route_id route)
{
	return route == ROUTE_PACKAGES_BATCH ? shim->config.max_batch_body_bytes : shim->config.max_body_bytes;
}

/*
 * The user data of a connection a worker has taken but whose entry in the
 * connection table is not looked up yet: init_connection runs before
 * civetweb shows the connection's peer.  A connection without user data
 * never got init_connection (a failed TLS handshake).
 */
static char entry_pending;

/* The connection's entry in the connection table, looked up on first use; NULL when it has none. */
static struct conn *
conn_entry(struct mg_connection *conn)
{
	void	   *d = mg_get_user_connection_data(conn);
	const struct mg_request_info *ri;
	struct conn *e;

	if (d != &entry_pending)
		return d;
	ri = mg_get_request_info(conn);
	if (ri == NULL)
		return NULL;
	e = conns_attach(ri->remote_addr, ri->remote_port);
	if (e)
		mg_set_user_connection_data(conn, e);
	return e;
}

/* Starts an exchange: the request, its trace, its connection's entry, counted in flight. */
static void
exchange_begin(struct exchange *x, struct mg_connection *conn, struct shim *shim)
{
	memset(x, 0, sizeof(*x));
	x->started = shim_now();
	x->conn = conn;
	x->shim = shim;
	x->ri = mg_get_request_info(conn);
	x->conn_entry = conn_entry(conn);
	x->method = method_bit(x->ri->request_method);
	trace_begin(&x->trace, mg_get_header(conn, "traceparent"));
	conns_request_begin(x->conn_entry);
	metrics_in_flight(1);
}

/* Ends an exchange: an answer in any case, the log line, the counters. */
static void
exchange_end(struct exchange *x, const char *path)
{
	if (!x->answered)
		answer_error(x, 500, "internal_error", "internal error", 0);
	finish(x, path);
	metrics_in_flight(-1);
	conns_request_end(x->conn_entry);
}

/*
 * One request, path and query already separated (from civetweb, or from a
 * request target in absolute form).  Returns the answer's status.
 */
static int
serve(struct mg_connection *conn, struct shim *shim, const char *path, const char *query, int closes)
{
	struct exchange x;
	struct plan plan;
	struct buf	body = BUF_INIT;
	struct http_request req;
	struct http_header headers[MG_MAX_HEADERS];
	char		param[ROUTE_PARAM_MAX + 1];
	char		why[160];
	char		app[64];
	int			nheaders,
				bad;

	exchange_begin(&x, conn, shim);
	x.close = closes;
	x.route = route_match(path, param, sizeof(param), &bad);
	route_allow(x.route, x.allow, sizeof(x.allow));

	/*
	 * Framing first, before a byte of the body is read: a request whose
	 * length is in doubt is refused and its connection closed, so that
	 * whatever follows it is never taken for a request of its own.
	 */
	nheaders = request_headers(x.ri, headers, why, sizeof(why));
	if (nheaders < 0 || framing_check(headers, nheaders, x.ri->http_version, why, sizeof(why)) < 0)
	{
		x.close = 1;
		answer_error(&x, 400, "bad_request", why, 0);
		goto done;
	}
	/*
	 * Without any header line there is no last line to check for lines
	 * civetweb skipped (see header_lines_ignored): the connection closes
	 * after the answer, so that nothing skipped can frame a next request.
	 */
	if (nheaders == 0)
		x.close = 1;

	/* Counted in flight before this check, so that main() waits for us or we refuse. */
	if (atomic_load(&shim->stopping))
	{
		answer_shutting_down(&x);
		goto done;
	}

	/*
	 * Only POST routes read a body.  Any other request with a body gets its
	 * answer and then the connection closes, instead of civetweb reading
	 * and dropping a body of unknown size.
	 */
	if (x.route != ROUTE_NONE && x.method == METHOD_POST && (shim_routes[x.route].methods & METHOD_POST))
	{
		if (read_body(&x, body_cap(shim, x.route), &body) < 0)
			goto done;
	}
	else
	{
		if (x.ri->content_length > 0 || is_chunked(conn))
			x.close = 1;
		conns_request_received(x.conn_entry);
	}

	req.method = x.ri->request_method;
	req.path = path;
	req.query = query;
	req.authorization = mg_get_header(conn, "Authorization");
	req.authorization_count = header_count(headers, nheaders, "Authorization");
	req.content_type = mg_get_header(conn, "Content-Type");
	req.content_type_count = header_count(headers, nheaders, "Content-Type");
	req.if_none_match = mg_get_header(conn, "If-None-Match");
	req.last_event_id = mg_get_header(conn, "Last-Event-ID");
	req.last_event_id_count = header_count(headers, nheaders, "Last-Event-ID");
	req.body = body.data;
	req.body_len = body.len;

	if (plan_request(&req, &plan) < 0)
	{
		snprintf(x.service_id, sizeof(x.service_id), "%s", plan.log_service_id);
		answer_error(&x, plan.status, plan.code, plan.message, 0);
	}
	else
	{
		snprintf(app, sizeof(app), "jam-shim trace=%s", x.trace.trace_id);
		plan_set_application_name(&plan, app);
		snprintf(x.service_id, sizeof(x.service_id), "%s", plan.log_service_id);
		snprintf(x.package_id, sizeof(x.package_id), "%s", plan.log_package_id);
		call_run(&x, &plan);
	}
	plan_free(&plan);

done:
	buf_free(&body);
	budget_give(x.body_reserved);
	exchange_end(&x, path);
	return x.status;
}

/* civetweb's handler for every path: one request from start to log line. */
int
handle_request(struct mg_connection *conn, void *cbdata)
{
	const struct mg_request_info *ri = mg_get_request_info(conn);

	return serve(conn, cbdata, ri->local_uri_raw ? ri->local_uri_raw : "", ri->query_string, 0);
}

/* The methods the shim serves somewhere, for OPTIONS *. */
#define ALL_METHODS "GET, HEAD, POST, OPTIONS"

/*
 * OPTIONS * (RFC 9110 section 9.3.7: the server's capabilities, not a
 * resource's): 200 with Allow naming every method some route takes, and
 * the same as JSON.  Any other method with the target "*" is malformed.
 */
static void
serve_asterisk(struct mg_connection *conn, struct shim *shim)
{
	struct exchange x;
	struct http_header headers[MG_MAX_HEADERS];
	char		why[160];
	int			nheaders;

	exchange_begin(&x, conn, shim);
	x.close = 1;
	x.route = ROUTE_NONE;
	nheaders = request_headers(x.ri, headers, why, sizeof(why));
	if (nheaders < 0 || framing_check(headers, nheaders, x.ri->http_version, why, sizeof(why)) < 0)
		answer_error(&x, 400, "bad_request", why, 0);
	else if (x.method != METHOD_OPTIONS)
		answer_error(&x, 400, "bad_request", "the request target * is only for OPTIONS", 0);
	else
	{
		static const char body[] = "{\"methods\": [\"GET\", \"HEAD\", \"POST\", \"OPTIONS\"]}\n";

		answer(&x, 200, "application/json", body, sizeof(body) - 1,
			   "Allow: " ALL_METHODS "\r\nCache-Control: no-store\r\n");
	}
	exchange_end(&x, "*");
}

/*
 * Requests civetweb parsed but routes nowhere: OPTIONS * and a target in
 * absolute form ("http://host/path") whose port is not the one the shim
 * listens on, which is how it arrives behind a proxy or port mapping.
 * civetweb 1.15 treats both as meant for another server: it calls no
 * handler and no begin_request (both run only for a "local" URI), sends
 * nothing and closes the connection, whose connection_close callback is
 * then the one place left to answer them.  They are answered there, as any
 * request, and the connection closes after.  RFC 9112 section 3.2.2 says
 * a server must accept the absolute form; its authority stands in for
 * Host (the shim serves one origin and does not route by host).
 */
static void
serve_unrouted(struct mg_connection *conn, struct shim *shim, const struct mg_request_info *ri)
{
	char		path[ROUTE_PARAM_MAX * 3 + 256];
	char		authority[256];
	const char *query;

	if (strcmp(ri->request_uri, "*") == 0)
	{
		serve_asterisk(conn, shim);
		return;
	}
	if (split_absolute_target(ri->request_uri, path, sizeof(path), &query, authority, sizeof(authority)) < 0)
	{
		struct exchange x;

		exchange_begin(&x, conn, shim);
		x.close = 1;
		x.route = ROUTE_NONE;
		answer_error(&x, 400, "bad_request", "the request target is not an http URI this server can serve", 0);
		exchange_end(&x, NULL);
		return;
	}
	(void) serve(conn, shim, path, query, 1);
}

/*
 * civetweb's init_connection callback: a worker has taken a connection.
 * Its entry in the connection table is looked up when first needed (see
 * entry_pending).
 */
int
handle_connection_init(const struct mg_connection *conn, void **conn_data)
{
	(void) conn;
	*conn_data = &entry_pending;
	return 0;
}

/*
 * civetweb's connection_close callback, just before it closes the socket:
 * answers a request civetweb left unrouted (see serve_unrouted).
 */
void
handle_connection_close(const struct mg_connection *cconn)
{
	/* civetweb hands the connection over as const; it is its own, and writable. */
	struct mg_connection *conn = (struct mg_connection *) cconn;
	struct shim *shim = mg_get_user_data(mg_get_context(conn));
	struct conn *entry;
	const struct mg_request_info *ri;

	/*
	 * A connection that never got init_connection (a failed TLS
	 * handshake) has no user data, and its request fields are a previous
	 * connection's: it is left alone.
	 */
	if (mg_get_user_connection_data(conn) == NULL)
		return;
	ri = mg_get_request_info(conn);
	entry = conn_entry(conn);

	/*
	 * A request that was parsed (method, target and version set), neither
	 * routed (no local URI) nor refused by civetweb: only OPTIONS * and
	 * the absolute form.
	 */
	if (entry && ri && ri->request_method && ri->request_uri && ri->http_version &&
		ri->local_uri == NULL && !conns_error_sent(entry))
		serve_unrouted(conn, shim, ri);
}

/*
 * civetweb's own errors (a request it could not parse, a header block
 * over max_request_size, ...) as {"error", "code"}; the connection closes.
 * When the shim itself cut the connection (a deadline, shedding, shutdown)
 * civetweb sees a truncated request and reports it malformed: the answer
 * then says what really happened.
 */
int
handle_http_error(struct mg_connection *conn, int status, const char *message)
{
	struct shim *shim = mg_get_user_data(mg_get_context(conn));
	struct exchange x;
	char		text[256];
	const struct mg_request_info *ri = mg_get_request_info(conn);

	memset(&x, 0, sizeof(x));
	x.started = shim_now();
	x.conn = conn;
	x.shim = shim;
	x.ri = ri;
	x.conn_entry = conn_entry(conn);
	x.route = ROUTE_NONE;
	x.method = ri ? method_bit(ri->request_method) : METHOD_OTHER;
	x.close = 1;
	trace_begin(&x.trace, NULL);
	conns_mark_error_sent(x.conn_entry);
	if (!answer_cut(&x))
	{
		snprintf(text, sizeof(text), "%s", message && *message ? message : mg_get_response_code_text(conn, status));
		text[0] = (char) (text[0] >= 'A' && text[0] <= 'Z' ? text[0] - 'A' + 'a' : text[0]);
		/* civetweb says 411 for a Content-Length it cannot read: a malformed request, not a missing length. */
		if (status == 411)
		{
			status = 400;
			snprintf(text, sizeof(text), "Content-Length must be a non-negative integer");
		}
		answer_error(&x, status, error_code_for_status(status), text, 0);
	}
	finish(&x, ri && ri->local_uri_raw ? ri->local_uri_raw : NULL);
	return 0;
}
