/*
 * cosignature.c: C2SP tlog-cosignature, cosignature/v1 with Ed25519.
 *
 * A cosignature is a signed-note signature line "— <name> base64(key id ||
 * timestamp || signature)" whose key id is SHA-256(name || "\n" || 0x04 ||
 * public key)[:4] (0x04, not the 0x01 of an ordinary note key, so that a
 * verifier never takes one for the other), whose timestamp is a big-endian
 * u64 of POSIX seconds, and whose Ed25519 signature is over
 * "cosignature/v1\ntime <timestamp>\n" followed by the checkpoint's whole
 * body.  A cosigner signs it to say: as of that time, this is the largest
 * consistent tree it has seen of the log the origin names.
 *
 * This node cosigns with a key of its own, derived from the node key
 * (BLAKE2b-256 of "jam/cosigner-key/v1" and the node key's seed): the spec
 * asks for a distinct key per cosigner, and a derived one needs no storage
 * of its own and follows the node key wherever it goes.  Its name is the
 * node's, jam.node_name.
 */
#include "cosignature.h"
#include "errors.h"
#include "note.h"
#include "sha256.h"

#include <sodium.h>

#include "utils/builtins.h"

#define COSIGNATURE_ALG 0x04
#define COSIGNER_KEY_TAG "jam/cosigner-key/v1"
#define SIGNATURE_PREFIX "\xe2\x80\x94 "	/* U+2014 EM DASH, space */
#define SIGNATURE_PREFIX_LEN 4

/* SHA-256(name || "\n" || 0x04 || public key)[:4], big-endian. */
uint32
jam_cosignature_key_id(const char *name, const uint8 public_key[32])
{
	return jam_sha256_key_id(name, COSIGNATURE_ALG, public_key, 32);
}

static char *
base64(const uint8 *bytes, size_t len)
{
	size_t		out_len = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
	char	   *out = palloc(out_len);

	sodium_bin2base64(out, out_len, bytes, len, sodium_base64_VARIANT_ORIGINAL);
	return out;
}

/* "name+<key id>+base64(0x04 || public key)": a cosigner's verifier key (a vkey). */
char *
jam_cosigner_verifier_key(const char *name, const uint8 public_key[32])
{
	uint8		typed[33];

	if (!jam_note_valid_name(name, strlen(name)))
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("key name \"%s\" is not allowed", name)));
	typed[0] = COSIGNATURE_ALG;
	memcpy(typed + 1, public_key, 32);
	return psprintf("%s+%08x+%s", name, jam_cosignature_key_id(name, public_key), base64(typed, 33));
}

/*
 * Parses a cosigner's verifier key, "name+<key id>+base64(0x04 || key)";
 * an ordinary Ed25519 note key ("...+base64(0x01 || key)") is taken too,
 * as the same public key under the cosignature key id.  False when it is
 * neither, or its key id does not match its name and key.
 */
bool
jam_cosigner_parse(const char *verifier_key, JamCosigner *out)
{
	const char *plus1 = strchr(verifier_key, '+');
	const char *plus2 = plus1 ? strchr(plus1 + 1, '+') : NULL;
	uint8		typed[64];
	size_t		len;
	char		hex[9];
	uint32		id;

	if (plus1 == NULL || plus2 == NULL || plus2 - plus1 != 9 ||
		!jam_note_valid_name(verifier_key, plus1 - verifier_key))
		return false;
	memcpy(hex, plus1 + 1, 8);
	hex[8] = '\0';
	if (strspn(hex, "0123456789abcdefABCDEF") != 8)
		return false;
	id = (uint32) strtoul(hex, NULL, 16);
	if (sodium_base642bin(typed, sizeof(typed), plus2 + 1, strlen(plus2 + 1), NULL, &len, NULL,
						  sodium_base64_VARIANT_ORIGINAL) != 0 || len != 33)
		return false;
	out->name = pnstrdup(verifier_key, plus1 - verifier_key);
	memcpy(out->public_key, typed + 1, 32);
	out->key_id = jam_cosignature_key_id(out->name, out->public_key);
	if (typed[0] == COSIGNATURE_ALG)
		return id == out->key_id;
	if (typed[0] == 0x01)
		return id == jam_note_key_id(out->name, out->public_key);
	return false;
}

/* The message a cosignature/v1 signs: header, time line, the checkpoint body. */
static char *
signed_message(const char *body, uint64 timestamp)
{
	return psprintf("cosignature/v1\ntime " UINT64_FORMAT "\n%s", timestamp, body);
}

