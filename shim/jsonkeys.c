/*
 * jsonkeys.c: the duplicate member name scanner.
 *
 * It walks a text that json-c has already accepted (so the shape is known
 * to be JSON), but it is total on any input: it never reads past len and
 * says -1 when the text does not hold together.  Two names are the same
 * when json-c would store them under the same key: every escape decoded
 * ("a" and "\u0061" are one name, a surrogate pair is one code point, an
 * unpaired surrogate is U+FFFD as json-c makes it), and cut at a NUL byte
 * (json-c keeps keys as C strings, so "a\u0000b" is the key "a").
 *
 * The names of each object are sorted when it closes and neighbours
 * compared, so an object of n names costs O(n log n), not the O(n^2) of
 * comparing every pair, which a hostile body of many names would exploit.
 */
#include "jsonkeys.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

/* Twice json-c's own default depth (32), which every text here has passed. */
#define MAX_DEPTH 64

struct name
{
	const char *p;				/* set just before sorting: the arena may move until then */
	size_t		off;			/* into the text, or into the arena when decoded */
	size_t		len;
	int			decoded;
};

struct frame
{
	int			is_object;
	int			expect_name;	/* an object's next string is a member name */
	size_t		names_start;	/* this object's names are names[names_start..] */
	size_t		arena_start;
};

struct scan
{
	const char *text;
	size_t		len;
	size_t		i;
	struct name *names;
	size_t		nnames;
	size_t		cap;
	struct buf	arena;			/* decoded names of the open objects */
	struct frame frames[MAX_DEPTH];
	int			depth;
	long		element;		/* index in a top-level array, -1 when the text is not one */
};

