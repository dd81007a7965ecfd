/*
 * batch.c: a batch body as one JSON array of package objects.
 *
 * Each element (or line) is parsed only to prove it is one JSON object, so
 * that no input can change the shape of the array the shim hands over; a
 * JSON array body is then passed on as it came, and NDJSON lines are joined
 * with commas.  What the objects hold is the extension's to judge.
 */
#include "batch.h"

#include <json-c/json.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "jsonkeys.h"

/* Records why a body is refused; returns NULL so callers can return it. */
static char *
fail(struct batch_error *err, int status, const char *code, const char *fmt,...)
	__attribute__((format(printf, 4, 5)));

static char *
fail(struct batch_error *err, int status, const char *code, const char *fmt,...)
{
	va_list		ap;

	err->status = status;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return NULL;
}

/* JSON's white space (RFC 8259); '\r' too, so that CRLF lines work. */
static int
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Narrows text[0..len) to what lies between its leading and trailing white space. */
static void
trim(const char **text, size_t *len)
{
	while (*len > 0 && is_space(**text))
	{
		(*text)++;
		(*len)--;
	}
	while (*len > 0 && is_space((*text)[*len - 1]))
		(*len)--;
}

/* Whether the media type type[0..len) is name (case-insensitive). */
static int
media_type_is(const char *type, size_t len, const char *name)
{
	return strlen(name) == len && strncasecmp(type, name, len) == 0;
}

/*
 * The format of a batch body by its Content-Type, parameters ignored:
 * NDJSON when it says so, else a JSON array.  Like POST /jam/packages, the
 * route takes JSON whatever type a client sends (curl -d and many HTTP
 * libraries send application/x-www-form-urlencoded unless told otherwise).
 */
batch_format
batch_format_of(const char *content_type)
{
	const char *t = content_type ? content_type : "";
	size_t		len;

	while (*t == ' ' || *t == '\t')
		t++;
	len = strcspn(t, "; \t");
	if (media_type_is(t, len, "application/x-ndjson") || media_type_is(t, len, "application/ndjson"))
		return BATCH_NDJSON;
	return BATCH_JSON;
}

/*
 * Parses text[0..len), trimmed, as exactly one JSON value.  Returns it, or
 * NULL with what is wrong in *why.  Since the text ends in non-white
 * space, anything the parser leaves over is data after the value.
 */
static struct json_object *
parse_one(struct json_tokener *tok, const char *text, size_t len, const char **why)
{
	struct json_object *obj;
	enum json_tokener_error e;

	if (len > INT32_MAX || memchr(text, '\0', len) != NULL)
	{
		*why = "a NUL byte";
		return NULL;
	}
	json_tokener_reset(tok);
	obj = json_tokener_parse_ex(tok, text, (int) len);
	e = json_tokener_get_error(tok);
	if (obj == NULL || e != json_tokener_success)
	{
		json_object_put(obj);
		*why = e == json_tokener_continue ? "it ends in the middle of a JSON value" : json_tokener_error_desc(e);
		return NULL;
	}
	if (json_tokener_get_parse_end(tok) < len)
	{
		json_object_put(obj);
		*why = "data after the JSON value";
		return NULL;
	}
	return obj;
}

