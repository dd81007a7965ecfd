/*
 * merkle.c: RFC 9162 section 2.1 Merkle tree hashing and proofs.
 *
 * Trees are read through a fetch callback that returns complete, aligned
 * subtrees, so that the same code serves a stored log (proof.c) and an
 * in-memory list of leaves.
 */
#include "merkle.h"

#include <sodium.h>

#include "port/pg_bitutils.h"

void
jam_merkle_empty_root(uint8 out[JAM_HASH_BYTES])
{
	crypto_hash_sha256(out, NULL, 0);
}

/* SHA-256(0x00 || entry) */
void
jam_merkle_leaf_hash(const uint8 *entry, size_t len, uint8 out[JAM_HASH_BYTES])
{
	crypto_hash_sha256_state st;
	const uint8 prefix = 0x00;

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, &prefix, 1);
	crypto_hash_sha256_update(&st, entry, len);
	crypto_hash_sha256_final(&st, out);
}

/* SHA-256(0x01 || left || right); out may alias left or right. */
void
jam_merkle_node_hash(const uint8 left[JAM_HASH_BYTES], const uint8 right[JAM_HASH_BYTES],
					 uint8 out[JAM_HASH_BYTES])
{
	crypto_hash_sha256_state st;
	const uint8 prefix = 0x01;

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, &prefix, 1);
	crypto_hash_sha256_update(&st, left, JAM_HASH_BYTES);
	crypto_hash_sha256_update(&st, right, JAM_HASH_BYTES);
	crypto_hash_sha256_final(&st, out);
}

/* The largest power of two smaller than n (n > 1): RFC 9162's split point. */
static uint64
split_point(uint64 n)
{
	uint64		k = 1;

	while (k << 1 < n)
		k <<= 1;
	return k;
}

/* MTH(D[begin:end]), end > begin, from complete aligned subtrees. */
static void
subtree_hash(uint64 begin, uint64 end, JamMerkleFetch fetch, void *ctx, uint8 out[JAM_HASH_BYTES])
{
	uint64		n = end - begin;
	uint8		left[JAM_HASH_BYTES];
	uint64		k;

	if ((n & (n - 1)) == 0 && begin % n == 0)
	{
		fetch(ctx, pg_rightmost_one_pos64(n), begin / n, out);
		return;
	}
	k = split_point(n);
	subtree_hash(begin, begin + k, fetch, ctx, left);
	subtree_hash(begin + k, end, fetch, ctx, out);
	jam_merkle_node_hash(left, out, out);
}

void
jam_merkle_root(uint64 size, JamMerkleFetch fetch, void *ctx, uint8 out[JAM_HASH_BYTES])
{
	if (size == 0)
		jam_merkle_empty_root(out);
	else
		subtree_hash(0, size, fetch, ctx, out);
}

/* PATH(m, D[begin:end]) appended to proof[*n]. */
static void
path(uint64 m, uint64 begin, uint64 end, JamMerkleFetch fetch, void *ctx,
	 uint8 (*proof)[JAM_HASH_BYTES], int *n)
{
	uint64		k;

	if (end - begin <= 1)
		return;
	k = split_point(end - begin);
	if (m < k)
	{
		path(m, begin, begin + k, fetch, ctx, proof, n);
		subtree_hash(begin + k, end, fetch, ctx, proof[(*n)++]);
	}
	else
	{
		path(m - k, begin + k, end, fetch, ctx, proof, n);
		subtree_hash(begin, begin + k, fetch, ctx, proof[(*n)++]);
	}
}

/* The inclusion proof of leaf index (< size); returns its length (at most 64). */
int
jam_merkle_inclusion_proof(uint64 index, uint64 size, JamMerkleFetch fetch, void *ctx,
						   uint8 (*proof)[JAM_HASH_BYTES])
{
	int			n = 0;

	Assert(index < size);
	path(index, 0, size, fetch, ctx, proof, &n);
	return n;
}

/* SUBPROOF(m, D[begin:end], complete) appended to proof[*n]. */
static void
subproof(uint64 m, uint64 begin, uint64 end, bool complete, JamMerkleFetch fetch, void *ctx,
		 uint8 (*proof)[JAM_HASH_BYTES], int *n)
{
	uint64		k;

	if (m == end - begin)
	{
		if (!complete)
			subtree_hash(begin, end, fetch, ctx, proof[(*n)++]);
		return;
	}
	k = split_point(end - begin);
	if (m <= k)
	{
		subproof(m, begin, begin + k, complete, fetch, ctx, proof, n);
		subtree_hash(begin + k, end, fetch, ctx, proof[(*n)++]);
	}
	else
	{
		subproof(m - k, begin + k, end, false, fetch, ctx, proof, n);
		subtree_hash(begin, begin + k, fetch, ctx, proof[(*n)++]);
	}
}

