/*
 * fsck.c: jam_fsck, which recounts what jam keeps counts of.
 *
 * A preimage's refcount must equal the number of packages (one per
 * distinct hash a package lists) and reports (one per hash in its
 * preimage_hashes) that reference it; a service's pending_count must equal
 * its packages in the pending state, and (1.5) its applied_count and
 * failed_count, applied_report_count and failed_report_count its packages
 * and reports in those states.  jam_fsck computes them all in one
 * statement, so in one snapshot, and reports every difference; with repair
 * it first locks the four tables against writes (SHARE ROW EXCLUSIVE, which
 * readers pass) so that nothing changes between counting and fixing, then
 * sets each drifted count to what it should be, in the same statement.
 * References to preimages that are not stored at all cannot be repaired;
 * they are reported as missing.  With a blob store, the store's objects
 * are checked against the rows too (blob_fsck.c), first, before anything
 * is locked.
 */
#include "jam.h"
#include "blob.h"
#include "errors.h"
#include "metrics.h"
#include "xact_rows.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"

/* Lists in the report stop at this many entries; the counts are complete. */
#define JAM_FSCK_LIST_MAX "100"

/* The references to each preimage, and the refcounts that differ from them. */
#define FSCK_REFS \
	"WITH refs AS (SELECT hash, count(*) AS n FROM (" \
	"  SELECT u.hash FROM jam.jam_work_packages p," \
	"    LATERAL (SELECT DISTINCT h FROM unnest(p.preimage_hashes) AS h) AS u(hash)" \
	"  UNION ALL" \
	"  SELECT u.hash FROM jam.jam_work_reports r, unnest(r.preimage_hashes) AS u(hash)" \
	" ) x GROUP BY hash), " \
	"drift AS (SELECT i.hash, i.refcount AS stored, coalesce(refs.n, 0) AS expected" \
	" FROM jam.jam_preimages i LEFT JOIN refs ON refs.hash = i.hash" \
	" WHERE i.refcount <> coalesce(refs.n, 0)), " \
	"missing AS (SELECT refs.hash FROM refs" \
	" WHERE NOT EXISTS (SELECT 1 FROM jam.jam_preimages i WHERE i.hash = refs.hash)), "

#define FSCK_EXPECTED \
	FSCK_REFS \
	"pending AS (SELECT s.service_id, s.pending_count AS stored, coalesce(c.n, 0) AS expected" \
	" FROM jam.jam_services s LEFT JOIN (SELECT service_id, count(*) AS n" \
	"   FROM jam.jam_work_packages WHERE status = 'pending' GROUP BY service_id) c" \
	"   ON c.service_id = s.service_id" \
	" WHERE s.pending_count <> coalesce(c.n, 0))"

/*
 * With the counts by outcome (1.5): every count of every service against
 * its rows, in one set, so that a repair writes each service row once.
 */
#define FSCK_EXPECTED_COUNTED \
	FSCK_REFS \
	"expected AS (SELECT s.service_id, v.count, v.stored, v.expected" \
	" FROM jam.jam_services s" \
	" LEFT JOIN (SELECT service_id, count(*) FILTER (WHERE status = 'pending') AS pending," \
	"     count(*) FILTER (WHERE status = 'applied') AS applied," \
	"     count(*) FILTER (WHERE status = 'failed') AS failed" \
	"   FROM jam.jam_work_packages GROUP BY service_id) p ON p.service_id = s.service_id" \
	" LEFT JOIN (SELECT service_id, count(*) FILTER (WHERE status = 'applied') AS applied," \
	"     count(*) FILTER (WHERE status = 'failed') AS failed" \
	"   FROM jam.jam_work_reports GROUP BY service_id) r ON r.service_id = s.service_id," \
	" LATERAL (VALUES ('pending_count', s.pending_count, coalesce(p.pending, 0))," \
	"   ('applied_count', s.applied_count, coalesce(p.applied, 0))," \
	"   ('failed_count', s.failed_count, coalesce(p.failed, 0))," \
	"   ('applied_report_count', s.applied_report_count, coalesce(r.applied, 0))," \
	"   ('failed_report_count', s.failed_report_count, coalesce(r.failed, 0)))" \
	"   AS v(count, stored, expected)), " \
	"pending AS (SELECT service_id, stored, expected FROM expected" \
	" WHERE count = 'pending_count' AND stored <> expected), " \
	"outcomes AS (SELECT service_id, count, stored, expected FROM expected" \
	" WHERE count <> 'pending_count' AND stored <> expected)"

#define FSCK_REPORT_FIELDS \
	"'preimages_checked', (SELECT count(*) FROM jam.jam_preimages), " \
	"'services_checked', (SELECT count(*) FROM jam.jam_services), " \
	"'drift_count', (SELECT count(*) FROM drift), " \
	"'refcount_drift', (SELECT coalesce(jsonb_agg(jsonb_build_object(" \
	"   'hash', @x(hash), 'stored', stored, 'expected', expected) ORDER BY hash), '[]')" \
	"   FROM (SELECT * FROM drift ORDER BY hash LIMIT " JAM_FSCK_LIST_MAX ") d), " \
	"'pending_drift_count', (SELECT count(*) FROM pending), " \
	"'pending_drift', (SELECT coalesce(jsonb_agg(jsonb_build_object(" \
	"   'service_id', service_id, 'stored', stored, 'expected', expected) ORDER BY service_id), '[]')" \
	"   FROM (SELECT * FROM pending ORDER BY service_id LIMIT " JAM_FSCK_LIST_MAX ") d), " \
	"'missing_count', (SELECT count(*) FROM missing), " \
	"'missing_preimages', (SELECT coalesce(jsonb_agg(@x(hash) ORDER BY hash), '[]')" \
	"   FROM (SELECT hash FROM missing ORDER BY hash LIMIT " JAM_FSCK_LIST_MAX ") d), "

