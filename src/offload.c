/*
 * offload.c: moving inline preimages to the blob store (jam_offload, and
 * the blob worker's rounds).
 *
 * Preimages put before the tier was set up, or below a threshold since
 * lowered, stay inline until offloaded.  An offload goes in batches of
 * jam.blob_offload_batch_size preimages, largest first, one transaction
 * each:
 *
 *   1. take the next inline preimages of at least the threshold (a keyset
 *      over the partial index on inline rows' (size, hash), so that no
 *      batch scans what earlier ones passed);
 *   2. for each, lock its hash shared (blob_tier.c), read its bytes, check
 *      that they still hash to their address (corrupt bytes are left where
 *      they are, with a warning), and upload them;
 *   3. point the rows at the store (storage_class 's3', data NULL) in one
 *      UPDATE, and queue the delete of any object whose row went meanwhile;
 *   4. commit.
 *
 * No row lock is held while uploading, only the hash locks the delete
 * queue respects; the rows are locked for the one UPDATE, as a submit
 * locks them to count a reference, so submits are not held up.  A crash
 * or a kill in a batch loses that batch's transaction only: its rows are
 * still inline (its uploads are orphans until the next run uploads them
 * again, under the same keys), and the next run takes them again, since
 * what remains to do is exactly what is still inline.  Nothing else needs
 * remembering.
 *
 * A function cannot commit, so jam_offload() runs the batches in a task
 * worker (retention_worker.c) and waits for it, as jam_cleanup() does.
 */
#include "jam.h"
#include "blob.h"
#include "errors.h"
#include "metrics.h"
#include "retention.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

/* The next candidates after the keyset ($2, $3), largest first; all when $4 is false. */
static JamStatement next_candidates = {
	"SELECT @x(hash), size FROM jam.jam_preimages "
	"WHERE storage_class = 'inline' AND size >= $1 AND (NOT $4 OR (size, hash) < ($2, @h($3))) "
	"ORDER BY size DESC, hash DESC LIMIT $5",
	5, {INT8OID, INT8OID, TEXTOID, BOOLOID, INT4OID}
};

static JamStatement inline_bytes = {
	"SELECT data FROM jam.jam_preimages WHERE hash = @h($1) AND storage_class = 'inline'",
	1, {TEXTOID}
};

static JamStatement point_at_store = {
	"UPDATE jam.jam_preimages SET storage_class = 's3', data = NULL "
	"WHERE hash = ANY (@ha($1)) AND storage_class = 'inline' RETURNING size",
	1, {TEXTARRAYOID}
};

/* Uploads no row names now (deleted meanwhile): their objects go through the queue. */
static JamStatement queue_unnamed = {
	"INSERT INTO jam.jam_blob_deletes (hash, size) "
	"SELECT @h(u.h), u.s FROM unnest($1::text[], $2::bigint[]) AS u(h, s) "
	"WHERE NOT EXISTS (SELECT 1 FROM jam.jam_preimages p WHERE p.hash = @h(u.h) AND p.storage_class = 's3')",
	2, {TEXTARRAYOID, INT8ARRAYOID}
};

static JamStatement count_candidates = {
	"SELECT count(*), coalesce(sum(size), 0)::bigint FROM jam.jam_preimages "
	"WHERE storage_class = 'inline' AND size >= $1",
	1, {INT8OID}
};

/*
 * One batch, in the current transaction: returns how many candidates it
 * took (fewer than the batch size: nothing is left).  run's keyset moves
 * past them.
 */
