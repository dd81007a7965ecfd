/*
 * note.h: C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys.
 */
#ifndef JAMCTL_NOTE_H
#define JAMCTL_NOTE_H

#include <stddef.h>

#define NOTE_NAME_MAX 256

/* A verifier key, "name+keyid+base64(0x01 || public key)". */
struct note_key
{
	char		name[NOTE_NAME_MAX];
	unsigned char keyid[4];
	unsigned char pub[32];
};

/* Parses and checks a verifier key (its key id must be the one its name and key give); 0, or -1 with *why. */
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