#define FSCK_REPORT(repaired) \
	"SELECT jsonb_build_object(" FSCK_REPORT_FIELDS "'repaired', " repaired ")"

#define FSCK_REPORT_COUNTED(repaired) \
	"SELECT jsonb_build_object(" FSCK_REPORT_FIELDS \
	"'count_drift_count', (SELECT count(*) FROM outcomes), " \
	"'count_drift', (SELECT coalesce(jsonb_agg(jsonb_build_object(" \
	"   'service_id', service_id, 'count', count, 'stored', stored, 'expected', expected)" \
	"   ORDER BY service_id, count), '[]')" \
	"   FROM (SELECT * FROM outcomes ORDER BY service_id, count LIMIT " JAM_FSCK_LIST_MAX ") d), " \
	"'repaired', " repaired ")"

#define FIX_REFCOUNTS \
	"fix_refcounts AS (UPDATE jam.jam_preimages i SET refcount = drift.expected FROM drift" \
	" WHERE i.hash = drift.hash RETURNING 1), "

static JamStatement fsck_check = {
	FSCK_EXPECTED " " FSCK_REPORT("false"),
	0, {InvalidOid}
};

static JamStatement fsck_repair = {
	FSCK_EXPECTED ", " FIX_REFCOUNTS
	"fix_pending AS (UPDATE jam.jam_services s SET pending_count = pending.expected FROM pending"
	" WHERE s.service_id = pending.service_id RETURNING 1) "
	FSCK_REPORT("(SELECT count(*) FROM fix_refcounts) + (SELECT count(*) FROM fix_pending) > 0"),
	0, {InvalidOid}
};

static JamStatement fsck_check_counted = {
	FSCK_EXPECTED_COUNTED " " FSCK_REPORT_COUNTED("false"),
	0, {InvalidOid}
};

/* A service row with any count off gets all five, in one UPDATE. */
static JamStatement fsck_repair_counted = {
	FSCK_EXPECTED_COUNTED ", " FIX_REFCOUNTS
	"fix_counts AS (UPDATE jam.jam_services s SET"
	" pending_count = e.pending_count, applied_count = e.applied_count, failed_count = e.failed_count,"
	" applied_report_count = e.applied_report_count, failed_report_count = e.failed_report_count"
	" FROM (SELECT service_id,"
	"   max(expected) FILTER (WHERE count = 'pending_count') AS pending_count,"
	"   max(expected) FILTER (WHERE count = 'applied_count') AS applied_count,"
	"   max(expected) FILTER (WHERE count = 'failed_count') AS failed_count,"
	"   max(expected) FILTER (WHERE count = 'applied_report_count') AS applied_report_count,"
	"   max(expected) FILTER (WHERE count = 'failed_report_count') AS failed_report_count"
	"   FROM expected GROUP BY service_id HAVING bool_or(stored <> expected)) e"
	" WHERE s.service_id = e.service_id RETURNING 1) "
	FSCK_REPORT_COUNTED("(SELECT count(*) FROM fix_refcounts) + (SELECT count(*) FROM fix_counts) > 0"),
	0, {InvalidOid}
};

static JamStatement lock_tables = {
	"LOCK TABLE jam.jam_work_packages, jam.jam_work_reports, jam.jam_preimages, jam.jam_services "
	"IN SHARE ROW EXCLUSIVE MODE",
	0, {InvalidOid}
};

PG_FUNCTION_INFO_V1(jam_fsck);

/*
 * jam_fsck(repair) returns {preimages_checked, services_checked,
 * drift_count, refcount_drift: [{hash, stored, expected}], pending_drift_count,
 * pending_drift: [{service_id, stored, expected}], missing_count,
 * missing_preimages: [hash], (1.5) count_drift_count, count_drift:
 * [{service_id, count, stored, expected}], repaired}, listing at most 100 entries of each
 * kind; with repair, the drift it reports is fixed ("repaired": true when
 * there was any).  With a blob store, "blob_store" reports its orphans and
 * missing objects (blob_fsck.c); repair queues the orphans' deletes.
 */
Datum
jam_fsck(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_FSCK);
	bool		repair;
	bool		flushed;
	bool		counted;
	Datum		doc;
	Datum		store = (Datum) 0;

	jam_check_enabled();
	jam_require_arg(fcinfo, 0, "repair");
	repair = PG_GETARG_BOOL(0);

	/*
	 * A transaction snapshot taken before the lock could miss writes that
	 * committed since; each statement must see the locked tables afresh.
	 */
	if (repair && IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("jam_fsck(repair => true) must run at the READ COMMITTED isolation level")));

	/* The store is listed before the tables are locked: it may take a while. */
	if (jam_blob_tier_ready())
		store = jam_blob_fsck(repair);

	/* Counts this transaction has kept in memory are written first, as they are. */
	flushed = jam_xact_rows_flush();
	SPI_connect();
	counted = jam_services_have_counts();
	if (repair)
	{
		jam_spi_exec(&lock_tables, NULL, NULL, false, 0);
		jam_spi_exec(counted ? &fsck_repair_counted : &fsck_repair, NULL, NULL, false, 0);
	}
	else
		jam_spi_exec(counted ? &fsck_check_counted : &fsck_check, NULL, NULL, !flushed, 0);
	doc = jam_spi_copy_jsonb(1);
	SPI_finish();
	if (store != (Datum) 0)
		doc = jam_with_member(doc, "blob_store", store);

	jam_metrics_end(metrics, JAM_OUTCOME_OK);
	PG_RETURN_DATUM(doc);
}
