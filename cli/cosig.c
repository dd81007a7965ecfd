/*
 * cosig.c: witnesses' cosignatures, checked offline.
 *
 * A cosignature is a signature line of the checkpoint, "— name
 * base64(keyid || timestamp || signature)", where keyid is the first 4
 * bytes of SHA-256(name || 0x0A || 0x04 || public key), timestamp a
 * big-endian u64 of POSIX seconds, and signature an Ed25519 signature over
 * "cosignature/v1\ntime <timestamp>\n" followed by the checkpoint's text
 * (c2sp.org/tlog-cosignature).  The witness says by it that, at that time,
 * this was the largest tree it had seen of the log, consistent with every
 * one before: so requiring k of n witnesses means no fork was shown to
 * fewer than k of them.
 */
#include "cosig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "util.h"

#define SIG_PREFIX "\xe2\x80\x94 "	/* U+2014 EM DASH, then a space */
#define COSIG_BYTES (4 + 8 + 64)

/*
 * A cosigner's key: a cosignature key, or a note signer's key, whose
 * public key then signs cosignatures under the cosignature key id.
 */
int
cosig_parse_key(const char *vkey, struct cosigner *c, const char **why)
{
	struct note_key key;

	memset(c, 0, sizeof(*c));
	if (note_parse_typed_key(vkey, 1, &key, why) < 0)
		return -1;
	memcpy(c->name, key.name, sizeof(c->name));
	memcpy(c->pub, key.pub, 32);
	note_key_id(c->name, NOTE_KEY_COSIGNATURE, c->pub, c->keyid);
	return 0;
}

void
cosig_label(const struct cosigner *c, char *out, size_t size)
{
	char		hex[9];

	to_hex(c->keyid, 4, hex);
	snprintf(out, size, "%s+%s", c->name, hex);
}

int
cosig_find(const char *note, size_t len, size_t text_len, const struct cosigner *c,
		   unsigned long long *timestamp)
{
	const char *line = note + text_len + 1;	/* past the blank line */
	const char *end = note + len;
	size_t		name_len = strlen(c->name);

	while (line < end)
	{
		const char *nl = memchr(line, '\n', (size_t) (end - line));
		const char *b64 = line + strlen(SIG_PREFIX) + name_len + 1;
		unsigned char raw[COSIG_BYTES + 1];
		unsigned long long t = 0;

		if (!nl)
			break;
		if ((size_t) (nl - line) > strlen(SIG_PREFIX) + name_len + 1 &&
			memcmp(line + strlen(SIG_PREFIX), c->name, name_len) == 0 &&
			line[strlen(SIG_PREFIX) + name_len] == ' ' &&
			b64_decode(b64, (size_t) (nl - b64), raw, sizeof(raw)) == COSIG_BYTES &&
			memcmp(raw, c->keyid, 4) == 0)
		{
			char		head[64];
			unsigned char *msg;
			size_t		head_len;
			int			ok;

			for (int i = 0; i < 8; i++)
				t = (t << 8) | raw[4 + i];
			head_len = (size_t) snprintf(head, sizeof(head), "cosignature/v1\ntime %llu\n", t);
			msg = malloc(head_len + text_len);
			if (!msg)
				return -1;
			memcpy(msg, head, head_len);
			memcpy(msg + head_len, note, text_len);
			ok = t <= 0x7fffffffffffffffULL &&
				crypto_sign_verify_detached(raw + 12, msg, head_len + text_len, c->pub) == 0;
			free(msg);
			if (ok)
			{
				*timestamp = t;
				return 0;
			}
		}
		line = nl + 1;
	}
	return -1;
}
