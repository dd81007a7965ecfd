/*
 * buf.h: a growable byte buffer, the one allocation pattern of the shim.
 *
 * Answers, SQL array literals and metrics pages are assembled in a buf and
 * written in one piece.  Allocation failure is fatal (the process aborts
 * with a message): a shim that cannot allocate a few kilobytes cannot
 * answer anyway, and every caller stays simple.
 */
#ifndef SHIM_BUF_H
#define SHIM_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf
{
	char	   *data;			/* always NUL-terminated when non-NULL */
	size_t		len;
	size_t		cap;
};

#define BUF_INIT {NULL, 0, 0}

void		buf_reserve(struct buf *b, size_t extra);
void		buf_append(struct buf *b, const void *data, size_t len);
void		buf_puts(struct buf *b, const char *s);
void		buf_printf(struct buf *b, const char *fmt,...) __attribute__((format(printf, 2, 3)));
void		buf_json_string(struct buf *b, const char *s, size_t len);
void		buf_free(struct buf *b);

/* malloc/realloc/strdup that abort on failure. */
void	   *xmalloc(size_t n);
void	   *xrealloc(void *p, size_t n);
char	   *xstrdup(const char *s);

#endif
