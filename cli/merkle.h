/*
 * merkle.h: RFC 9162 Merkle tree hashes and inclusion proofs.
 */
#ifndef JAMCTL_MERKLE_H
#define JAMCTL_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* SHA-256(0x00 || entry): the leaf hash of a log entry. */
void		merkle_leaf_hash(const unsigned char *entry, size_t len, unsigned char out[JC_HASH_BYTES]);

/*
 * Whether path, n hashes from the leaf's sibling up, leads from the leaf
 * hash at index in a tree of size leaves to root (RFC 9162 section
 * 2.1.3.2).  With leaf NULL only the path's shape is checked: that it has
 * exactly the length index and size call for.  *why says what failed.
 */
int			merkle_verify_inclusion(const unsigned char *leaf, uint64_t index, uint64_t size,
									const unsigned char (*path)[JC_HASH_BYTES], size_t n,
									const unsigned char root[JC_HASH_BYTES], const char **why);

#endif
