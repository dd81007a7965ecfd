/*
 * request.c: pure parsers for the pieces of an HTTP request.
 *
 * Every function here is total: any input, however malformed, gives either
 * a value or a refusal, never a crash (the fuzz target checks this).
 */
#include "request.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"

/* The bit of a method name; methods the shim serves nowhere are METHOD_OTHER. */
unsigned
method_bit(const char *method)
{
	if (method == NULL)
		return METHOD_OTHER;
	if (strcmp(method, "GET") == 0)
		return METHOD_GET;
	if (strcmp(method, "HEAD") == 0)
		return METHOD_HEAD;
	if (strcmp(method, "POST") == 0)
		return METHOD_POST;
	if (strcmp(method, "OPTIONS") == 0)
		return METHOD_OPTIONS;
	return METHOD_OTHER;
}

/* The name of a method bit, for metrics labels and the Allow header. */
const char *
method_label(unsigned bit)
{
	switch (bit)
	{
		case METHOD_GET:
			return "GET";
		case METHOD_HEAD:
			return "HEAD";
		case METHOD_POST:
			return "POST";
		case METHOD_OPTIONS:
			return "OPTIONS";
		default:
			return "OTHER";
	}
}

/* The value of a hex digit; -1 for anything else. */
static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Decodes len bytes of percent-encoded src into dst (NUL-terminated).
 * Returns the decoded length, or -1 for a malformed escape, an encoded NUL
 * (no parameter may contain one) or a dst too small.
 */
int
percent_decode(const char *src, size_t len, int plus_is_space, char *dst, size_t dst_size)
{
	size_t		o = 0;

	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) src[i];

		if (c == '%')
		{
			int			hi,
						lo;

			if (i + 2 >= len)
				return -1;
			hi = hexval((unsigned char) src[i + 1]);
			lo = hexval((unsigned char) src[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (unsigned char) (hi * 16 + lo);
			i += 2;
		}
		else if (c == '+' && plus_is_space)
			c = ' ';
		if (c == '\0' || o + 1 >= dst_size)
			return -1;
		dst[o++] = (char) c;
	}
	if (dst_size == 0)
		return -1;
	dst[o] = '\0';
	return (int) o;
}

/*
 * Splits a raw query string into decoded name/value pairs.  Empty pairs
 * ("a=1&&b=2") are skipped; a name given twice, more than QUERY_MAX_PARAMS
 * pairs or a malformed escape is refused with a message in err.
 */
int
query_parse(const char *raw, struct query *q, char *err, size_t err_size)
{
	memset(q, 0, sizeof(*q));
	if (raw == NULL)
		return 0;
	const char *p = raw;

	while (*p)
	{
		const char *end = strchr(p, '&');
		size_t		len = end ? (size_t) (end - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		size_t		nlen = eq ? (size_t) (eq - p) : len;
		size_t		vlen = eq ? len - nlen - 1 : 0;

		if (len > 0)
		{
			char	   *name,
					   *value;

			if (q->n == QUERY_MAX_PARAMS)
			{
				snprintf(err, err_size, "too many query parameters (at most %d)", QUERY_MAX_PARAMS);
				goto fail;
			}
			name = xmalloc(nlen + 1);
			value = xmalloc(vlen + 1);
			q->names[q->n] = name;
			q->values[q->n] = value;
			q->n++;
			if (percent_decode(p, nlen, 1, name, nlen + 1) < 0 ||
				percent_decode(eq ? eq + 1 : p + len, vlen, 1, value, vlen + 1) < 0)
			{
				snprintf(err, err_size, "a query parameter is not valid percent-encoding");
				goto fail;
			}
			for (int i = 0; i < q->n - 1; i++)
			{
				if (strcmp(q->names[i], name) == 0)
				{
					snprintf(err, err_size, "query parameter \"%.64s\" is given more than once", name);
					goto fail;
				}
			}
		}
		p += len;
		if (*p == '&')
			p++;
	}
	return 0;

fail:
	query_free(q);
	return -1;
}

/* The value of a query parameter, NULL when absent. */
const char *
query_get(const struct query *q, const char *name)
{
	for (int i = 0; i < q->n; i++)
		if (strcmp(q->names[i], name) == 0)
			return q->values[i];
	return NULL;
}

/* Releases a parsed query string. */
void
query_free(struct query *q)
{
	for (int i = 0; i < q->n; i++)
	{
		free(q->names[i]);
		free(q->values[i]);
	}
	q->n = 0;
}

/*
 * Finds the token of "Authorization: Bearer <token>" (RFC 6750: the scheme
 * is case-insensitive, the token is token68).  Returns 1 with the token,
 * 0 when there is no header, -1 when the header is not a bearer token.
 */
int
bearer_token(const char *authorization, const char **token, size_t *token_len)
{
	const char *p;
	size_t		n = 0;

	*token = NULL;
	*token_len = 0;
	if (authorization == NULL)
		return 0;
	if (strncasecmp(authorization, "Bearer ", 7) != 0)
		return -1;
	p = authorization + 7;
	while (*p == ' ')
		p++;
	while ((p[n] >= 'A' && p[n] <= 'Z') || (p[n] >= 'a' && p[n] <= 'z') ||
		   (p[n] >= '0' && p[n] <= '9') || (p[n] != '\0' && strchr("-._~+/", p[n])))
		n++;
	size_t		body = n;

	while (p[n] == '=')
		n++;
	if (body == 0 || n > 4096)
		return -1;
	/* Trailing spaces are tolerated (civetweb keeps them), anything else is not. */
	for (const char *t = p + n; *t; t++)
		if (*t != ' ' && *t != '\t')
			return -1;
	*token = p;
	*token_len = n;
	return 1;
}

/*
 * Whether an If-None-Match header matches the entity tag of a preimage,
 * which is its hash: "*", or a comma-separated list holding "hash" or
 * W/"hash" (weak comparison, RFC 9110 13.1.2).
 */
int
etag_matches(const char *if_none_match, const char *hash)
{
	size_t		hlen;
	const char *p = if_none_match;

	if (p == NULL || hash == NULL)
		return 0;
	hlen = strlen(hash);
	for (;;)
	{
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0')
			return 0;
		if (*p == '*')
			return 1;
		if (p[0] == 'W' && p[1] == '/')
			p += 2;
		if (*p != '"')
			return 0;
		const char *close = strchr(p + 1, '"');

		if (close == NULL)
			return 0;
		if ((size_t) (close - p - 1) == hlen && strncmp(p + 1, hash, hlen) == 0)
			return 1;
		p = close + 1;
	}
}

static int
b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Decodes standard base64 (RFC 4648 section 4), padded or not, into dst,
 * which must hold len / 4 * 3 + 3 bytes.  Returns the decoded length, or -1
 * for a character outside the alphabet, misplaced padding, or non-zero
 * bits left over in the last character (so that each byte string has
 * exactly one accepted encoding, up to padding).
 */
long
base64_decode(const char *src, size_t len, unsigned char *dst)
{
	size_t		pad = 0;
	size_t		o = 0;
	unsigned int acc = 0;
	int			bits = 0;

	while (pad < 2 && len > 0 && src[len - 1] == '=')
	{
		len--;
		pad++;
	}
	if (pad > 0 && (len + pad) % 4 != 0)
		return -1;
	if (len % 4 == 1)
		return -1;
	for (size_t i = 0; i < len; i++)
	{
		int			v = b64val((unsigned char) src[i]);

		if (v < 0)
			return -1;
		acc = (acc << 6) | (unsigned int) v;
		bits += 6;
		if (bits >= 8)
		{
			bits -= 8;
			dst[o++] = (unsigned char) ((acc >> bits) & 0xff);
		}
	}
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
		return -1;
	return (long) o;
}

/* Parses a decimal integer in int64 range ("-5", "42"); -1 when it is not one. */
int
parse_int64(const char *s, long long *out)
{
	char	   *end;
	long long	v;

	if (s == NULL || *s == '\0' || strlen(s) > 20)
		return -1;
	for (const char *p = (*s == '-' || *s == '+') ? s + 1 : s; *p; p++)
		if (*p < '0' || *p > '9')
			return -1;
	if (s[(*s == '-' || *s == '+') ? 1 : 0] == '\0')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end != '\0' || errno == ERANGE)
		return -1;
	*out = v;
	return 0;
}