uint64
jam_cosignature_timestamp(const uint8 raw[JAM_COSIGNATURE_BYTES])
{
	uint64		t = 0;

	for (int i = 0; i < 8; i++)
		t = (t << 8) | raw[4 + i];
	return t;
}

/* The signature line of a cosignature's bytes: "— name base64(bytes)\n". */
char *
jam_cosignature_line(const char *name, const uint8 raw[JAM_COSIGNATURE_BYTES])
{
	return psprintf(SIGNATURE_PREFIX "%s %s\n", name, base64(raw, JAM_COSIGNATURE_BYTES));
}

/*
 * Cosigns a checkpoint body (its text up to and including the newline
 * before the blank line) with the key of seed under name, at timestamp;
 * fills raw (if not NULL) and returns the signature line.
 */
char *
jam_cosign(const char *body, const char *name, const uint8 seed[32], uint64 timestamp,
		   uint8 raw[JAM_COSIGNATURE_BYTES])
{
	uint8		public_key[crypto_sign_PUBLICKEYBYTES];
	uint8		secret[crypto_sign_SECRETKEYBYTES];
	uint8		bytes[JAM_COSIGNATURE_BYTES];
	char	   *message = signed_message(body, timestamp);
	uint32		id;

	if (!jam_note_valid_name(name, strlen(name)))
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("key name \"%s\" is not allowed", name)));
	if (timestamp > (uint64) PG_INT64_MAX)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("a cosignature's timestamp must not exceed 2^63 - 1")));
	crypto_sign_seed_keypair(public_key, secret, seed);
	id = jam_cosignature_key_id(name, public_key);
	for (int i = 0; i < 4; i++)
		bytes[i] = (uint8) (id >> (24 - 8 * i));
	for (int i = 0; i < 8; i++)
		bytes[4 + i] = (uint8) (timestamp >> (56 - 8 * i));
	crypto_sign_detached(bytes + 12, NULL, (const uint8 *) message, strlen(message), secret);
	sodium_memzero(secret, sizeof(secret));
	if (raw)
		memcpy(raw, bytes, JAM_COSIGNATURE_BYTES);
	return jam_cosignature_line(name, bytes);
}

/*
 * Whether line[0..line_len) (one signature line, with or without its
 * newline) is a valid cosignature/v1 of body by cosigner; fills raw.
 * False for a line of another name or key id, or any malformed line.
 */
bool
jam_cosignature_line_verify(const char *body, const char *line, size_t line_len,
							const JamCosigner *cosigner, uint8 raw[JAM_COSIGNATURE_BYTES])
{
	size_t		name_len = strlen(cosigner->name);
	const char *p = line + SIGNATURE_PREFIX_LEN + name_len + 1;
	uint8		bytes[JAM_COSIGNATURE_BYTES + 1];
	size_t		len;
	char	   *message;
	bool		ok;

	if (line_len > 0 && line[line_len - 1] == '\n')
		line_len--;
	if (line_len < SIGNATURE_PREFIX_LEN + name_len + 2 ||
		memcmp(line, SIGNATURE_PREFIX, SIGNATURE_PREFIX_LEN) != 0 ||
		memcmp(line + SIGNATURE_PREFIX_LEN, cosigner->name, name_len) != 0 ||
		line[SIGNATURE_PREFIX_LEN + name_len] != ' ')
		return false;
	if (sodium_base642bin(bytes, sizeof(bytes), p, line + line_len - p, NULL, &len, NULL,
						  sodium_base64_VARIANT_ORIGINAL) != 0 || len != JAM_COSIGNATURE_BYTES)
		return false;
	if ((((uint32) bytes[0] << 24) | ((uint32) bytes[1] << 16) | ((uint32) bytes[2] << 8) | bytes[3]) !=
		cosigner->key_id)
		return false;
	if (jam_cosignature_timestamp(bytes) > (uint64) PG_INT64_MAX)
		return false;
	message = signed_message(body, jam_cosignature_timestamp(bytes));
	ok = crypto_sign_verify_detached(bytes + 12, (const uint8 *) message, strlen(message),
									 cosigner->public_key) == 0;
	if (ok && raw)
		memcpy(raw, bytes, JAM_COSIGNATURE_BYTES);
	return ok;
}

/*
 * This node's cosigner key: its name (jam.node_name), and the seed and
 * public key derived from the node key.  False as jam_node_key (no key
 * yet, in a read-only transaction).  Needs SPI.
 */
