/*
 * note.c: C2SP signed notes with Ed25519 keys.
 *
 * A key's id is the first 4 bytes of SHA-256(name || "\n" || 0x01 || public
 * key); a signature line is "— name base64(key id || signature)".
 */
#include "note.h"

#include <sodium.h>

#include "lib/stringinfo.h"

#define ED25519_ALG 0x01

static void
key_id(const char *name, const uint8 public_key[32], uint8 out[4])
{
	crypto_hash_sha256_state st;
	uint8		digest[crypto_hash_sha256_BYTES];
	const uint8 alg = ED25519_ALG;

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const uint8 *) name, strlen(name));
	crypto_hash_sha256_update(&st, (const uint8 *) "\n", 1);
	crypto_hash_sha256_update(&st, &alg, 1);
	crypto_hash_sha256_update(&st, public_key, 32);
	crypto_hash_sha256_final(&st, digest);
	memcpy(out, digest, 4);
}

static char *
base64(const uint8 *bytes, size_t len)
{
	size_t		out_len = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
	char	   *out = palloc(out_len);

	sodium_bin2base64(out, out_len, bytes, len, sodium_base64_VARIANT_ORIGINAL);
	return out;
}

/* "name+<key id hex>+base64(0x01 || public key)" */
char *
jam_note_verifier_key(const char *name, const uint8 public_key[32])
{
	uint8		id[4];
	uint8		typed_key[33];

	key_id(name, public_key, id);
	typed_key[0] = ED25519_ALG;
	memcpy(typed_key + 1, public_key, 32);
	return psprintf("%s+%02x%02x%02x%02x+%s", name, id[0], id[1], id[2], id[3],
					base64(typed_key, sizeof(typed_key)));
}

/* Signs text (which ends in a newline) and returns the whole signed note. */
char *
jam_note_sign(const char *text, const char *name, const uint8 seed[32])
{
	uint8		public_key[crypto_sign_PUBLICKEYBYTES];
	uint8		secret[crypto_sign_SECRETKEYBYTES];
	uint8		sig[4 + crypto_sign_BYTES];
	StringInfoData note;

	crypto_sign_seed_keypair(public_key, secret, seed);
	key_id(name, public_key, sig);
	crypto_sign_detached(sig + 4, NULL, (const uint8 *) text, strlen(text), secret);
	sodium_memzero(secret, sizeof(secret));

	initStringInfo(&note);
	appendStringInfo(&note, "%s\n\xe2\x80\x94 %s %s\n", text, name, base64(sig, sizeof(sig)));
	return note.data;
}
