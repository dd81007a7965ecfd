/*
 * tlogproof.c: reading c2sp.org/tlog-proof@v1, the offline form of a
 * receipt (GET /jam/receipts/{hash}/proof, jam_receipt_proof()):
 *
 *   c2sp.org/tlog-proof@v1
 *   [extra <base64>]
 *   index <N>
 *   <base64 hash>          zero or more: the inclusion path, leaf's sibling first
 *
 *   <origin>               the signed checkpoint (c2sp.org/tlog-checkpoint)
 *   <size>
 *   <base64 root>
 *
 *   — <name> <base64 signature>
 *
 * Parsing is strict (one spelling per value: canonical decimals, strict
 * base64, LF line ends only), so that any change to any byte of a proof is
 * either refused here or caught by the signature or the path.
 */
#include "tlogproof.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The line at *pos (without its newline) in [text, end); advances past the newline.  -1 when none is left. */
static int
next_line(const char *text, size_t len, size_t *pos, const char **line, size_t *line_len)
{
	const char *nl;

	if (*pos >= len)
		return -1;
	nl = memchr(text + *pos, '\n', len - *pos);
	if (!nl)
		return -1;
	*line = text + *pos;
	*line_len = (size_t) (nl - *line);
	*pos = (size_t) (nl - text) + 1;
	return 0;
}

static int
starts(const char *line, size_t len, const char *prefix)
{
	size_t		n = strlen(prefix);

	return len >= n && memcmp(line, prefix, n) == 0;
}

int
tlog_parse_proof(const char *text, size_t len, struct tlog_proof *p, char *why, size_t why_size)
{
	size_t		pos = 0;
	const char *line;
	size_t		line_len;

	memset(p, 0, sizeof(*p));
	if (memchr(text, '\0', len))
	{
		snprintf(why, why_size, "the proof holds a NUL byte");
		return -1;
	}
	if (next_line(text, len, &pos, &line, &line_len) < 0 ||
		line_len != strlen(TLOG_PROOF_HEADER) || memcmp(line, TLOG_PROOF_HEADER, line_len) != 0)
	{
		snprintf(why, why_size, "the first line is not \"%s\"", TLOG_PROOF_HEADER);
		return -1;
	}
	if (next_line(text, len, &pos, &line, &line_len) < 0)
	{
		snprintf(why, why_size, "no index line");
		return -1;
	}
	if (starts(line, line_len, "extra "))
	{
		long		n;

		p->has_extra = 1;
		p->extra = malloc(line_len);
		if (!p->extra || (n = b64_decode(line + 6, line_len - 6, p->extra, line_len)) < 0)
		{
			snprintf(why, why_size, "the extra line is not base64");
			return -1;
		}
		p->extra_len = (size_t) n;
		if (next_line(text, len, &pos, &line, &line_len) < 0)
		{
			snprintf(why, why_size, "no index line");
			return -1;
		}
	}
	if (!starts(line, line_len, "index ") ||
		parse_canonical_u63(line + 6, line_len - 6, &p->index) < 0)
	{
		snprintf(why, why_size, "the index line is not \"index N\" with N a decimal without leading zeros");
		return -1;
	}
	for (;;)
	{
		if (next_line(text, len, &pos, &line, &line_len) < 0)
		{
			snprintf(why, why_size, "no blank line before the checkpoint");
			return -1;
		}
		if (line_len == 0)
			break;
		if (p->n == TLOG_MAX_PATH)
		{
			snprintf(why, why_size, "the inclusion path has more than %d hashes", TLOG_MAX_PATH);
			return -1;
		}
		if (b64_decode(line, line_len, p->path[p->n], JC_HASH_BYTES) != JC_HASH_BYTES)
		{
			snprintf(why, why_size, "line %zu of the inclusion path is not the base64 of a 32-byte hash",
					 p->n + 1);
			return -1;
		}
		p->n++;
	}
	p->note = text + pos;
	p->note_len = len - pos;
	if (p->note_len == 0)
	{
		snprintf(why, why_size, "no checkpoint after the blank line");
		return -1;
	}
	return 0;
}

int
tlog_parse_checkpoint(const char *text, size_t len, struct tlog_proof *p, char *why, size_t why_size)
{
	size_t		pos = 0;
	const char *line;
	size_t		line_len;

	if (next_line(text, len, &pos, &line, &line_len) < 0 || line_len == 0 || line_len >= TLOG_ORIGIN_MAX)
	{
		snprintf(why, why_size, "the checkpoint has no origin line");
		return -1;
	}
	memcpy(p->origin, line, line_len);
	p->origin[line_len] = '\0';
	if (next_line(text, len, &pos, &line, &line_len) < 0 ||
		parse_canonical_u63(line, line_len, &p->size) < 0)
	{
		snprintf(why, why_size, "the checkpoint's size is not a decimal without leading zeros");
		return -1;
	}
	if (next_line(text, len, &pos, &line, &line_len) < 0 ||
		b64_decode(line, line_len, p->root, JC_HASH_BYTES) != JC_HASH_BYTES)
	{
		snprintf(why, why_size, "the checkpoint's root is not the base64 of a 32-byte hash");
		return -1;
	}
	p->extensions = 0;
	while (next_line(text, len, &pos, &line, &line_len) == 0)
	{
		if (line_len == 0)
		{
			snprintf(why, why_size, "the checkpoint has an empty extension line");
			return -1;
		}
		p->extensions++;
	}
	if (pos != len)
	{
		snprintf(why, why_size, "the checkpoint's text does not end in a newline");
		return -1;
	}
	return 0;
}
