/*
 * tiles.c: a service's log as C2SP tlog-tiles (c2sp.org/tlog-tiles): hash
 * tiles, entry bundles, the checkpoint clients read them against, and who
 * may read them.
 *
 * Tile (level l, index n, width W) holds the hashes of the complete
 * subtrees of height 8l numbered n * 256 .. n * 256 + W - 1.  Each of them
 * ends at leaf ((k + 1) << 8l) - 1, and log.c stored every complete
 * subtree's hash in the row of its last leaf (jam_log_entries.nodes, level
 * 1 upwards; level 0 is the row's leaf_hash), so a tile is W rows read by
 * primary key and one slice of each: O(tile), whatever the log's size.  An
 * entry bundle is the 74-byte entries of the same W rows of level 0, each
 * behind its length as a big-endian u16.
 *
 * A tile or bundle is served for any width the log already covers: the
 * partial tiles of every size a checkpoint has named (as the spec asks),
 * and of any other, which are prefixes of the same tiles.  What lies past
 * the log is tile_not_found.
 *
 * Access: the jam:read scope and tenant rules of the service, as for its
 * receipts, unless an operator made the service's log public
 * (jam_set_log_public): then anyone may read its tiles and checkpoint,
 * without a token, as outside auditors and witnesses do.  A log that is
 * not public does not tell an anonymous caller whether it exists.
 *
 * These functions exist from 1.2 on, whose tables hold hashes as bytes.
 */
#include "jam.h"
#include "auth.h"
#include "errors.h"
#include "metrics.h"
#include "merkle.h"
#include "tiles.h"
#include "witnessing.h"
#include "xact_rows.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

/* Hashes in a full tile, entries in a full bundle: 2^8, the spec's tile height 8. */
#define TILE_WIDTH 256
#define TILE_HEIGHT 8
/* Levels a tile path may name (the spec: 0 to 63). */
#define TILE_MAX_LEVEL 63

static JamStatement select_log = {
	"SELECT log_size, log_root, log_public FROM jam.jam_services WHERE service_id = $1",
	1, {TEXTOID}
};

/* Level 0: the leaf hashes of a run of entries. */
static JamStatement select_leaves = {
	"SELECT seq, leaf_hash FROM jam.jam_log_entries "
	"WHERE service_id = $1 AND seq >= $2 AND seq < $3 ORDER BY seq",
	3, {TEXTOID, INT8OID, INT8OID}
};

/* Higher levels: one stored subtree hash ($3 is its 1-based offset in nodes) of each row. */
static JamStatement select_subtrees = {
	"SELECT seq, substr(nodes, $3, 32) FROM jam.jam_log_entries "
	"WHERE service_id = $1 AND seq = ANY($2) ORDER BY seq",
	3, {TEXTOID, INT8ARRAYOID, INT4OID}
};

static JamStatement select_entries = {
	"SELECT seq, entry FROM jam.jam_log_entries "
	"WHERE service_id = $1 AND seq >= $2 AND seq < $3 ORDER BY seq",
	3, {TEXTOID, INT8OID, INT8OID}
};

static JamStatement update_public = {
	"UPDATE jam.jam_services SET log_public = $2 WHERE service_id = $1 "
	"RETURNING jsonb_build_object('service_id', service_id, 'log_public', log_public)",
	2, {TEXTOID, BOOLOID}
};

/*
 * Connects to SPI and reads the service's log head, after checking that
 * the caller may read the log: a public log is anyone's; any other needs
 * jam:read on the service, asked before whether the service exists, so
 * that an anonymous caller learns nothing.  Fills head (size and root).
 * The caller ends with SPI_finish().
 */
