/*
 * fuzz_request.c: libFuzzer target for the shim's request parsing and
 * routing (plan.c, batch.c, request.c, routes.c, trace.c, framing.c,
 * jsonkeys.c), which take everything a client controls: method, target,
 * headers and body.
 *
 * Input format (so that the seed corpus is readable):
 *   METHOD SP TARGET LF          target = path[?query], or absolute: http://host/path[?query]
 *   (Name: value LF)*            any headers (at most 63); Authorization, Content-Type,
 *                                If-None-Match and traceparent reach the plan
 *   LF
 *   body                         the rest, any bytes
 *
 * Besides "no crash, no leak, no undefined behaviour", it checks what
 * must hold for every input: a refusal has a 4xx/5xx status and a code; a
 * call's statement is built from fixed fragments only (no ';', parameters
 * numbered $1..$n each used, none beyond the count); and a 405 names the
 * methods that are allowed.  Framing: a refusal has a reason; a request
 * let through has at most one Content-Length (a valid one) or one
 * Transfer-Encoding, never both.  The duplicate-name scanner runs on the
 * body as well, and must agree with itself on a second run.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "framing.h"
#include "jsonkeys.h"
#include "plan.h"
#include "request.h"
#include "routes.h"
#include "sse.h"
#include "trace.h"

static char *
dup_range(const char *p, size_t n)
{
	char	   *s = malloc(n + 1);

	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

/* Checks the invariants of a statement: its $n references match the parameters. */
static void
check_sql(const struct plan *p)
{
	int			used[PLAN_MAX_PARAMS + 1] = {0};
	const char *s = p->sql.data;

	if (p->kind == CALL_OPTIONS || p->kind == CALL_SYSTEM_STATUS || p->kind == CALL_OPENAPI)
		return;
	/* An event stream runs its own statements (stream.c); what it is given must hold. */
	if (p->kind == CALL_EVENTS)
	{
		if (p->nparams != 2 || (p->events_service[0] && !sse_valid_service_id(p->events_service, strlen(p->events_service))))
			abort();
		return;
	}
	if (s == NULL || strchr(s, ';') != NULL || p->nparams < 2 || p->nparams > PLAN_MAX_PARAMS)
		abort();
	for (const char *q = strchr(s, '$'); q; q = strchr(q + 1, '$'))
	{
		int			n = atoi(q + 1);

		if (n < 1 || n > p->nparams)
			abort();
		used[n] = 1;
	}
	for (int i = 1; i <= p->nparams; i++)
		if (!used[i])
			abort();
}

/*
 * Event streams' positions and events (sse.c): a Last-Event-ID that parses
 * writes out as an id that parses to the same position, for a stream of
 * one service and of every service; an event document that parses writes
 * out as one that parses to the same event.
 */
