/*
 * s3_sign.c: AWS Signature Version 4 for S3 requests, through libcurl.
 *
 * libcurl (7.75 and later) computes the signature itself
 * (CURLOPT_AWS_SIGV4), but two parts of the canonical request are the
 * caller's: libcurl signs the URL's query string exactly as given, so it
 * must already be canonical (encoded and sorted), and it hashes the
 * payload only when it is given as CURLOPT_POSTFIELDS, so an upload read
 * from a callback, and every request to S3 (which requires the header),
 * must carry x-amz-content-sha256 with the payload's real hash, which
 * libcurl then signs as the payload hash.  This file supplies both.
 *
 * It is plain C on libcurl, with no server headers, so that
 * test/unit/s3_sign_test.c can check it against the AWS SigV4 test suite.
 */
#include "s3_sign.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		c == '-' || c == '_' || c == '.' || c == '~';
}

int
s3_uri_encode(const char *s, int keep_slash, char *out, size_t out_size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t		n = 0;

	for (; *s; s++)
	{
		unsigned char c = (unsigned char) *s;

		if (unreserved(c) || (keep_slash && c == '/'))
		{
			if (n + 1 >= out_size)
				return -1;
			out[n++] = (char) c;
		}
		else
		{
			if (n + 3 >= out_size)
				return -1;
			out[n++] = '%';
			out[n++] = hex[c >> 4];
			out[n++] = hex[c & 15];
		}
	}
	if (n >= out_size)
		return -1;
	out[n] = '\0';
	return (int) n;
}

/* An encoded parameter, for sorting. */
typedef struct EncodedParam
{
	char	   *name;
	char	   *value;
} EncodedParam;

static int
encoded_cmp(const void *a, const void *b)
{
	const EncodedParam *x = a;
	const EncodedParam *y = b;
	int			c = strcmp(x->name, y->name);

	return c != 0 ? c : strcmp(x->value, y->value);
}

/* A malloc'd encoding of s, or NULL when out of memory. */
static char *
encoded_copy(const char *s)
{
	size_t		size = strlen(s) * 3 + 1;
	char	   *out = malloc(size);

	if (out != NULL)
		(void) s3_uri_encode(s, 0, out, size);
	return out;
}

int
s3_canonical_query(S3QueryParam *params, int n, char *out, size_t out_size)
{
	EncodedParam *enc = calloc(n > 0 ? (size_t) n : 1, sizeof(EncodedParam));
	size_t		len = 0;
	int			rc = 0;

	if (enc == NULL)
		return -1;
	for (int i = 0; i < n && rc == 0; i++)
	{
		enc[i].name = encoded_copy(params[i].name);
		enc[i].value = encoded_copy(params[i].value ? params[i].value : "");
		if (enc[i].name == NULL || enc[i].value == NULL)
			rc = -1;
	}
	/* Sorted by the encoded bytes, as SigV4 orders them (and S3 checks). */
	if (rc == 0)
		qsort(enc, (size_t) n, sizeof(EncodedParam), encoded_cmp);
	if (out_size > 0)
		out[0] = '\0';
	for (int i = 0; i < n && rc == 0; i++)
	{
		int			w = snprintf(out + len, out_size - len, "%s%s=%s",
								 i > 0 ? "&" : "", enc[i].name, enc[i].value);

		if (w < 0 || (size_t) w >= out_size - len)
			rc = -1;
		else
			len += (size_t) w;
	}
	for (int i = 0; i < n; i++)
	{
		free(enc[i].name);
		free(enc[i].value);
	}
	free(enc);
	return rc == 0 ? (int) len : -1;
}

/* Appends one header line to *headers; -1 when out of memory or too long. */
static int
add_header(struct curl_slist **headers, const char *name, const char *value)
{
	char		line[4096];
	struct curl_slist *more;

	if (snprintf(line, sizeof(line), "%s: %s", name, value) >= (int) sizeof(line))
		return -1;
	more = curl_slist_append(*headers, line);
	if (more == NULL)
		return -1;
	*headers = more;
	return 0;
}

int
s3_sign_request(CURL *h, const char *region, const char *service,
				const S3Credentials *creds, const char *payload_sha256_hex,
				struct curl_slist **headers)
{
	char		provider[160];

	/* aws:amz:<region>:<service>: AWS4-HMAC-SHA256 and the x-amz-* headers. */
	snprintf(provider, sizeof(provider), "aws:amz:%s:%s", region, service);
	/* Separate options, so that no character of the secret is taken as a separator. */
	if (curl_easy_setopt(h, CURLOPT_AWS_SIGV4, provider) != CURLE_OK ||
		curl_easy_setopt(h, CURLOPT_USERNAME, creds->access_key_id) != CURLE_OK ||
		curl_easy_setopt(h, CURLOPT_PASSWORD, creds->secret_access_key) != CURLE_OK ||
		(payload_sha256_hex != NULL &&
		 add_header(headers, "x-amz-content-sha256", payload_sha256_hex) != 0) ||
		(creds->session_token != NULL && creds->session_token[0] != '\0' &&
		 add_header(headers, "x-amz-security-token", creds->session_token) != 0))
	{
		curl_slist_free_all(*headers);
		*headers = NULL;
		return -1;
	}
	return 0;
}
