/*
 * merkle.h: RFC 9162 section 2.1 Merkle trees (the construction of RFC
 * 6962), independent of where the tree is stored.
 *
 * A tree is read through a fetch callback that returns the hash of a
 * complete, aligned subtree; a log that keeps every complete subtree's
 * hash (the frontier helpers below say which ones each append completes)
 * can then compute any root or proof with O(log n) fetches, O(log^2 n) at
 * worst, never O(n).  Hashes are raw 32-byte SHA-256 digests; a proof is
 * an array of them in the RFC's order.
 */
#ifndef JAM_MERKLE_H
#define JAM_MERKLE_H

#include "jam.h"

/* Levels of a tree of at most JAM_MERKLE_MAX_SIZE leaves: 0 (leaves) to 63. */
#define JAM_MERKLE_MAX_HEIGHT 64
/* The largest tree: sizes and positions travel as SQL bigint. */
#define JAM_MERKLE_MAX_SIZE ((uint64) PG_INT64_MAX)
/* Room a caller provides for an inclusion proof (at most 63 hashes). */
#define JAM_MERKLE_MAX_INCLUSION JAM_MERKLE_MAX_HEIGHT
/* Room a caller provides for a consistency proof (at most 64 hashes). */
#define JAM_MERKLE_MAX_CONSISTENCY (2 * JAM_MERKLE_MAX_HEIGHT)

/*
 * Writes to out the hash of the complete, aligned subtree at (level,
 * index): the one covering leaves [index << level, (index + 1) << level).
 * Level 0 is a leaf hash.  The functions below only ask for nodes that are
 * complete in the tree they work on, ((index + 1) << level) <= size, and
 * may ask for the same node more than once.  A fetch that cannot answer
 * raises an error (ereport); it must not return garbage.
 */
typedef void (*JamMerkleFetch) (void *ctx, int level, uint64 index, uint8 out[JAM_HASH_BYTES]);

/* A complete subtree, addressed as JamMerkleFetch addresses it. */
typedef struct JamMerkleNode
{
	int			level;
	uint64		index;
	uint8		hash[JAM_HASH_BYTES];
} JamMerkleNode;

/* Hashing (RFC 9162 section 2.1.1). */
extern void jam_merkle_empty_root(uint8 out[JAM_HASH_BYTES]);
extern void jam_merkle_leaf_hash(const uint8 *entry, size_t len, uint8 out[JAM_HASH_BYTES]);
extern void jam_merkle_node_hash(const uint8 left[JAM_HASH_BYTES], const uint8 right[JAM_HASH_BYTES],
								 uint8 out[JAM_HASH_BYTES]);

/* Roots and proofs over a fetch callback (sections 2.1.1, 2.1.3.1, 2.1.4.1). */
extern void jam_merkle_subtree_hash(uint64 begin, uint64 end, JamMerkleFetch fetch, void *ctx,
									uint8 out[JAM_HASH_BYTES]);
extern void jam_merkle_root(uint64 size, JamMerkleFetch fetch, void *ctx, uint8 out[JAM_HASH_BYTES]);
extern int	jam_merkle_inclusion_proof(uint64 index, uint64 size, JamMerkleFetch fetch, void *ctx,
									   uint8 (*proof)[JAM_HASH_BYTES]);
extern int	jam_merkle_consistency_proof(uint64 first, uint64 second, JamMerkleFetch fetch, void *ctx,
										 uint8 (*proof)[JAM_HASH_BYTES]);

/* Verification (sections 2.1.3.2 and 2.1.4.2). */
extern bool jam_merkle_root_from_inclusion(const uint8 leaf[JAM_HASH_BYTES], uint64 index,
										   uint64 size, const uint8 (*proof)[JAM_HASH_BYTES], int n,
										   uint8 out[JAM_HASH_BYTES]);
extern bool jam_merkle_verify_inclusion(const uint8 leaf[JAM_HASH_BYTES], uint64 index, uint64 size,
										const uint8 (*proof)[JAM_HASH_BYTES], int n,
										const uint8 root[JAM_HASH_BYTES]);
extern bool jam_merkle_verify_consistency(uint64 first, uint64 second,
										  const uint8 (*proof)[JAM_HASH_BYTES], int n,
										  const uint8 first_root[JAM_HASH_BYTES],
										  const uint8 second_root[JAM_HASH_BYTES]);

/*
 * Appending.  The frontier of a tree of size leaves is the hashes of the
 * complete subtrees along its right edge, largest (leftmost) first: one
 * per bit set in size, so pg_popcount64(size) of them, at most 63.
 */
extern int	jam_merkle_frontier_length(uint64 size);
extern int	jam_merkle_frontier_append(uint64 size, uint8 (*frontier)[JAM_HASH_BYTES],
									   const uint8 leaf[JAM_HASH_BYTES], JamMerkleNode *completed);
extern void jam_merkle_frontier_root(uint64 size, const uint8 (*frontier)[JAM_HASH_BYTES],
									 uint8 out[JAM_HASH_BYTES]);
extern int	jam_merkle_frontier_from_fetch(uint64 size, JamMerkleFetch fetch, void *ctx,
										   uint8 (*frontier)[JAM_HASH_BYTES]);

#endif							/* JAM_MERKLE_H */
