/*
 * preimage.c: content-addressed blobs (jam_put_preimage, jam_get_preimage,
 * jam_preimage_meta).
 *
 * Identical bytes are stored once, under their BLAKE2b-256 hash.  A
 * preimage's refcount is the number of packages and reports that reference
 * it; they raise it through jam_reference_preimages() (xact_rows.c) in the
 * transaction that writes them.
 *
 * With a blob store, a preimage of at least jam.blob_offload_threshold
 * bytes is uploaded before its row, which records storage_class 's3' and
 * no data, is inserted; reads of such a row go through the store and
 * return only bytes that hash to the address (blob_tier.c).  The meta
 * never touches the store.  jam_read_preimage returns the bytes in chunks,
 * for the HTTP shim to stream.
 */
#include "jam.h"
#include "auth.h"
#include "blob.h"
#include "quota.h"
#include "errors.h"
#include "holders.h"
#include "metrics.h"
#include "xact_rows.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/builtins.h"

/* The JSON stat of a preimage, shared by every statement that returns one. */
#define PREIMAGE_META_JSON_COUNTING(REFCOUNT) \
	"jsonb_build_object('hash', @x(hash), 'size', size, 'media_type', media_type, " \
	"'refcount', " REFCOUNT ", 'storage_class', storage_class, 'created_at', created_at)"
#define PREIMAGE_META_JSON PREIMAGE_META_JSON_COUNTING("refcount")

static JamStatement insert_preimage = {
	"INSERT INTO jam.jam_preimages (hash, data, size, media_type) "
	"VALUES (@h($1), $2, $3, $4) ON CONFLICT (hash) DO NOTHING "
	"RETURNING " PREIMAGE_META_JSON,
	4, {TEXTOID, BYTEAOID, INT8OID, TEXTOID}
};

/* A preimage in the blob store: its object is written first (blob_tier.c). */
static JamStatement insert_stored_preimage = {
	"INSERT INTO jam.jam_preimages (hash, data, size, media_type, storage_class) "
	"VALUES (@h($1), NULL, $2, $3, 's3') ON CONFLICT (hash) DO NOTHING "
	"RETURNING " PREIMAGE_META_JSON,
	3, {TEXTOID, INT8OID, TEXTOID}
};

static JamStatement select_class = {
	"SELECT storage_class FROM jam.jam_preimages WHERE hash = @h($1)",
	1, {TEXTOID}
};

/* $2: the references this transaction added and has not written (xact_rows.c). */
static JamStatement select_meta = {
	"SELECT " PREIMAGE_META_JSON_COUNTING("refcount + $2") " FROM jam.jam_preimages WHERE hash = @h($1)",
	2, {TEXTOID, INT8OID}
};

static JamStatement select_data = {
	"SELECT data, size FROM jam.jam_preimages WHERE hash = @h($1)",
	1, {TEXTOID}
};

/*
 * Stores a preimage of the blob tier's size: its object first, then its
 * row, in the caller's transaction.  Bytes already stored are not uploaded
 * again, unless their row is in the store and the object is gone, which a
 * put repairs.  Returns whether the row is new.  Needs SPI; values are
 * jam_put_preimage's statement parameters.
 */
static bool
put_in_store(Datum *values, bytea *data)
{
	char	   *hash = TextDatumGetCString(values[0]);
	Size		size = VARSIZE_ANY_EXHDR(data);
	Datum		row[3] = {values[0], values[2], values[3]};

	if (jam_spi_exec(&select_class, values, NULL, false, 1) == 1)
	{
		char	   *class = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		if (strcmp(class, "s3") == 0)
			jam_blob_ensure_object(hash, (int64) size, VARDATA_ANY(data));
		return false;
	}
	jam_blob_upload(hash, VARDATA_ANY(data), size);
	return jam_spi_exec(&insert_stored_preimage, row, NULL, false, 0) == 1;
}

static void
raise_not_found(const char *hash)
{
	ereport(ERROR,
			(jam_errcode(JAM_ERR_PREIMAGE_NOT_FOUND),
			 errmsg("preimage %s not found", hash)));
}

PG_FUNCTION_INFO_V1(jam_put_preimage);

/*
 * jam_put_preimage(data, media_type) stores data under its hash and returns
 * its meta with "created": true, or, when the bytes are already stored,
 * the existing meta unchanged with "created": false.
 */
