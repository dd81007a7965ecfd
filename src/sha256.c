/*
 * sha256.c: SHA-256 through OpenSSL's libcrypto.
 *
 * Every append to a service's log hashes a leaf and then one node per
 * level of its frontier to get the new root, so SHA-256 is a fixed part
 * of every submit, report and proof.  libcrypto uses the CPU's SHA
 * extensions (or AVX2) where they exist; libsodium's SHA-256 is portable
 * C, and took three times as long per Merkle node on the build machine.
 * The server already loads libcrypto, so this adds no library to the
 * process.
 *
 * One fetched digest and one context serve the backend: fetching and
 * allocating per hash would cost more than hashing 65 bytes.  A hash
 * always starts with a fresh init, so a context left half-used by an
 * error is simply reset by the next call.
 */
#include "sha256.h"

#include <openssl/err.h>
#include <openssl/evp.h>

static EVP_MD *sha256_md;
static EVP_MD_CTX *sha256_ctx;

static void
raise_openssl_error(const char *step)
{
	unsigned long code = ERR_get_error();
	const char *reason = code ? ERR_reason_error_string(code) : NULL;

	ERR_clear_error();
	ereport(ERROR,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("SHA-256 failed in %s", step),
			 errdetail("OpenSSL: %s", reason ? reason : "no reason recorded")));
}

void
jam_sha256(const JamSha256Part *parts, int n, uint8 out[JAM_SHA256_BYTES])
{
	unsigned int out_len = 0;

	if (sha256_ctx == NULL)
	{
		if (sha256_md == NULL && (sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
			raise_openssl_error("EVP_MD_fetch");
		if ((sha256_ctx = EVP_MD_CTX_new()) == NULL)
			raise_openssl_error("EVP_MD_CTX_new");
	}
	if (EVP_DigestInit_ex2(sha256_ctx, sha256_md, NULL) != 1)
		raise_openssl_error("EVP_DigestInit_ex2");
	for (int i = 0; i < n; i++)
		if (parts[i].len > 0 && EVP_DigestUpdate(sha256_ctx, parts[i].data, parts[i].len) != 1)
			raise_openssl_error("EVP_DigestUpdate");
	if (EVP_DigestFinal_ex(sha256_ctx, out, &out_len) != 1 || out_len != JAM_SHA256_BYTES)
		raise_openssl_error("EVP_DigestFinal_ex");
}

uint32
jam_sha256_key_id(const char *name, uint8 alg, const uint8 *key, size_t key_len)
{
	JamSha256Part parts[] = {
		{name, strlen(name)}, {"\n", 1}, {&alg, 1}, {key, key_len}
	};
	uint8		digest[JAM_SHA256_BYTES];

	jam_sha256(parts, lengthof(parts), digest);
	return ((uint32) digest[0] << 24) | ((uint32) digest[1] << 16) |
		((uint32) digest[2] << 8) | (uint32) digest[3];
}
