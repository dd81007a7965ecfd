/*
 * sse.c: events and stream positions (see sse.h).
 */
#include "sse.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whether the len bytes at s are a service id (the extension's rule, checks.c). */
int
sse_valid_service_id(const char *s, size_t len)
{
	if (len == 0 || len > SSE_SERVICE_ID_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
	{
		char		ch = s[i];
		int			alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');

		if (!alnum && (i == 0 || (ch != '.' && ch != '_' && ch != ':' && ch != '-')))
			return 0;
	}
	return 1;
}

/* A string member of obj, copied into dst (of size); -1 when absent, not a string, or too long. */
static int
string_member(struct json_object *obj, const char *key, char *dst, size_t size)
{
	struct json_object *v;
	size_t		len;

	if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
		return -1;
	len = (size_t) json_object_get_string_len(v);
	if (len >= size)
		return -1;
	memcpy(dst, json_object_get_string(v), len);
	dst[len] = '\0';
	return memchr(dst, '\0', len) ? -1 : 0;
}

static int
is_hex64(const char *s)
{
	if (strlen(s) != 64)
		return 0;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return 0;
	return 1;
}

/* An event document, parsed (an item of jam_log_events' events); -1 when it is not one. */
int
sse_event_from_object(struct json_object *obj, struct sse_event *out)
{
	struct json_object *seq;

	if (obj == NULL || !json_object_is_type(obj, json_type_object) ||
		string_member(obj, "service_id", out->service_id, sizeof(out->service_id)) < 0 ||
		string_member(obj, "kind", out->kind, sizeof(out->kind)) < 0 ||
		string_member(obj, "id", out->id, sizeof(out->id)) < 0 ||
		string_member(obj, "status", out->status, sizeof(out->status)) < 0 ||
		!json_object_object_get_ex(obj, "seq", &seq) || !json_object_is_type(seq, json_type_int))
		return -1;
	out->seq = json_object_get_int64(seq);
	if (!sse_valid_service_id(out->service_id, strlen(out->service_id)) || out->seq < 0 ||
		(strcmp(out->kind, "package") != 0 && strcmp(out->kind, "report") != 0) ||
		(strcmp(out->status, "pending") != 0 && strcmp(out->status, "applied") != 0 &&
		 strcmp(out->status, "failed") != 0) || !is_hex64(out->id))
		return -1;
	/* A report's package, which jam names since 1.3. */
	out->package_id[0] = '\0';
	if (json_object_object_get_ex(obj, "package_id", NULL) &&
		(strcmp(out->kind, "report") != 0 ||
		 string_member(obj, "package_id", out->package_id, sizeof(out->package_id)) < 0 ||
		 !is_hex64(out->package_id)))
		return -1;
	return 0;
}

/* Parses an event document (a NOTIFY payload); -1 when it is not exactly one. */
int
sse_event_parse(const char *json, size_t len, struct sse_event *out)
{
	struct json_tokener *tok;
	struct json_object *obj;
	int			ok = -1;

	if (len == 0 || len > 4096)
		return -1;
	tok = json_tokener_new();
	if (tok == NULL)
		return -1;
	obj = json_tokener_parse_ex(tok, json, (int) len);
	if (obj != NULL && json_tokener_get_error(tok) == json_tokener_success &&
		json_tokener_get_parse_end(tok) == len)
		ok = sse_event_from_object(obj, out);
	json_object_put(obj);
	json_tokener_free(tok);
	return ok;
}

/* The SSE event type: submitted (a package's entry), applied or failed (a report's). */
const char *
sse_event_name(const struct sse_event *e)
{
	return strcmp(e->kind, "package") == 0 ? "submitted" : e->status;
}

/* The event's data line: the very document the extension announces (events.c). */
void
sse_event_data(const struct sse_event *e, struct buf *out)
{
	buf_printf(out, "{\"service_id\": \"%s\", \"seq\": %lld, \"kind\": \"%s\", \"id\": \"%s\", \"status\": \"%s\"",
			   e->service_id, e->seq, e->kind, e->id, e->status);
	if (e->package_id[0])
		buf_printf(out, ", \"package_id\": \"%s\"", e->package_id);
	buf_puts(out, "}");
}

/* An empty position: of one service (single_service), or of every service (NULL). */
void
sse_cursor_init(struct sse_cursor *c, const char *single_service)
{
	memset(c, 0, sizeof(*c));
	if (single_service)
	{
		c->single = 1;
		c->n = 1;
		snprintf(c->pos[0].service_id, sizeof(c->pos[0].service_id), "%s", single_service);
		c->pos[0].seq = -1;
	}
}

/* A seq as a stream's id writes it: digits only, no sign, no leading zero; -1 otherwise. */
static int
parse_seq(const char *s, size_t len, long long *out)
{
	long long	v = 0;

	if (len == 0 || len > 18 || (len > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < len; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/*
 * Parses a Last-Event-ID for a stream of single_service (NULL: of every
 * service) into out (which may be NULL, to check it only).  Returns 0, or
 * -1 with the reason in err.
 */
int
sse_cursor_parse(const char *text, const char *single_service, struct sse_cursor *out,
				 char *err, size_t err_size)
{
	struct sse_cursor local = {0};
	struct sse_cursor *c = out ? out : &local;
	size_t		len = strlen(text);
	long long	seq;

	sse_cursor_init(c, single_service);
	if (single_service)
	{
		if (parse_seq(text, len, &seq) < 0)
		{
			snprintf(err, err_size, "Last-Event-ID must be a log position (a seq) on a stream of one service");
			return -1;
		}
		c->pos[0].seq = seq;
		return 0;
	}
	for (const char *p = text;;)
	{
		const char *end = strchr(p, ',');
		size_t		plen = end ? (size_t) (end - p) : strlen(p);
		const char *colon = NULL;

		for (size_t i = 0; i < plen; i++)
			if (p[i] == ':')
				colon = p + i;
		if (colon == NULL || !sse_valid_service_id(p, (size_t) (colon - p)) ||
			parse_seq(colon + 1, plen - (size_t) (colon - p) - 1, &seq) < 0)
		{
			snprintf(err, err_size, "Last-Event-ID must be service_id:seq positions joined by commas");
			return -1;
		}
		{
			char		service[SSE_SERVICE_ID_MAX + 1];

			memcpy(service, p, (size_t) (colon - p));
			service[colon - p] = '\0';
			if (sse_cursor_find(c, service))
			{
				snprintf(err, err_size, "Last-Event-ID names service \"%s\" twice", service);
				return -1;
			}
			if (c->n >= SSE_MAX_SERVICES)
			{
				snprintf(err, err_size, "Last-Event-ID names more than %d services", SSE_MAX_SERVICES);
				return -1;
			}
			sse_cursor_add(c, service, seq);
		}
		if (end == NULL)
			break;
		p = end + 1;
	}
	return 0;
}

/* The position in one service's log, or NULL when the cursor has none. */
struct sse_position *
sse_cursor_find(struct sse_cursor *c, const char *service_id)
{
	for (int i = 0; i < c->n; i++)
		if (strcmp(c->pos[i].service_id, service_id) == 0)
			return &c->pos[i];
	return NULL;
}

/* Adds a service at seq, in service id order; NULL when the cursor is full (or a single one). */
struct sse_position *
sse_cursor_add(struct sse_cursor *c, const char *service_id, long long seq)
{
	int			at = 0;

	if (c->single || c->n >= SSE_MAX_SERVICES || strlen(service_id) > SSE_SERVICE_ID_MAX)
		return NULL;
	while (at < c->n && strcmp(c->pos[at].service_id, service_id) < 0)
		at++;
	memmove(&c->pos[at + 1], &c->pos[at], sizeof(c->pos[0]) * (size_t) (c->n - at));
	snprintf(c->pos[at].service_id, sizeof(c->pos[at].service_id), "%s", service_id);
	c->pos[at].seq = seq;
	c->n++;
	return &c->pos[at];
}

/* Forgets a service (one the token may no longer see). */
void
sse_cursor_remove(struct sse_cursor *c, const char *service_id)
{
	struct sse_position *p = c->single ? NULL : sse_cursor_find(c, service_id);
	int			at;

	if (p == NULL)
		return;
	at = (int) (p - c->pos);
	memmove(&c->pos[at], &c->pos[at + 1], sizeof(c->pos[0]) * (size_t) (c->n - at - 1));
	c->n--;
}

/* The event id of the position: "<seq>", or "<service_id>:<seq>" of each service seen, joined by commas. */
void
sse_cursor_id(const struct sse_cursor *c, struct buf *out)
{
	int			first = 1;

	if (c->single)
	{
		buf_printf(out, "%lld", c->pos[0].seq);
		return;
	}
	for (int i = 0; i < c->n; i++)
	{
		if (c->pos[i].seq < 0)
			continue;
		buf_printf(out, "%s%s:%lld", first ? "" : ",", c->pos[i].service_id, c->pos[i].seq);
		first = 0;
	}
}

/* One event as the stream sends it, its id the position once it is seen. */
void
sse_write_event(const struct sse_cursor *c, const struct sse_event *e, struct buf *out)
{
	buf_puts(out, "id: ");
	sse_cursor_id(c, out);
	buf_printf(out, "\nevent: %s\ndata: ", sse_event_name(e));
	sse_event_data(e, out);
	buf_puts(out, "\n\n");
}