int64
jam_offload_batch(JamOffloadRun *run)
{
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	int			n;
	char	  **hashes;
	int64	   *sizes;
	Datum	   *uploaded;
	Datum	   *uploaded_sizes;
	int			n_uploaded = 0;
	MemoryContext item;

	SPI_connect();
	values[0] = Int64GetDatum((int64) jam_blob_offload_threshold);
	values[1] = Int64GetDatum(run->last_size);
	values[2] = CStringGetTextDatum(run->last_hash[0] ? run->last_hash : "00");
	values[3] = BoolGetDatum(run->last_hash[0] != '\0');
	values[4] = Int32GetDatum(jam_blob_offload_batch_size);
	n = jam_spi_exec(&next_candidates, values, nulls, true, 0);
	hashes = palloc(sizeof(char *) * Max(n, 1));
	sizes = palloc(sizeof(int64) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		bool		isnull;

		hashes[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		sizes[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
	}
	if (n > 0)
	{
		run->last_size = sizes[n - 1];
		strlcpy(run->last_hash, hashes[n - 1], sizeof(run->last_hash));
	}

	uploaded = palloc(sizeof(Datum) * Max(n, 1));
	uploaded_sizes = palloc(sizeof(Datum) * Max(n, 1));
	/* One preimage's bytes at a time: a batch may hold far more than memory should. */
	item = AllocSetContextCreate(CurrentMemoryContext, "jam offload item", ALLOCSET_DEFAULT_SIZES);
	for (int i = 0; i < n; i++)
	{
		MemoryContext outer;
		bytea	   *data;
		bool		isnull;
		uint8		digest[JAM_HASH_BYTES];
		char		hex[JAM_HASH_HEX_CHARS + 1];
		bool		uploaded_it = false;

		CHECK_FOR_INTERRUPTS();
		(void) jam_blob_lock(hashes[i], false, false);
		outer = MemoryContextSwitchTo(item);
		values[0] = CStringGetTextDatum(hashes[i]);
		if (jam_spi_exec(&inline_bytes, values, NULL, true, 1) == 1)
		{
			data = DatumGetByteaPCopy(jam_spi_result_datum(1, &isnull));
			SPI_freetuptable(SPI_tuptable);
			jam_blake2b256(VARDATA(data), VARSIZE(data) - VARHDRSZ, digest);
			jam_hex_encode(digest, JAM_HASH_BYTES, hex);
			hex[JAM_HASH_HEX_CHARS] = '\0';
			if (strcmp(hex, hashes[i]) != 0)
				ereport(WARNING,
						(errmsg("preimage %s is not offloaded: its inline bytes hash to %s", hashes[i], hex),
						 errhint("The row is damaged; restore the bytes from a backup.")));
			else
			{
				jam_blob_store_put(hashes[i], VARDATA(data), VARSIZE(data) - VARHDRSZ);
				uploaded_it = true;
			}
		}
		MemoryContextSwitchTo(outer);
		MemoryContextReset(item);
		if (!uploaded_it)
		{
			/* deleted, offloaded by another run, or damaged */
			run->counts.skipped++;
			continue;
		}
		uploaded[n_uploaded] = CStringGetTextDatum(hashes[i]);
		uploaded_sizes[n_uploaded] = Int64GetDatum(sizes[i]);
		n_uploaded++;
	}
	MemoryContextDelete(item);

	if (n_uploaded > 0)
	{
		ArrayType  *names = construct_array(uploaded, n_uploaded, TEXTOID, -1, false, TYPALIGN_INT);
		int			moved;

		values[0] = PointerGetDatum(names);
		moved = jam_spi_exec(&point_at_store, values, NULL, false, 0);
		for (int i = 0; i < moved; i++)
		{
			bool		isnull;

			run->counts.bytes += DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
															  SPI_tuptable->tupdesc, 1, &isnull));
		}
		run->counts.offloaded += moved;
		run->counts.skipped += n_uploaded - moved;
		if (moved < n_uploaded)
		{
			values[1] = PointerGetDatum(construct_array(uploaded_sizes, n_uploaded, INT8OID, 8,
														FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
			jam_spi_exec(&queue_unnamed, values, NULL, false, 0);
		}
	}
	SPI_finish();
	run->counts.batches++;
	return n;
}

/*
 * Runs batches, each in a transaction of its own, until none is left or
 * max_batches (0: no limit) are done.  Must run outside any transaction,
 * in a background worker; run->counts grows as batches commit.
 */
void
jam_offload_run(JamOffloadRun *run, int64 max_batches)
{
	int64		n;

	do
	{
		JamOffloadCounts before = run->counts;

		CHECK_FOR_INTERRUPTS();
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, "jam offload: batch");
		n = jam_offload_batch(run);
		PopActiveSnapshot();
		CommitTransactionCommand();
		pgstat_report_activity(STATE_IDLE, NULL);
		/* Counted once committed, as retention counts its batches. */
		jam_blob_metrics_offloaded(run->counts.offloaded - before.offloaded,
								   run->counts.bytes - before.bytes);
	} while (n >= jam_blob_offload_batch_size &&
			 (max_batches == 0 || run->counts.batches < max_batches));
}

/* The answer of jam_offload(). */
static Datum
offload_document(bool dry_run, const JamOffloadRun *run, int64 candidates, int64 candidate_bytes,
				 int64 duration_ms)
{
	char	   *doc;

	if (dry_run)
		doc = psprintf("{\"dry_run\": true, \"threshold\": %d, \"candidates\": " INT64_FORMAT
					   ", \"bytes\": " INT64_FORMAT ", \"duration_ms\": " INT64_FORMAT "}",
					   jam_blob_offload_threshold, candidates, candidate_bytes, duration_ms);
	else
		doc = psprintf("{\"dry_run\": false, \"threshold\": %d, \"offloaded\": " INT64_FORMAT
					   ", \"bytes\": " INT64_FORMAT ", \"skipped\": " INT64_FORMAT
					   ", \"batches\": " INT64_FORMAT ", \"duration_ms\": " INT64_FORMAT "}",
					   jam_blob_offload_threshold, run->counts.offloaded, run->counts.bytes,
					   run->counts.skipped, run->counts.batches, duration_ms);
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(doc));
}

