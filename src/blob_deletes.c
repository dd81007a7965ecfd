/*
 * blob_deletes.c: the durable queue of object deletes (jam_blob_deletes).
 *
 * An object may go only once the row that named it is gone for good, that
 * is, after the deleting transaction commits: a rollback must leave a live
 * object alone.  So nothing deletes an object directly.  A trigger on
 * jam_preimages (jam_blob_queue_delete) queues the hash of every deleted
 * row of the store in the deleting transaction itself, which commits the
 * entry with the delete or rolls both back; after commit, the blob worker
 * (blob_worker.c), or jam_drain_blob_deletes(), takes entries and deletes
 * their objects, retrying later, with a growing backoff, what the store
 * refuses.  An entry waits jam.blob_delete_delay first, so that a database
 * restored from a backup of that age still finds its objects.
 *
 * Draining an entry takes the hash's lock exclusively without waiting
 * (blob_tier.c; a put in progress holds it, and the entry waits for the
 * next round), then deletes the object only when no row of the store names
 * the hash: the same bytes may have been put again since, under the same
 * key, and that object must stay (the entry is dropped, "kept").
 */
#include "jam.h"
#include "blob.h"
#include "errors.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

/* The longest a failed delete waits before its next attempt. */
#define JAM_BLOB_DELETE_BACKOFF_MAX_S 3600

static JamStatement queue_delete = {
	"INSERT INTO jam.jam_blob_deletes (hash, size) VALUES ($1, $2)",
	2, {BYTEAOID, INT8OID}
};

/* Entries due: past the delay, and past the backoff of their last failure. */
static JamStatement take_due = {
	"SELECT id, @x(hash) FROM jam.jam_blob_deletes "
	"WHERE queued_at <= now() - make_interval(secs => $1) AND next_attempt_at <= now() "
	"ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED",
	2, {INT4OID, INT4OID}
};

static JamStatement still_named = {
	"SELECT 1 FROM jam.jam_preimages WHERE hash = @h($1) AND storage_class = 's3'",
	1, {TEXTOID}
};

static JamStatement drop_entry = {
	"DELETE FROM jam.jam_blob_deletes WHERE id = $1",
	1, {INT8OID}
};

static JamStatement entry_failed = {
	"UPDATE jam.jam_blob_deletes SET attempts = attempts + 1, last_error = $2, "
	"next_attempt_at = now() + make_interval(secs => least(power(2, attempts + 1), $3)) "
	"WHERE id = $1",
	3, {INT8OID, TEXTOID, FLOAT8OID}
};

static JamStatement remaining = {
	"SELECT count(*) FROM jam.jam_blob_deletes", 0, {InvalidOid}
};

PG_FUNCTION_INFO_V1(jam_blob_queue_delete);

/*
 * The AFTER DELETE trigger of jam_preimages for rows in the store: queues
 * the object's delete in the deleting transaction, and has the blob worker
 * woken when it commits.
 */
Datum
jam_blob_queue_delete(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	old;
	Datum		values[2];
	bool		isnull;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		elog(ERROR, "jam_blob_queue_delete must be an AFTER DELETE row trigger");
	desc = trigdata->tg_relation->rd_att;
	old = trigdata->tg_trigtuple;
	values[0] = heap_getattr(old, SPI_fnumber(desc, "hash"), desc, &isnull);
	values[1] = heap_getattr(old, SPI_fnumber(desc, "size"), desc, &isnull);

	SPI_connect();
	jam_spi_exec(&queue_delete, values, NULL, false, 0);
	SPI_finish();
	jam_blob_wake_worker_at_commit();
	return PointerGetDatum(NULL);
}

/*
 * Deletes one object in a subtransaction, so that a store that refuses
 * costs only the attempt.  Returns NULL, or the error's message.
 */
static char *
delete_object(const char *hash_hex)
{
	MemoryContext ctx = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	char	   *failure = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(ctx);
	PG_TRY();
	{
		jam_blob_store_delete(hash_hex);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(ctx);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		/* A cancel or a shutdown is not the store's failure: it stops the drain. */
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED || edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN)
			ReThrowError(edata);
		failure = edata->message;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(ctx);
	CurrentResourceOwner = owner;
	return failure;
}