void
jam_tiles_open(const char *service_id, JamTiledLog *log)
{
	Datum		values[1] = {CStringGetTextDatum(service_id)};
	bool		found;
	bool		isnull;
	Datum		root;

	log->service_id = service_id;
	log->read_only = !jam_xact_rows_held();
	SPI_connect();
	found = jam_spi_exec(&select_log, values, NULL, log->read_only, 1) == 1;
	log->public = false;
	log->size = 0;
	jam_merkle_empty_root(log->root);
	if (found)
	{
		log->public = DatumGetBool(jam_spi_result_datum(3, &isnull));
		log->size = DatumGetInt64(jam_spi_result_datum(1, &isnull));
		root = jam_spi_result_datum(2, &isnull);
		if (!isnull)
		{
			bytea	   *b = DatumGetByteaPP(root);

			if (VARSIZE_ANY_EXHDR(b) != JAM_HASH_BYTES)
				elog(ERROR, "jam log root of service \"%s\" is not %d bytes", service_id, JAM_HASH_BYTES);
			memcpy(log->root, VARDATA_ANY(b), JAM_HASH_BYTES);
		}
		/* A head this transaction changed and has not written is in its copy (xact_rows.c). */
		(void) jam_xact_unwritten_head(service_id, &log->size, log->root);
	}
	if (!log->public)
		jam_auth_require_service(JAM_SCOPE_READ, service_id);
	if (!found)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_SERVICE_NOT_FOUND),
				 errmsg("service \"%s\" not found", service_id)));
}

/* The common checks of a tile's coordinates. */
static void
check_coordinates(int32 level, int64 index, int32 width)
{
	if (level < 0 || level > TILE_MAX_LEVEL)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("tile level %d is not between 0 and %d", level, TILE_MAX_LEVEL)));
	if (index < 0)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("tile index %lld is negative", (long long) index)));
	if (width < 1 || width > TILE_WIDTH)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("tile width %d is not between 1 and %d", width, TILE_WIDTH)));
}

/*
 * Whether the log covers tile (level, index, width): its last hash is of a
 * subtree ending at or before the log's last entry, that is
 * (index * 256 + width) * 256^level <= size, computed without overflow.
 */
static bool
tile_in_log(int64 size, int32 level, int64 index, int32 width)
{
	uint64		units;

	if (TILE_HEIGHT * level >= 63)
		return false;
	if ((uint64) index > (PG_UINT64_MAX - (uint64) width) / TILE_WIDTH)
		return false;
	units = (uint64) index * TILE_WIDTH + (uint64) width;
	return units <= ((uint64) size >> (TILE_HEIGHT * level));
}

static void
raise_not_in_log(const char *what, const JamTiledLog *log, int32 level, int64 index, int32 width)
{
	ereport(ERROR,
			(jam_errcode(JAM_ERR_TILE_NOT_FOUND),
			 errmsg("%s %d/%lld of width %d is not in the log of service \"%s\"",
					what, level, (long long) index, width, log->service_id),
			 errdetail("The log has %lld entries.", (long long) log->size),
			 errhint("Read the checkpoint first: it names the tiles that exist.")));
}

static void
raise_corrupt(const char *service_id, int64 seq)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("jam log of service \"%s\" is missing or has a corrupt entry %lld",
					service_id, (long long) seq),
			 errhint("jam_verify_log() checks the whole log.")));
}

/*
 * The W hashes of tile (level, index, width) of an opened log, as one
 * bytea of W * 32 bytes in the caller's memory context (SPI_palloc).
 * Needs SPI; the tile must be in the log.
 */
