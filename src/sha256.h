/*
 * sha256.h: SHA-256 of a message given as consecutive parts, for the
 * Merkle trees (RFC 9162), signed-note key ids and S3 payload hashes.
 */
#ifndef JAM_SHA256_H
#define JAM_SHA256_H

#include "postgres.h"

#define JAM_SHA256_BYTES 32

/* One part of a message: len bytes at data (data may be NULL when len is 0). */
typedef struct JamSha256Part
{
	const void *data;
	size_t		len;
} JamSha256Part;

/* SHA-256 of the concatenation of parts[0..n) (n = 0: of the empty message). */
extern void jam_sha256(const JamSha256Part *parts, int n, uint8 out[JAM_SHA256_BYTES]);

/*
 * SHA-256(name || "\n" || alg || key)[:4] read big-endian: the key id of
 * a signed note's verifier key (golang.org/x/mod/sumdb/note), and of a
 * cosigner's.
 */
extern uint32 jam_sha256_key_id(const char *name, uint8 alg, const uint8 *key, size_t key_len);

#endif
