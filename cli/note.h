/*
 * note.h: C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys.
 */
#ifndef JAMCTL_NOTE_H
#define JAMCTL_NOTE_H

#include <stddef.h>

#define NOTE_NAME_MAX 256

/* Key types: the first byte of a key's base64, and part of its key id. */
#define NOTE_KEY_ED25519 0x01		/* a note signer's */
#define NOTE_KEY_COSIGNATURE 0x04	/* a witness's (c2sp.org/tlog-cosignature) */

/* A verifier key, "name+keyid+base64(type || public key)". */
struct note_key
{
	char		name[NOTE_NAME_MAX];
	unsigned char type;			/* NOTE_KEY_ED25519 or NOTE_KEY_COSIGNATURE */
	unsigned char keyid[4];
	unsigned char pub[32];
};

/* The key id of name's key of type: SHA-256(name || 0x0A || type || key)[:4]. */
void		note_key_id(const char *name, unsigned char type, const unsigned char pub[32],
						unsigned char out[4]);

/*
 * Parses and checks a verifier key of type (with accept_cosignature, of
 * either type): its key id must be the one its name, type and key give;
 * 0, or -1 with *why.
 */
int			note_parse_typed_key(const char *vkey, int accept_cosignature, struct note_key *key,
								 const char **why);

/* A note signer's verifier key (Ed25519): note_parse_typed_key of that type only. */
int			note_parse_key(const char *vkey, struct note_key *key, const char **why);

enum note_result
{
	NOTE_OK,
	NOTE_MALFORMED,				/* not a signed note */
	NOTE_BAD_SIGNATURE			/* no signature of the key verifies it */
};

/*
 * Checks a signed note: its layout, and that a signature by key verifies
 * its text.  Signatures by other keys (witnesses' cosignatures) are
 * skipped, as c2sp.org/signed-note says.  On NOTE_OK, *text_len is the
 * length of the signed text (which ends in a newline).  why (why_size
 * bytes) says what failed.
 */
enum note_result note_verify(const char *note, size_t len, const struct note_key *key,
							 size_t *text_len, char *why, size_t why_size);

/* The key's "name+keyid" for messages. */
void		note_key_label(const struct note_key *key, char *out, size_t size);

#endif
