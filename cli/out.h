/*
 * out.h: printing answers: JSON for programs, aligned text for people.
 */
#ifndef JAMCTL_OUT_H
#define JAMCTL_OUT_H

#include <json-c/json.h>

/* A JSON document on stdout, indented, with a final newline. */
void		out_json(json_object *doc);

/* One JSON value on one line (for streamed lists). */
const char *out_json_line(json_object *v);

/*
 * An object as "key   value" lines for a person: the keys in order first
 * (those present), then the others; nested objects indented below their
 * key, lists of objects as tables.
 */
void		out_kv(json_object *obj, const char *const *order);

/* A value as text for a person: null is "-", lists are "a, b". */
const char *out_text(json_object *v, char *buf, size_t size);

/* How a table column shows its values. */
enum col_kind
{
	COL_TEXT,
	COL_INT,
	COL_BYTES,					/* a byte count, as "1.5 KiB" */
	COL_TIME					/* an ISO timestamp, to the second */
};

struct col
{
	const char *key;			/* the member of each row, or "a.b" in a nested object */
	const char *head;
	enum col_kind kind;
};

/*
 * An aligned table, printed a page at a time so that long lists stream:
 * rows are buffered until table_flush(), and columns never narrow from one
 * page to the next (a later, wider value widens them from then on).
 */
struct table;

struct table *table_new(const struct col *cols, int indent);
void		table_add(struct table *t, json_object *row);
void		table_flush(struct table *t);
/* Flushes, prints "(none)" when no row was ever added, frees. */
void		table_end(struct table *t);

#endif