PG_FUNCTION_INFO_V1(jam_offload);

/*
 * jam_offload(dry_run) moves every inline preimage of at least
 * jam.blob_offload_threshold bytes to the blob store, in batches that each
 * commit (see above), and returns {dry_run, threshold, offloaded, bytes,
 * skipped, batches, duration_ms}; a dry run returns {dry_run, threshold,
 * candidates, bytes, duration_ms}, what it would move.
 */
Datum
jam_offload(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_OFFLOAD);
	TimestampTz started = GetCurrentTimestamp();
	JamOffloadRun run;
	bool		dry_run;
	int64		candidates = 0;
	int64		candidate_bytes = 0;
	Datum		doc;

	jam_check_enabled();
	jam_require_arg(fcinfo, 0, "dry_run");
	dry_run = PG_GETARG_BOOL(0);
	if (!jam_blob_catalog())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the blob tier needs jam 1.2"),
				 errhint("Run ALTER EXTENSION jam UPDATE.")));
	memset(&run, 0, sizeof(run));

	if (dry_run)
	{
		Datum		values[1] = {Int64GetDatum((int64) jam_blob_offload_threshold)};
		bool		isnull;

		SPI_connect();
		jam_spi_exec(&count_candidates, values, NULL, true, 1);
		candidates = DatumGetInt64(jam_spi_result_datum(1, &isnull));
		candidate_bytes = DatumGetInt64(jam_spi_result_datum(2, &isnull));
		SPI_finish();
	}
	else
	{
		JamTask		task;
		bool		finished;

		jam_blob_require_store("jam_offload()");
		if (RecoveryInProgress())
			ereport(ERROR,
					(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
					 errmsg("jam_offload() cannot run during recovery")));
		PreventInTransactionBlock(true, "jam_offload()");
		if (TransactionIdIsValid(GetTopTransactionIdIfAny()))
			ereport(ERROR,
					(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
					 errmsg("jam_offload() cannot run in a transaction that has written anything"),
					 errhint("Call it on its own: SELECT jam.jam_offload();")));
		memset(&task, 0, sizeof(task));
		task.kind = JAM_TASK_OFFLOAD;
		task.database_id = MyDatabaseId;
		finished = jam_task_run(&task, "offload");
		run = task.offload;
		if (!finished)
			ereport(ERROR,
					(jam_errcode(JAM_ERR_WORKER_UNAVAILABLE),
					 errmsg("the jam offload worker stopped before it finished"),
					 errdetail("Its " INT64_FORMAT " committed batches offloaded " INT64_FORMAT
							   " preimages (" INT64_FORMAT " bytes).",
							   run.counts.batches, run.counts.offloaded, run.counts.bytes),
					 errhint("What it offloaded stays offloaded; run jam_offload() again to carry on.")));
	}

	doc = offload_document(dry_run, &run, candidates, candidate_bytes,
						   TimestampDifferenceMilliseconds(started, GetCurrentTimestamp()));
	jam_metrics_end(metrics, JAM_OUTCOME_OK);
	PG_RETURN_DATUM(doc);
}
