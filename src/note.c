/*
 * note.c: C2SP signed notes with Ed25519 keys.
 *
 * A key's id is the first 4 bytes of SHA-256(name || "\n" || 0x01 || public
 * key); a verifier key is "name+<key id hex>+base64(0x01 || public key)"; a
 * signed note is its text (ending in a newline), a blank line, and
 * signature lines "— name base64(key id || signature)", each ending in a
 * newline.  This follows golang.org/x/mod/sumdb/note, whose signatures and
 * keys it accepts and produces byte for byte.
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

#define SIGNATURE_PREFIX "\xe2\x80\x94 "

/* A parsed verifier key. */
typedef struct Verifier
{
	char	   *name;
	uint8		id[4];
	uint8		public_key[32];
} Verifier;

static bool
parse_verifier(const char *text, Verifier *v)
{
	const char *plus1 = strchr(text, '+');
	const char *plus2 = plus1 ? strchr(plus1 + 1, '+') : NULL;
	uint8		typed_key[33];
	size_t		key_len;
	uint8		expected_id[4];
	unsigned int id;
	char		hex[9];

	if (plus1 == NULL || plus2 == NULL || plus1 == text || plus2 - plus1 != 9)
		return false;
	memcpy(hex, plus1 + 1, 8);
	hex[8] = '\0';
	if (strspn(hex, "0123456789abcdef") != 8 || sscanf(hex, "%8x", &id) != 1)
		return false;
	if (sodium_base642bin(typed_key, sizeof(typed_key), plus2 + 1, strlen(plus2 + 1), NULL,
						  &key_len, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
		key_len != sizeof(typed_key) || typed_key[0] != ED25519_ALG)
		return false;

	v->name = pnstrdup(text, plus1 - text);
	if (strpbrk(v->name, " +\n") != NULL)
		return false;
	v->id[0] = id >> 24;
	v->id[1] = id >> 16;
	v->id[2] = id >> 8;
	v->id[3] = id;
	memcpy(v->public_key, typed_key + 1, 32);
	key_id(v->name, v->public_key, expected_id);
	return memcmp(expected_id, v->id, 4) == 0;
}

/*
 * True when note carries a valid signature by verifier_key: at least one
 * signature line names the key and verifies, and none that names it fails.
 * Any malformed note or key is simply not verified.
 */
bool
jam_note_verify(const char *note, const char *verifier_key)
{
	Verifier	v;
	size_t		len = strlen(note);
	const char *split = NULL;
	const char *line;
	bool		verified = false;

	if (!parse_verifier(verifier_key, &v) || len == 0 || note[len - 1] != '\n')
		return false;
	for (const char *p = note; (p = strstr(p, "\n\n")) != NULL; p++)
		split = p;
	if (split == NULL)
		return false;

	for (line = split + 2; *line != '\0';)
	{
		const char *end = strchr(line, '\n');
		const char *name = line + strlen(SIGNATURE_PREFIX);
		const char *space;
		uint8		sig[256];
		size_t		sig_len;

		if (end == NULL || strncmp(line, SIGNATURE_PREFIX, strlen(SIGNATURE_PREFIX)) != 0)
			return false;
		space = memchr(name, ' ', end - name);
		if (space == NULL)
			return false;
		if (sodium_base642bin(sig, sizeof(sig), space + 1, end - space - 1, NULL, &sig_len, NULL,
							  sodium_base64_VARIANT_ORIGINAL) != 0 || sig_len < 5)
			return false;
		if ((size_t) (space - name) == strlen(v.name) && strncmp(name, v.name, space - name) == 0 &&
			memcmp(sig, v.id, 4) == 0)
		{
			if (sig_len != 4 + crypto_sign_BYTES ||
				crypto_sign_verify_detached(sig + 4, (const uint8 *) note, split + 1 - note,
											v.public_key) != 0)
				return false;
			verified = true;
		}
		line = end + 1;
	}
	return verified;
}
