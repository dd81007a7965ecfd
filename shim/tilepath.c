/*
 * tilepath.c: parsing tlog-tiles paths.
 *
 * The spec leaves one spelling of each tile: the level in decimal without
 * leading zeros, the index as zero-padded 3-digit elements of which all
 * but the last start with "x" (1234067 is x001/x234/067; no element of
 * only zeros before the first that is not, so 5 is 005 and never
 * x000/005), and a partial width 1 to 255 without leading zeros.  Any
 * other spelling would be a second URL for the same immutable bytes, which
 * caches would keep twice: it is refused.
 */
#include "tilepath.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

/* Levels a tile path may name (the spec: 0 to 63). */
#define TILE_MAX_LEVEL 63

/* A decimal of 1 to max_digits digits, no leading zero (but "0"), at most max; -1 otherwise. */
static long long
plain_decimal(const char *s, size_t len, size_t max_digits, long long max)
{
	long long	v = 0;

	if (len == 0 || len > max_digits || (len > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < len; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v <= max ? v : -1;
}

/* Three digits, as the elements of an index are. */
static int
three_digits(const char *s)
{
	return s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' && s[2] <= '9';
}

static int
fail(char *why, size_t why_size, const char *message)
{
	snprintf(why, why_size, "%s", message);
	return -1;
}

/*
 * Parses what follows "tile/" in a log's hash tile path, "<L>/<N>[.p/<W>]",
 * or (entries set) what follows "tile/entries/" in an entry bundle's,
 * "<N>[.p/<W>]".  Returns 0 with out set, or -1 with the reason.
 */
int
tile_path_parse(const char *rest, int entries, struct tile_path *out, char *why, size_t why_size)
{
	const char *p = rest;
	int			elements = 0;
	int			leading = 1;

	memset(out, 0, sizeof(*out));
	out->entries = entries;
	out->width = TILE_FULL_WIDTH;
	if (rest == NULL)
		return fail(why, why_size, "no tile path");
	if (!entries)
	{
		const char *slash = strchr(p, '/');
		long long	level = slash ? plain_decimal(p, (size_t) (slash - p), 2, TILE_MAX_LEVEL) : -1;

		if (level < 0)
			return fail(why, why_size, "a tile path is <level>/<index>[.p/<width>], its level 0 to 63 in decimal without leading zeros");
		out->level = (int) level;
		p = slash + 1;
	}

	/* The index: "xDDD/" elements, then "DDD". */
	for (;;)
	{
		int			last = p[0] != 'x';
		const char *digits = last ? p : p + 1;
		int			v;

		if (strlen(digits) < 3 || !three_digits(digits))
			return fail(why, why_size, "a tile index is zero-padded 3-digit elements, all but the last starting with x");
		v = (digits[0] - '0') * 100 + (digits[1] - '0') * 10 + (digits[2] - '0');
		if (!last && digits[3] != '/')
			return fail(why, why_size, "a tile index is zero-padded 3-digit elements, all but the last starting with x");
		if (!last && leading && v == 0)
			return fail(why, why_size, "a tile index has no leading x000 elements");
		leading = 0;
		if (++elements > 7 || out->index > (LLONG_MAX - v) / 1000)
			return fail(why, why_size, "a tile index is too large");
		out->index = out->index * 1000 + v;
		p = digits + 3;
		if (last)
			break;
		p++;
	}

	/* Nothing, or ".p/<W>". */
	if (*p == '\0')
		return 0;
	if (strncmp(p, ".p/", 3) != 0)
		return fail(why, why_size, "a tile path ends with its index, or .p/<width> for a partial tile");
	{
		long long	width = plain_decimal(p + 3, strlen(p + 3), 3, TILE_FULL_WIDTH - 1);

		if (width < 1)
			return fail(why, why_size, "a partial tile's width is 1 to 255, without leading zeros");
		out->width = (int) width;
	}
	return 0;
}
