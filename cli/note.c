/*
 * note.c: signed notes, checked offline.
 *
 * A checkpoint is a signed note (c2sp.org/signed-note): a text ending in a
 * newline, a blank line, then signature lines "— name base64(keyid ||
 * signature)".  A verifier key is "name+keyid+base64(0x01 || Ed25519 public
 * key)", where keyid = the first 4 bytes of SHA-256(name || 0x0A || 0x01 ||
 * public key).  The rules follow golang.org/x/mod/sumdb/note, the
 * reference implementation, except that base64 is decoded strictly: a
 * signature has exactly one spelling, so no byte of a proof file can
 * change without the check failing.
 */
#include "note.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "util.h"

#define SIG_PREFIX "\xe2\x80\x94 "	/* U+2014 EM DASH, then a space */
#define MAX_SIGNATURES 100

/* Key names: not empty, no '+', no white space (ASCII or Unicode), valid UTF-8 (checked for the whole note). */
static int
valid_name(const char *s, size_t len)
{
	if (len == 0)
		return 0;
	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c == '+' || c == ' ' || (c >= 0x09 && c <= 0x0d) || c < 0x20 || c == 0x7f)
			return 0;
		/* U+0085, U+00A0 (C2 85, C2 A0), U+1680, U+2000..200A, 2028, 2029, 202F, 205F, U+3000 */
		if (c == 0xc2 && i + 1 < len && ((unsigned char) s[i + 1] == 0x85 || (unsigned char) s[i + 1] == 0xa0))
			return 0;
		if (c == 0xe1 && i + 2 < len && (unsigned char) s[i + 1] == 0x9a && (unsigned char) s[i + 2] == 0x80)
			return 0;
		if (c == 0xe2 && i + 2 < len && (unsigned char) s[i + 1] == 0x80 &&
			((unsigned char) s[i + 2] <= 0x8a || (unsigned char) s[i + 2] == 0xa8 ||
			 (unsigned char) s[i + 2] == 0xa9 || (unsigned char) s[i + 2] == 0xaf))
			return 0;
		if (c == 0xe2 && i + 2 < len && (unsigned char) s[i + 1] == 0x81 && (unsigned char) s[i + 2] == 0x9f)
			return 0;
		if (c == 0xe3 && i + 2 < len && (unsigned char) s[i + 1] == 0x80 && (unsigned char) s[i + 2] == 0x80)
			return 0;
	}
	return 1;
}