/*
 * The consistency proof between the trees of first and second leaves
 * (first <= second); empty when first is 0 or equals second.  Returns its
 * length (at most 128).
 */
int
jam_merkle_consistency_proof(uint64 first, uint64 second, JamMerkleFetch fetch, void *ctx,
							 uint8 (*proof)[JAM_HASH_BYTES])
{
	int			n = 0;

	Assert(first <= second);
	if (first > 0 && first < second)
		subproof(first, 0, second, true, fetch, ctx, proof, &n);
	return n;
}

/*
 * The root that leaf, at index in a tree of size leaves, and its inclusion
 * proof imply (RFC 9162 section 2.1.3.2); false when the proof cannot be
 * one for that position (index >= size, or a proof too long or too short).
 */
bool
jam_merkle_root_from_inclusion(const uint8 leaf[JAM_HASH_BYTES], uint64 index, uint64 size,
							   const uint8 (*proof)[JAM_HASH_BYTES], int n,
							   uint8 out[JAM_HASH_BYTES])
{
	uint64		fn = index;
	uint64		sn;

	if (index >= size)
		return false;
	sn = size - 1;
	memcpy(out, leaf, JAM_HASH_BYTES);
	for (int i = 0; i < n; i++)
	{
		if (sn == 0)
			return false;
		if ((fn & 1) || fn == sn)
		{
			jam_merkle_node_hash(proof[i], out, out);
			while (!(fn & 1) && fn != 0)
			{
				fn >>= 1;
				sn >>= 1;
			}
		}
		else
			jam_merkle_node_hash(out, proof[i], out);
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0;
}

bool
jam_merkle_verify_inclusion(const uint8 leaf[JAM_HASH_BYTES], uint64 index, uint64 size,
							const uint8 (*proof)[JAM_HASH_BYTES], int n,
							const uint8 root[JAM_HASH_BYTES])
{
	uint8		computed[JAM_HASH_BYTES];

	return jam_merkle_root_from_inclusion(leaf, index, size, proof, n, computed) &&
		sodium_memcmp(computed, root, JAM_HASH_BYTES) == 0;
}

/*
 * Verifies that the tree of second leaves with root second_root extends
 * the tree of first leaves with root first_root (RFC 9162 section
 * 2.1.4.2).  As in transparency-dev/merkle, equal sizes need an empty
 * proof and equal roots, and nothing is consistent with the empty tree: a
 * proof from size 0 proves nothing.
 */
bool
jam_merkle_verify_consistency(uint64 first, uint64 second,
							  const uint8 (*proof)[JAM_HASH_BYTES], int n,
							  const uint8 first_root[JAM_HASH_BYTES],
							  const uint8 second_root[JAM_HASH_BYTES])
{
	uint64		fn;
	uint64		sn;
	uint8		fr[JAM_HASH_BYTES];
	uint8		sr[JAM_HASH_BYTES];
	int			start = 0;

	if (first == 0 || first > second)
		return false;
	if (first == second)
		return n == 0 && sodium_memcmp(first_root, second_root, JAM_HASH_BYTES) == 0;
	if (n == 0)
		return false;

	/* A first tree of 2^k leaves is a complete subtree: the proof leaves out its root. */
	if ((first & (first - 1)) == 0)
	{
		memcpy(fr, first_root, JAM_HASH_BYTES);
		start = 0;
	}
	else
	{
		memcpy(fr, proof[0], JAM_HASH_BYTES);
		start = 1;
	}
	memcpy(sr, fr, JAM_HASH_BYTES);

	fn = first - 1;
	sn = second - 1;
	while (fn & 1)
	{
		fn >>= 1;
		sn >>= 1;
	}
	for (int i = start; i < n; i++)
	{
		if (sn == 0)
			return false;
		if ((fn & 1) || fn == sn)
		{
			jam_merkle_node_hash(proof[i], fr, fr);
			jam_merkle_node_hash(proof[i], sr, sr);
			while (!(fn & 1) && fn != 0)
			{
				fn >>= 1;
				sn >>= 1;
			}
		}
		else
			jam_merkle_node_hash(sr, proof[i], sr);
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 &&
		sodium_memcmp(fr, first_root, JAM_HASH_BYTES) == 0 &&
		sodium_memcmp(sr, second_root, JAM_HASH_BYTES) == 0;
}