/* application/json: one non-empty array of objects, passed on as it is. */
static char *
from_json_array(struct json_tokener *tok, const char *body, size_t len, struct batch_error *err)
{
	const char *text = body;
	size_t		tlen = len;
	const char *why = NULL;
	struct json_object *arr;
	size_t		n;
	char	   *copy;

	trim(&text, &tlen);
	if (tlen == 0)
		return fail(err, 400, "invalid_argument", "the batch is empty: the body holds no packages");
	if (text[0] != '[')
		return fail(err, 400, "invalid_json", "the body must be a JSON array of package objects"
					" (or NDJSON, sent as Content-Type: application/x-ndjson)");
	arr = parse_one(tok, text, tlen, &why);
	if (arr == NULL)
		return fail(err, 400, "invalid_json", "the body is not valid JSON: %s", why);
	n = json_object_array_length(arr);
	for (size_t i = 0; i < n; i++)
	{
		if (!json_object_is_type(json_object_array_get_idx(arr, i), json_type_object))
		{
			json_object_put(arr);
			return fail(err, 400, "invalid_argument", "packages[%zu]: a package must be a JSON object", i);
		}
	}
	json_object_put(arr);
	if (n == 0)
		return fail(err, 400, "invalid_argument", "the batch is empty: the array holds no packages");
	{
		/* jsonb, like json-c, would keep the last of two equal names without a word. */
		char		name[JSONKEYS_NAME_MAX + 1];
		long		element;

		int			dup = json_duplicate_key(text, tlen, name, sizeof(name), &element);

		if (dup < 0)
			return fail(err, 400, "invalid_json", "the body is not valid JSON");
		if (dup > 0)
			return fail(err, 400, "invalid_argument", "packages[%ld]: the package repeats the field \"%s\"",
						element, name);
	}
	copy = xmalloc(tlen + 1);
	memcpy(copy, text, tlen);
	copy[tlen] = '\0';
	return copy;
}

/*
 * application/x-ndjson: one object a line, blank lines skipped, joined
 * into an array.  A line that is not one JSON object is refused by its
 * number (counting from 1, blank lines included), as an editor shows it.
 */
static char *
from_ndjson(struct json_tokener *tok, const char *body, size_t len, struct batch_error *err)
{
	struct buf	out = BUF_INIT;
	const char *p = body,
			   *end = body + len;
	size_t		line = 0,
				count = 0;

	buf_reserve(&out, len + 2);
	buf_puts(&out, "[");
	while (p < end)
	{
		const char *nl = memchr(p, '\n', (size_t) (end - p));
		const char *text = p;
		size_t		tlen = nl ? (size_t) (nl - p) : (size_t) (end - p);
		const char *why = NULL;
		struct json_object *obj;

		line++;
		p = nl ? nl + 1 : end;
		trim(&text, &tlen);
		if (tlen == 0)
			continue;
		if (text[0] != '{')
		{
			fail(err, 400, "invalid_argument", "line %zu: a package must be a JSON object", line);
			goto bad;
		}
		obj = parse_one(tok, text, tlen, &why);
		if (obj == NULL)
		{
			fail(err, 400, "invalid_argument", "line %zu: not valid JSON: %s", line, why);
			goto bad;
		}
		json_object_put(obj);
		{
			char		name[JSONKEYS_NAME_MAX + 1];

			int			dup = json_duplicate_key(text, tlen, name, sizeof(name), NULL);

			if (dup != 0)
			{
				if (dup < 0)
					fail(err, 400, "invalid_argument", "line %zu: not valid JSON", line);
				else
					fail(err, 400, "invalid_argument", "line %zu: the package repeats the field \"%s\"",
						 line, name);
				goto bad;
			}
		}
		if (count++ > 0)
			buf_puts(&out, ",");
		buf_append(&out, text, tlen);
	}
	if (count == 0)
	{
		fail(err, 400, "invalid_argument", "the batch is empty: the body holds no packages");
		goto bad;
	}
	buf_puts(&out, "]");
	return out.data;

bad:
	buf_free(&out);
	return NULL;
}

/*
 * The JSON array of a batch body (to be freed by the caller), or NULL with
 * the refusal (400) in *err.
 */
char *
batch_to_array(const char *body, size_t len, batch_format format, struct batch_error *err)
{
	struct json_tokener *tok;
	char	   *array;

	memset(err, 0, sizeof(*err));
	if (body == NULL)
	{
		body = "";
		len = 0;
	}
	tok = json_tokener_new();
	if (tok == NULL)
		return fail(err, 500, "internal_error", "out of memory");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	array = format == BATCH_NDJSON ? from_ndjson(tok, body, len, err) : from_json_array(tok, body, len, err);
	json_tokener_free(tok);
	return array;
}
