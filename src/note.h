/*
 * note.h: C2SP signed notes with Ed25519 keys.
 */
#ifndef JAM_NOTE_H
#define JAM_NOTE_H

#include "jam.h"

extern char *jam_note_verifier_key(const char *name, const uint8 public_key[32]);
extern char *jam_note_sign(const char *text, const char *name, const uint8 seed[32]);

extern bool jam_note_verify(const char *note, const char *verifier_key);

#endif							/* JAM_NOTE_H */