bytea *
jam_tile_bytes(const JamTiledLog *log, int32 level, int64 index, int32 width)
{
	int			shift = TILE_HEIGHT * level;
	int64		first = index * TILE_WIDTH;
	Datum		values[3];
	int			rows;
	bytea	   *out = SPI_palloc(VARHDRSZ + (Size) width * JAM_HASH_BYTES);

	SET_VARSIZE(out, VARHDRSZ + (Size) width * JAM_HASH_BYTES);
	values[0] = CStringGetTextDatum(log->service_id);
	if (level == 0)
	{
		values[1] = Int64GetDatum(first);
		values[2] = Int64GetDatum(first + width);
		rows = jam_spi_exec(&select_leaves, values, NULL, log->read_only, 0);
	}
	else
	{
		Datum	   *seqs = palloc(sizeof(Datum) * width);

		/* The last leaf of subtree k of height shift. */
		for (int i = 0; i < width; i++)
			seqs[i] = Int64GetDatum((int64) ((((uint64) (first + i) + 1) << shift) - 1));
		values[1] = PointerGetDatum(construct_array(seqs, width, INT8OID, 8, true, TYPALIGN_DOUBLE));
		/* nodes holds levels 1 upwards: level shift starts at byte (shift - 1) * 32. */
		values[2] = Int32GetDatum((shift - 1) * JAM_HASH_BYTES + 1);
		rows = jam_spi_exec(&select_subtrees, values, NULL, log->read_only, 0);
	}
	for (int i = 0; i < width; i++)
	{
		int64		expected = level == 0 ? first + i :
			(int64) ((((uint64) (first + i) + 1) << shift) - 1);
		bool		isnull;
		Datum		hash;
		bytea	   *b;

		if (i >= rows ||
			DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull)) != expected)
			raise_corrupt(log->service_id, expected);
		hash = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull);
		b = isnull ? NULL : DatumGetByteaPP(hash);
		if (b == NULL || VARSIZE_ANY_EXHDR(b) != JAM_HASH_BYTES)
			raise_corrupt(log->service_id, expected);
		memcpy(VARDATA(out) + (Size) i * JAM_HASH_BYTES, VARDATA_ANY(b), JAM_HASH_BYTES);
	}
	return out;
}

/*
 * Entries index * 256 .. index * 256 + width - 1 of an opened log as an
 * entry bundle: each entry behind its length as a big-endian u16.  In the
 * caller's memory context (SPI_palloc).  Needs SPI; the bundle must be in
 * the log.
 */
bytea *
jam_entry_bundle_bytes(const JamTiledLog *log, int64 index, int32 width)
{
	int64		first = index * TILE_WIDTH;
	Datum		values[3];
	int			rows;
	Size		len = 0;
	bytea	   *out;
	char	   *p;

	values[0] = CStringGetTextDatum(log->service_id);
	values[1] = Int64GetDatum(first);
	values[2] = Int64GetDatum(first + width);
	rows = jam_spi_exec(&select_entries, values, NULL, log->read_only, 0);
	for (int i = 0; i < width; i++)
	{
		bool		isnull;

		if (i >= rows ||
			DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull)) != first + i)
			raise_corrupt(log->service_id, first + i);
		len += 2 + VARSIZE_ANY_EXHDR(DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[i],
																	 SPI_tuptable->tupdesc, 2, &isnull)));
	}
	out = SPI_palloc(VARHDRSZ + len);
	SET_VARSIZE(out, VARHDRSZ + len);
	p = VARDATA(out);
	for (int i = 0; i < width; i++)
	{
		bool		isnull;
		bytea	   *entry = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[i],
														  SPI_tuptable->tupdesc, 2, &isnull));
		Size		n = VARSIZE_ANY_EXHDR(entry);

		if (n > PG_UINT16_MAX)
			raise_corrupt(log->service_id, first + i);
		*p++ = (char) (n >> 8);
		*p++ = (char) (n & 0xff);
		memcpy(p, VARDATA_ANY(entry), n);
		p += n;
	}
	return out;
}

PG_FUNCTION_INFO_V1(jam_tile);

/*
 * jam_tile(service_id, level, index, width DEFAULT 256) returns the hash
 * tile tile/<level>/<index>[.p/<width>] of the service's log: width hashes
 * of 32 bytes, a full tile when width is 256.
 */
Datum
jam_tile(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_LOG_TILE);
	JamTiledLog log;
	int32		level;
	int64		index;
	int32		width;
	bytea	   *tile;

	jam_check_enabled();
	jam_require_arg(fcinfo, 0, "service_id");
	jam_require_arg(fcinfo, 1, "level");
	jam_require_arg(fcinfo, 2, "index");
	jam_require_arg(fcinfo, 3, "width");
	level = PG_GETARG_INT32(1);
	index = PG_GETARG_INT64(2);
	width = PG_GETARG_INT32(3);
	check_coordinates(level, index, width);

	jam_tiles_open(jam_check_service_id(PG_GETARG_TEXT_PP(0)), &log);
	if (!tile_in_log(log.size, level, index, width))
		raise_not_in_log("tile", &log, level, index, width);
	tile = jam_tile_bytes(&log, level, index, width);
	SPI_finish();

	jam_metrics_end(metrics, JAM_OUTCOME_OK);
	PG_RETURN_BYTEA_P(tile);
}

