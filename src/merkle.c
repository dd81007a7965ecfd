/*
 * merkle.c: RFC 9162 section 2.1 Merkle tree hashing, proofs, their
 * verification, and appending through a frontier.
 *
 * Trees are read through a fetch callback that returns complete, aligned
 * subtrees, so that the same code serves a stored log (proof.c) and an
 * in-memory list of leaves (verify.c).  Nothing here touches tables or
 * allocates: callers provide the room for proofs and frontiers.
 */
#include "merkle.h"
#include "sha256.h"

#include <sodium.h>

#include "port/pg_bitutils.h"

/* MTH({}) = SHA-256(""): the root of the empty tree. */
void
jam_merkle_empty_root(uint8 out[JAM_HASH_BYTES])
{
	jam_sha256(NULL, 0, out);
}

/* SHA-256(0x00 || entry) */
void
jam_merkle_leaf_hash(const uint8 *entry, size_t len, uint8 out[JAM_HASH_BYTES])
{
	const uint8 prefix = 0x00;
	JamSha256Part parts[] = {{&prefix, 1}, {entry, len}};

	jam_sha256(parts, lengthof(parts), out);
}

/* SHA-256(0x01 || left || right); out may alias left or right. */
void
jam_merkle_node_hash(const uint8 left[JAM_HASH_BYTES], const uint8 right[JAM_HASH_BYTES],
					 uint8 out[JAM_HASH_BYTES])
{
	const uint8 prefix = 0x01;
	JamSha256Part parts[] = {{&prefix, 1}, {left, JAM_HASH_BYTES}, {right, JAM_HASH_BYTES}};

	jam_sha256(parts, lengthof(parts), out);
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

/*
 * MTH(D[begin:end]) (the empty tree's hash when end <= begin), from
 * complete aligned subtrees: a range that is one is fetched, any other is
 * split as RFC 9162 splits it.  When begin is a multiple of the smallest
 * power of two >= end - begin, as for every subtree of D[0:n] that a root
 * or proof uses, the left part of each split is one complete node and
 * this costs O(log n) fetches; a range that is not so aligned still
 * hashes right, down to its leaves if need be.
 */
void
jam_merkle_subtree_hash(uint64 begin, uint64 end, JamMerkleFetch fetch, void *ctx,
						uint8 out[JAM_HASH_BYTES])
{
	uint64		n = end - begin;
	uint8		left[JAM_HASH_BYTES];
	uint64		k;

	if (n == 0 || end < begin)
	{
		jam_merkle_empty_root(out);
		return;
	}
	if ((n & (n - 1)) == 0 && begin % n == 0)
	{
		fetch(ctx, pg_rightmost_one_pos64(n), begin / n, out);
		return;
	}
	k = split_point(n);
	jam_merkle_subtree_hash(begin, begin + k, fetch, ctx, left);
	jam_merkle_subtree_hash(begin + k, end, fetch, ctx, out);
	jam_merkle_node_hash(left, out, out);
}

/* MTH(D[0:size]): the root of the tree of the first size leaves. */
void
jam_merkle_root(uint64 size, JamMerkleFetch fetch, void *ctx, uint8 out[JAM_HASH_BYTES])
{
	if (size == 0)
		jam_merkle_empty_root(out);
	else
		jam_merkle_subtree_hash(0, size, fetch, ctx, out);
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
		jam_merkle_subtree_hash(begin + k, end, fetch, ctx, proof[(*n)++]);
	}
	else
	{
		path(m - k, begin + k, end, fetch, ctx, proof, n);
		jam_merkle_subtree_hash(begin, begin + k, fetch, ctx, proof[(*n)++]);
	}
}

/*
 * PATH(index, D[0:size]), the inclusion proof of leaf index, written to
 * proof, deepest sibling first; returns its length (at most 63, so
 * JAM_MERKLE_MAX_INCLUSION is room enough).  A leaf outside the tree
 * (index >= size) has no proof: the caller checks, this returns 0.
 */
