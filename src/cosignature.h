/*
 * cosignature.h: C2SP tlog-cosignature (c2sp.org/tlog-cosignature),
 * cosignature/v1 with Ed25519, and this node's cosigner key.
 */
#ifndef JAM_COSIGNATURE_H
#define JAM_COSIGNATURE_H

#include "jam.h"

/* A cosignature's bytes: key id (4), timestamp (8, big-endian), Ed25519 signature (64). */
#define JAM_COSIGNATURE_BYTES (4 + 8 + 64)

/* A parsed cosigner verifier key: "name+<key id>+base64(0x04 || key)". */
typedef struct JamCosigner
{
	char	   *name;
	uint32		key_id;
	uint8		public_key[32];
} JamCosigner;

extern uint32 jam_cosignature_key_id(const char *name, const uint8 public_key[32]);
extern char *jam_cosigner_verifier_key(const char *name, const uint8 public_key[32]);
extern bool jam_cosigner_parse(const char *verifier_key, JamCosigner *out);
extern char *jam_cosign(const char *body, const char *name, const uint8 seed[32], uint64 timestamp,
						uint8 raw[JAM_COSIGNATURE_BYTES]);
extern bool jam_cosignature_line_verify(const char *body, const char *line, size_t line_len,
										const JamCosigner *cosigner, uint8 raw[JAM_COSIGNATURE_BYTES]);
extern char *jam_cosignature_line(const char *name, const uint8 raw[JAM_COSIGNATURE_BYTES]);
extern uint64 jam_cosignature_timestamp(const uint8 raw[JAM_COSIGNATURE_BYTES]);
extern bool jam_node_cosigner_key(const char **name, uint8 seed[32], uint8 public_key[32]);

#endif							/* JAM_COSIGNATURE_H */
