/*
 * merkle.h: RFC 9162 section 2.1 Merkle trees over a fetch callback.
 */
#ifndef JAM_MERKLE_H
#define JAM_MERKLE_H

#include "jam.h"

/*
 * Writes the hash of the complete, aligned subtree at (level, index): the
 * one covering leaves [index << level, (index + 1) << level).  Level 0 is
 * a leaf hash.
 */
typedef void (*JamMerkleFetch) (void *ctx, int level, uint64 index, uint8 out[JAM_HASH_BYTES]);

extern void jam_merkle_empty_root(uint8 out[JAM_HASH_BYTES]);
extern void jam_merkle_leaf_hash(const uint8 *entry, size_t len, uint8 out[JAM_HASH_BYTES]);
extern void jam_merkle_node_hash(const uint8 left[JAM_HASH_BYTES], const uint8 right[JAM_HASH_BYTES],
								 uint8 out[JAM_HASH_BYTES]);
extern void jam_merkle_root(uint64 size, JamMerkleFetch fetch, void *ctx, uint8 out[JAM_HASH_BYTES]);
extern int	jam_merkle_inclusion_proof(uint64 index, uint64 size, JamMerkleFetch fetch, void *ctx,
									   uint8 (*proof)[JAM_HASH_BYTES]);
extern int	jam_merkle_consistency_proof(uint64 first, uint64 second, JamMerkleFetch fetch, void *ctx,
										 uint8 (*proof)[JAM_HASH_BYTES]);

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

#endif							/* JAM_MERKLE_H */