Datum
jam_put_preimage(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_PREIMAGE_PUT);
	bytea	   *data;
	char	   *media_type;
	Size		size;
	uint8		digest[JAM_HASH_BYTES];
	Datum		values[4];
	Datum		meta;
	bool		created;
	int64		max_bytes;
	bool		from_token;
	const char *tenant;

	jam_check_enabled();
	jam_auth_require(JAM_SCOPE_SUBMIT, "jam_put_preimage");
	jam_require_arg(fcinfo, 0, "data");
	jam_require_arg(fcinfo, 1, "media_type");
	data = PG_GETARG_BYTEA_PP(0);
	size = VARSIZE_ANY_EXHDR(data);
	max_bytes = jam_quota_max_put_bytes(&from_token);
	if ((int64) size > max_bytes)
	{
		jam_metrics_refusal("payload_too_large", NULL);
		ereport(ERROR,
				(jam_errcode(JAM_ERR_PAYLOAD_TOO_LARGE),
				 errmsg("preimage is too large"),
				 errdetail("The preimage has %zu bytes; %s allows " INT64_FORMAT ".",
						   size, from_token ? "the token's quota" : "jam.max_preimage_bytes",
						   max_bytes)));
	}
	media_type = jam_check_media_type(PG_GETARG_TEXT_PP(1));

	jam_blake2b256(VARDATA_ANY(data), size, digest);
	values[0] = PointerGetDatum(jam_hash_to_text(digest));
	values[1] = PointerGetDatum(data);
	values[2] = Int64GetDatum((int64) size);
	values[3] = CStringGetTextDatum(media_type);

	SPI_connect();
	if (jam_blob_offloads((int64) size))
		created = put_in_store(values, data);
	else
		created = jam_spi_exec(&insert_preimage, values, NULL, false, 0) == 1;
	tenant = jam_holders_tenant();
	if (tenant != NULL)
	{
		/* New to this tenant is new, whoever stored the bytes before. */
		char	   *hash = TextDatumGetCString(values[0]);

		created = jam_holders_add(tenant, hash, media_type);
		meta = jam_holders_meta(tenant, hash, false);
	}
	else
	{
		if (!created)
		{
			Datum		meta_values[2] = {values[0],
				Int64GetDatum(jam_xact_unwritten_references(TextDatumGetCString(values[0])))};

			jam_spi_exec(&select_meta, meta_values, NULL, false, 1);
		}
		meta = jam_spi_copy_jsonb(1);
	}
	SPI_finish();

	jam_metrics_end(metrics, created ? JAM_OUTCOME_CREATED : JAM_OUTCOME_EXISTING);
	PG_RETURN_DATUM(jam_with_created_flag(meta, created));
}

/*
 * The bytes of the preimage hash (checked hex), for a caller allowed to
 * read it: from the row, or from the blob store, verified.  The row may
 * hold a TOAST pointer; what is returned is the bytes themselves.
 */
static bytea *
read_bytes(const char *hash)
{
	Datum		values[1];
	bool		isnull;
	Datum		data;
	int64		size;

	values[0] = CStringGetTextDatum(hash);
	SPI_connect();
	/* A tenant reads only what it holds (holders.c). */
	if (jam_holders_tenant() != NULL &&
		jam_holders_first_missing(jam_holders_tenant(),
								  construct_array(values, 1, TEXTOID, -1, false, TYPALIGN_INT)) != NULL)
		raise_not_found(hash);
	if (jam_spi_exec(&select_data, values, NULL, true, 1) == 0)
		raise_not_found(hash);
	size = DatumGetInt64(jam_spi_result_datum(2, &isnull));
	data = jam_spi_result_datum(1, &isnull);
	if (!isnull)
		data = SPI_datumTransfer(data, false, -1);
	SPI_finish();

	/* No bytes in the row: they are in the blob store, read back and checked. */
	if (isnull)
		return jam_blob_fetch(hash, size);
	return DatumGetByteaPP(data);
}

PG_FUNCTION_INFO_V1(jam_get_preimage);

/* jam_get_preimage(hash) returns the stored bytes. */
Datum
jam_get_preimage(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_PREIMAGE_GET);
	bytea	   *data;

	jam_check_enabled();
	jam_auth_require(JAM_SCOPE_READ, "jam_get_preimage");
	jam_require_arg(fcinfo, 0, "hash");
	data = read_bytes(jam_normalize_hash(PG_GETARG_TEXT_PP(0), "hash"));
	jam_metrics_end(metrics, JAM_OUTCOME_OK);
	PG_RETURN_BYTEA_P(data);
}

/* Chunks jam_read_preimage may cut: 1 kB to 64 MB. */
#define READ_CHUNK_MIN 1024
#define READ_CHUNK_MAX (64 * 1024 * 1024)

