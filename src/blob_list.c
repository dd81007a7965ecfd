/*
 * blob_list.c: reading a ListObjectsV2 page.
 *
 * The answer is a flat XML document (ListBucketResult) of <Contents>
 * elements, each with a <Key> and a <Size>, then <IsTruncated> and, when
 * more pages follow, <NextContinuationToken>.  Only those elements are
 * read, by name, with the five predefined entities and character
 * references decoded; nothing else of XML is needed, so no XML library is.
 * A key is jam's when it is exactly <prefix>/<xx>/<hash> with xx the
 * hash's first two hex digits; any other key under the prefix is counted
 * as foreign and never touched.
 */
#include "jam.h"
#include "blob.h"

#include "mb/pg_wchar.h"

/* The text of the first <tag>...</tag> in [from, to), decoded; NULL when absent. */
static char *
element(const char *from, const char *to, const char *tag, const char **after)
{
	char		open[64];
	char		close[64];
	const char *start;
	const char *end;
	StringInfoData s;

	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	start = strstr(from, open);
	if (start == NULL || start >= to)
		return NULL;
	start += strlen(open);
	end = strstr(start, close);
	if (end == NULL || end > to)
		return NULL;
	if (after)
		*after = end + strlen(close);

	initStringInfo(&s);
	for (const char *p = start; p < end; p++)
	{
		static const struct
		{
			const char *name;
			char		c;
		}			entities[] = {
			{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}
		};
		bool		done = false;

		if (*p != '&')
		{
			appendStringInfoChar(&s, *p);
			continue;
		}
		for (int i = 0; i < lengthof(entities) && !done; i++)
			if (strncmp(p, entities[i].name, strlen(entities[i].name)) == 0)
			{
				appendStringInfoChar(&s, entities[i].c);
				p += strlen(entities[i].name) - 1;
				done = true;
			}
		if (!done && p[1] == '#')
		{
			char	   *stop;
			long		cp = p[2] == 'x' ? strtol(p + 3, &stop, 16) : strtol(p + 2, &stop, 10);

			if (*stop == ';' && cp > 0 && cp <= 0x10FFFF)
			{
				unsigned char utf8[8];

				unicode_to_utf8((pg_wchar) cp, utf8);
				appendBinaryStringInfo(&s, (char *) utf8, pg_utf_mblen(utf8));
				p = stop;
				done = true;
			}
		}
		if (!done)
			appendStringInfoChar(&s, '&');
	}
	return s.data;
}

/* Whether s is 64 lowercase hex digits. */
static bool
is_hash_hex(const char *s)
{
	int			n = 0;

	for (; *s; s++, n++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return n == JAM_HASH_HEX_CHARS;
}

/*
 * Parses one page of ListObjectsV2 (xml, len bytes, NUL-terminated) of
 * the keys under prefix ("<prefix>/" or "") into *out.
 */
void
jam_blob_list_parse(const char *xml, Size len, const char *prefix, JamBlobListing *out)
{
	const char *end = xml + len;
	const char *p = xml;
	size_t		prefix_len = strlen(prefix);
	int			cap = 64;
	char	   *truncated;

	memset(out, 0, sizeof(*out));
	out->hashes = palloc(sizeof(char *) * cap);
	out->sizes = palloc(sizeof(int64) * cap);
	for (;;)
	{
		const char *block = strstr(p, "<Contents>");
		const char *block_end;
		char	   *key;
		char	   *size;
		const char *rest;

		if (block == NULL || block >= end)
			break;
		block_end = strstr(block, "</Contents>");
		if (block_end == NULL)
			break;
		p = block_end + strlen("</Contents>");
		key = element(block, block_end, "Key", NULL);
		size = element(block, block_end, "Size", NULL);
		if (key == NULL)
			continue;
		/* <prefix><xx>/<hash>, xx the hash's first two digits */
		rest = key + prefix_len;
		if (strncmp(key, prefix, prefix_len) != 0 || strlen(rest) != 3 + JAM_HASH_HEX_CHARS ||
			rest[2] != '/' || !is_hash_hex(rest + 3) || strncmp(rest, rest + 3, 2) != 0)
		{
			out->n_foreign++;
			continue;
		}
		if (out->n_objects == cap)
		{
			cap *= 2;
			out->hashes = repalloc(out->hashes, sizeof(char *) * cap);
			out->sizes = repalloc(out->sizes, sizeof(int64) * cap);
		}
		out->hashes[out->n_objects] = pstrdup(rest + 3);
		out->sizes[out->n_objects] = size ? strtoll(size, NULL, 10) : -1;
		out->n_objects++;
	}
	truncated = element(xml, end, "IsTruncated", NULL);
	if (truncated != NULL && strcmp(truncated, "true") == 0)
		out->next_token = element(xml, end, "NextContinuationToken", NULL);
}
