/*
 * note.c: C2SP signed notes with Ed25519 keys, and checkpoint bodies.
 *
 * A key's id is the first 4 bytes of SHA-256(name || "\n" || 0x01 || public
 * key), read as a big-endian uint32; a verifier key is "name+<key id
 * hex>+base64(0x01 || public key)"; a signed note is its text (ending in a
 * newline), a blank line, and one or more signature lines "— name
 * base64(key id || signature)", each ending in a newline, where the
 * signature is Ed25519 over the text.  This follows c2sp.org/signed-note
 * and golang.org/x/mod/sumdb/note, whose keys and signatures it accepts and
 * produces byte for byte.  Base64 is RFC 4648's standard alphabet with
 * padding (libsodium's ORIGINAL variant).
 */
#include "note.h"
#include "errors.h"
#include "sha256.h"

#include <sodium.h>

#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"

#define ED25519_ALG 0x01
#define SIGNATURE_PREFIX "\xe2\x80\x94 "	/* U+2014 EM DASH, space */
#define SIGNATURE_PREFIX_LEN 4

/* Is c one of Unicode's White_Space characters (Go's unicode.IsSpace)? */
static bool
is_unicode_space(pg_wchar c)
{
	return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0x85 || c == 0xa0 ||
		c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
		c == 0x202f || c == 0x205f || c == 0x3000;
}

/*
 * Is name[0..len) a key name: non-empty UTF-8 with no Unicode space, no
 * "+" and (since a note may hold none) no control character?
 */
bool
jam_note_valid_name(const char *name, size_t len)
{
	const unsigned char *p = (const unsigned char *) name;
	const unsigned char *end = p + len;

	if (len == 0 || len > INT_MAX || !pg_verify_mbstr(PG_UTF8, name, (int) len, true))
		return false;
	while (p < end)
	{
		pg_wchar	c = utf8_to_unicode(p);

		if (c < 0x20 || c == 0x7f || c == '+' || is_unicode_space(c))
			return false;
		p += pg_utf_mblen(p);
	}
	return true;
}

/*
 * May text[0..len) appear in a signed note: valid UTF-8 with no ASCII
 * control character other than newline?
 */
bool
jam_note_valid_text(const char *text, size_t len)
{
	if (len > INT_MAX || !pg_verify_mbstr(PG_UTF8, text, (int) len, true))
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char) text[i] < 0x20 && text[i] != '\n')
			return false;
	return true;
}

/* The key id of an Ed25519 key: SHA-256(name || "\n" || 0x01 || key)[:4], big-endian. */
uint32
jam_note_key_id(const char *name, const uint8 public_key[JAM_NOTE_PUBLIC_KEY_BYTES])
{
	return jam_sha256_key_id(name, ED25519_ALG, public_key, JAM_NOTE_PUBLIC_KEY_BYTES);
}

static char *
base64(const uint8 *bytes, size_t len)
{
	size_t		out_len = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
	char	   *out = palloc(out_len);

	sodium_bin2base64(out, out_len, bytes, len, sodium_base64_VARIANT_ORIGINAL);
	return out;
}

/*
 * Decodes padded standard base64 b64[0..len) into a new buffer, setting
 * *out_len; NULL when it is not base64 (libsodium also refuses non-zero
 * padding bits, which Go's decoder would let through).
 */
static uint8 *
unbase64(const char *b64, size_t len, size_t *out_len)
{
	size_t		room = len / 4 * 3 + 3;
	uint8	   *out = palloc(room);

	if (sodium_base642bin(out, room, b64, len, NULL, out_len, NULL,
						  sodium_base64_VARIANT_ORIGINAL) != 0)
	{
		pfree(out);
		return NULL;
	}
	return out;
}

static void
check_name(const char *name)
{
	if (!jam_note_valid_name(name, strlen(name)))
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("key name \"%s\" is not allowed", name),
				 errdetail("A signed-note key name is non-empty UTF-8 with no spaces, no \"+\" and no control characters.")));
}