PG_FUNCTION_INFO_V1(jam_entry_bundle);

/*
 * jam_entry_bundle(service_id, index, width DEFAULT 256) returns the entry
 * bundle tile/entries/<index>[.p/<width>] of the service's log.
 */
Datum
jam_entry_bundle(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_LOG_ENTRY_BUNDLE);
	JamTiledLog log;
	int64		index;
	int32		width;
	bytea	   *bundle;

	jam_check_enabled();
	jam_require_arg(fcinfo, 0, "service_id");
	jam_require_arg(fcinfo, 1, "index");
	jam_require_arg(fcinfo, 2, "width");
	index = PG_GETARG_INT64(1);
	width = PG_GETARG_INT32(2);
	check_coordinates(0, index, width);

	jam_tiles_open(jam_check_service_id(PG_GETARG_TEXT_PP(0)), &log);
	if (!tile_in_log(log.size, 0, index, width))
		raise_not_in_log("entry bundle", &log, 0, index, width);
	bundle = jam_entry_bundle_bytes(&log, index, width);
	SPI_finish();

	jam_metrics_end(metrics, JAM_OUTCOME_OK);
	PG_RETURN_BYTEA_P(bundle);
}

PG_FUNCTION_INFO_V1(jam_log_checkpoint);

/*
 * jam_log_checkpoint(service_id) returns the checkpoint a tile client
 * reads first: the node's signed checkpoint of the log's current head (as
 * jam_checkpoint), with the cosignatures witnesses gave it; with
 * jam.witness_quorum above 0, the latest checkpoint that many witnesses
 * cosigned, once there is one.  Readable under the log's access rule.
 */
Datum
jam_log_checkpoint(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_CHECKPOINT);
	JamTiledLog log;
	char	   *note;
	text	   *result;
	int64		size;
	uint8		root[JAM_HASH_BYTES];

	jam_check_enabled();
	jam_require_arg(fcinfo, 0, "service_id");
	jam_tiles_open(jam_check_service_id(PG_GETARG_TEXT_PP(0)), &log);
	size = log.size;
	memcpy(root, log.root, JAM_HASH_BYTES);
	jam_witnessed_head(log.service_id, jam_witness_quorum, log.size, &size, root);
	note = jam_cosigned_checkpoint(log.service_id, size, root, NULL);
	/* Out of SPI's memory before SPI_finish frees it. */
	result = (text *) DatumGetPointer(SPI_datumTransfer(PointerGetDatum(cstring_to_text(note)), false, -1));
	SPI_finish();

	jam_metrics_end(metrics, JAM_OUTCOME_OK);
	PG_RETURN_TEXT_P(result);
}

PG_FUNCTION_INFO_V1(jam_set_log_public);

/*
 * jam_set_log_public(service_id, public DEFAULT true) lets anyone read the
 * service's log as tiles and its checkpoint, without a token (or, with
 * false, only the tokens that may read the service); an operator's call.
 */
Datum
jam_set_log_public(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_REGISTER_SERVICE);
	char	   *service_id;
	Datum		values[2];
	Datum		doc;

	jam_check_enabled();
	jam_require_arg(fcinfo, 0, "service_id");
	jam_require_arg(fcinfo, 1, "public");
	service_id = jam_check_service_id(PG_GETARG_TEXT_PP(0));
	jam_auth_require_service(JAM_SCOPE_ADMIN, service_id);
	values[0] = CStringGetTextDatum(service_id);
	values[1] = BoolGetDatum(PG_GETARG_BOOL(1));

	SPI_connect();
	if (jam_spi_exec(&update_public, values, NULL, false, 1) == 0)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_SERVICE_NOT_FOUND),
				 errmsg("service \"%s\" not found", service_id)));
	doc = jam_spi_copy_jsonb(1);
	SPI_finish();

	jam_metrics_end(metrics, JAM_OUTCOME_OK);
	PG_RETURN_DATUM(doc);
}
