/*
 * pkgid.c: jam's content addresses, computed on this side of the wire.
 *
 * jamctl checks what the server says against what it computes itself: the
 * id of a package it submits, the hash of a preimage it uploads or
 * downloads.  The encoding is the one README documents, so that any client
 * can reproduce it; its test vectors are checked by test/t/080_jamctl.pl.
 */
#include "pkgid.h"

#include <string.h>

#include <sodium.h>

static void
put_u32(crypto_generichash_state *st, uint32_t v)
{
	unsigned char b[4] = {v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >> 24) & 0xff};

	crypto_generichash_update(st, b, sizeof(b));
}

static void
put_u64(crypto_generichash_state *st, uint64_t v)
{
	unsigned char b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char) (v >> (8 * i));
	crypto_generichash_update(st, b, sizeof(b));
}

void
pkgid_compute(const char *service_id, uint32_t contract_version, uint32_t weight_hint,
			  const unsigned char *payload, size_t payload_len,
			  const unsigned char (*preimages)[JC_HASH_BYTES], size_t n_preimages,
			  unsigned char out[JC_HASH_BYTES])
{
	static const char domain[] = "jam/package/v1";
	crypto_generichash_state st;
	size_t		sid_len = strlen(service_id);

	crypto_generichash_init(&st, NULL, 0, JC_HASH_BYTES);
	crypto_generichash_update(&st, (const unsigned char *) domain, sizeof(domain) - 1);
	put_u32(&st, (uint32_t) sid_len);
	crypto_generichash_update(&st, (const unsigned char *) service_id, sid_len);
	put_u32(&st, contract_version);
	put_u32(&st, weight_hint);
	put_u64(&st, payload_len);
	crypto_generichash_update(&st, payload, payload_len);
	put_u32(&st, (uint32_t) n_preimages);
	for (size_t i = 0; i < n_preimages; i++)
		crypto_generichash_update(&st, preimages[i], JC_HASH_BYTES);
	crypto_generichash_final(&st, out, JC_HASH_BYTES);
}

void
blake2b_256(const unsigned char *data, size_t len, unsigned char out[JC_HASH_BYTES])
{
	crypto_generichash(out, JC_HASH_BYTES, data, len, NULL, 0);
}