/* Valid UTF-8 (no overlong forms, no surrogates, at most U+10FFFF) without ASCII controls but newline. */
static int
valid_text(const unsigned char *s, size_t len)
{
	size_t		i = 0;

	while (i < len)
	{
		unsigned char c = s[i];
		size_t		n;
		unsigned	cp;

		if (c < 0x80)
		{
			if ((c < 0x20 && c != '\n') || c == 0x7f)
				return 0;
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3, cp = c & 0x07;
		else
			return 0;
		for (size_t k = 1; k <= n; k++)
		{
			if (i + k >= len || (s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
			(cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
}

void
note_key_id(const char *name, unsigned char type, const unsigned char pub[32], unsigned char out[4])
{
	crypto_hash_sha256_state st;
	unsigned char h[crypto_hash_sha256_BYTES];
	const unsigned char sep_alg[2] = {'\n', type};

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const unsigned char *) name, strlen(name));
	crypto_hash_sha256_update(&st, sep_alg, 2);
	crypto_hash_sha256_update(&st, pub, 32);
	crypto_hash_sha256_final(&st, h);
	memcpy(out, h, 4);
}

int
note_parse_typed_key(const char *vkey, int accept_cosignature, struct note_key *key, const char **why)
{
	const char *p1 = strchr(vkey, '+');
	const char *p2 = p1 ? strchr(p1 + 1, '+') : NULL;
	unsigned char raw[33];
	unsigned char id[4];
	char		hex[9];

	memset(key, 0, sizeof(*key));
	if (!p1 || !p2)
	{
		*why = "a verifier key is name+keyid+key";
		return -1;
	}
	if ((size_t) (p1 - vkey) >= sizeof(key->name) || !valid_name(vkey, (size_t) (p1 - vkey)) ||
		!valid_text((const unsigned char *) vkey, (size_t) (p1 - vkey)))
	{
		*why = "the key's name is empty, too long, or has a space or '+'";
		return -1;
	}
	memcpy(key->name, vkey, (size_t) (p1 - vkey));
	if (p2 - p1 - 1 != 8)
	{
		*why = "the key id is not 8 hex digits";
		return -1;
	}
	memcpy(hex, p1 + 1, 8);
	hex[8] = '\0';
	if (from_hex(hex, key->keyid, 4) < 0)
	{
		*why = "the key id is not 8 hex digits";
		return -1;
	}
	if (b64_decode(p2 + 1, strlen(p2 + 1), raw, sizeof(raw)) != 33)
	{
		*why = "the key is not base64 of 33 bytes";
		return -1;
	}
	if (raw[0] != NOTE_KEY_ED25519 && !(accept_cosignature && raw[0] == NOTE_KEY_COSIGNATURE))
	{
		*why = accept_cosignature
			? "the key is neither an Ed25519 key nor a cosignature key (its first byte is not 0x01 or 0x04)"
			: "the key is not an Ed25519 key (its first byte is not 0x01)";
		return -1;
	}
	key->type = raw[0];
	memcpy(key->pub, raw + 1, 32);
	note_key_id(key->name, key->type, key->pub, id);
	if (memcmp(id, key->keyid, 4) != 0)
	{
		*why = "the key id does not match the key's name and key";
		return -1;
	}
	*why = NULL;
	return 0;
}

int
note_parse_key(const char *vkey, struct note_key *key, const char **why)
{
	return note_parse_typed_key(vkey, 0, key, why);
}

void
note_key_label(const struct note_key *key, char *out, size_t size)
{
	char		hex[9];

	to_hex(key->keyid, 4, hex);
	snprintf(out, size, "%s+%s", key->name, hex);
}

static const char *
find_last(const char *s, size_t len, const char *needle)
{
	size_t		n = strlen(needle);

	for (size_t i = len; i >= n; i--)
		if (memcmp(s + i - n, needle, n) == 0)
			return s + i - n;
	return NULL;
}

enum note_result
note_verify(const char *note, size_t len, const struct note_key *key,
			size_t *text_len, char *why, size_t why_size)
{
	const char *split = NULL;
	const char *sigs,
			   *end = note + len;
	int			nsig = 0,
				verified = 0;
	char		label[NOTE_NAME_MAX + 16];

	note_key_label(key, label, sizeof(label));
	if (!valid_text((const unsigned char *) note, len))
	{
		snprintf(why, why_size, "the checkpoint is not UTF-8 text without control characters");
		return NOTE_MALFORMED;
	}
	split = find_last(note, len, "\n\n");
	if (!split)
	{
		snprintf(why, why_size, "the checkpoint has no blank line before its signatures");
		return NOTE_MALFORMED;
	}
	*text_len = (size_t) (split - note) + 1;
	sigs = split + 2;
	if (sigs == end || end[-1] != '\n')
	{
		snprintf(why, why_size, "the checkpoint's signatures do not end in a newline");
		return NOTE_MALFORMED;
	}
	while (sigs < end)
	{
		const char *nl = memchr(sigs, '\n', (size_t) (end - sigs));
		const char *name = sigs + strlen(SIG_PREFIX);
		const char *space;
		unsigned char raw[1024];
		long		n;

		if (++nsig > MAX_SIGNATURES)
		{
			snprintf(why, why_size, "the checkpoint has more than %d signatures", MAX_SIGNATURES);
			return NOTE_MALFORMED;
		}
		if ((size_t) (nl - sigs) < strlen(SIG_PREFIX) || memcmp(sigs, SIG_PREFIX, strlen(SIG_PREFIX)) != 0)
		{
			snprintf(why, why_size, "signature line %d does not start with \"\xe2\x80\x94 \"", nsig);
			return NOTE_MALFORMED;
		}
		space = memchr(name, ' ', (size_t) (nl - name));
		if (!space || !valid_name(name, (size_t) (space - name)) ||
			(n = b64_decode(space + 1, (size_t) (nl - space - 1), raw, sizeof(raw))) < 5)
		{
			snprintf(why, why_size, "signature line %d is not \"\xe2\x80\x94 name base64\"", nsig);
			return NOTE_MALFORMED;
		}
		if ((size_t) (space - name) == strlen(key->name) && memcmp(name, key->name, strlen(key->name)) == 0 &&
			memcmp(raw, key->keyid, 4) == 0)
		{
			if (n != 4 + crypto_sign_BYTES ||
				crypto_sign_verify_detached(raw + 4, (const unsigned char *) note, *text_len, key->pub) != 0)
			{
				snprintf(why, why_size, "the signature by %s does not verify the checkpoint", label);
				return NOTE_BAD_SIGNATURE;
			}
			verified++;
		}
		sigs = nl + 1;
	}
	if (verified == 0)
	{
		snprintf(why, why_size, "the checkpoint has no signature by %s", label);
		return NOTE_BAD_SIGNATURE;
	}
	return NOTE_OK;
}