/*
 * Drains up to max due entries in the current transaction, adding what
 * became of them to *counts.  Stops at the first delete the store fails
 * (the next would most likely fail alike, each after its timeouts).
 * Returns how many entries it took.  The caller commits.
 */
int
jam_blob_drain_batch(int max, JamBlobDrainCounts *counts)
{
	Datum		values[3];
	int			n;
	int64	   *ids;
	char	  **hashes;

	SPI_connect();
	values[0] = Int32GetDatum(jam_blob_delete_delay);
	values[1] = Int32GetDatum(max);
	n = jam_spi_exec(&take_due, values, NULL, false, 0);
	ids = palloc(sizeof(int64) * Max(n, 1));
	hashes = palloc(sizeof(char *) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		bool		isnull;

		ids[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		hashes[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
	}

	for (int i = 0; i < n; i++)
	{
		char	   *failure;

		CHECK_FOR_INTERRUPTS();
		if (!jam_blob_lock(hashes[i], true, true))
		{
			counts->skipped++;
			continue;
		}
		values[0] = CStringGetTextDatum(hashes[i]);
		if (jam_spi_exec(&still_named, values, NULL, false, 1) > 0)
		{
			values[0] = Int64GetDatum(ids[i]);
			jam_spi_exec(&drop_entry, values, NULL, false, 0);
			jam_blob_metrics_delete(JAM_BLOB_DELETE_KEPT);
			counts->kept++;
			continue;
		}
		failure = delete_object(hashes[i]);
		values[0] = Int64GetDatum(ids[i]);
		if (failure == NULL)
		{
			jam_spi_exec(&drop_entry, values, NULL, false, 0);
			jam_blob_metrics_delete(JAM_BLOB_DELETE_DELETED);
			counts->deleted++;
			continue;
		}
		values[1] = CStringGetTextDatum(failure);
		values[2] = Float8GetDatum(JAM_BLOB_DELETE_BACKOFF_MAX_S);
		jam_spi_exec(&entry_failed, values, NULL, false, 0);
		jam_blob_metrics_delete(JAM_BLOB_DELETE_FAILED);
		counts->failed++;
		break;
	}
	SPI_finish();
	return n;
}

PG_FUNCTION_INFO_V1(jam_drain_blob_deletes);

/*
 * jam_drain_blob_deletes(max_deletes) deletes the objects of up to
 * max_deletes due entries of the queue now, as the blob worker does, and
 * returns {deleted, kept, failed, skipped, queued}: for clusters without
 * the worker (pg_cron can run it), and for operators in a hurry.
 */
Datum
jam_drain_blob_deletes(PG_FUNCTION_ARGS)
{
	JamBlobDrainCounts counts;
	int32		max;
	bool		isnull;
	int64		queued;

	jam_check_enabled();
	jam_require_arg(fcinfo, 0, "max_deletes");
	max = PG_GETARG_INT32(0);
	if (max < 1 || max > 100000)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("max_deletes must be between 1 and 100000")));
	if (!jam_blob_catalog())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the blob tier needs jam 1.2"),
				 errhint("Run ALTER EXTENSION jam UPDATE.")));
	jam_blob_require_store("jam_drain_blob_deletes()");

	memset(&counts, 0, sizeof(counts));
	(void) jam_blob_drain_batch(max, &counts);
	SPI_connect();
	jam_spi_exec(&remaining, NULL, NULL, false, 1);
	queued = DatumGetInt64(jam_spi_result_datum(1, &isnull));
	SPI_finish();
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(psprintf(
		"{\"deleted\": " INT64_FORMAT ", \"kept\": " INT64_FORMAT ", \"failed\": " INT64_FORMAT
		", \"skipped\": " INT64_FORMAT ", \"queued\": " INT64_FORMAT "}",
		counts.deleted, counts.kept, counts.failed, counts.skipped, queued))));
}