bool
jam_node_cosigner_key(const char **name, uint8 seed[32], uint8 public_key[32])
{
	JamNodeKey	key;
	crypto_generichash_state st;
	uint8		secret[crypto_sign_SECRETKEYBYTES];

	if (!jam_node_key(&key))
		return false;
	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, (const uint8 *) COSIGNER_KEY_TAG, strlen(COSIGNER_KEY_TAG));
	crypto_generichash_update(&st, key.seed, sizeof(key.seed));
	crypto_generichash_final(&st, seed, 32);
	sodium_memzero(key.seed, sizeof(key.seed));
	crypto_sign_seed_keypair(public_key, secret, seed);
	sodium_memzero(secret, sizeof(secret));
	*name = key.name;
	return true;
}

PG_FUNCTION_INFO_V1(jam_cosign_checkpoint);

/*
 * jam_cosign_checkpoint(checkpoint, name, seed, "timestamp") returns the
 * checkpoint with a cosignature/v1 line by the Ed25519 key of seed under
 * name appended: for cosigners that run in SQL, and for tests.  Offline.
 */
Datum
jam_cosign_checkpoint(PG_FUNCTION_ARGS)
{
	char	   *note;
	char	   *split;
	bytea	   *seed;
	int64		timestamp;

	jam_require_arg(fcinfo, 0, "checkpoint");
	jam_require_arg(fcinfo, 1, "name");
	jam_require_arg(fcinfo, 2, "seed");
	jam_require_arg(fcinfo, 3, "timestamp");
	note = text_to_cstring(PG_GETARG_TEXT_PP(0));
	seed = PG_GETARG_BYTEA_PP(2);
	timestamp = PG_GETARG_INT64(3);
	if (VARSIZE_ANY_EXHDR(seed) != 32)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("an Ed25519 seed is 32 bytes")));
	if (timestamp < 0)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("a cosignature's timestamp must not be negative")));
	split = strstr(note, "\n\n");
	if (split == NULL || !jam_note_valid_text(note, strlen(note)))
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("not a signed note: no blank line before its signatures")));
	PG_RETURN_TEXT_P(cstring_to_text(psprintf("%s%s", note,
											  jam_cosign(pnstrdup(note, split + 1 - note),
														 text_to_cstring(PG_GETARG_TEXT_PP(1)),
														 (const uint8 *) VARDATA_ANY(seed),
														 (uint64) timestamp, NULL))));
}

PG_FUNCTION_INFO_V1(jam_verify_cosignature);

/*
 * jam_verify_cosignature(checkpoint, verifier_key) returns the timestamp
 * of the checkpoint's valid cosignature/v1 by that cosigner, or NULL when
 * it carries none.  Offline.
 */
Datum
jam_verify_cosignature(PG_FUNCTION_ARGS)
{
	char	   *note;
	char	   *split = NULL;
	char	   *body;
	JamCosigner cosigner;
	uint8		raw[JAM_COSIGNATURE_BYTES];

	jam_require_arg(fcinfo, 0, "checkpoint");
	jam_require_arg(fcinfo, 1, "verifier_key");
	note = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (!jam_cosigner_parse(text_to_cstring(PG_GETARG_TEXT_PP(1)), &cosigner))
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("not an Ed25519 cosigner verifier key")));
	for (char *p = note; (p = strstr(p, "\n\n")) != NULL; p++)
		split = p;
	if (split == NULL || !jam_note_valid_text(note, strlen(note)))
		PG_RETURN_NULL();
	body = pnstrdup(note, split + 1 - note);
	for (char *line = split + 2; *line;)
	{
		char	   *end = strchr(line, '\n');
		size_t		len = end ? (size_t) (end - line) : strlen(line);

		if (jam_cosignature_line_verify(body, line, len, &cosigner, raw))
			PG_RETURN_INT64((int64) jam_cosignature_timestamp(raw));
		line += len + (end ? 1 : 0);
	}
	PG_RETURN_NULL();
}

PG_FUNCTION_INFO_V1(jam_cosigner_key);

/*
 * jam_cosigner_key() returns this node's cosigner verifier key (name
 * jam.node_name, type 0x04), which logs register to check its cosignatures.
 */
Datum
jam_cosigner_key(PG_FUNCTION_ARGS)
{
	const char *name;
	uint8		seed[32];
	uint8		public_key[32];
	char	   *vkey;

	jam_check_enabled();
	SPI_connect();
	if (!jam_node_cosigner_key(&name, seed, public_key))
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("this node has no signing key yet"),
				 errhint("Call jam_status once on the primary, outside a read-only transaction.")));
	sodium_memzero(seed, sizeof(seed));
	SPI_finish();
	/* After SPI_finish, in the caller's memory: name is jam.node_name's. */
	vkey = jam_cosigner_verifier_key(name, public_key);
	PG_RETURN_TEXT_P(cstring_to_text(vkey));
}
