/*
 * tiles.h: a service's log read as C2SP tlog-tiles (tiles.c), for the
 * functions that serve tiles, bundles and checkpoints.
 */
#ifndef JAM_TILES_H
#define JAM_TILES_H

#include "jam.h"

/* A service's log opened for reading, under its access rule. */
typedef struct JamTiledLog
{
	const char *service_id;
	bool		public;			/* anyone may read it, without a token */
	bool		read_only;		/* reads may use the statement's snapshot */
	int64		size;
	uint8		root[JAM_HASH_BYTES];
} JamTiledLog;

extern void jam_tiles_open(const char *service_id, JamTiledLog *log);
extern bytea *jam_tile_bytes(const JamTiledLog *log, int32 level, int64 index, int32 width);
extern bytea *jam_entry_bundle_bytes(const JamTiledLog *log, int64 index, int32 width);

#endif							/* JAM_TILES_H */