typedef struct ReadState
{
	bytea	   *data;
	Size		offset;
	int32		chunk;
	bool		emitted;		/* a row went out: an empty preimage is one empty row */
} ReadState;

PG_FUNCTION_INFO_V1(jam_read_preimage);

/*
 * jam_read_preimage(hash, chunk_bytes) returns the stored bytes as rows of
 * chunk_bytes each (the last one shorter; one empty row for no bytes), in order:
 * what the HTTP shim streams a preimage from, one row at a time (libpq's
 * single-row mode), so that it never holds a large preimage whole.  The
 * bytes are read, and those from the blob store verified, before the first
 * row, so that an error comes before anything is sent.  Counted as
 * preimage_get.
 */
Datum
jam_read_preimage(PG_FUNCTION_ARGS)
{
	FuncCallContext *fctx;
	ReadState  *st;
	Size		n;

	if (SRF_IS_FIRSTCALL())
	{
		JamMetricsCall metrics = jam_metrics_begin(JAM_OP_PREIMAGE_GET);
		MemoryContext old;
		char	   *hash;
		int32		chunk;

		jam_check_enabled();
		jam_auth_require(JAM_SCOPE_READ, "jam_read_preimage");
		jam_require_arg(fcinfo, 0, "hash");
		jam_require_arg(fcinfo, 1, "chunk_bytes");
		hash = jam_normalize_hash(PG_GETARG_TEXT_PP(0), "hash");
		chunk = PG_GETARG_INT32(1);
		if (chunk < READ_CHUNK_MIN || chunk > READ_CHUNK_MAX)
			ereport(ERROR,
					(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
					 errmsg("chunk_bytes must be between %d and %d", READ_CHUNK_MIN, READ_CHUNK_MAX)));
		fctx = SRF_FIRSTCALL_INIT();
		old = MemoryContextSwitchTo(fctx->multi_call_memory_ctx);
		st = palloc0(sizeof(ReadState));
		st->data = read_bytes(hash);
		st->chunk = chunk;
		fctx->user_fctx = st;
		MemoryContextSwitchTo(old);
		jam_metrics_end(metrics, JAM_OUTCOME_OK);
	}
	fctx = SRF_PERCALL_SETUP();
	st = fctx->user_fctx;
	n = Min((Size) st->chunk, VARSIZE_ANY_EXHDR(st->data) - st->offset);
	if (n == 0 && st->emitted)
		SRF_RETURN_DONE(fctx);
	st->emitted = true;
	{
		bytea	   *out = palloc(VARHDRSZ + n);

		SET_VARSIZE(out, VARHDRSZ + n);
		memcpy(VARDATA(out), VARDATA_ANY(st->data) + st->offset, n);
		st->offset += n;
		SRF_RETURN_NEXT(fctx, PointerGetDatum(out));
	}
}

PG_FUNCTION_INFO_V1(jam_preimage_meta);

/* jam_preimage_meta(hash) returns hash, size, media_type, refcount, storage_class, created_at. */
Datum
jam_preimage_meta(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_PREIMAGE_META);
	char	   *hash;
	Datum		values[2];
	Datum		meta;

	jam_check_enabled();
	jam_auth_require(JAM_SCOPE_READ, "jam_preimage_meta");
	jam_require_arg(fcinfo, 0, "hash");
	hash = jam_normalize_hash(PG_GETARG_TEXT_PP(0), "hash");
	values[0] = CStringGetTextDatum(hash);

	/* A tenant is not shown the refcount, the one field a transaction keeps unwritten. */
	if (jam_holders_tenant() != NULL)
	{
		bool		read_only = !jam_xact_rows_held();

		SPI_connect();
		meta = jam_holders_meta(jam_holders_tenant(), hash, read_only);
		if (meta == (Datum) 0)
			raise_not_found(hash);
		SPI_finish();
		jam_metrics_end(metrics, JAM_OUTCOME_OK);
		PG_RETURN_DATUM(meta);
	}
	/*
	 * The refcount adds what this transaction has not written yet, rather
	 * than writing it first: each write would leave row versions that every
	 * later read in the transaction steps over.
	 */
	values[1] = Int64GetDatum(jam_xact_unwritten_references(hash));
	SPI_connect();
	if (jam_spi_exec(&select_meta, values, NULL, !jam_xact_rows_held(), 1) == 0)
		raise_not_found(hash);
	meta = jam_spi_copy_jsonb(1);
	SPI_finish();

	jam_metrics_end(metrics, JAM_OUTCOME_OK);
	PG_RETURN_DATUM(meta);
}