static void
check_events(const char *last_event_id, const char *body, size_t body_len)
{
	static struct sse_cursor a,
				b;
	struct sse_event e1,
				e2;
	char		err[160];

	memset(&e1, 0, sizeof(e1));
	memset(&e2, 0, sizeof(e2));
	for (int single = 0; single < 2 && last_event_id; single++)
	{
		const char *service = single ? "svc-1" : NULL;
		struct buf	id = BUF_INIT,
					again = BUF_INIT;

		if (sse_cursor_parse(last_event_id, service, &a, err, sizeof(err)) < 0)
		{
			if (err[0] == '\0')
				abort();
			continue;
		}
		sse_cursor_id(&a, &id);
		if (id.data == NULL || sse_cursor_parse(id.data, service, &b, err, sizeof(err)) < 0)
			abort();
		sse_cursor_id(&b, &again);
		if (strcmp(id.data, again.data) != 0)
			abort();
		buf_free(&id);
		buf_free(&again);
	}
	if (sse_event_parse(body, body_len, &e1) == 0)
	{
		struct buf	doc = BUF_INIT;

		sse_event_data(&e1, &doc);
		if (sse_event_parse(doc.data, doc.len, &e2) < 0 || memcmp(&e1, &e2, sizeof(e1)) != 0)
			abort();
		buf_free(&doc);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *) data;
	const char *end = in + size;
	const char *nl = memchr(in, '\n', size);
	char	   *line,
			   *sp,
			   *target,
			   *qmark;
	char	   *headers[5] = {NULL, NULL, NULL, NULL, NULL};
	static const char *const names[5] = {"Authorization: ", "Content-Type: ", "If-None-Match: ", "traceparent: ",
	"Last-Event-ID: "};
	struct http_header all[63];
	char	   *all_copies[63];
	int			nall = 0;
	char		path_buf[1024],
				authority[256],
				why[160];
	const char *abs_query = NULL;
	struct http_request req;
	struct plan plan;
	const char *p;
	int			rc;

	if (nl == NULL)
		return 0;
	line = dup_range(in, (size_t) (nl - in));
	sp = strchr(line, ' ');
	if (sp == NULL)
	{
		free(line);
		return 0;
	}
	*sp = '\0';
	target = sp + 1;
	qmark = strchr(target, '?');
	if (qmark)
		*qmark = '\0';

	p = nl + 1;
	while (p < end && *p != '\n')
	{
		const char *e = memchr(p, '\n', (size_t) (end - p));
		size_t		len = e ? (size_t) (e - p) : (size_t) (end - p);

		for (int i = 0; i < 5; i++)
		{
			size_t		nlen = strlen(names[i]);

			if (len >= nlen && memcmp(p, names[i], nlen) == 0 && headers[i] == NULL)
				headers[i] = dup_range(p + nlen, len - nlen);
		}
		if (nall < 63)
		{
			char	   *copy = dup_range(p, len);
			char	   *colon = strchr(copy, ':');

			all_copies[nall] = copy;
			all[nall].name = copy;
			all[nall].value = "";
			if (colon)
			{
				*colon = '\0';
				for (all[nall].value = colon + 1; *all[nall].value == ' '; all[nall].value++)
					;
			}
			nall++;
		}
		p += len + (e ? 1 : 0);
	}
	if (p < end && *p == '\n')
		p++;

	/* Framing: a refusal says why; what passes has one unambiguous length. */
	why[0] = '\0';
	if (framing_check(all, nall, "1.1", why, sizeof(why)) < 0)
	{
		if (why[0] == '\0')
			abort();
	}
	else
	{
		int			cl = header_count(all, nall, "Content-Length");
		int			te = header_count(all, nall, "Transfer-Encoding");
		long long	length;

		if (cl > 1 || te > 1 || (cl && te))
			abort();
		for (int i = 0; i < nall; i++)
			if (strcasecmp(all[i].name, "Content-Length") == 0 &&
				(parse_content_length(all[i].value, &length) < 0 || length < 0))
				abort();
	}

	/* An absolute target is served by its path, as the handler does. */
	if (target[0] != '/' && qmark)
		*qmark = '?';
	if (target[0] != '/' && split_absolute_target(target, path_buf, sizeof(path_buf), &abs_query,
												  authority, sizeof(authority)) == 0)
	{
		if (path_buf[0] != '/' || authority[0] == '\0' || strchr(authority, '@') || strchr(authority, '/'))
			abort();
		target = path_buf;
		qmark = NULL;
	}
	else if (target[0] != '/' && qmark)
		*qmark = '\0';

	/* The duplicate-name scanner on the raw body: total, and deterministic. */
	{
		char		n1[JSONKEYS_NAME_MAX + 1],
					n2[JSONKEYS_NAME_MAX + 1];
		long		e1,
					e2;
		int			r1 = json_duplicate_key(p, (size_t) (end - p), n1, sizeof(n1), &e1);
		int			r2 = json_duplicate_key(p, (size_t) (end - p), n2, sizeof(n2), &e2);

		if (r1 != r2 || e1 != e2 || (r1 == 1 && strcmp(n1, n2) != 0) || r1 < -1 || r1 > 1)
			abort();
	}

	memset(&req, 0, sizeof(req));
	req.method = line;
	req.path = target;
	req.query = abs_query ? abs_query : qmark ? qmark + 1 : NULL;
	req.authorization = headers[0];
	req.authorization_count = header_count(all, nall, "Authorization");
	req.content_type = headers[1];
	req.content_type_count = header_count(all, nall, "Content-Type");
	req.if_none_match = headers[2];
	req.last_event_id = headers[4];
	req.last_event_id_count = header_count(all, nall, "Last-Event-ID");
	req.body = p;
	req.body_len = (size_t) (end - p);

	rc = plan_request(&req, &plan);
	if (rc < 0)
	{
		if (plan.kind != CALL_NONE || plan.status < 400 || plan.status > 599 ||
			plan.code == NULL || plan.code[0] == '\0' || plan.message[0] == '\0')
			abort();
		if (plan.status == 405 && strstr(plan.allow, "OPTIONS") == NULL)
			abort();
	}
	else
	{
		if (plan.kind == CALL_NONE || plan.route == ROUTE_NONE)
			abort();
		plan_set_application_name(&plan, "jam-shim trace=fuzz");
		check_sql(&plan);
	}
	plan_free(&plan);

	{
		struct trace t;
		char		tid[33],
					pid[17],
					flags[3];

		if (trace_parse(headers[3], tid, pid, flags) == 0 &&
			(strlen(tid) != 32 || strlen(pid) != 16 || strlen(flags) != 2))
			abort();
		if (headers[3] && strlen(headers[3]) < 200)
		{
			trace_begin(&t, headers[3]);
			if (strlen(t.header) != 55)
				abort();
		}
	}

	check_events(headers[4], p, (size_t) (end - p));

	free(line);
	for (int i = 0; i < 5; i++)
		free(headers[i]);
	for (int i = 0; i < nall; i++)
		free(all_copies[i]);
	return 0;
}
