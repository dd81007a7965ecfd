/*
 * answer.c: status line, headers and body of every answer.
 */
#include "answer.h"

#include <civetweb.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "buf.h"
#include "conns.h"
#include "request.h"

/* Bodies up to this size are copied behind the headers and sent in the same write. */
#define INLINE_BODY_MAX 65536

/* Whether a header value lists a token (comma-separated, case-insensitive). */
static int
header_has_token(const char *value, const char *token)
{
	size_t		n = strlen(token);

	for (const char *p = value; p && *p;)
	{
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		const char *end = strchr(p, ',');
		size_t		len = end ? (size_t) (end - p) : strlen(p);

		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len == n && strncasecmp(p, token, n) == 0)
			return 1;
		p = end;
	}
	return 0;
}

/*
 * Whether the connection stays open after this answer, decided as civetweb
 * decides it (its setting, then the client's Connection header, then the
 * HTTP version), so that the Connection header tells the truth.
 */
static int
keep_alive(struct exchange *x)
{
	const char *c;

	if (x->close || !x->shim->config.keep_alive || x->ri == NULL || x->ri->http_version == NULL ||
		atomic_load(&x->shim->stopping))
		return 0;
	c = mg_get_header(x->conn, "Connection");
	if (c)
		return header_has_token(c, "keep-alive");
	return strcmp(x->ri->http_version, "1.1") == 0;
}

/*
 * Writes an answer.  body may be NULL (HEAD, 204, 304); content_length is
 * what Content-Length says (-1: none, for 204 and 304).  A HEAD answer
 * never carries the body.
 */
void
answer_sized(struct exchange *x, int status, const char *content_type,
			 const char *body, size_t body_len, long long content_length,
			 const char *extra_headers)
{
	struct buf	b = BUF_INIT;
	char		date[64];
	time_t		now = time(NULL);
	struct tm	tm;
	int			ka;
	int			send_body = body != NULL && body_len > 0 && x->method != METHOD_HEAD;

	if (x->answered)
		return;
	x->answered = 1;
	x->status = status;
	conns_answer_begin(x->conn_entry);
	ka = keep_alive(x);
	if (!ka)
		mg_disable_connection_keep_alive(x->conn);

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	buf_printf(&b, "HTTP/1.1 %d %s\r\nDate: %s\r\nConnection: %s\r\n",
			   status, mg_get_response_code_text(x->conn, status), date, ka ? "keep-alive" : "close");
	if (content_type)
		buf_printf(&b, "Content-Type: %s\r\n", content_type);
	if (content_length >= 0)
		buf_printf(&b, "Content-Length: %lld\r\n", content_length);
	if (x->trace.header[0])
		buf_printf(&b, "traceparent: %s\r\n", x->trace.header);
	if (extra_headers)
		buf_puts(&b, extra_headers);
	buf_puts(&b, "\r\n");
	if (send_body && body_len <= INLINE_BODY_MAX)
	{
		buf_append(&b, body, body_len);
		send_body = 0;
	}
	mg_write(x->conn, b.data, b.len);
	if (send_body)
		mg_write(x->conn, body, body_len);
	if (body != NULL && x->method != METHOD_HEAD)
		x->bytes = body_len;
	buf_free(&b);
}

/* An answer whose Content-Length is its body's length. */
void
answer(struct exchange *x, int status, const char *content_type,
	   const char *body, size_t body_len, const char *extra_headers)
{
	answer_sized(x, status, content_type, body, body_len,
				 (status == 204 || status == 304) ? -1 : (long long) body_len, extra_headers);
}

/*
 * An error: {"error": message, "code": code}, with Retry-After when
 * retry_after > 0, Allow on 405 and WWW-Authenticate on 401.
 */
void
answer_error(struct exchange *x, int status, const char *code, const char *message, int retry_after)
{
	struct buf	body = BUF_INIT;
	struct buf	headers = BUF_INIT;

	buf_puts(&body, "{\"error\": ");
	buf_json_string(&body, message, strlen(message));
	buf_puts(&body, ", \"code\": ");
	buf_json_string(&body, code, strlen(code));
	buf_puts(&body, "}\n");

	buf_puts(&headers, "Cache-Control: no-store\r\n");
	if (retry_after > 0)
		buf_printf(&headers, "Retry-After: %d\r\n", retry_after);
	if (status == 405 && x->allow[0])
		buf_printf(&headers, "Allow: %s\r\n", x->allow);
	if (status == 401)
		buf_puts(&headers, "WWW-Authenticate: Bearer realm=\"jam\"\r\n");
	snprintf(x->code, sizeof(x->code), "%s", code);
	answer(x, status, "application/json", body.data, body.len, headers.data);
	buf_free(&body);
	buf_free(&headers);
}

/*
 * 503 shutting_down: the shim is stopping (and, for a request whose
 * statement it cancelled, nothing was written).  The connection closes.
 */
void
answer_shutting_down(struct exchange *x)
{
	x->close = 1;
	answer_error(x, 503, "shutting_down", "the server is shutting down; retry", 1);
}