/*
 * The verifier key of an Ed25519 public key under name:
 * "name+<key id as 8 lowercase hex>+base64(0x01 || public key)".  Raises
 * invalid_argument for a name that is not a key name.
 */
char *
jam_note_verifier_key(const char *name, const uint8 public_key[JAM_NOTE_PUBLIC_KEY_BYTES])
{
	uint8		typed_key[1 + JAM_NOTE_PUBLIC_KEY_BYTES];

	check_name(name);
	typed_key[0] = ED25519_ALG;
	memcpy(typed_key + 1, public_key, JAM_NOTE_PUBLIC_KEY_BYTES);
	return psprintf("%s+%08x+%s", name, jam_note_key_id(name, public_key),
					base64(typed_key, sizeof(typed_key)));
}

/*
 * Signs text with the Ed25519 key of seed under name and returns the whole
 * signed note: text, a blank line, one signature line.  Ed25519 is
 * deterministic, so the same inputs give the same note.  Raises
 * invalid_argument when name is not a key name or text cannot be a note's
 * text (empty, not ending in a newline, invalid UTF-8 or a control
 * character other than newline).
 */
char *
jam_note_sign(const char *text, const char *name, const uint8 seed[JAM_NOTE_SEED_BYTES])
{
	size_t		len = strlen(text);
	uint8		public_key[crypto_sign_PUBLICKEYBYTES];
	uint8		secret[crypto_sign_SECRETKEYBYTES];
	uint8		sig[4 + crypto_sign_BYTES];
	uint32		id;
	StringInfoData note;

	check_name(name);
	if (len == 0 || text[len - 1] != '\n')
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("note text must end with a newline")));
	if (!jam_note_valid_text(text, len))
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("note text must be UTF-8 without control characters other than newline")));

	crypto_sign_seed_keypair(public_key, secret, seed);
	id = jam_note_key_id(name, public_key);
	sig[0] = (uint8) (id >> 24);
	sig[1] = (uint8) (id >> 16);
	sig[2] = (uint8) (id >> 8);
	sig[3] = (uint8) id;
	crypto_sign_detached(sig + 4, NULL, (const uint8 *) text, len, secret);
	sodium_memzero(secret, sizeof(secret));

	initStringInfo(&note);
	appendStringInfo(&note, "%s\n" SIGNATURE_PREFIX "%s %s\n", text, name, base64(sig, sizeof(sig)));
	return note.data;
}

/* A parsed verifier key. */
typedef struct Verifier
{
	char	   *name;
	uint32		id;
	uint8		public_key[JAM_NOTE_PUBLIC_KEY_BYTES];
} Verifier;

/*
 * Parses "name+<8 hex>+base64(0x01 || key)" as Go's note.NewVerifier
 * does (the hex in either case); false unless it is a well-formed Ed25519
 * verifier key whose id matches its name and key.
 */
static bool
parse_verifier(const char *text, Verifier *v)
{
	const char *plus1 = strchr(text, '+');
	const char *plus2 = plus1 ? strchr(plus1 + 1, '+') : NULL;
	uint8	   *typed_key;
	size_t		key_len;
	char		hex[9];

	if (plus1 == NULL || plus2 == NULL || plus2 - plus1 != 9 ||
		!jam_note_valid_name(text, plus1 - text))
		return false;
	memcpy(hex, plus1 + 1, 8);
	hex[8] = '\0';
	if (strspn(hex, "0123456789abcdefABCDEF") != 8)
		return false;
	v->id = (uint32) strtoul(hex, NULL, 16);
	typed_key = unbase64(plus2 + 1, strlen(plus2 + 1), &key_len);
	if (typed_key == NULL || key_len != 1 + JAM_NOTE_PUBLIC_KEY_BYTES || typed_key[0] != ED25519_ALG)
		return false;
	v->name = pnstrdup(text, plus1 - text);
	memcpy(v->public_key, typed_key + 1, JAM_NOTE_PUBLIC_KEY_BYTES);
	return jam_note_key_id(v->name, v->public_key) == v->id;
}