/* The value of four hex digits at s (avail bytes there), or -1. */
static long
hex4(const char *s, size_t avail)
{
	long		v = 0;

	if (avail < 4)
		return -1;
	for (int k = 0; k < 4; k++)
	{
		char		c = s[k];
		int			d = (c >= '0' && c <= '9') ? c - '0' :
			(c >= 'a' && c <= 'f') ? c - 'a' + 10 :
			(c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;

		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

/* Appends the UTF-8 encoding of a code point. */
static void
put_utf8(struct buf *b, uint32_t cp)
{
	unsigned char u[4];
	size_t		n;

	if (cp < 0x80)
	{
		u[0] = (unsigned char) cp;
		n = 1;
	}
	else if (cp < 0x800)
	{
		u[0] = (unsigned char) (0xC0 | (cp >> 6));
		u[1] = (unsigned char) (0x80 | (cp & 0x3F));
		n = 2;
	}
	else if (cp < 0x10000)
	{
		u[0] = (unsigned char) (0xE0 | (cp >> 12));
		u[1] = (unsigned char) (0x80 | ((cp >> 6) & 0x3F));
		u[2] = (unsigned char) (0x80 | (cp & 0x3F));
		n = 3;
	}
	else
	{
		u[0] = (unsigned char) (0xF0 | (cp >> 18));
		u[1] = (unsigned char) (0x80 | ((cp >> 12) & 0x3F));
		u[2] = (unsigned char) (0x80 | ((cp >> 6) & 0x3F));
		u[3] = (unsigned char) (0x80 | (cp & 0x3F));
		n = 4;
	}
	buf_append(b, u, n);
}

/*
 * Decodes the escapes of raw[0..len) onto the arena.  Returns -1 for an
 * escape JSON does not have.
 */
static int
decode(struct buf *arena, const char *raw, size_t len)
{
	for (size_t m = 0; m < len; m++)
	{
		char		c = raw[m];
		long		cp,
					lo;

		if (c != '\\')
		{
			buf_append(arena, &c, 1);
			continue;
		}
		if (++m >= len)
			return -1;
		switch (raw[m])
		{
			case '"':
			case '\\':
			case '/':
				buf_append(arena, &raw[m], 1);
				break;
			case 'b':
				buf_append(arena, "\b", 1);
				break;
			case 'f':
				buf_append(arena, "\f", 1);
				break;
			case 'n':
				buf_append(arena, "\n", 1);
				break;
			case 'r':
				buf_append(arena, "\r", 1);
				break;
			case 't':
				buf_append(arena, "\t", 1);
				break;
			case 'u':
				cp = hex4(raw + m + 1, len - m - 1);
				if (cp < 0)
					return -1;
				m += 4;
				if (cp >= 0xD800 && cp <= 0xDBFF && m + 6 < len && raw[m + 1] == '\\' && raw[m + 2] == 'u' &&
					(lo = hex4(raw + m + 3, len - m - 3)) >= 0xDC00 && lo <= 0xDFFF)
				{
					cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
					m += 6;
				}
				else if (cp >= 0xD800 && cp <= 0xDFFF)
					cp = 0xFFFD;
				put_utf8(arena, (uint32_t) cp);
				break;
			default:
				return -1;
		}
	}
	return 0;
}

/*
 * Reads the string at s->i (its opening quote) and moves past it.  When
 * name is not NULL, sets it to the string's decoded value.  Returns -1 when
 * the string does not end or holds a bad escape.
 */
static int
read_string(struct scan *s, struct name *name)
{
	size_t		start = s->i + 1,
				j = start;
	int			escaped = 0;

	while (j < s->len && s->text[j] != '"')
	{
		if (s->text[j] == '\\')
		{
			escaped = 1;
			j += 2;
		}
		else
			j++;
	}
	if (j >= s->len)
		return -1;
	s->i = j + 1;
	if (name == NULL)
		return 0;
	if (!escaped)
	{
		name->decoded = 0;
		name->off = start;
		name->len = j - start;
	}
	else
	{
		name->decoded = 1;
		name->off = s->arena.len;
		if (decode(&s->arena, s->text + start, j - start) < 0)
			return -1;
		name->len = s->arena.len - name->off;
	}
	return 0;
}

/* Orders names by their bytes (any total order will do: equal ones end up side by side). */
static int
compare_names(const void *a, const void *b)
{
	const struct name *x = a,
			   *y = b;
	size_t		n = x->len < y->len ? x->len : y->len;
	int			c = memcmp(x->p, y->p, n);

	if (c != 0)
		return c;
	return (x->len > y->len) - (x->len < y->len);
}

/* Copies a name for a message: cut, and anything but printable ASCII as '?'. */
static void
copy_name(char *out, size_t out_size, const struct name *n)
{
	size_t		k;

	if (out_size == 0)
		return;
	for (k = 0; k < n->len && k < JSONKEYS_NAME_MAX && k + 1 < out_size; k++)
	{
		unsigned char c = (unsigned char) n->p[k];

		out[k] = (c >= 0x20 && c < 0x7f) ? (char) c : '?';
	}
	out[k] = '\0';
}

/*
 * Closes the innermost object: 1 (with the name copied out) when two of
 * its names are the same, else 0, dropping its names.
 */
static int
close_object(struct scan *s, char *out, size_t out_size)
{
	struct frame *f = &s->frames[s->depth - 1];
	size_t		n = s->nnames - f->names_start;
	struct name *first = n ? s->names + f->names_start : NULL;

	for (size_t k = 0; k < n; k++)
	{
		const char *base = first[k].decoded ? s->arena.data : s->text;
		const char *nul;

		first[k].p = base + first[k].off;
		nul = memchr(first[k].p, '\0', first[k].len);
		if (nul)
			first[k].len = (size_t) (nul - first[k].p);
	}
	if (n > 1)
	{
		qsort(first, n, sizeof(*first), compare_names);
		for (size_t k = 1; k < n; k++)
		{
			if (compare_names(&first[k - 1], &first[k]) == 0)
			{
				copy_name(out, out_size, &first[k]);
				return 1;
			}
		}
	}
	s->nnames = f->names_start;
	s->arena.len = f->arena_start;
	return 0;
}

/* Opens an object or array at s->i. */
static int
open_frame(struct scan *s, int is_object)
{
	struct frame *f;

	if (s->depth == MAX_DEPTH)
		return -1;
	f = &s->frames[s->depth++];
	f->is_object = is_object;
	f->expect_name = is_object;
	f->names_start = s->nnames;
	f->arena_start = s->arena.len;
	if (s->depth == 1 && !is_object)
		s->element = 0;
	s->i++;
	return 0;
}

/* Adds a member name of the innermost object. */
static void
add_name(struct scan *s, const struct name *n)
{
	if (s->nnames == s->cap)
	{
		s->cap = s->cap ? s->cap * 2 : 16;
		s->names = xrealloc(s->names, s->cap * sizeof(*s->names));
	}
	s->names[s->nnames++] = *n;
}

/* Walks the text; 1 at the first repeated name, 0 at the end, -1 when it is not JSON. */
static int
walk(struct scan *s, char *out, size_t out_size)
{
	while (s->i < s->len)
	{
		char		c = s->text[s->i];
		struct frame *top = s->depth ? &s->frames[s->depth - 1] : NULL;
		struct name n;

		switch (c)
		{
			case ' ':
			case '\t':
			case '\r':
			case '\n':
				s->i++;
				break;
			case '{':
			case '[':
				if (open_frame(s, c == '{') < 0)
					return -1;
				break;
			case '}':
				if (top == NULL || !top->is_object)
					return -1;
				if (close_object(s, out, out_size))
					return 1;
				s->depth--;
				s->i++;
				break;
			case ']':
				if (top == NULL || top->is_object)
					return -1;
				s->depth--;
				s->i++;
				break;
			case ',':
				if (top == NULL)
					return -1;
				if (top->is_object)
					top->expect_name = 1;
				else if (s->depth == 1)
					s->element++;
				s->i++;
				break;
			case ':':
				if (top == NULL || !top->is_object)
					return -1;
				s->i++;
				break;
			case '"':
				if (top && top->is_object && top->expect_name)
				{
					if (read_string(s, &n) < 0)
						return -1;
					add_name(s, &n);
					top->expect_name = 0;
				}
				else if (read_string(s, NULL) < 0)
					return -1;
				break;
			default:
				/* A number, true, false or null: up to the next delimiter. */
				do
					s->i++;
				while (s->i < s->len && strchr(",:[]{}\" \t\r\n", s->text[s->i]) == NULL);
				break;
		}
	}
	return s->depth == 0 ? 0 : -1;
}

/*
 * Whether an object of the JSON text text[0..len) repeats a member name.
 * Returns 1 with the name in name (cut to JSONKEYS_NAME_MAX bytes, and
 * anything but printable ASCII as '?') and, when the text is an array,
 * the index of the top-level element that holds it in *element (-1
 * otherwise); 0 when no object does; -1 when the text is not JSON.
 */
int
json_duplicate_key(const char *text, size_t len, char *name, size_t name_size, long *element)
{
	struct scan s;
	int			rc;

	memset(&s, 0, sizeof(s));
	s.text = text ? text : "";
	s.len = text ? len : 0;
	s.element = -1;
	if (name_size > 0)
		name[0] = '\0';
	rc = walk(&s, name, name_size);
	if (element)
		*element = rc == 1 ? s.element : -1;
	free(s.names);
	buf_free(&s.arena);
	return rc;
}
