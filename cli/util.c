/*
 * util.c: memory, files, hex and base64.
 *
 * Out of memory ends jamctl at once (exit 8): a CLI has nothing better to
 * do, and every caller then stays free of checks.
 */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "errors.h"
#include "jamctl.h"

void *
xmalloc(size_t n)
{
	void	   *p = malloc(n ? n : 1);

	if (!p)
		jc_die(JC_ERROR, "out_of_memory", "cannot allocate %zu bytes", n);
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	void	   *q = realloc(p, n ? n : 1);

	if (!q)
		jc_die(JC_ERROR, "out_of_memory", "cannot allocate %zu bytes", n);
	return q;
}

char *
xstrdup(const char *s)
{
	size_t		n = strlen(s) + 1;

	return memcpy(xmalloc(n), s, n);
}

char *
xvasprintf(const char *fmt, va_list ap)
{
	va_list		again;
	int			n;
	char	   *out;

	va_copy(again, ap);
	n = vsnprintf(NULL, 0, fmt, ap);
	out = xmalloc((size_t) n + 1);
	vsnprintf(out, (size_t) n + 1, fmt, again);
	va_end(again);
	return out;
}

char *
xasprintf(const char *fmt,...)
{
	va_list		ap;
	char	   *out;

	va_start(ap, fmt);
	out = xvasprintf(fmt, ap);
	va_end(ap);
	return out;
}

unsigned char *
read_file(const char *path, size_t *len)
{
	int			fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	size_t		cap = 65536,
				n = 0;
	unsigned char *buf;

	if (fd < 0)
		return NULL;
	buf = xmalloc(cap + 1);
	for (;;)
	{
		ssize_t		r;

		if (n == cap)
			buf = xrealloc(buf, (cap *= 2) + 1);
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
		{
			int			saved = errno;

			free(buf);
			if (fd != STDIN_FILENO)
				close(fd);
			errno = saved;
			return NULL;
		}
		if (r == 0)
			break;
		n += (size_t) r;
	}
	if (fd != STDIN_FILENO)
		close(fd);
	buf[n] = '\0';
	*len = n;
	return buf;
}

int
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0)
	{
		ssize_t		w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		len -= (size_t) w;
	}
	return 0;
}

int
is_hash_hex(const char *s)
{
	size_t		i;

	for (i = 0; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return i == JC_HASH_HEX;
}

void
to_hex(const unsigned char *in, size_t n, char *out)
{
	sodium_bin2hex(out, 2 * n + 1, in, n);
}

int
from_hex(const char *hex, unsigned char *out, size_t n)
{
	size_t		got = 0;
	const char *end = NULL;

	if (strlen(hex) != 2 * n)
		return -1;
	if (sodium_hex2bin(out, n, hex, 2 * n, NULL, &got, &end) != 0 || got != n || *end != '\0')
		return -1;
	return 0;
}

long
b64_decode(const char *text, size_t len, unsigned char *out, size_t max)
{
	size_t		got = 0;

	/*
	 * libsodium refuses non-zero unused bits, missing or extra padding and,
	 * without an end pointer, anything left over; and more than max bytes.
	 */
	if (len == 0)
		return 0;
	if (sodium_base642bin(out, max, text, len, NULL, &got, NULL, sodium_base64_VARIANT_ORIGINAL) != 0)
		return -1;
	return (long) got;
}

char *
b64_encode(const unsigned char *in, size_t n)
{
	size_t		size = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
	char	   *out = xmalloc(size);

	sodium_bin2base64(out, size, in, n, sodium_base64_VARIANT_ORIGINAL);
	return out;
}

void
human_bytes(double n, char *out, size_t size)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	int			u = 0;

	while (n >= 1024 && u < 4)
	{
		n /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, size, "%.0f B", n);
	else
		snprintf(out, size, "%.1f %s", n, units[u]);
}

int
parse_canonical_u63(const char *s, size_t len, uint64_t *out)
{
	uint64_t	v = 0;

	if (len == 0 || len > 19 || (len > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < len; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t) (s[i] - '0');
	}
	if (v > (uint64_t) INT64_MAX)
		return -1;
	*out = v;
	return 0;
}

int
parse_long(const char *s, long min, long max, long *out)
{
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}
