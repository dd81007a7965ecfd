/*
 * plan.c: builds the statement (or the refusal) for one request.
 */
#include "plan.h"

#include <json-c/json.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "jsonkeys.h"
#include "tilepath.h"
#include "sse.h"

/* Records a refusal in the plan; returns -1 so callers can return it. */
static int
refuse(struct plan *p, int status, const char *code, const char *fmt,...)
	__attribute__((format(printf, 4, 5)));

static int
refuse(struct plan *p, int status, const char *code, const char *fmt,...)
{
	va_list		ap;

	p->kind = CALL_NONE;
	p->status = status;
	p->code = code;
	va_start(ap, fmt);
	vsnprintf(p->message, sizeof(p->message), fmt, ap);
	va_end(ap);
	return -1;
}

/* Adds a parameter and returns its number ($n).  owned is freed with the plan. */
static int
add_param(struct plan *p, unsigned int type, const char *value, int length, int binary, char *owned)
{
	int			i = p->nparams++;

	p->types[i] = type;
	p->values[i] = value;
	p->lengths[i] = length;
	p->formats[i] = binary;
	p->owned[i] = owned;
	return i + 1;
}

/* Adds a text parameter (a copy of value; NULL stays NULL). */
static int
add_text(struct plan *p, const char *value)
{
	char	   *copy = value ? xstrdup(value) : NULL;

	return add_param(p, PLAN_OID_TEXT, copy, 0, 0, copy);
}

/* "SELECT call AUTH_FROM": the statement of a call whose result is one column. */
static void
simple_call(struct plan *p, call_kind kind, const char *call_prefix, const char *args_sql)
{
	p->kind = kind;
	buf_printf(&p->sql, "SELECT %s(%s)" AUTH_FROM, call_prefix, args_sql);
}

