/*
 * encoding.c: the deterministic encoding of a work package and its hash.
 *
 * A package's id is BLAKE2b-256 over this byte string (all integers
 * little-endian, as in JAM's codec):
 *
 *   "jam/package/v1"                 14 ASCII bytes, a domain tag
 *   u32 len(service_id) || service_id bytes
 *   u32 contract_version
 *   u32 weight_hint
 *   u64 len(payload)    || payload bytes
 *   u32 n               || n referenced preimage hashes, 32 raw bytes each, in order
 *
 * README.md gives worked examples a client can reproduce outside Postgres.
 * The encoding is streamed into the hash, so a large payload is not copied.
 */
#include "jam.h"

#include <sodium.h>

#define JAM_PACKAGE_TAG "jam/package/v1"

static void
update_u32(crypto_generichash_state *st, uint32 v)
{
	uint8		b[4];

	for (int i = 0; i < 4; i++)
		b[i] = (uint8) (v >> (8 * i));
	crypto_generichash_update(st, b, sizeof(b));
}

static void
update_u64(crypto_generichash_state *st, uint64 v)
{
	uint8		b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8) (v >> (8 * i));
	crypto_generichash_update(st, b, sizeof(b));
}

void
jam_package_hash(const JamPackageFields *pkg, uint8 out[JAM_HASH_BYTES])
{
	crypto_generichash_state st;
	size_t		service_len = strlen(pkg->service_id);

	crypto_generichash_init(&st, NULL, 0, JAM_HASH_BYTES);
	crypto_generichash_update(&st, (const uint8 *) JAM_PACKAGE_TAG, strlen(JAM_PACKAGE_TAG));
	update_u32(&st, (uint32) service_len);
	crypto_generichash_update(&st, (const uint8 *) pkg->service_id, service_len);
	update_u32(&st, (uint32) pkg->contract_version);
	update_u32(&st, (uint32) pkg->weight_hint);
	update_u64(&st, (uint64) pkg->payload_len);
	crypto_generichash_update(&st, (const uint8 *) pkg->payload, pkg->payload_len);
	update_u32(&st, (uint32) pkg->n_preimages);
	crypto_generichash_update(&st, pkg->preimage_hashes,
							  (size_t) pkg->n_preimages * JAM_HASH_BYTES);
	crypto_generichash_final(&st, out, JAM_HASH_BYTES);
}
