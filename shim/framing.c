/*
 * framing.c: the checks of framing.h, after RFC 9112 sections 6.1 to 6.3.
 */
#include "framing.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Optional white space around a field value (civetweb drops the leading part only). */
static int
is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * A Content-Length value: 1*DIGIT, within int64, with optional white space
 * around it.  Returns -1 for anything else: a sign, a list ("5, 5"), a
 * suffix ("5abc", which civetweb reads as 5), or an overflow (which
 * civetweb turns into the largest integer).
 */
int
parse_content_length(const char *value, long long *out)
{
	const char *p = value;
	long long	n = 0;
	int			digits = 0;

	if (p == NULL)
		return -1;
	while (is_ows(*p))
		p++;
	for (; *p >= '0' && *p <= '9'; p++, digits++)
	{
		int			d = *p - '0';

		if (n > (9223372036854775807LL - d) / 10)
			return -1;
		n = n * 10 + d;
	}
	while (is_ows(*p))
		p++;
	if (digits == 0 || *p != '\0')
		return -1;
	*out = n;
	return 0;
}

/* Whether a Transfer-Encoding value is exactly "chunked" (case-insensitive, white space around allowed). */
static int
is_just_chunked(const char *value)
{
	const char *p = value;
	size_t		len;

	while (is_ows(*p))
		p++;
	len = strlen(p);
	while (len > 0 && is_ows(p[len - 1]))
		len--;
	return len == 7 && strncasecmp(p, "chunked", 7) == 0;
}

/*
 * Checks the headers that decide where the request ends.  Returns 0 when
 * its length is beyond doubt, or -1 with the reason in why:
 *
 *  - Content-Length twice (even with equal values: RFC 9112 section 6.3
 *    allows treating those as one, but refusing is simpler and safe), or
 *    one that is not a plain non-negative integer within int64;
 *  - Transfer-Encoding twice, or other than exactly "chunked" (civetweb
 *    decodes nothing else, and "identity" has been gone since RFC 7230),
 *    or in an HTTP/1.0 request, which RFC 9112 section 6.1 says to treat
 *    as faulty framing;
 *  - Content-Length together with Transfer-Encoding;
 *  - Host twice (RFC 9112 section 3.2: 400), which would let a proxy and
 *    the shim disagree about which server the request is for.
 */
int
framing_check(const struct http_header *headers, int n, const char *http_version,
			  char *why, size_t why_size)
{
	int			lengths = header_count(headers, n, "Content-Length");
	int			encodings = header_count(headers, n, "Transfer-Encoding");
	long long	length;

	if (lengths > 1)
	{
		snprintf(why, why_size, "ambiguous framing: Content-Length is given %d times", lengths);
		return -1;
	}
	if (encodings > 1)
	{
		snprintf(why, why_size, "ambiguous framing: Transfer-Encoding is given %d times", encodings);
		return -1;
	}
	if (lengths && encodings)
	{
		snprintf(why, why_size, "ambiguous framing: both Content-Length and Transfer-Encoding");
		return -1;
	}
	if (header_count(headers, n, "Host") > 1)
	{
		snprintf(why, why_size, "Host is given more than once");
		return -1;
	}
	for (int i = 0; i < n; i++)
	{
		if (headers[i].name == NULL)
			continue;
		if (strcasecmp(headers[i].name, "Content-Length") == 0 &&
			parse_content_length(headers[i].value, &length) < 0)
		{
			snprintf(why, why_size, "Content-Length must be a non-negative integer");
			return -1;
		}
		if (strcasecmp(headers[i].name, "Transfer-Encoding") == 0)
		{
			if (http_version && strcmp(http_version, "1.0") == 0)
			{
				snprintf(why, why_size, "ambiguous framing: Transfer-Encoding in an HTTP/1.0 request");
				return -1;
			}
			if (headers[i].value == NULL || !is_just_chunked(headers[i].value))
			{
				snprintf(why, why_size, "Transfer-Encoding must be exactly \"chunked\"");
				return -1;
			}
		}
	}
	return 0;
}
