/*
 * retention.c: jam_cleanup and the batch engine that deletes expired rows.
 *
 * A cleanup deletes, with cutoff = now - jam.retention_days:
 *
 *   1. reports older than the cutoff, with their attestations;
 *   2. packages older than the cutoff;
 *   3. preimages whose refcount is 0 and that are older than the preimage
 *      cutoff (now - jam.preimage_retention_days, by default the same),
 *
 * lowering, in the transaction that deletes a report or a package, the
 * refcounts it held and its service's counts (of pending packages, and
 * from 1.5 of packages and reports by outcome, which a list's total reads),
 * so that a preimage referenced by anything kept is never deleted,
 * however old it is; a preimage whose last reference goes, and which is
 * older than the preimage cutoff, goes in that same transaction.
 *
 * Each phase goes in batches of at most jam.retention_batch_size rows, one
 * short transaction each: rows are picked with FOR UPDATE SKIP LOCKED, so
 * a batch never waits for a processor or a submitter on the rows it
 * deletes, and what a batch commits stays done if a later one is
 * interrupted; the next cleanup carries on.  The refcounts a batch lowers are aggregated per preimage and
 * locked in hash order, the order submits and processing lock them in.
 *
 * A function cannot commit, so jam_cleanup() runs the batches in a dynamic
 * background worker (retention_worker.c) and waits for it; the static
 * retention worker calls the engine directly.  The verifiable log is never
 * touched.
 */
#include "jam.h"
#include "errors.h"
#include "metrics.h"
#include "retention.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

/* The largest retention in days: far enough back for any data, small enough to subtract. */
#define JAM_RETENTION_DAYS_MAX 1000000

int			jam_retention_days = 30;
int			jam_preimage_retention_days = -1;
int			jam_retention_batch_size = 1000;
bool		jam_retention_dry_run = false;
int			jam_retention_interval = 86400;
bool		jam_retention_worker_enabled = false;
char	   *jam_retention_database = NULL;

/*
 * Defines the retention parameters.  _PG_init calls it before
 * jam_define_gucs(), whose MarkGUCPrefixReserved("jam") would otherwise
 * discard the values postgresql.conf gives them.
 */