/*
 * Parses a signed-note verifier key into its name and Ed25519 public key;
 * false when it is not a well-formed Ed25519 verifier key.
 */
bool
jam_note_parse_verifier_key(const char *verifier_key, char **name,
							uint8 public_key[JAM_NOTE_PUBLIC_KEY_BYTES])
{
	Verifier	v;

	if (!parse_verifier(verifier_key, &v))
		return false;
	*name = v.name;
	memcpy(public_key, v.public_key, JAM_NOTE_PUBLIC_KEY_BYTES);
	return true;
}

/*
 * Is note signed by verifier_key?  True when at least one signature line
 * carries the key's name and id and every such line verifies: as
 * c2sp.org/signed-note says a client should, a failing signature from the
 * known key rejects the whole note (Go's note.Open rejects it too, though
 * it reads only the first line of a key).  Lines of other keys are
 * ignored, but must be well-formed.  False, never an error, for anything
 * malformed: a bad key, a note that is not valid UTF-8 or holds a control
 * character other than newline, no blank line before the signatures, a
 * signature block that is empty or does not end in a newline, a line that
 * is not "— name base64", a signature under 5 bytes, or more than
 * JAM_NOTE_MAX_SIGNATURES lines.  The signed text is everything up to and
 * including the newline before the last blank line.
 */
bool
jam_note_verify(const char *note, const char *verifier_key)
{
	Verifier	v;
	size_t		len = strlen(note);
	const char *split = NULL;
	const char *line;
	int			n_lines = 0;
	bool		verified = false;

	if (!parse_verifier(verifier_key, &v) || len == 0 || note[len - 1] != '\n' ||
		!jam_note_valid_text(note, len))
		return false;
	for (const char *p = note; (p = strstr(p, "\n\n")) != NULL; p++)
		split = p;
	if (split == NULL || split[2] == '\0')
		return false;

	for (line = split + 2; *line != '\0';)
	{
		const char *end = strchr(line, '\n');	/* found: the note ends in one */
		const char *name = line + SIGNATURE_PREFIX_LEN;
		const char *space;
		uint8	   *sig;
		size_t		sig_len;
		uint32		id;

		if (++n_lines > JAM_NOTE_MAX_SIGNATURES ||
			end - line < SIGNATURE_PREFIX_LEN ||
			memcmp(line, SIGNATURE_PREFIX, SIGNATURE_PREFIX_LEN) != 0)
			return false;
		space = memchr(name, ' ', end - name);
		if (space == NULL || space + 1 == end || !jam_note_valid_name(name, space - name))
			return false;
		sig = unbase64(space + 1, end - space - 1, &sig_len);
		if (sig == NULL || sig_len < 5)
			return false;
		id = ((uint32) sig[0] << 24) | ((uint32) sig[1] << 16) | ((uint32) sig[2] << 8) | sig[3];
		if ((size_t) (space - name) == strlen(v.name) &&
			memcmp(name, v.name, space - name) == 0 && id == v.id)
		{
			if (sig_len != 4 + crypto_sign_BYTES ||
				crypto_sign_verify_detached(sig + 4, (const uint8 *) note, split + 1 - note,
											v.public_key) != 0)
				return false;
			verified = true;
		}
		pfree(sig);
		line = end + 1;
	}
	return verified;
}

/*
 * The body of a C2SP tlog-checkpoint: "<origin>\n<size>\n<base64 root>\n",
 * the text jam_note_sign signs.  Raises invalid_argument for an origin
 * that is empty or not one line of note text.
 */
char *
jam_note_checkpoint_body(const char *origin, uint64 size, const uint8 root[JAM_HASH_BYTES])
{
	size_t		len = strlen(origin);

	if (len == 0 || strchr(origin, '\n') != NULL || !jam_note_valid_text(origin, len))
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("checkpoint origin \"%s\" is not allowed", origin),
				 errdetail("An origin is one non-empty line of UTF-8 without control characters.")));
	return psprintf("%s\n" UINT64_FORMAT "\n%s\n", origin, size, base64(root, JAM_HASH_BYTES));
}
