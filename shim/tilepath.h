/*
 * tilepath.h: the paths of c2sp.org/tlog-tiles under a log's prefix,
 * "tile/<L>/<N>[.p/<W>]" and "tile/entries/<N>[.p/<W>]", parsed as the
 * spec writes them and nothing else (pure; the fuzz target runs it).  The
 * route has already told which of the two it is; what follows "tile/" or
 * "tile/entries/" is parsed here.
 */
#ifndef SHIM_TILEPATH_H
#define SHIM_TILEPATH_H

#include <stddef.h>

/* A full tile's width, and what a tile path names. */
#define TILE_FULL_WIDTH 256

struct tile_path
{
	int			entries;		/* an entry bundle rather than a hash tile */
	int			level;			/* 0 to 63; 0 for an entry bundle */
	long long	index;			/* N */
	int			width;			/* 1 to 255 for a partial tile, TILE_FULL_WIDTH for a full one */
};

int			tile_path_parse(const char *rest, int entries, struct tile_path *out, char *why,
							size_t why_size);

#endif
