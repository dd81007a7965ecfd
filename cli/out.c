/*
 * out.c: printing answers.
 *
 * JSON output is the server's own document (or, for streamed lists, its
 * items), so that a script sees exactly the fields the HTTP API documents.
 * Human output only chooses, orders and aligns.
 */
#include "out.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void
out_json(json_object *doc)
{
	puts(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
										JSON_C_TO_STRING_NOSLASHESCAPE));
}

const char *
out_json_line(json_object *v)
{
	return json_object_to_json_string_ext(v, JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* An array on one line: "a, b, c", or "-" when empty. */
static const char *
join_array(json_object *v, char *buf, size_t size)
{
	size_t		len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < json_object_array_length(v); i++)
	{
		char		item[512];
		int			n = snprintf(buf + len, size - len, "%s%s", i ? ", " : "",
								 out_text(json_object_array_get_idx(v, i), item, sizeof(item)));

		if (n < 0 || (size_t) n >= size - len)
			break;
		len += (size_t) n;
	}
	return len ? buf : "-";
}

/* A small nested object on one line: "k=v, k=v". */
static const char *
join_object(json_object *v, char *buf, size_t size)
{
	size_t		len = 0;

	buf[0] = '\0';
	json_object_object_foreach(v, key, val)
	{
		char		item[512];
		int			n = snprintf(buf + len, size - len, "%s%s=%s", len ? ", " : "", key,
								 out_text(val, item, sizeof(item)));

		if (n < 0 || (size_t) n >= size - len)
			break;
		len += (size_t) n;
	}
	return buf;
}

const char *
out_text(json_object *v, char *buf, size_t size)
{
	if (!v)
		return "-";
	switch (json_object_get_type(v))
	{
		case json_type_null:
			return "-";
		case json_type_boolean:
			return json_object_get_boolean(v) ? "yes" : "no";
		case json_type_array:
			return join_array(v, buf, size);
		case json_type_object:
			return join_object(v, buf, size);
		default:
			/* strings as they are; numbers as json-c writes them */
			return json_object_get_string(v);
	}
}

/* "tree_size" -> "tree size": labels for people. */
static void
label(const char *key, char *out, size_t size)
{
	size_t		i;

	for (i = 0; key[i] && i + 1 < size; i++)
		out[i] = key[i] == '_' ? ' ' : key[i];
	out[i] = '\0';
}

static int
is_object_list(json_object *v)
{
	return v && json_object_is_type(v, json_type_array) && json_object_array_length(v) > 0 &&
		json_object_is_type(json_object_array_get_idx(v, 0), json_type_object);
}

static void kv_at(json_object *obj, const char *const *order, int indent);

static void
kv_line(const char *key, json_object *v, int width, int indent)
{
	char		lab[128],
				buf[4096];

	label(key, lab, sizeof(lab));
	if (v && json_object_is_type(v, json_type_object) && json_object_object_length(v) > 0)
	{
		printf("%*s%s\n", indent, "", lab);
		kv_at(v, NULL, indent + 2);
	}
	else if (is_object_list(v))
	{
		/* A list of objects: a table with the first item's keys as columns. */
		struct col	cols[32];
		int			n = 0;
		struct table *t;

		static const char *const first[] = {"service_id", "id", "name", NULL};

		printf("%*s%s\n", indent, "", lab);
		/* Identifying columns first (jsonb orders keys by length), then the rest as they come. */
		for (int pass = 0; pass < 2; pass++)
		{
			json_object_object_foreach(json_object_array_get_idx(v, 0), k, val)
			{
				int			is_first = 0;

				(void) val;
				for (int f = 0; first[f]; f++)
					is_first |= strcmp(first[f], k) == 0;
				if (is_first == (pass == 0) && n < 31)
					cols[n++] = (struct col)
				{
					k, k, COL_TEXT
				};
			}
		}
		cols[n] = (struct col)
		{
			NULL, NULL, COL_TEXT
		};
		t = table_new(cols, indent + 2);
		for (size_t i = 0; i < json_object_array_length(v); i++)
			table_add(t, json_object_array_get_idx(v, i));
		table_end(t);
	}
	else
		printf("%*s%-*s  %s\n", indent, "", width, lab, out_text(v, buf, sizeof(buf)));
}

static int
in_order(const char *key, const char *const *order)
{
	for (int i = 0; order && order[i]; i++)
		if (strcmp(order[i], key) == 0)
			return 1;
	return 0;
}

static void
kv_at(json_object *obj, const char *const *order, int indent)
{
	int			width = 0;
	json_object *v;

	json_object_object_foreach(obj, key, val)
	{
		(void) val;
		if ((int) strlen(key) > width)
			width = (int) strlen(key);
	}
	for (int i = 0; order && order[i]; i++)
		if (json_object_object_get_ex(obj, order[i], &v))
			kv_line(order[i], v, width, indent);
	json_object_object_foreach(obj, key2, val2)
	{
		if (!in_order(key2, order))
			kv_line(key2, val2, width, indent);
	}
}

void
out_kv(json_object *obj, const char *const *order)
{
	if (!obj || !json_object_is_type(obj, json_type_object))
	{
		char		buf[4096];

		puts(out_text(obj, buf, sizeof(buf)));
		return;
	}
	kv_at(obj, order, 0);
}

struct table
{
	const struct col *cols;
	int			ncols;
	int			indent;
	int		   *width;
	int			header_done;
	int			rows_ever;
	int			nrows;
	int			cap;
	char	  **cells;			/* nrows * ncols */
};

struct table *
table_new(const struct col *cols, int indent)
{
	struct table *t = xmalloc(sizeof(*t));

	memset(t, 0, sizeof(*t));
	t->cols = cols;
	while (cols[t->ncols].key)
		t->ncols++;
	t->indent = indent;
	t->width = xmalloc(sizeof(int) * (size_t) t->ncols);
	for (int c = 0; c < t->ncols; c++)
		t->width[c] = (int) strlen(cols[c].head);
	return t;
}

/* The member at "a.b": nested objects, as in quota's "rate.limit_per_minute". */
static json_object *
member(json_object *row, const char *key)
{
	char		part[128];
	const char *dot;

	while ((dot = strchr(key, '.')) != NULL)
	{
		snprintf(part, sizeof(part), "%.*s", (int) (dot - key), key);
		if (!json_object_object_get_ex(row, part, &row))
			return NULL;
		key = dot + 1;
	}
	return json_object_object_get_ex(row, key, &row) ? row : NULL;
}

static char *
cell(const struct col *c, json_object *v)
{
	char		buf[4096];

	if (!v || json_object_is_type(v, json_type_null))
		return xstrdup("-");
	if (c->kind == COL_BYTES && (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
	{
		human_bytes(json_object_get_double(v), buf, sizeof(buf));
		return xstrdup(buf);
	}
	if (c->kind == COL_TIME && json_object_is_type(v, json_type_string))
	{
		/* "2026-12-02T01:24:59.850272+00:00" -> "2026-12-02 01:24:59" */
		const char *s = json_object_get_string(v);

		if (strlen(s) >= 19 && s[10] == 'T')
			return xasprintf("%.10s %.8s", s, s + 11);
	}
	return xstrdup(out_text(v, buf, sizeof(buf)));
}

void
table_add(struct table *t, json_object *row)
{
	if (t->nrows == t->cap)
	{
		t->cap = t->cap ? t->cap * 2 : 64;
		t->cells = xrealloc(t->cells, sizeof(char *) * (size_t) t->cap * (size_t) t->ncols);
	}
	for (int c = 0; c < t->ncols; c++)
	{
		char	   *s = cell(&t->cols[c], member(row, t->cols[c].key));

		t->cells[t->nrows * t->ncols + c] = s;
		if ((int) strlen(s) > t->width[c])
			t->width[c] = (int) strlen(s);
	}
	t->nrows++;
	t->rows_ever++;
}

static void
print_row(struct table *t, const char *const *vals)
{
	printf("%*s", t->indent, "");
	for (int c = 0; c < t->ncols; c++)
	{
		int			last = c == t->ncols - 1;
		int			right = t->cols[c].kind == COL_INT || t->cols[c].kind == COL_BYTES;

		if (last && !right)
			printf("%s", vals[c]);
		else
			printf(right ? "%*s" : "%-*s", t->width[c], vals[c]);
		if (!last)
			fputs("  ", stdout);
	}
	putchar('\n');
}

void
table_flush(struct table *t)
{
	const char *vals[64];

	if (!t->header_done && t->nrows > 0)
	{
		char		heads[64][64];

		for (int c = 0; c < t->ncols && c < 64; c++)
		{
			/* Headers in capitals, as kubectl and docker print them. */
			size_t		i;

			for (i = 0; t->cols[c].head[i] && i < 63; i++)
				heads[c][i] = (char) (t->cols[c].head[i] >= 'a' && t->cols[c].head[i] <= 'z' ?
									  t->cols[c].head[i] - 32 : t->cols[c].head[i] == '_' ? ' ' :
									  t->cols[c].head[i]);
			heads[c][i] = '\0';
			vals[c] = heads[c];
		}
		print_row(t, vals);
		t->header_done = 1;
	}
	for (int r = 0; r < t->nrows; r++)
	{
		for (int c = 0; c < t->ncols && c < 64; c++)
			vals[c] = t->cells[r * t->ncols + c];
		print_row(t, vals);
		for (int c = 0; c < t->ncols; c++)
			free(t->cells[r * t->ncols + c]);
	}
	t->nrows = 0;
	fflush(stdout);
}

void
table_end(struct table *t)
{
	table_flush(t);
	if (t->rows_ever == 0)
		printf("%*s(none)\n", t->indent, "");
	free(t->cells);
	free(t->width);
	free(t);
}