/* Parses a decimal integer in int32 range; -1 when it is not one. */
int
parse_int32(const char *s, int *out)
{
	long long	v;

	if (parse_int64(s, &v) < 0 || v < INT_MIN || v > INT_MAX)
		return -1;
	*out = (int) v;
	return 0;
}

/* Parses true/false/1/0 (case-insensitive); -1 otherwise. */
int
parse_bool(const char *s, int *out)
{
	if (s == NULL)
		return -1;
	if (strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0)
		*out = 1;
	else if (strcasecmp(s, "false") == 0 || strcmp(s, "0") == 0)
		*out = 0;
	else
		return -1;
	return 0;
}

/* How many of the header lines are named name (case-insensitive). */
int
header_count(const struct http_header *headers, int n, const char *name)
{
	int			count = 0;

	for (int i = 0; i < n; i++)
		if (headers[i].name && strcasecmp(headers[i].name, name) == 0)
			count++;
	return count;
}

/*
 * Splits a request target in absolute form (RFC 9112 section 3.2.2,
 * "http://host[:port]/path?query") into its authority, which stands in for
 * Host, its path (copied into path, "/" when empty) and its query (a
 * pointer into target after '?', or NULL).  Returns -1 for a target that is
 * not an http or https URI, has no host, carries userinfo (which RFC 9110
 * section 4.2.4 says to treat as an error) or a fragment, or does not fit.
 */
int
split_absolute_target(const char *target, char *path, size_t path_size,
					  const char **query, char *authority, size_t authority_size)
{
	const char *p;
	size_t		alen,
				plen;

	*query = NULL;
	if (target == NULL || path_size < 2 || authority_size < 1)
		return -1;
	if (strncasecmp(target, "http://", 7) == 0)
		p = target + 7;
	else if (strncasecmp(target, "https://", 8) == 0)
		p = target + 8;
	else
		return -1;
	/* A fragment is never part of a request target. */
	if (strchr(p, '#') != NULL)
		return -1;
	alen = strcspn(p, "/?");
	if (alen == 0 || alen >= authority_size || memchr(p, '@', alen) != NULL)
		return -1;
	memcpy(authority, p, alen);
	authority[alen] = '\0';
	p += alen;
	plen = strcspn(p, "?");
	if (plen == 0)
	{
		snprintf(path, path_size, "/");
	}
	else
	{
		if (plen >= path_size)
			return -1;
		memcpy(path, p, plen);
		path[plen] = '\0';
	}
	p += plen;
	if (*p == '?')
		*query = p + 1;
	return 0;
}
