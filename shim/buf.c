/*
 * buf.c: growable byte buffers and allocation helpers.
 */
#include "buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Ends the process: nothing sensible can be answered without memory. */
static void
out_of_memory(size_t n)
{
	fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"out of memory allocating %zu bytes\"}\n", n);
	abort();
}

/* malloc that never returns NULL. */
void *
xmalloc(size_t n)
{
	void	   *p = malloc(n ? n : 1);

	if (p == NULL)
		out_of_memory(n);
	return p;
}

/* realloc that never returns NULL. */
void *
xrealloc(void *p, size_t n)
{
	void	   *q = realloc(p, n ? n : 1);

	if (q == NULL)
		out_of_memory(n);
	return q;
}

/* strdup that never returns NULL. */
char *
xstrdup(const char *s)
{
	size_t		n = strlen(s) + 1;
	char	   *p = xmalloc(n);

	memcpy(p, s, n);
	return p;
}

/* Makes room for extra more bytes plus the terminating NUL. */
void
buf_reserve(struct buf *b, size_t extra)
{
	size_t		need = b->len + extra + 1;

	if (need <= b->cap)
		return;
	if (need < b->len)			/* overflow */
		out_of_memory(SIZE_MAX);
	size_t		cap = b->cap ? b->cap : 256;

	while (cap < need)
		cap = cap * 2 > cap ? cap * 2 : need;
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
}

/* Appends len bytes. */
void
buf_append(struct buf *b, const void *data, size_t len)
{
	buf_reserve(b, len);
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

/* Appends a C string. */
void
buf_puts(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

/* Appends printf-formatted text. */
void
buf_printf(struct buf *b, const char *fmt,...)
{
	va_list		ap;
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	buf_reserve(b, (size_t) n);
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t) n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t) n;
}

/*
 * Appends s as a JSON string literal.  Control characters are escaped;
 * other bytes pass through, so valid UTF-8 stays valid UTF-8.  Invalid
 * UTF-8 is replaced byte by byte with U+FFFD, keeping the output valid JSON
 * whatever a client sent.
 */
void
buf_json_string(struct buf *b, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *) s;
	size_t		i = 0;

	buf_append(b, "\"", 1);
	while (i < len)
	{
		unsigned char c = p[i];

		if (c == '"' || c == '\\')
		{
			char		esc[2] = {'\\', (char) c};

			buf_append(b, esc, 2);
			i++;
		}
		else if (c < 0x20 || c == 0x7f)
		{
			buf_printf(b, "\\u%04x", c);
			i++;
		}
		else if (c < 0x80)
		{
			buf_append(b, &p[i], 1);
			i++;
		}
		else
		{
			size_t		n = 0;
			unsigned int cp = 0;

			if (c >= 0xc2 && c <= 0xdf)
				n = 2, cp = c & 0x1f;
			else if (c >= 0xe0 && c <= 0xef)
				n = 3, cp = c & 0x0f;
			else if (c >= 0xf0 && c <= 0xf4)
				n = 4, cp = c & 0x07;
			if (n == 0 || i + n > len)
				n = 0;
			for (size_t k = 1; k < n; k++)
			{
				if ((p[i + k] & 0xc0) != 0x80)
				{
					n = 0;
					break;
				}
				cp = (cp << 6) | (p[i + k] & 0x3f);
			}
			if (n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
				n = 0;
			if (n == 4 && (cp < 0x10000 || cp > 0x10ffff))
				n = 0;
			if (n == 0)
			{
				buf_puts(b, "\xef\xbf\xbd");
				i++;
			}
			else
			{
				buf_append(b, &p[i], n);
				i += n;
			}
		}
	}
	buf_append(b, "\"", 1);
}

/* Releases the buffer; it may be used again afterwards. */
void
buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