int
jam_merkle_inclusion_proof(uint64 index, uint64 size, JamMerkleFetch fetch, void *ctx,
						   uint8 (*proof)[JAM_HASH_BYTES])
{
	int			n = 0;

	if (index < size)
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
			jam_merkle_subtree_hash(begin, end, fetch, ctx, proof[(*n)++]);
		return;
	}
	k = split_point(end - begin);
	if (m <= k)
	{
		subproof(m, begin, begin + k, complete, fetch, ctx, proof, n);
		jam_merkle_subtree_hash(begin + k, end, fetch, ctx, proof[(*n)++]);
	}
	else
	{
		subproof(m - k, begin + k, end, false, fetch, ctx, proof, n);
		jam_merkle_subtree_hash(begin, begin + k, fetch, ctx, proof[(*n)++]);
	}
}

/*
 * PROOF(first, D[0:second]), the consistency proof between the trees of
 * first and second leaves, written to proof; empty when first is 0 or
 * not below second (first > second has no proof: the caller checks).
 * Returns its length (at most 64; JAM_MERKLE_MAX_CONSISTENCY is room
 * enough).
 */
int
jam_merkle_consistency_proof(uint64 first, uint64 second, JamMerkleFetch fetch, void *ctx,
							 uint8 (*proof)[JAM_HASH_BYTES])
{
	int			n = 0;

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

/* Does proof put leaf at index in the tree of size leaves whose root is root? */
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

/* The number of hashes in the frontier of a tree of size leaves. */
int
jam_merkle_frontier_length(uint64 size)
{
	return pg_popcount64(size);
}

/*
 * Appends leaf, the leaf hash of entry number size, to the tree of size
 * leaves whose frontier is frontier (room for JAM_MERKLE_MAX_HEIGHT
 * hashes), which becomes the frontier of the tree of size + 1 leaves.
 * Writes to completed (room for JAM_MERKLE_MAX_HEIGHT nodes) the subtrees
 * this leaf completes, bottom up: the leaf itself at (0, size), then one
 * node per level for as long as the new node is a right child, each the
 * hash of the frontier's last subtree and the node below.  Returns how
 * many there are (1 + the number of trailing one bits of size), or -1,
 * changing nothing, when the tree already has JAM_MERKLE_MAX_SIZE leaves.
 */
int
jam_merkle_frontier_append(uint64 size, uint8 (*frontier)[JAM_HASH_BYTES],
						   const uint8 leaf[JAM_HASH_BYTES], JamMerkleNode *completed)
{
	int			n_frontier = jam_merkle_frontier_length(size);
	int			n = 0;
	int			level = 0;

	if (size >= JAM_MERKLE_MAX_SIZE)
		return -1;
	completed[0].level = 0;
	completed[0].index = size;
	memcpy(completed[0].hash, leaf, JAM_HASH_BYTES);
	for (n = 1; (size >> level) & 1; n++)
	{
		jam_merkle_node_hash(frontier[--n_frontier], completed[n - 1].hash, completed[n].hash);
		level++;
		completed[n].level = level;
		completed[n].index = size >> level;
	}
	memcpy(frontier[n_frontier], completed[n - 1].hash, JAM_HASH_BYTES);
	return n;
}

/*
 * The root of the tree of size leaves from its frontier: RFC 9162 puts
 * complete subtrees on the left, so the root folds the frontier from the
 * right, smallest subtree first.
 */
void
jam_merkle_frontier_root(uint64 size, const uint8 (*frontier)[JAM_HASH_BYTES],
						 uint8 out[JAM_HASH_BYTES])
{
	int			n = jam_merkle_frontier_length(size);

	if (n == 0)
	{
		jam_merkle_empty_root(out);
		return;
	}
	memcpy(out, frontier[n - 1], JAM_HASH_BYTES);
	for (int i = n - 2; i >= 0; i--)
		jam_merkle_node_hash(frontier[i], out, out);
}

/*
 * Writes the frontier of the tree of size leaves, read through fetch (one
 * fetch per hash), to frontier and returns its length: what a log whose
 * stored head is lost or suspect recomputes it from.
 */
int
jam_merkle_frontier_from_fetch(uint64 size, JamMerkleFetch fetch, void *ctx,
							   uint8 (*frontier)[JAM_HASH_BYTES])
{
	uint64		begin = 0;
	int			n = 0;

	for (int level = JAM_MERKLE_MAX_HEIGHT - 1; level >= 0; level--)
	{
		if (!((size >> level) & 1))
			continue;
		fetch(ctx, level, begin >> level, frontier[n++]);
		begin += (uint64) 1 << level;
	}
	return n;
}
