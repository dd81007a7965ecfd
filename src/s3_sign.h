/*
 * s3_sign.h: the S3 request pieces AWS Signature Version 4 depends on
 * (s3_sign.c), in plain C with libcurl only, so that the unit test of
 * the signer (test/unit/s3_sign_test.c) links it without the server.
 */
#ifndef JAM_S3_SIGN_H
#define JAM_S3_SIGN_H

#include <stddef.h>

#include <curl/curl.h>

/* Hex SHA-256 of a payload: 64 characters and a terminator. */
#define S3_SHA256_HEX_LEN 65

/* What a request is signed with. */
typedef struct S3Credentials
{
	const char *access_key_id;
	const char *secret_access_key;
	const char *session_token;	/* NULL without one (STS credentials have one) */
} S3Credentials;

/* One query parameter, unencoded. */
typedef struct S3QueryParam
{
	const char *name;
	const char *value;
} S3QueryParam;

/*
 * Appends to out (of size out_size) the canonical query string of the n
 * parameters: each name and value URI-encoded as SigV4 requires, sorted
 * by encoded name then value, joined with '&'.  Sorts params in place.
 * Returns the length written, or -1 when it does not fit.
 */
extern int	s3_canonical_query(S3QueryParam *params, int n, char *out, size_t out_size);

/*
 * URI-encodes s into out as SigV4 requires (every byte but A-Z a-z 0-9
 * - _ . ~ as %XX, uppercase), keeping '/' when keep_slash.  Returns the
 * length written, or -1 when it does not fit.
 */
extern int	s3_uri_encode(const char *s, int keep_slash, char *out, size_t out_size);

/*
 * Makes h sign its request with SigV4 for region and service ("s3"):
 * CURLOPT_AWS_SIGV4, the key id and secret, and the headers SigV4 with
 * libcurl needs from the caller, appended to headers: x-amz-content-sha256
 * (payload_sha256_hex, which libcurl signs as the payload's hash; S3
 * requires it on every request) and, with a session token,
 * x-amz-security-token.  A NULL payload_sha256_hex adds no header and
 * leaves the payload's hash to libcurl (of CURLOPT_POSTFIELDS, or of
 * nothing), as other services than S3 expect.  *headers is the list the
 * caller then sets as CURLOPT_HTTPHEADER and frees.  Returns 0, or -1 when
 * out of memory or a header is too long (*headers is then freed and NULL).
 */
extern int	s3_sign_request(CURL *h, const char *region, const char *service,
							const S3Credentials *creds, const char *payload_sha256_hex,
							struct curl_slist **headers);

#endif							/* JAM_S3_SIGN_H */
