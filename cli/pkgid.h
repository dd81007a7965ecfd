/*
 * pkgid.h: a package's id, computed locally (README "The package id").
 */
#ifndef JAMCTL_PKGID_H
#define JAMCTL_PKGID_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

/*
 * BLAKE2b-256 of "jam/package/v1" || u32 len(service_id) || service_id ||
 * u32 contract_version || u32 weight_hint || u64 len(payload) || payload ||
 * u32 n || n preimage hashes (32 raw bytes each, in the order given), all
 * integers little-endian.
 */
void		pkgid_compute(const char *service_id, uint32_t contract_version, uint32_t weight_hint,
						  const unsigned char *payload, size_t payload_len,
						  const unsigned char (*preimages)[JC_HASH_BYTES], size_t n_preimages,
						  unsigned char out[JC_HASH_BYTES]);

/* BLAKE2b-256 of bytes: a preimage's content address. */
void		blake2b_256(const unsigned char *data, size_t len, unsigned char out[JC_HASH_BYTES]);

#endif
