/*
 * tlogproof.h: c2sp.org/tlog-proof@v1 texts and the checkpoints in them.
 */
#ifndef JAMCTL_TLOGPROOF_H
#define JAMCTL_TLOGPROOF_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* A path has at most 63 hashes: trees hold fewer than 2^63 leaves. */
#define TLOG_MAX_PATH 63
#define TLOG_ORIGIN_MAX 1024
#define TLOG_PROOF_HEADER "c2sp.org/tlog-proof@v1"

struct tlog_proof
{
	uint64_t	index;
	size_t		n;				/* hashes in path */
	unsigned char path[TLOG_MAX_PATH][JC_HASH_BYTES];
	int			has_extra;
	unsigned char *extra;		/* the optional "extra" data, decoded (malloc'd) */
	size_t		extra_len;
	const char *note;			/* the signed checkpoint: the rest of the text */
	size_t		note_len;

	/* Filled by tlog_parse_checkpoint(), from the note's signed text. */
	char		origin[TLOG_ORIGIN_MAX];
	uint64_t	size;
	unsigned char root[JC_HASH_BYTES];
	int			extensions;		/* extension lines after the root */
};

/*
 * Parses a proof's layout (text[0..len) stays referenced): the header, an
 * optional "extra" line, "index N" (canonical decimal), base64 SHA-256
 * hashes one a line, a blank line, the checkpoint.  0, or -1 with why.
 */
int			tlog_parse_proof(const char *text, size_t len, struct tlog_proof *p, char *why, size_t why_size);

/*
 * Parses a checkpoint's signed text (c2sp.org/tlog-checkpoint): origin,
 * canonical decimal size, base64 root, then optional non-empty extension
 * lines.  0, or -1 with why.
 */
int			tlog_parse_checkpoint(const char *text, size_t len, struct tlog_proof *p, char *why, size_t why_size);

#endif