void
jam_define_retention_gucs(void)
{
	DefineCustomIntVariable("jam.retention_days",
							"Days packages and reports are kept; 0 or -1 turns cleanup off.",
							"jam_cleanup() deletes reports and packages older than this, and "
							"unreferenced preimages older than jam.preimage_retention_days.",
							&jam_retention_days, 30,
							-1, JAM_RETENTION_DAYS_MAX,
							PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("jam.preimage_retention_days",
							"Days an unreferenced preimage is kept; -1 means jam.retention_days, 0 keeps preimages.",
							NULL,
							&jam_preimage_retention_days, -1,
							-1, JAM_RETENTION_DAYS_MAX,
							PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomBoolVariable("jam.retention_dry_run",
							 "Whether jam_cleanup() only counts what it would delete, by default.",
							 NULL,
							 &jam_retention_dry_run, false,
							 PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("jam.retention_batch_size",
							"Most rows one cleanup transaction deletes.",
							"Smaller batches hold row locks for less time; larger ones commit less often.",
							&jam_retention_batch_size, 1000,
							1, 100000,
							PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("jam.retention_interval",
							"Time between two cleanups of the retention worker.",
							NULL,
							&jam_retention_interval, 86400,
							1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	/*
	 * Parameters fixed at server start can only be defined while the
	 * postmaster preloads jam (elsewhere that is FATAL); without preloading
	 * there is no retention worker for them to configure.
	 */
	if (!process_shared_preload_libraries_in_progress)
		return;

	DefineCustomBoolVariable("jam.retention_worker",
							 "Whether a background worker runs jam_cleanup() every jam.retention_interval.",
							 "Use it where pg_cron is not installed (see jam_schedule_retention).",
							 &jam_retention_worker_enabled, false,
							 PGC_POSTMASTER, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("jam.retention_database",
							   "Database the retention worker cleans up.",
							   NULL,
							   &jam_retention_database, "postgres",
							   PGC_POSTMASTER, 0, NULL, NULL, NULL);
}

/*
 * Each phase's batch picks its rows oldest first from the resume point on,
 * locking them with FOR UPDATE SKIP LOCKED, and deletes them by the ctid
 * the lock returned (the row version it locked, which nobody else can
 * change now).  Should a row have changed between the statement's snapshot
 * and the lock, the delete does not see that version and leaves the row
 * for a later run; nothing is counted for it.
 *
 * Reports: returns how many, the newest deletion time (the next batch's
 * resume point), their package ids (for the attestations), and the
 * references they held, aggregated per preimage.  A report's
 * preimage_hashes are distinct, each holding one reference.
 */
#define DELETE_REPORTS \
	"WITH d AS (" \
	" DELETE FROM jam.jam_work_reports WHERE ctid = ANY (ARRAY(" \
	"  SELECT ctid FROM jam.jam_work_reports WHERE created_at < $1 AND created_at >= $2" \
	"  ORDER BY created_at LIMIT $3 FOR UPDATE SKIP LOCKED))" \
	" RETURNING package_id, service_id, status, preimage_hashes, created_at) " \
	"SELECT c.n, c.newest, c.ids, r.hashes, r.counts"
#define DELETE_REPORTS_FROM \
	" FROM (SELECT count(*) AS n, max(created_at) AS newest, array_agg(@x(package_id)) AS ids FROM d) c, " \
	"     (SELECT array_agg(@x(hash)) AS hashes, array_agg(n) AS counts FROM " \
	"       (SELECT u.hash, count(*) AS n FROM d, unnest(d.preimage_hashes) AS u(hash)" \
	"        GROUP BY u.hash) g) r"

static JamStatement delete_reports = {
	DELETE_REPORTS DELETE_REPORTS_FROM,
	3, {TIMESTAMPTZOID, TIMESTAMPTZOID, INT4OID}
};

/* With the counts by outcome (1.5): also the deleted reports per service, applied and failed. */
static JamStatement delete_reports_counted = {
	DELETE_REPORTS ", s.services, s.applied, s.failed" DELETE_REPORTS_FROM ", "
	"     (SELECT array_agg(service_id) AS services, array_agg(a) AS applied, array_agg(f) AS failed"
	"      FROM (SELECT service_id, count(*) FILTER (WHERE status = 'applied') AS a,"
	"                   count(*) FILTER (WHERE status = 'failed') AS f"
	"            FROM d GROUP BY service_id) g) s",
	3, {TIMESTAMPTZOID, TIMESTAMPTZOID, INT4OID}
};

static JamStatement delete_attestations = {
	"DELETE FROM jam.jam_attestations WHERE package_id = ANY (@ha($1))",
	1, {TEXTARRAYOID}
};

/*
 * Packages, as reports, with the deleted pending packages counted per
 * service.  A package holds one reference per distinct hash it lists (a
 * submit raises each distinct hash once).
 */
#define DELETE_PACKAGES \
	"WITH d AS (" \
	" DELETE FROM jam.jam_work_packages WHERE ctid = ANY (ARRAY(" \
	"  SELECT ctid FROM jam.jam_work_packages WHERE submitted_at < $1 AND submitted_at >= $2" \
	"  ORDER BY submitted_at LIMIT $3 FOR UPDATE SKIP LOCKED))" \
	" RETURNING id, service_id, status, preimage_hashes, submitted_at) " \
	"SELECT c.n, c.newest, s.services, s.counts, r.hashes, r.counts"
#define DELETE_PACKAGES_FROM(which) \
	" FROM (SELECT count(*) AS n, max(submitted_at) AS newest FROM d) c, " \
	"     (SELECT array_agg(service_id) AS services, array_agg(n) AS counts," \
	"             array_agg(a) AS applied, array_agg(f) AS failed FROM " \
	"       (SELECT service_id, count(*) FILTER (WHERE status = 'pending') AS n," \
	"               count(*) FILTER (WHERE status = 'applied') AS a," \
	"               count(*) FILTER (WHERE status = 'failed') AS f" \
	"        FROM d " which " GROUP BY service_id) g) s, " \
	"     (SELECT array_agg(@x(hash)) AS hashes, array_agg(n) AS counts FROM " \
	"       (SELECT hash, count(*) AS n FROM" \
	"         (SELECT DISTINCT d.id, u.hash FROM d, unnest(d.preimage_hashes) AS u(hash)) e" \
	"        GROUP BY hash) g) r"

static JamStatement delete_packages = {
	DELETE_PACKAGES DELETE_PACKAGES_FROM("WHERE status = 'pending'"),
	3, {TIMESTAMPTZOID, TIMESTAMPTZOID, INT4OID}
};

/*
 * With the counts by outcome (1.5): every service that lost packages, with
 * how many were pending, applied and failed.
 */
static JamStatement delete_packages_counted = {
	DELETE_PACKAGES ", s.applied, s.failed" DELETE_PACKAGES_FROM(""),
	3, {TIMESTAMPTZOID, TIMESTAMPTZOID, INT4OID}
};

/*
 * Unreferenced preimages: skipped when locked (a submit may be referencing
 * one), and checked again for refcount 0 on the locked row.
 */
static JamStatement delete_preimages = {
	"WITH d AS ("
	" DELETE FROM jam.jam_preimages WHERE ctid = ANY (ARRAY("
	"  SELECT ctid FROM jam.jam_preimages WHERE refcount = 0 AND created_at < $1 AND created_at >= $2"
	"  ORDER BY created_at LIMIT $3 FOR UPDATE SKIP LOCKED)) AND refcount = 0"
	" RETURNING hash, created_at) "
	"@c(, h AS (DELETE FROM jam.jam_preimage_holders WHERE hash IN (SELECT hash FROM d))) "
	"SELECT count(*), max(created_at) FROM d",
	3, {TIMESTAMPTZOID, TIMESTAMPTZOID, INT4OID}
};

/*
 * Releasing the references deleted rows held ($1 the preimages, $2 how
 * many references each lost) takes three statements.  The first locks the
 * preimages in hash order, the order submits and processing lock them in,
 * so that neither can deadlock the other, and sorts them: a preimage left
 * with no reference that is older than the preimage cutoff $3 (when $4,
 * preimages expire) goes at once, as the preimage phase would delete it;
 * the others have their refcount lowered, one UPDATE each.  Those two run
 * as statements of their own, whose snapshots see the locked versions.
 * The rows are found from the hashes, one index probe each (a batch's
 * thousand hashes as "hash = ANY" made a bitmap scan that took 4.3 ms
 * against 2.9), and locked after the sort: in hash order whatever join
 * the planner picks.
 */
static JamStatement lock_preimages = {
	"SELECT count(*) FILTER (WHERE free), array_agg(ctid) FILTER (WHERE free),"
	" array_agg(ctid) FILTER (WHERE NOT free), array_agg(n) FILTER (WHERE NOT free),"
	" coalesce(sum(n), 0)::bigint "
	"FROM (SELECT l.ctid, d.n, $4 AND l.refcount = d.n AND l.created_at < $3 AS free"
	"      FROM unnest($1::text[], $2::bigint[]) AS d(hash, n)"
	"      JOIN jam.jam_preimages l ON l.hash = @h(d.hash)"
	"      ORDER BY l.hash FOR UPDATE OF l) x",
	4, {TEXTARRAYOID, INT8ARRAYOID, TIMESTAMPTZOID, BOOLOID}
};

static JamStatement delete_freed_preimages = {
	"WITH d AS (DELETE FROM jam.jam_preimages WHERE ctid = ANY ($1) RETURNING hash) "
	"@c(, h AS (DELETE FROM jam.jam_preimage_holders WHERE hash IN (SELECT hash FROM d))) "
	"SELECT count(*) FROM d",
	1, {TIDARRAYOID}
};

static JamStatement lower_refcounts = {
	"UPDATE jam.jam_preimages p SET refcount = p.refcount - d.n"
	" FROM unnest($1::tid[], $2::bigint[]) AS d(ctid, n) WHERE p.ctid = d.ctid",
	2, {TIDARRAYOID, INT8ARRAYOID}
};

/* The services of $1, locked in service order, as every writer of several services locks them. */
#define LOCKED_SERVICES \
	" FROM (SELECT service_id FROM jam.jam_services WHERE service_id = ANY ($1)" \
	"       ORDER BY service_id FOR UPDATE) l,"

/*
 * Lowers the pending, applied and failed package counts of each service in
 * $1 by the matching counts in $2, $3 and $4 (1.5).
 */
static JamStatement release_packages_counted = {
	"UPDATE jam.jam_services s SET pending_count = s.pending_count - d.p,"
	" applied_count = s.applied_count - d.a, failed_count = s.failed_count - d.f"
	LOCKED_SERVICES
	"      unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) AS d(service_id, p, a, f)"
	" WHERE s.service_id = l.service_id AND d.service_id = l.service_id",
	4, {TEXTARRAYOID, INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID}
};

/* Lowers the applied and failed report counts of each service in $1 by $2 and $3 (1.5). */
static JamStatement release_reports_counted = {
	"UPDATE jam.jam_services s SET applied_report_count = s.applied_report_count - d.a,"
	" failed_report_count = s.failed_report_count - d.f"
	LOCKED_SERVICES
	"      unnest($1::text[], $2::bigint[], $3::bigint[]) AS d(service_id, a, f)"
	" WHERE s.service_id = l.service_id AND d.service_id = l.service_id",
	3, {TEXTARRAYOID, INT8ARRAYOID, INT8ARRAYOID}
};

/* Lowers the pending count of each service in $1 by the matching count in $2. */
static JamStatement release_pending = {
	"UPDATE jam.jam_services s SET pending_count = s.pending_count - d.n"
	LOCKED_SERVICES
	"      unnest($1::text[], $2::bigint[]) AS d(service_id, n)"
	" WHERE s.service_id = l.service_id AND d.service_id = l.service_id",
	2, {TEXTARRAYOID, INT8ARRAYOID}
};

/*
 * The dry run: what the batches would delete, counted in one snapshot.  A
 * preimage counts when the references the expired rows hold are all it
 * has.
 */
static JamStatement count_expired = {
	"WITH r AS (SELECT package_id, preimage_hashes FROM jam.jam_work_reports WHERE created_at < $1), "
	"p AS (SELECT id, preimage_hashes FROM jam.jam_work_packages WHERE submitted_at < $1), "
	"refs AS (SELECT hash, count(*) AS n FROM ("
	"  SELECT u.hash FROM r, unnest(r.preimage_hashes) AS u(hash)"
	"  UNION ALL"
	"  SELECT u.hash FROM p, LATERAL (SELECT DISTINCT h FROM unnest(p.preimage_hashes) AS h) AS u(hash)"
	" ) x GROUP BY hash) "
	"SELECT (SELECT count(*) FROM r), "
	"(SELECT count(*) FROM jam.jam_attestations a WHERE a.package_id IN (SELECT package_id FROM r)), "
	"(SELECT count(*) FROM p), "
	"(SELECT coalesce(sum(refs.n), 0)::bigint FROM refs JOIN jam.jam_preimages i ON i.hash = refs.hash), "
	"CASE WHEN $3 THEN (SELECT count(*) FROM jam.jam_preimages i LEFT JOIN refs ON refs.hash = i.hash"
	"                   WHERE i.created_at < $2 AND i.refcount = coalesce(refs.n, 0)) ELSE 0 END",
	3, {TIMESTAMPTZOID, TIMESTAMPTZOID, BOOLOID}
};

typedef enum CleanupPhase
{
	PHASE_REPORTS,
	PHASE_PACKAGES,
	PHASE_PREIMAGES
} CleanupPhase;

static const char *const phase_activity[] = {
	"jam cleanup: reports", "jam cleanup: packages", "jam cleanup: preimages"
};

/*
 * Fills params from the retention settings, with cutoffs counted back
 * from now in days of 24 hours.  Returns false when cleanup is off
 * (jam.retention_days <= 0).
 */
bool
jam_cleanup_params(TimestampTz now, JamCleanupParams *params)
{
	int			preimage_days = jam_preimage_retention_days < 0
		? jam_retention_days : jam_preimage_retention_days;

	memset(params, 0, sizeof(*params));
	params->batch_size = jam_retention_batch_size;
	if (jam_retention_days <= 0)
		return false;
	params->cutoff = now - (int64) jam_retention_days * USECS_PER_DAY;
	params->preimages = preimage_days > 0;
	if (params->preimages)
		params->preimage_cutoff = now - (int64) preimage_days * USECS_PER_DAY;
	return true;
}

/* Column (1-based) of the first result row as an int64, 0 when null. */
static int64
result_int64(int column)
{
	bool		isnull;
	Datum		d = jam_spi_result_datum(column, &isnull);

	return isnull ? 0 : DatumGetInt64(d);
}

/* Column (1-based) of the first result row as a timestamp (never null here). */
static TimestampTz
result_timestamp(int column)
{
	bool		isnull;
	Datum		d = jam_spi_result_datum(column, &isnull);

	if (isnull)
		elog(ERROR, "jam cleanup statement returned a null time");
	return DatumGetTimestampTz(d);
}

/* Column (1-based) of the first result row as an array, NULL when null. */
static ArrayType *
result_array(int column)
{
	bool		isnull;
	Datum		d = jam_spi_result_datum(column, &isnull);

	return isnull ? NULL : DatumGetArrayTypePCopy(d);
}

/*
 * Runs one of the statements that lower a count.  A CHECK violation there
 * means a stored count was already lower than the references it counts:
 * say how to repair it rather than let the count go negative.
 */
static int
exec_release(JamStatement *stmt, Datum *values, const char *nulls)
{
	MemoryContext ctx = CurrentMemoryContext;
	int			n = 0;

	PG_TRY();
	{
		n = jam_spi_exec(stmt, values, nulls, false, 0);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(ctx);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_CHECK_VIOLATION)
			PG_RE_THROW();
		FlushErrorState();
		edata->detail = pstrdup("A refcount or a service's count is lower than the rows it counts: "
								"it has drifted.");
		edata->hint = pstrdup("Run SELECT jam.jam_fsck(repair => true), then jam_cleanup() again.");
		ReThrowError(edata);
	}
	PG_END_TRY();
	return n;
}

/* Number of elements of a one-dimensional array, 0 for NULL. */
static int
n_elements(ArrayType *a)
{
	return a == NULL ? 0 : ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
}

/*
 * Releases the references deleted rows held (see lock_preimages) and adds
 * the decrements and the preimages it deleted to *batch.
 */
static void
release_refs(const JamCleanupParams *params, ArrayType *hashes, ArrayType *counts,
			 JamCleanupCounts *batch)
{
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	int64		n_free;
	int64		decrements;
	ArrayType  *freed;
	ArrayType  *kept;
	ArrayType  *kept_counts;

	if (hashes == NULL)
		return;
	values[0] = PointerGetDatum(hashes);
	values[1] = PointerGetDatum(counts);
	values[2] = TimestampTzGetDatum(params->preimage_cutoff);
	if (!params->preimages)
		nulls[2] = 'n';
	values[3] = BoolGetDatum(params->preimages);
	jam_spi_exec(&lock_preimages, values, nulls, false, 0);
	n_free = result_int64(1);
	freed = result_array(2);
	kept = result_array(3);
	kept_counts = result_array(4);
	decrements = result_int64(5);

	/* The rows are locked: each statement must find every one of them. */
	if (freed != NULL)
	{
		values[0] = PointerGetDatum(freed);
		jam_spi_exec(&delete_freed_preimages, values, NULL, false, 1);
		if (result_int64(1) != n_free)
			elog(ERROR, "jam cleanup did not find every locked preimage it freed");
	}
	if (kept != NULL)
	{
		values[0] = PointerGetDatum(kept);
		values[1] = PointerGetDatum(kept_counts);
		if (exec_release(&lower_refcounts, values, NULL) != n_elements(kept))
			elog(ERROR, "jam cleanup did not find every locked preimage it released");
	}
	batch->preimages_deleted += n_free;
	batch->refcount_decrements += decrements;
}

/*
 * Runs one batch of a phase in its own transaction and adds what it
 * deleted to *batch.  *resume is the oldest creation time the batch looks
 * at; it moves to the newest row the batch deleted, so that no batch scans
 * again past rows earlier batches deleted.  Returns the rows the phase's
 * main table lost.
 */
static int64
run_batch(CleanupPhase phase, const JamCleanupParams *params, TimestampTz *resume,
		  JamCleanupCounts *batch)
{
	Datum		values[3];
	int64		n;
	bool		counted;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "jam cleanup could not connect to SPI");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, phase_activity[phase]);
	counted = jam_services_have_counts();

	values[0] = TimestampTzGetDatum(phase == PHASE_PREIMAGES ? params->preimage_cutoff
									: params->cutoff);
	values[1] = TimestampTzGetDatum(*resume);
	values[2] = Int32GetDatum(params->batch_size);

	switch (phase)
	{
		case PHASE_REPORTS:
			{
				ArrayType  *ids;
				ArrayType  *hashes;
				ArrayType  *counts;
				ArrayType  *services = NULL;
				ArrayType  *applied = NULL;
				ArrayType  *failed = NULL;

				jam_spi_exec(counted ? &delete_reports_counted : &delete_reports, values, NULL,
							 false, 0);
				n = result_int64(1);
				if (n == 0)
					break;
				*resume = result_timestamp(2);
				ids = result_array(3);
				hashes = result_array(4);
				counts = result_array(5);
				if (counted)
				{
					services = result_array(6);
					applied = result_array(7);
					failed = result_array(8);
				}
				values[0] = PointerGetDatum(ids);
				batch->attestations_deleted += jam_spi_exec(&delete_attestations, values, NULL,
															false, 0);
				/* Services first, then preimages: the order submits lock them in. */
				if (services != NULL)
				{
					Datum		svc_values[3] = {PointerGetDatum(services),
						PointerGetDatum(applied), PointerGetDatum(failed)};

					exec_release(&release_reports_counted, svc_values, NULL);
				}
				release_refs(params, hashes, counts, batch);
				batch->reports_deleted += n;
				break;
			}
		case PHASE_PACKAGES:
			{
				ArrayType  *services;
				ArrayType  *pending;
				ArrayType  *hashes;
				ArrayType  *counts;

				jam_spi_exec(counted ? &delete_packages_counted : &delete_packages, values, NULL,
							 false, 0);
				n = result_int64(1);
				if (n == 0)
					break;
				*resume = result_timestamp(2);
				services = result_array(3);
				pending = result_array(4);
				hashes = result_array(5);
				counts = result_array(6);
				/* Services first, then preimages: the order submits lock them in. */
				if (services != NULL)
				{
					Datum		svc_values[4] = {PointerGetDatum(services),
						PointerGetDatum(pending),
						counted ? PointerGetDatum(result_array(7)) : (Datum) 0,
						counted ? PointerGetDatum(result_array(8)) : (Datum) 0};

					exec_release(counted ? &release_packages_counted : &release_pending,
								 svc_values, NULL);
				}
				release_refs(params, hashes, counts, batch);
				batch->packages_deleted += n;
				break;
			}
		case PHASE_PREIMAGES:
			jam_spi_exec(&delete_preimages, values, NULL, false, 0);
			n = result_int64(1);
			if (n > 0)
				*resume = result_timestamp(2);
			batch->preimages_deleted += n;
			break;
		default:
			elog(ERROR, "unknown cleanup phase %d", (int) phase);
	}
	batch->batches++;

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	return n;
}

/* Adds one committed batch's counts to the run's. */
static void
add_counts(JamCleanupCounts *total, const JamCleanupCounts *batch)
{
	total->reports_deleted += batch->reports_deleted;
	total->attestations_deleted += batch->attestations_deleted;
	total->packages_deleted += batch->packages_deleted;
	total->preimages_deleted += batch->preimages_deleted;
	total->refcount_decrements += batch->refcount_decrements;
	total->batches += batch->batches;
}

/*
 * The batch engine: reports, then packages, then preimages (so that the
 * preimages this run frees go in this run), each phase until a batch
 * deletes fewer rows than the batch size.  Must run outside any
 * transaction, in a background worker; *counts grows as batches commit, so
 * that it is right however the run ends.
 */
void
jam_cleanup_batches(const JamCleanupParams *params, JamCleanupCounts *counts)
{
	for (int phase = PHASE_REPORTS; phase <= PHASE_PREIMAGES; phase++)
	{
		TimestampTz resume = DT_NOBEGIN;
		int64		n;

		if (phase == PHASE_PREIMAGES && !params->preimages)
			break;
		do
		{
			JamCleanupCounts batch;

			memset(&batch, 0, sizeof(batch));
			CHECK_FOR_INTERRUPTS();
			n = run_batch((CleanupPhase) phase, params, &resume, &batch);
			add_counts(counts, &batch);
			jam_metrics_cleanup_batch(&batch);
		} while (n >= params->batch_size);
	}
}

/*
 * The dry run: fills *counts with what jam_cleanup_batches would delete now
 * (batches stays 0), reading only.  Needs SPI.
 */
void
jam_cleanup_count(const JamCleanupParams *params, JamCleanupCounts *counts)
{
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};

	values[0] = TimestampTzGetDatum(params->cutoff);
	values[1] = TimestampTzGetDatum(params->preimage_cutoff);
	if (!params->preimages)
		nulls[1] = 'n';
	values[2] = BoolGetDatum(params->preimages);

	jam_spi_exec(&count_expired, values, nulls, true, 1);
	memset(counts, 0, sizeof(*counts));
	counts->reports_deleted = result_int64(1);
	counts->attestations_deleted = result_int64(2);
	counts->packages_deleted = result_int64(3);
	counts->refcount_decrements = result_int64(4);
	counts->preimages_deleted = result_int64(5);
}

static void
append_timestamp(StringInfo s, bool valid, TimestampTz ts)
{
	char		buf[MAXDATELEN + 1];

	if (!valid)
		appendStringInfoString(s, "null");
	else
		appendStringInfo(s, "\"%s\"", JsonEncodeDateTime(buf, TimestampTzGetDatum(ts),
														 TIMESTAMPTZOID, NULL));
}

/*
 * The result of a cleanup as a JSON object on one line: what jam_cleanup()
 * returns and what the log line shows.
 */
char *
jam_cleanup_document(bool disabled, bool dry_run, const JamCleanupParams *params,
					 const JamCleanupCounts *counts, int64 duration_ms)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfo(&s, "{\"disabled\": %s, \"dry_run\": %s, \"cutoff\": ",
					 disabled ? "true" : "false", dry_run ? "true" : "false");
	append_timestamp(&s, !disabled, params->cutoff);
	appendStringInfoString(&s, ", \"preimage_cutoff\": ");
	append_timestamp(&s, !disabled && params->preimages, params->preimage_cutoff);
	appendStringInfo(&s,
					 ", \"reports_deleted\": " INT64_FORMAT
					 ", \"attestations_deleted\": " INT64_FORMAT
					 ", \"packages_deleted\": " INT64_FORMAT
					 ", \"preimages_deleted\": " INT64_FORMAT
					 ", \"refcount_decrements\": " INT64_FORMAT
					 ", \"batches\": " INT64_FORMAT
					 ", \"duration_ms\": " INT64_FORMAT "}",
					 counts->reports_deleted, counts->attestations_deleted,
					 counts->packages_deleted, counts->preimages_deleted,
					 counts->refcount_decrements, counts->batches, duration_ms);
	return s.data;
}

/*
 * Runs the batches in a dynamic background worker, which commits each one,
 * and waits for it.  The worker would wait forever for a lock this
 * transaction held, so the caller must not be in a transaction block nor
 * have written anything.
 */
static void
cleanup_in_worker(const JamCleanupParams *params, JamCleanupCounts *counts)
{
	JamTask		task;
	bool		finished;

	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("jam_cleanup() cannot delete during recovery"),
				 errhint("Run it on the primary; jam_cleanup(dry_run => true) counts on a standby.")));
	PreventInTransactionBlock(true, "jam_cleanup()");
	if (TransactionIdIsValid(GetTopTransactionIdIfAny()))
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("jam_cleanup() cannot run in a transaction that has written anything"),
				 errhint("Call it on its own: SELECT jam.jam_cleanup();")));

	memset(&task, 0, sizeof(task));
	task.kind = JAM_TASK_CLEANUP;
	task.database_id = MyDatabaseId;
	task.cleanup = *params;
	finished = jam_task_run(&task, "cleanup");
	*counts = task.counts;
	if (!finished)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_WORKER_UNAVAILABLE),
				 errmsg("the jam cleanup worker stopped before it finished"),
				 errdetail("Its " INT64_FORMAT " committed batches deleted " INT64_FORMAT
						   " reports, " INT64_FORMAT " packages and " INT64_FORMAT " preimages.",
						   task.counts.batches, task.counts.reports_deleted,
						   task.counts.packages_deleted, task.counts.preimages_deleted),
				 errhint("What it deleted stays deleted, with every refcount right; "
						 "run jam_cleanup() again to carry on.")));
}

