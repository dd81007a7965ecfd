/*
 * note.h: C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys, and
 * the body of a C2SP tlog-checkpoint.
 */
#ifndef JAM_NOTE_H
#define JAM_NOTE_H

#include "jam.h"

#define JAM_NOTE_SEED_BYTES 32
#define JAM_NOTE_PUBLIC_KEY_BYTES 32
/* More signature lines than this make a note malformed (as in Go). */
#define JAM_NOTE_MAX_SIGNATURES 100

extern bool jam_note_valid_name(const char *name, size_t len);
extern bool jam_note_valid_text(const char *text, size_t len);
extern uint32 jam_note_key_id(const char *name, const uint8 public_key[JAM_NOTE_PUBLIC_KEY_BYTES]);

extern char *jam_note_verifier_key(const char *name, const uint8 public_key[JAM_NOTE_PUBLIC_KEY_BYTES]);
extern char *jam_note_sign(const char *text, const char *name, const uint8 seed[JAM_NOTE_SEED_BYTES]);
extern bool jam_note_verify(const char *note, const char *verifier_key);
extern bool jam_note_parse_verifier_key(const char *verifier_key, char **name,
										uint8 public_key[JAM_NOTE_PUBLIC_KEY_BYTES]);

extern char *jam_note_checkpoint_body(const char *origin, uint64 size, const uint8 root[JAM_HASH_BYTES]);

#endif							/* JAM_NOTE_H */
