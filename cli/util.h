/*
 * util.h: memory, files, hex and base64: the small things every verb needs.
 */
#ifndef JAMCTL_UTIL_H
#define JAMCTL_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define JC_HASH_BYTES 32
#define JC_HASH_HEX 64

void	   *xmalloc(size_t n);
void	   *xrealloc(void *p, size_t n);
char	   *xstrdup(const char *s);
char	   *xasprintf(const char *fmt,...) __attribute__((format(printf, 1, 2)));
char	   *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/*
 * The whole of a file, or of stdin for "-", NUL-terminated (not counted in
 * *len).  Returns NULL with errno set when it cannot be read.
 */
unsigned char *read_file(const char *path, size_t *len);

/* Writes all of buf to fd, retrying short writes; 0, or -1 with errno. */
int			write_all(int fd, const void *buf, size_t len);

/* Whether s is a content address: exactly 64 lowercase hex characters. */
int			is_hash_hex(const char *s);

/* Lowercase hex of n bytes into out (2n + 1 bytes). */
void		to_hex(const unsigned char *in, size_t n, char *out);

/* Parses exactly 2n lowercase or uppercase hex characters; 0, or -1. */
int			from_hex(const char *hex, unsigned char *out, size_t n);

/*
 * Strict standard base64 (RFC 4648 section 4, with padding, no white
 * space, unused bits zero): the decoded length, or -1 when text[0..len) is
 * anything else or decodes to more than max bytes.  Strictness matters:
 * a lax decoder would accept several spellings of one signed value.
 */
long		b64_decode(const char *text, size_t len, unsigned char *out, size_t max);

/* Standard base64 of n bytes, malloc'd. */
char	   *b64_encode(const unsigned char *in, size_t n);

/* "512 B", "1.5 KiB", "16.0 MiB". */
void		human_bytes(double n, char *out, size_t size);

/*
 * Parses a canonical non-negative decimal (no sign, no leading zero unless
 * it is "0", no space) of at most 2^63 - 1 from s[0..len); 0, or -1.
 */
int			parse_canonical_u63(const char *s, size_t len, uint64_t *out);

/* Parses a decimal integer option value in [min, max]; 0, or -1. */
int			parse_long(const char *s, long min, long max, long *out);

#endif