PG_FUNCTION_INFO_V1(jam_cleanup);

/*
 * jam_cleanup(dry_run) deletes what has outlived jam.retention_days (see
 * the top of this file), or with dry_run only counts it, and returns
 * {disabled, dry_run, cutoff, preimage_cutoff, reports_deleted,
 * attestations_deleted, packages_deleted, preimages_deleted,
 * refcount_decrements, batches, duration_ms}, which it also logs as one
 * line "jam cleanup: {...}".
 */
Datum
jam_cleanup(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_CLEANUP);
	TimestampTz started = GetCurrentTimestamp();
	JamCleanupParams params;
	JamCleanupCounts counts;
	bool		dry_run;
	bool		enabled;
	char	   *doc;

	jam_check_enabled();
	jam_require_arg(fcinfo, 0, "dry_run");
	dry_run = PG_GETARG_BOOL(0);

	memset(&counts, 0, sizeof(counts));
	enabled = jam_cleanup_params(GetCurrentTransactionStartTimestamp(), &params);
	if (enabled && dry_run)
	{
		SPI_connect();
		jam_cleanup_count(&params, &counts);
		SPI_finish();
	}
	else if (enabled)
		cleanup_in_worker(&params, &counts);

	doc = jam_cleanup_document(!enabled, dry_run, &params, &counts,
							   TimestampDifferenceMilliseconds(started, GetCurrentTimestamp()));
	jam_metrics_cleanup_run(!enabled ? JAM_CLEANUP_DISABLED : dry_run ? JAM_CLEANUP_DRY_RUN
							: JAM_CLEANUP_DELETE, GetCurrentTimestamp() - started);
	ereport(LOG,
			(errmsg("jam cleanup: %s", doc),
			 errhidestmt(true)));
	jam_metrics_end(metrics, JAM_OUTCOME_OK);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(doc)));
}