/* Copies a value for the log line, cut to the field's size (ids are 64 characters). */
static void
copy_log_field(char *dst, size_t size, const char *src)
{
	size_t		n = src ? strnlen(src, size - 1) : 0;

	if (n)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Only the query parameters in allowed[] (NULL-terminated) may appear. */
static int
check_query_names(struct plan *p, const struct query *q, const char *const *allowed)
{
	for (int i = 0; i < q->n; i++)
	{
		int			ok = 0;

		for (const char *const *a = allowed; *a; a++)
			if (strcmp(q->names[i], *a) == 0)
				ok = 1;
		if (!ok)
			return refuse(p, 400, "invalid_argument", "unknown query parameter \"%.64s\"", q->names[i]);
	}
	return 0;
}

/* An optional query parameter; an empty value counts as absent. */
static const char *
query_value(const struct query *q, const char *name)
{
	const char *v = query_get(q, name);

	return (v && *v) ? v : NULL;
}

/*
 * A list: status, service_id, limit, offset and after, each passed only
 * when given.  after (keyset paging: the items past that seq) is a bigint;
 * the extension decides what it may be combined with.
 */
static int
plan_list(struct plan *p, const struct query *q, const char *function,
		  const char *const *filters)
{
	const char *allowed[8];
	const char *after = query_value(q, "after");
	long long	after_value;
	int			nargs = 0;
	int			n_allowed = 0;
	int			value;
	struct buf	args = BUF_INIT;

	for (int i = 0; filters[i] != NULL; i++)
		allowed[n_allowed++] = filters[i];
	allowed[n_allowed++] = "limit";
	allowed[n_allowed++] = "offset";
	allowed[n_allowed++] = "after";
	allowed[n_allowed] = NULL;
	if (check_query_names(p, q, allowed) < 0)
		return -1;
	for (int i = 0; filters[i] != NULL; i++)
	{
		const char *v = query_value(q, filters[i]);

		if (v)
		{
			int			n = add_text(p, v);

			buf_printf(&args, "%s%s => $%d", nargs++ ? ", " : "", filters[i], n);
		}
	}
	static const char *const paging[] = {"limit", "offset"};

	for (int i = 0; i < 2; i++)
	{
		const char *v = query_value(q, paging[i]);

		if (v == NULL)
			continue;
		if (parse_int32(v, &value) < 0)
		{
			buf_free(&args);
			return refuse(p, 400, "invalid_pagination", "%s must be an integer", paging[i]);
		}
		char	   *copy = xstrdup(v);
		int			n = add_param(p, PLAN_OID_INT4, copy, 0, 0, copy);

		buf_printf(&args, "%s\"%s\" => $%d", nargs++ ? ", " : "", paging[i], n);
	}
	if (after)
	{
		char	   *copy;

		if (parse_int64(after, &after_value) < 0 || after_value < 0)
		{
			buf_free(&args);
			return refuse(p, 400, "invalid_pagination", "after must be a non-negative integer");
		}
		copy = xstrdup(after);
		buf_printf(&args, "%s\"after\" => $%d", nargs++ ? ", " : "",
				   add_param(p, PLAN_OID_INT8, copy, 0, 0, copy));
	}
	copy_log_field(p->log_service_id, sizeof(p->log_service_id), query_value(q, "service_id"));
	simple_call(p, CALL_JSON, function, args.data ? args.data : "");
	buf_free(&args);
	return 0;
}

/* A JSON string field: 1 with its value, 0 when absent or null, -1 when not a string. */
static int
json_string_field(struct json_object *obj, const char *key, const char **value, size_t *len)
{
	struct json_object *v;

	*value = NULL;
	*len = 0;
	if (!json_object_object_get_ex(obj, key, &v) || v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return -1;
	*value = json_object_get_string(v);
	*len = (size_t) json_object_get_string_len(v);
	if (memchr(*value, '\0', *len) != NULL)
		return -1;
	return 1;
}

/* A JSON integer field in int32 range: 1 with its value, 0 when absent or null, -1 otherwise. */
static int
json_int_field(struct json_object *obj, const char *key, int *value)
{
	struct json_object *v;
	int64_t		n;

	if (!json_object_object_get_ex(obj, key, &v) || v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_int))
		return -1;
	n = json_object_get_int64(v);
	if (n < INT32_MIN || n > INT32_MAX)
		return -1;
	*value = (int) n;
	return 1;
}

/*
 * Parses a request body that must be one JSON object (whitespace around it
 * allowed, nothing else).  Returns NULL, with the refusal set, otherwise.
 */
static struct json_object *
parse_json_object(struct plan *p, const char *body, size_t len)
{
	struct json_tokener *tok;
	struct json_object *obj;
	size_t		end;

	if (len == 0)
	{
		refuse(p, 400, "invalid_json", "the body must be a JSON object");
		return NULL;
	}
	if (len > INT32_MAX || memchr(body, '\0', len) != NULL)
	{
		refuse(p, 400, "invalid_json", "the body is not valid JSON");
		return NULL;
	}
	tok = json_tokener_new();
	if (tok == NULL)
	{
		refuse(p, 500, "internal_error", "out of memory");
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	obj = json_tokener_parse_ex(tok, body, (int) len);
	if (obj == NULL || json_tokener_get_error(tok) != json_tokener_success)
	{
		const char *what = json_tokener_get_error(tok) == json_tokener_continue ?
			"the body ends in the middle of a JSON value" :
			json_tokener_error_desc(json_tokener_get_error(tok));

		json_object_put(obj);
		refuse(p, 400, "invalid_json", "the body is not valid JSON: %s", what);
		json_tokener_free(tok);
		return NULL;
	}
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	for (size_t i = end; i < len; i++)
	{
		if (body[i] != ' ' && body[i] != '\t' && body[i] != '\r' && body[i] != '\n')
		{
			json_object_put(obj);
			refuse(p, 400, "invalid_json", "the body has data after its JSON value");
			return NULL;
		}
	}
	if (!json_object_is_type(obj, json_type_object))
	{
		json_object_put(obj);
		refuse(p, 400, "invalid_json", "the body must be a JSON object");
		return NULL;
	}
	/* json-c kept the last of two equal names: refuse rather than guess which was meant. */
	{
		char		name[JSONKEYS_NAME_MAX + 1];

		int			dup = json_duplicate_key(body, len, name, sizeof(name), NULL);

		if (dup != 0)
		{
			json_object_put(obj);
			if (dup < 0)
				refuse(p, 400, "invalid_json", "the body is not valid JSON");
			else
				refuse(p, 400, "invalid_argument", "the body repeats the field \"%s\"", name);
			return NULL;
		}
	}
	return obj;
}

/* Every key of obj must be in allowed[] (NULL-terminated). */
static int
check_json_keys(struct plan *p, struct json_object *obj, const char *const *allowed)
{
	json_object_object_foreach(obj, key, val)
	{
		int			ok = 0;

		(void) val;
		for (const char *const *a = allowed; *a; a++)
			if (strcmp(key, *a) == 0)
				ok = 1;
		if (!ok)
			return refuse(p, 400, "invalid_argument", "unknown field \"%.64s\"", key);
	}
	return 0;
}

/*
 * A text[] literal of the strings in a JSON array: every element quoted,
 * '"' and '\' escaped, so that no element can change the array's shape.
 */
static char *
text_array_literal(struct plan *p, struct json_object *arr)
{
	struct buf	lit = BUF_INIT;
	size_t		n = json_object_array_length(arr);

	buf_puts(&lit, "{");
	for (size_t i = 0; i < n; i++)
	{
		struct json_object *e = json_object_array_get_idx(arr, i);
		const char *s;
		size_t		len;

		if (e == NULL || !json_object_is_type(e, json_type_string))
		{
			buf_free(&lit);
			refuse(p, 400, "invalid_argument", "preimage_hashes must be an array of strings");
			return NULL;
		}
		s = json_object_get_string(e);
		len = (size_t) json_object_get_string_len(e);
		if (memchr(s, '\0', len) != NULL)
		{
			buf_free(&lit);
			refuse(p, 400, "invalid_argument", "preimage_hashes must be an array of strings");
			return NULL;
		}
		buf_puts(&lit, i ? ",\"" : "\"");
		for (size_t k = 0; k < len; k++)
		{
			if (s[k] == '"' || s[k] == '\\')
				buf_append(&lit, "\\", 1);
			buf_append(&lit, &s[k], 1);
		}
		buf_puts(&lit, "\"");
	}
	buf_puts(&lit, "}");
	return lit.data;
}

/* POST /jam/packages: {service_id, payload (base64), declared_hash?, contract_version?, weight_hint?, preimage_hashes?} */
static int
plan_submit(struct plan *p, const struct http_request *req, const struct query *q)
{
	static const char *const allowed_query[] = {"include_receipt", NULL};
	static const char *const allowed_keys[] = {
		"service_id", "payload", "declared_hash", "contract_version", "weight_hint", "preimage_hashes", NULL
	};
	struct json_object *obj;
	struct json_object *hashes;
	const char *s;
	size_t		len;
	int			n,
				rc = -1;
	struct buf	args = BUF_INIT;

	if (check_query_names(p, q, allowed_query) < 0)
		return -1;
	if (query_get(q, "include_receipt") && parse_bool(query_get(q, "include_receipt"), &p->include_receipt) < 0)
		return refuse(p, 400, "invalid_argument", "include_receipt must be true or false");
	obj = parse_json_object(p, req->body, req->body_len);
	if (obj == NULL)
		return -1;
	if (check_json_keys(p, obj, allowed_keys) < 0)
		goto done;

	n = json_string_field(obj, "service_id", &s, &len);
	if (n < 0)
	{
		refuse(p, 400, "invalid_argument", "service_id must be a string");
		goto done;
	}
	if (n == 0)
	{
		refuse(p, 400, "invalid_argument", "service_id is required");
		goto done;
	}
	copy_log_field(p->log_service_id, sizeof(p->log_service_id), s);
	buf_printf(&args, "service_id => $%d", add_text(p, s));

	n = json_string_field(obj, "payload", &s, &len);
	if (n <= 0)
	{
		refuse(p, 400, "invalid_argument", n < 0 ? "payload must be a base64 string" : "payload is required");
		goto done;
	}
	{
		unsigned char *bytes = xmalloc(len / 4 * 3 + 3);
		long		blen = base64_decode(s, len, bytes);

		if (blen < 0)
		{
			free(bytes);
			refuse(p, 400, "invalid_argument", "payload is not valid base64");
			goto done;
		}
		n = add_param(p, PLAN_OID_BYTEA, (const char *) bytes, (int) blen, 1, (char *) bytes);
		buf_printf(&args, ", payload => $%d", n);
	}

	n = json_string_field(obj, "declared_hash", &s, &len);
	if (n < 0)
	{
		refuse(p, 400, "invalid_argument", "declared_hash must be a string");
		goto done;
	}
	if (n > 0)
		buf_printf(&args, ", declared_hash => $%d", add_text(p, s));

	static const char *const ints[] = {"contract_version", "weight_hint"};

	for (int i = 0; i < 2; i++)
	{
		int			v;
		char		text[16];

		n = json_int_field(obj, ints[i], &v);
		if (n < 0)
		{
			refuse(p, 400, "invalid_argument", "%s must be an integer", ints[i]);
			goto done;
		}
		if (n > 0)
		{
			snprintf(text, sizeof(text), "%d", v);
			char	   *copy = xstrdup(text);

			buf_printf(&args, ", %s => $%d", ints[i],
					   add_param(p, PLAN_OID_INT4, copy, 0, 0, copy));
		}
	}

	if (json_object_object_get_ex(obj, "preimage_hashes", &hashes) && hashes != NULL)
	{
		char	   *lit;

		if (!json_object_is_type(hashes, json_type_array))
		{
			refuse(p, 400, "invalid_argument", "preimage_hashes must be an array of strings");
			goto done;
		}
		lit = text_array_literal(p, hashes);
		if (lit == NULL)
			goto done;
		buf_printf(&args, ", preimage_hashes => $%d",
				   add_param(p, PLAN_OID_TEXT_ARRAY, lit, 0, 0, lit));
	}

	p->kind = CALL_SUBMIT;
	buf_printf(&p->sql,
			   "SELECT %s, (s.r->>'created')::boolean, s.r->>'id', s.r->>'service_id'"
			   " FROM (SELECT jam.jam_submit_package(%s) AS r" AUTH_FROM " OFFSET 0) s",
			   p->include_receipt ? "s.r" : "s.r - 'receipt'", args.data);
	rc = 0;

done:
	buf_free(&args);
	json_object_put(obj);
	return rc;
}

/*
 * Each package of a batch result without its receipt, as the single submit
 * drops its one (s.r - 'receipt') unless include_receipt=true.
 */
#define BATCH_WITHOUT_RECEIPTS \
	"CASE WHEN jsonb_typeof(s.r->'packages') = 'array' THEN jsonb_set(s.r, '{packages}'," \
	" (SELECT coalesce(jsonb_agg(e.item - 'receipt' ORDER BY e.n), '[]')" \
	" FROM jsonb_array_elements(s.r->'packages') WITH ORDINALITY AS e(item, n))) ELSE s.r END"

/*
 * POST /jam/packages/batch[?service_id=][&include_receipt=]: the body, a
 * JSON array or NDJSON, becomes the one jsonb array jam_submit_packages()
 * checks and writes all or nothing; service_id NULL lets the packages name
 * it.  The second column says whether any package is new (201 then).
 */
static int
plan_submit_batch(struct plan *p, const struct http_request *req, const struct query *q)
{
	static const char *const allowed_query[] = {"service_id", "include_receipt", NULL};
	const char *service = query_value(q, "service_id");
	const char *receipt = query_get(q, "include_receipt");
	struct batch_error err;
	char	   *array;
	int			ns,
				na;

	if (check_query_names(p, q, allowed_query) < 0)
		return -1;
	if (receipt && parse_bool(receipt, &p->include_receipt) < 0)
		return refuse(p, 400, "invalid_argument", "include_receipt must be true or false");
	copy_log_field(p->log_service_id, sizeof(p->log_service_id), service);
	array = batch_to_array(req->body, req->body_len, batch_format_of(req->content_type), &err);
	if (array == NULL)
		return refuse(p, err.status, err.code, "%s", err.message);
	ns = add_text(p, service);
	na = add_param(p, PLAN_OID_JSONB, array, 0, 0, array);
	p->kind = CALL_SUBMIT_BATCH;
	buf_printf(&p->sql,
			   "SELECT %s, coalesce(s.r->'packages' @> '[{\"created\": true}]', false), s.r->>'service_id'"
			   " FROM (SELECT jam.jam_submit_packages(service_id => $%d, packages => $%d) AS r"
			   AUTH_FROM " OFFSET 0) s",
			   p->include_receipt ? "s.r" : BATCH_WITHOUT_RECEIPTS, ns, na);
	return 0;
}

/*
 * The optional JSON body of POST /jam/process: {"service_id"?,
 * "max_packages"?}.  Sets *service (to be freed) and *max_packages (when
 * *has_max); returns -1 with the refusal set.
 */
static int
process_body(struct plan *p, const struct http_request *req, char **service, int *max_packages, int *has_max)
{
	static const char *const allowed_keys[] = {"service_id", "max_packages", NULL};
	struct json_object *obj;
	const char *s;
	size_t		len;
	int			n,
				rc = -1;

	*service = NULL;
	*has_max = 0;
	if (req->body_len == 0)
		return 0;
	obj = parse_json_object(p, req->body, req->body_len);
	if (obj == NULL)
		return -1;
	if (check_json_keys(p, obj, allowed_keys) < 0)
		goto done;
	n = json_string_field(obj, "service_id", &s, &len);
	if (n < 0)
	{
		refuse(p, 400, "invalid_argument", "service_id must be a string");
		goto done;
	}
	if (n > 0)
		*service = xstrdup(s);
	n = json_int_field(obj, "max_packages", max_packages);
	if (n < 0)
	{
		refuse(p, 400, "invalid_argument", "max_packages must be an integer");
		goto done;
	}
	*has_max = n > 0;
	rc = 0;

done:
	json_object_put(obj);
	if (rc < 0)
	{
		free(*service);
		*service = NULL;
	}
	return rc;
}

/*
 * POST /jam/process: the service from the query or a {"service_id"} body,
 * or none.  With max_packages (query or body) jam_process_packages()
 * processes up to that many in one transaction; without it,
 * jam_process_next() the next one, as before.
 */
static int
plan_process(struct plan *p, const struct http_request *req, const struct query *q)
{
	static const char *const allowed_query[] = {"service_id", "max_packages", NULL};
	const char *service = query_value(q, "service_id");
	const char *max_text = query_value(q, "max_packages");
	char	   *from_body = NULL;
	int			max_query = 0,
				max_body = 0,
				has_max_body = 0;
	int			rc = -1;

	if (check_query_names(p, q, allowed_query) < 0)
		return -1;
	if (max_text && parse_int32(max_text, &max_query) < 0)
		return refuse(p, 400, "invalid_argument", "max_packages must be an integer");
	if (process_body(p, req, &from_body, &max_body, &has_max_body) < 0)
		return -1;
	if (from_body && service && strcmp(from_body, service) != 0)
	{
		refuse(p, 400, "invalid_argument", "service_id differs between the query and the body");
		goto done;
	}
	if (max_text && has_max_body && max_query != max_body)
	{
		refuse(p, 400, "invalid_argument", "max_packages differs between the query and the body");
		goto done;
	}
	if (from_body)
		service = from_body;
	copy_log_field(p->log_service_id, sizeof(p->log_service_id), service);
	if (max_text || has_max_body)
	{
		char		text[16];
		char	   *copy;
		int			ns = add_text(p, service);

		snprintf(text, sizeof(text), "%d", max_text ? max_query : max_body);
		copy = xstrdup(text);
		p->kind = CALL_PROCESS_BATCH;
		buf_printf(&p->sql,
				   "SELECT s.r, s.r->>'processed'"
				   " FROM (SELECT jam.jam_process_packages(service_id => $%d, max_packages => $%d) AS r"
				   AUTH_FROM " OFFSET 0) s",
				   ns, add_param(p, PLAN_OID_INT4, copy, 0, 0, copy));
	}
	else if (service)
	{
		p->kind = CALL_PROCESS;
		buf_printf(&p->sql,
				   "SELECT s.r, s.r->>'package_id', s.r->>'service_id'"
				   " FROM (SELECT jam.jam_process_next(service_id => $%d) AS r" AUTH_FROM " OFFSET 0) s",
				   add_text(p, service));
	}
	else
	{
		p->kind = CALL_PROCESS;
		buf_puts(&p->sql,
				 "SELECT s.r, s.r->>'package_id', s.r->>'service_id'"
				 " FROM (SELECT jam.jam_process_next() AS r" AUTH_FROM " OFFSET 0) s");
	}
	rc = 0;

done:
	free(from_body);
	return rc;
}

/* GET and HEAD of a preimage: the bytes, only the headers, or 304. */
static int
plan_preimage(struct plan *p, const struct http_request *req)
{
	int			n = add_text(p, p->param);

	if (etag_matches(req->if_none_match, p->param))
		p->not_modified = 1;
	if (p->method == METHOD_HEAD || p->not_modified)
	{
		p->kind = CALL_PREIMAGE_HEAD;
		buf_printf(&p->sql, "SELECT jam.jam_preimage_meta($%d)" AUTH_FROM, n);
	}
	else
	{
		p->kind = CALL_GET_PREIMAGE;
		p->binary_result = 1;
		/*
		 * The meta once, in a fenced subquery after the token's check; then
		 * jam_read_preimage in the target list, which hands out its chunks
		 * one row at a time.  The statement of old, for catalogs before 1.2.
		 */
		buf_printf(&p->stream_sql,
				   "SELECT s.meta, jam.jam_read_preimage($%d)"
				   " FROM (SELECT jam.jam_preimage_meta($%d)::text AS meta" AUTH_FROM " OFFSET 0) s", n, n);
		buf_printf(&p->sql,
				   "SELECT jam.jam_preimage_meta($%d)::text, jam.jam_get_preimage($%d)" AUTH_FROM, n, n);
	}
	return 0;
}

/* A route whose one path parameter is the one argument of a jsonb function. */
static int
plan_param_call(struct plan *p, call_kind kind, const char *function)
{
	char		args[16];

	snprintf(args, sizeof(args), "$%d", add_text(p, p->param));
	simple_call(p, kind, function, args);
	return 0;
}

/* Adds an integer parameter of the given type, its decimal text a copy freed with the plan. */
static int
add_integer(struct plan *p, unsigned int type, long long value)
{
	char		text[24];
	char	   *copy;

	snprintf(text, sizeof(text), "%lld", value);
	copy = xstrdup(text);
	return add_param(p, type, copy, 0, 0, copy);
}

/*
 * GET and HEAD of a tile or an entry bundle of a service's log (c2sp.org/
 * tlog-tiles): the bytes, and their SHA-256 for the ETag, which the
 * answer compares with If-None-Match (304) once it has them.
 */
static int
plan_tile(struct plan *p, const struct http_request *req)
{
	struct tile_path t;
	char		why[160];
	struct buf	args = BUF_INIT;

	copy_log_field(p->log_service_id, sizeof(p->log_service_id), p->param);
	if (tile_path_parse(route_rest(p->route, req->path), p->route == ROUTE_LOG_ENTRIES, &t,
						why, sizeof(why)) < 0)
		return refuse(p, 400, "invalid_argument", "%s", why);
	buf_printf(&args, "$%d", add_text(p, p->param));
	if (!t.entries)
		buf_printf(&args, ", $%d", add_integer(p, PLAN_OID_INT4, t.level));
	buf_printf(&args, ", $%d", add_integer(p, PLAN_OID_INT8, t.index));
	buf_printf(&args, ", $%d", add_integer(p, PLAN_OID_INT4, t.width));
	p->kind = CALL_TILE;
	p->binary_result = 1;
	p->if_none_match = req->if_none_match;
	buf_printf(&p->sql,
			   "SELECT s.t, pg_catalog.encode(pg_catalog.sha256(s.t), 'hex')"
			   " FROM (SELECT jam.%s(%s) AS t" AUTH_FROM " OFFSET 0) s",
			   t.entries ? "jam_entry_bundle" : "jam_tile", args.data);
	buf_free(&args);
	return 0;
}

/*
 * POST /jam/tokens {name, scopes, services, tenant, expires_at}: a new
 * token, shown this once ({"token": ...}, 201).  jam_create_token checks
 * the caller's jam:admin and every field.
 */
static int
plan_create_token(struct plan *p, const struct http_request *req, const struct query *q)
{
	static const char *const none[] = {NULL};
	static const char *const allowed_keys[] = {"name", "scopes", "services", "tenant", "expires_at", NULL};
	static const char *const strings[] = {"tenant", "expires_at"};
	struct json_object *obj;
	struct json_object *arr;
	const char *s;
	size_t		len;
	int			n,
				rc = -1;
	struct buf	args = BUF_INIT;

	if (check_query_names(p, q, none) < 0)
		return -1;
	obj = parse_json_object(p, req->body, req->body_len);
	if (obj == NULL)
		return -1;
	if (check_json_keys(p, obj, allowed_keys) < 0)
		goto done;
	n = json_string_field(obj, "name", &s, &len);
	if (n <= 0)
	{
		refuse(p, 400, "invalid_argument", n < 0 ? "name must be a string" : "name is required");
		goto done;
	}
	buf_printf(&args, "name => $%d", add_text(p, s));
	for (int i = 0; i < 2; i++)
	{
		static const char *const arrays[] = {"scopes", "services"};
		char	   *lit;

		if (!json_object_object_get_ex(obj, arrays[i], &arr) || arr == NULL)
		{
			if (i == 0)
			{
				refuse(p, 400, "invalid_argument", "scopes is required");
				goto done;
			}
			continue;
		}
		if (!json_object_is_type(arr, json_type_array))
		{
			refuse(p, 400, "invalid_argument", "%s must be an array of strings", arrays[i]);
			goto done;
		}
		lit = text_array_literal(p, arr);
		if (lit == NULL)
			goto done;
		buf_printf(&args, ", %s => $%d", arrays[i], add_param(p, PLAN_OID_TEXT_ARRAY, lit, 0, 0, lit));
	}
	for (int i = 0; i < 2; i++)
	{
		n = json_string_field(obj, strings[i], &s, &len);
		if (n < 0)
		{
			refuse(p, 400, "invalid_argument", "%s must be a string", strings[i]);
			goto done;
		}
		if (n > 0)
			buf_printf(&args, ", %s => $%d%s", strings[i], add_text(p, s),
					   i == 1 ? "::timestamptz" : "");
	}
	p->kind = CALL_CREATED;
	buf_printf(&p->sql, "SELECT jsonb_build_object('token', jam.jam_create_token(%s))" AUTH_FROM,
			   args.data);
	rc = 0;
done:
	buf_free(&args);
	json_object_put(obj);
	return rc;
}

/* GET /jam/quota[?service_id=|token_id=]: jam_quota_usage, of the caller's token without either. */
static int
plan_quota(struct plan *p, const struct query *q)
{
	static const char *const allowed[] = {"service_id", "token_id", NULL};
	struct buf	args = BUF_INIT;
	int			nargs = 0;

	if (check_query_names(p, q, allowed) < 0)
		return -1;
	for (int i = 0; allowed[i] != NULL; i++)
	{
		const char *v = query_value(q, allowed[i]);

		if (v)
			buf_printf(&args, "%s%s => $%d", nargs++ ? ", " : "", allowed[i], add_text(p, v));
	}
	copy_log_field(p->log_service_id, sizeof(p->log_service_id), query_value(q, "service_id"));
	simple_call(p, CALL_JSON, "jam.jam_quota_usage", args.data ? args.data : "");
	buf_free(&args);
	return 0;
}

/*
 * GET /jam/events[?service_id=]: the event stream of one service, or of
 * every service the token may see, resumed after Last-Event-ID (whose
 * form depends on which: see sse.h).  The stream runs its statements
 * itself (stream.c), with this plan's $1 and $2.
 */
static int
plan_events(struct plan *p, const struct http_request *req, const struct query *q)
{
	static const char *const allowed[] = {"service_id", NULL};
	const char *service = query_value(q, "service_id");
	char		err[160];

	if (check_query_names(p, q, allowed) < 0)
		return -1;
	copy_log_field(p->log_service_id, sizeof(p->log_service_id), service);
	/* The extension's own check, here because the stream compares events' service ids with it. */
	if (service && !sse_valid_service_id(service, strlen(service)))
		return refuse(p, 400, "invalid_service_id",
					  "service_id must be 1 to %d letters, digits and . _ : -, starting with a letter or digit",
					  SSE_SERVICE_ID_MAX);
	if (req->last_event_id_count > 1)
		return refuse(p, 400, "invalid_argument", "the Last-Event-ID header is given more than once");
	if (req->last_event_id && req->last_event_id[0])
	{
		if (sse_cursor_parse(req->last_event_id, service, NULL, err, sizeof(err)) < 0)
			return refuse(p, 400, "invalid_argument", "%s", err);
		p->last_event_id = req->last_event_id;
	}
	snprintf(p->events_service, sizeof(p->events_service), "%s", service ? service : "");
	p->kind = CALL_EVENTS;
	return 0;
}

/*
 * POST /jam/witness/add-checkpoint: the body, c2sp.org/tlog-witness text
 * ("old <size>", proof lines, a blank line, the checkpoint), goes to
 * jam_witness_add_checkpoint() whole; the first column is the status the
 * answer takes (200, or 409 with the size), the second its body.
 */
static int
plan_witness(struct plan *p, const struct http_request *req)
{
	char	   *body;

	if (req->body_len == 0 || memchr(req->body, '\0', req->body_len) != NULL)
		return refuse(p, 400, "invalid_argument", "the body must be an add-checkpoint request");
	body = xmalloc(req->body_len + 1);
	memcpy(body, req->body, req->body_len);
	body[req->body_len] = '\0';
	p->kind = CALL_WITNESS;
	buf_printf(&p->sql,
			   "SELECT (s.r->>'status')::int, coalesce(s.r->>'cosignatures', (s.r->>'size') || E'\\n')"
			   " FROM (SELECT jam.jam_witness_add_checkpoint($%d) AS r" AUTH_FROM " OFFSET 0) s",
			   add_param(p, PLAN_OID_TEXT, body, 0, 0, body));
	return 0;
}

/* The call of a matched route and method. */
static int
plan_route(struct plan *p, const struct http_request *req, const struct query *q)
{
	static const char *const none[] = {NULL};

	switch (p->route)
	{
		case ROUTE_PREIMAGES:
			if (check_query_names(p, q, none) < 0)
				return -1;
			{
				const char *type = req->content_type && *req->content_type ?
					req->content_type : "application/octet-stream";
				char	   *body = xmalloc(req->body_len + 1);
				int			nb,
							nt;

				memcpy(body, req->body ? req->body : "", req->body_len);
				nb = add_param(p, PLAN_OID_BYTEA, body, (int) req->body_len, 1, body);
				nt = add_text(p, type);
				p->kind = CALL_PUT_PREIMAGE;
				buf_printf(&p->sql,
						   "SELECT s.r, (s.r->>'created')::boolean"
						   " FROM (SELECT jam.jam_put_preimage($%d, $%d) AS r" AUTH_FROM " OFFSET 0) s",
						   nb, nt);
			}
			return 0;
		case ROUTE_PREIMAGE:
			if (check_query_names(p, q, none) < 0)
				return -1;
			return plan_preimage(p, req);
		case ROUTE_PREIMAGE_META:
			if (check_query_names(p, q, none) < 0)
				return -1;
			return plan_param_call(p, CALL_JSON, "jam.jam_preimage_meta");
		case ROUTE_PACKAGES:
			if (p->method == METHOD_POST)
				return plan_submit(p, req, q);
			return plan_list(p, q, "jam.jam_list_packages",
							 (const char *const[]) {"status", "service_id", NULL});
		case ROUTE_PACKAGES_BATCH:
			return plan_submit_batch(p, req, q);
		case ROUTE_PACKAGE:
		case ROUTE_PACKAGE_REPORT:
		case ROUTE_PACKAGE_ATTESTATIONS:
		case ROUTE_PACKAGE_REPLAY:
			if (check_query_names(p, q, none) < 0)
				return -1;
			copy_log_field(p->log_package_id, sizeof(p->log_package_id), p->param);
			return plan_param_call(p, CALL_JSON,
								   p->route == ROUTE_PACKAGE ? "jam.jam_get_package" :
								   p->route == ROUTE_PACKAGE_REPORT ? "jam.jam_get_report" :
								   p->route == ROUTE_PACKAGE_ATTESTATIONS ? "jam.jam_attestations" :
								   "jam.jam_replay");
		case ROUTE_PROCESS:
			return plan_process(p, req, q);
		case ROUTE_REPORTS:
			return plan_list(p, q, "jam.jam_list_reports",
							 (const char *const[]) {"service_id", "status", NULL});
		case ROUTE_ATTESTATIONS:
			return plan_list(p, q, "jam.jam_list_attestations",
							 (const char *const[]) {"service_id", "attester", "package_id", NULL});
		case ROUTE_EVENTS:
			return plan_events(p, req, q);
		case ROUTE_RECEIPT:
			if (check_query_names(p, q, none) < 0)
				return -1;
			return plan_param_call(p, CALL_JSON, "jam.jam_receipt");
		case ROUTE_TOKENS:
			if (p->method == METHOD_POST)
				return plan_create_token(p, req, q);
			if (check_query_names(p, q, none) < 0)
				return -1;
			simple_call(p, CALL_JSON, "jam.jam_list_tokens", "");
			return 0;
		case ROUTE_TOKEN_REVOKE:
			if (check_query_names(p, q, none) < 0)
				return -1;
			p->kind = CALL_JSON;
			buf_printf(&p->sql, "SELECT jsonb_build_object('revoked', jam.jam_revoke_token($%d))" AUTH_FROM,
					   add_text(p, p->param));
			return 0;
		case ROUTE_QUOTA:
			return plan_quota(p, q);
		case ROUTE_RECEIPT_PROOF:
			if (check_query_names(p, q, none) < 0)
				return -1;
			return plan_param_call(p, CALL_TEXT, "jam.jam_receipt_proof");
		case ROUTE_ROOTS:
			if (check_query_names(p, q, none) < 0)
				return -1;
			simple_call(p, CALL_JSON, "jam.jam_roots", "");
			return 0;
		case ROUTE_CHECKPOINT:
			if (check_query_names(p, q, none) < 0)
				return -1;
			copy_log_field(p->log_service_id, sizeof(p->log_service_id), p->param);
			return plan_param_call(p, CALL_TEXT, "jam.jam_checkpoint");
		case ROUTE_LOG_CHECKPOINT:
			if (check_query_names(p, q, none) < 0)
				return -1;
			copy_log_field(p->log_service_id, sizeof(p->log_service_id), p->param);
			return plan_param_call(p, CALL_LOG_CHECKPOINT, "jam.jam_log_checkpoint");
		case ROUTE_LOG_ENTRIES:
		case ROUTE_LOG_TILE:
			if (check_query_names(p, q, none) < 0)
				return -1;
			return plan_tile(p, req);
		case ROUTE_WITNESS_ADD_CHECKPOINT:
			if (check_query_names(p, q, none) < 0)
				return -1;
			return plan_witness(p, req);
		case ROUTE_JAM_STATUS:
			if (check_query_names(p, q, none) < 0)
				return -1;
			simple_call(p, CALL_JSON, "jam.jam_status", "");
			return 0;
		case ROUTE_SYSTEM_STATUS:
			if (check_query_names(p, q, none) < 0)
				return -1;
			p->kind = CALL_SYSTEM_STATUS;
			return 0;
		case ROUTE_METRICS:
			if (check_query_names(p, q, none) < 0)
				return -1;
			p->kind = CALL_METRICS;
			buf_puts(&p->sql,
					 "SELECT (s.m).name, (s.m).kind, (s.m).help, (s.m).labels::text, (s.m).value"
					 " FROM (SELECT jam.jam_metrics() AS m" AUTH_FROM " OFFSET 0) s ORDER BY 1");
			return 0;
		case ROUTE_OPENAPI:
			if (check_query_names(p, q, none) < 0)
				return -1;
			p->kind = CALL_OPENAPI;
			return 0;
		default:
			return refuse(p, 404, "not_found", "no such route");
	}
}

/*
 * Plans one request.  Returns 0 with plan->kind set to the call, or -1 with
 * the refusal in plan->status, plan->code and plan->message.  Either way
 * plan_free() releases it.
 */
int
plan_request(const struct http_request *req, struct plan *p)
{
	struct query q;
	char		err[160];
	int			bad = 0,
				rc;
	const char *token;
	size_t		token_len;

	memset(p, 0, sizeof(*p));
	p->route = route_match(req->path, p->param, sizeof(p->param), &bad);
	p->method = method_bit(req->method);
	route_allow(p->route, p->allow, sizeof(p->allow));
	if (p->route == ROUTE_NONE)
		return refuse(p, 404, "not_found", "no such route");
	if (p->method == METHOD_OPTIONS)
	{
		p->kind = CALL_OPTIONS;
		return 0;
	}
	if (!(shim_routes[p->route].methods & p->method))
		return refuse(p, 405, "method_not_allowed", "%s is not allowed here; allowed: %s",
					  p->method == METHOD_OTHER ? "this method" : method_label(p->method), p->allow);
	if (bad)
		return refuse(p, 400, "invalid_argument", "the path parameter is not valid percent-encoding or is too long");

	/*
	 * Two Authorization lines could name two callers (civetweb hands over
	 * the first, a proxy may have checked the other), two Content-Type
	 * lines two media types: neither is guessed at.
	 */
	if (req->authorization_count > 1)
		return refuse(p, 400, "invalid_argument", "the Authorization header is given more than once");
	if (req->content_type_count > 1)
		return refuse(p, 400, "invalid_argument", "the Content-Type header is given more than once");

	/* $1: application_name, set later by plan_set_application_name(). */
	add_param(p, PLAN_OID_TEXT, NULL, 0, 0, NULL);
	/* $2: the bearer token. */
	switch (bearer_token(req->authorization, &token, &token_len))
	{
		case 1:
			{
				char	   *copy = xmalloc(token_len + 1);

				memcpy(copy, token, token_len);
				copy[token_len] = '\0';
				add_param(p, PLAN_OID_TEXT, copy, 0, 0, copy);
				p->has_token = 1;
			}
			break;
		case 0:
			add_param(p, PLAN_OID_TEXT, NULL, 0, 0, NULL);
			break;
		default:
			return refuse(p, 401, "unauthenticated", "the Authorization header must be \"Bearer <token>\"");
	}

	if (query_parse(req->query, &q, err, sizeof(err)) < 0)
		return refuse(p, 400, "invalid_argument", "%s", err);
	rc = plan_route(p, req, &q);
	query_free(&q);
	return rc;
}

/* Sets $1, the application_name the statement gives its transaction. */
void
plan_set_application_name(struct plan *p, const char *application_name)
{
	if (p->nparams > 0)
		p->values[0] = application_name;
}

/* Releases a plan's parameters and statement. */
void
plan_free(struct plan *p)
{
	for (int i = 0; i < p->nparams; i++)
		free(p->owned[i]);
	p->nparams = 0;
	buf_free(&p->sql);
	buf_free(&p->stream_sql);
}
