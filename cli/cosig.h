/*
 * cosig.h: witnesses' cosignatures in a checkpoint (c2sp.org/tlog-cosignature,
 * cosignature/v1 with Ed25519), checked offline.
 */
#ifndef JAMCTL_COSIG_H
#define JAMCTL_COSIG_H

#include <stddef.h>

#include "note.h"

/* A witness's cosigner key: its name, its cosignature key id (type 0x04), its Ed25519 key. */
struct cosigner
{
	char		name[NOTE_NAME_MAX];
	unsigned char keyid[4];
	unsigned char pub[32];
};

/*
 * Parses a cosigner's verifier key, "name+keyid+base64(0x04 || key)", or
 * its plain signed-note key ("...base64(0x01 || key)") as the same key;
 * 0, or -1 with *why.
 */
int			cosig_parse_key(const char *vkey, struct cosigner *c, const char **why);

/*
 * Looks in a verified note (text_len: its signed text's length) for a
 * signature line by the cosigner that verifies as a cosignature/v1 of
 * the text; 0 with *timestamp (POSIX seconds), -1 when there is none.
 */
int			cosig_find(const char *note, size_t len, size_t text_len, const struct cosigner *c,
					   unsigned long long *timestamp);

/* The key's "name+keyid" for messages. */
void		cosig_label(const struct cosigner *c, char *out, size_t size);

#endif
