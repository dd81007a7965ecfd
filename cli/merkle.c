/*
 * merkle.c: RFC 9162 section 2.1 inclusion proofs, checked offline.
 *
 * jam's logs are built exactly as RFC 9162 says (SHA-256; leaf =
 * SHA-256(0x00 || entry), node = SHA-256(0x01 || left || right)) so that
 * any transparency-log tool checks them; this is the check, written from
 * the RFC's algorithm, and cross-checked in the TAP suite against
 * transparency-dev/merkle's test vectors and Go's x/mod/sumdb/tlog.
 */
#include "merkle.h"

#include <string.h>

#include <sodium.h>

void
merkle_leaf_hash(const unsigned char *entry, size_t len, unsigned char out[JC_HASH_BYTES])
{
	crypto_hash_sha256_state st;
	const unsigned char prefix = 0x00;

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, &prefix, 1);
	crypto_hash_sha256_update(&st, entry, len);
	crypto_hash_sha256_final(&st, out);
}

static void
node_hash(const unsigned char *left, const unsigned char *right, unsigned char out[JC_HASH_BYTES])
{
	crypto_hash_sha256_state st;
	const unsigned char prefix = 0x01;

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, &prefix, 1);
	crypto_hash_sha256_update(&st, left, JC_HASH_BYTES);
	crypto_hash_sha256_update(&st, right, JC_HASH_BYTES);
	crypto_hash_sha256_final(&st, out);
}

int
merkle_verify_inclusion(const unsigned char *leaf, uint64_t index, uint64_t size,
						const unsigned char (*path)[JC_HASH_BYTES], size_t n,
						const unsigned char root[JC_HASH_BYTES], const char **why)
{
	uint64_t	fn = index,
				sn;
	unsigned char r[JC_HASH_BYTES];

	if (index >= size)
	{
		*why = "the index is not below the tree size";
		return 0;
	}
	sn = size - 1;
	memset(r, 0, sizeof(r));
	if (leaf)
		memcpy(r, leaf, JC_HASH_BYTES);
	for (size_t i = 0; i < n; i++)
	{
		if (sn == 0)
		{
			*why = "the path is longer than the tree is high";
			return 0;
		}
		if ((fn & 1) || fn == sn)
		{
			if (leaf)
				node_hash(path[i], r, r);
			/* A right edge: skip the levels where this node has no sibling. */
			if (!(fn & 1))
				while (!(fn & 1) && fn != 0)
				{
					fn >>= 1;
					sn >>= 1;
				}
		}
		else if (leaf)
			node_hash(r, path[i], r);
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0)
	{
		*why = "the path is shorter than the tree is high";
		return 0;
	}
	if (leaf && sodium_memcmp(r, root, JC_HASH_BYTES) != 0)
	{
		*why = "the path does not lead to the checkpoint's root";
		return 0;
	}
	*why = NULL;
	return 1;
}
