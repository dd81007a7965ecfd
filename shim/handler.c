/*
 * handler.c: the life of one request: trace, route, body, plan, call,
 * answer, log line, metrics.
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
#include "calls.h"
#include "errors.h"
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

/* Whether the body comes with Transfer-Encoding (civetweb accepts only chunked). */
static int
is_chunked(struct mg_connection *conn)
{
	const char *te = mg_get_header(conn, "Transfer-Encoding");

	return te != NULL && strcasecmp(te, "identity") != 0;
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
		return 0;
	if (!chunked && declared > max)
	{
		/* civetweb drops a small excess after the answer; anything else closes. */
		if (expects_continue || declared - max > DRAIN_MAX)
			x->close = 1;
		snprintf(msg, sizeof(msg), "the body is %lld bytes; the limit is %lld", declared, max);
		answer_error(x, 413, "payload_too_large", msg, 0);
		return -1;
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
		buf_reserve(body, want);
		n = mg_read(x->conn, body->data + body->len, want);
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
	return 0;
}

/* The body cap of a route: a batch of packages has one of its own, larger than one package's. */
static long long
body_cap(const struct shim *shim, route_id route)
{
	return route == ROUTE_PACKAGES_BATCH ? shim->config.max_batch_body_bytes : shim->config.max_body_bytes;
}

/* civetweb's handler for every path: one request from start to log line. */
int
handle_request(struct mg_connection *conn, void *cbdata)
{
	struct shim *shim = cbdata;
	struct exchange x;
	struct plan plan;
	struct buf	body = BUF_INIT;
	struct http_request req;
	char		param[ROUTE_PARAM_MAX + 1];
	char		app[64];
	int			bad;
	const char *path;

	memset(&x, 0, sizeof(x));
	x.started = shim_now();
	x.conn = conn;
	x.shim = shim;
	x.ri = mg_get_request_info(conn);
	x.method = method_bit(x.ri->request_method);
	path = x.ri->local_uri_raw ? x.ri->local_uri_raw : "";
	trace_begin(&x.trace, mg_get_header(conn, "traceparent"));
	metrics_in_flight(1);

	x.route = route_match(path, param, sizeof(param), &bad);
	route_allow(x.route, x.allow, sizeof(x.allow));

	/* Counted in flight before this check, so that main() waits for us or we refuse. */
	if (atomic_load(&shim->stopping))
	{
		x.close = 1;
		answer_error(&x, 503, "shutting_down", "the server is shutting down; retry", 1);
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
	else if (x.ri->content_length > 0 || is_chunked(conn))
		x.close = 1;

	req.method = x.ri->request_method;
	req.path = path;
	req.query = x.ri->query_string;
	req.authorization = mg_get_header(conn, "Authorization");
	req.content_type = mg_get_header(conn, "Content-Type");
	req.if_none_match = mg_get_header(conn, "If-None-Match");
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
	if (!x.answered)
		answer_error(&x, 500, "internal_error", "internal error", 0);
	buf_free(&body);
	finish(&x, path);
	metrics_in_flight(-1);
	return x.status;
}

/*
 * civetweb's own errors (a request it could not parse, a header block
 * over max_request_size, ...) as {"error", "code"}; the connection closes.
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
	x.route = ROUTE_NONE;
	x.method = ri ? method_bit(ri->request_method) : METHOD_OTHER;
	x.close = 1;
	trace_begin(&x.trace, NULL);
	snprintf(text, sizeof(text), "%s", message && *message ? message : mg_get_response_code_text(conn, status));
	text[0] = (char) (text[0] >= 'A' && text[0] <= 'Z' ? text[0] - 'A' + 'a' : text[0]);
	answer_error(&x, status, error_code_for_status(status), text, 0);
	finish(&x, ri && ri->local_uri_raw ? ri->local_uri_raw : NULL);
	return 0;
}
