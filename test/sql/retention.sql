-- retention: jam_cleanup (src/retention.c): the cutoff, the dry run,
-- refcounts (shared preimages, preimages referenced only by reports,
-- re-referenced preimages, a hash listed twice), pending counts,
-- attestations, the log left alone, the preimage retention, batches,
-- disabled retention and the calls it refuses.  Rows are aged by moving
-- their timestamps back.  It runs in a database of its own, so that what
-- other suites leave behind is not cleaned up, nor counted.
\getenv abs_srcdir PG_ABS_SRCDIR
\set own_db jam_retention_regress
\set own_database :abs_srcdir '/sql/include/own_database.psql'
\i :own_database

-- Preimages, packages and reports are named: pre, pkg (a package's report
-- has the package's label).
CREATE TEMP TABLE pre (label text PRIMARY KEY, hash text UNIQUE);
CREATE TEMP TABLE pkg (label text PRIMARY KEY, id text UNIQUE);
CREATE FUNCTION pg_temp.put(label text) RETURNS text LANGUAGE sql AS $$
    INSERT INTO pre VALUES (label, jam.jam_put_preimage(convert_to('retention:' || label, 'UTF8'))->>'hash')
    RETURNING label
$$;
CREATE FUNCTION pg_temp.submit(label text, service_id text, refs text[] DEFAULT '{}') RETURNS text
LANGUAGE sql AS $$
    INSERT INTO pkg VALUES (label, jam.jam_submit_package(service_id, convert_to('retention:' || label, 'UTF8'),
        preimage_hashes => ARRAY(SELECT p.hash FROM unnest(refs) WITH ORDINALITY AS r(l, i)
                                 JOIN pre p ON p.label = r.l ORDER BY r.i))->>'id')
    RETURNING label
$$;
CREATE FUNCTION pg_temp.process(service_id text) RETURNS text LANGUAGE sql AS $$
    SELECT label FROM pkg WHERE id = (SELECT jam.jam_process_next(service_id)->>'package_id')
$$;
-- Ages rows by days and returns how many: a package; a report and its
-- attestations (the reports); a preimage.
CREATE FUNCTION pg_temp.age_package(label text, days integer) RETURNS integer LANGUAGE sql AS $$
    WITH u AS (UPDATE jam.jam_work_packages SET submitted_at = submitted_at - days * interval '1 day'
               WHERE id = (SELECT decode(id, 'hex') FROM pkg WHERE pkg.label = age_package.label) RETURNING 1)
    SELECT count(*)::integer FROM u
$$;
CREATE FUNCTION pg_temp.age_report(label text, days integer) RETURNS integer LANGUAGE sql AS $$
    UPDATE jam.jam_attestations SET created_at = created_at - days * interval '1 day'
    WHERE package_id = (SELECT decode(id, 'hex') FROM pkg WHERE pkg.label = age_report.label);
    WITH u AS (UPDATE jam.jam_work_reports SET created_at = created_at - days * interval '1 day'
               WHERE package_id = (SELECT decode(id, 'hex') FROM pkg WHERE pkg.label = age_report.label) RETURNING 1)
    SELECT count(*)::integer FROM u
$$;
CREATE FUNCTION pg_temp.age_preimage(label text, days integer) RETURNS integer LANGUAGE sql AS $$
    WITH u AS (UPDATE jam.jam_preimages SET created_at = created_at - days * interval '1 day'
               WHERE hash = (SELECT decode(hash, 'hex') FROM pre WHERE pre.label = age_preimage.label) RETURNING 1)
    SELECT count(*)::integer FROM u
$$;
-- What is stored, by label.
CREATE FUNCTION pg_temp.preimages() RETURNS TABLE (preimage text, refcount bigint) LANGUAGE sql AS $$
    SELECT pre.label, p.refcount FROM pre JOIN jam.jam_preimages p ON p.hash = decode(pre.hash, 'hex') ORDER BY 1
$$;
CREATE FUNCTION pg_temp.packages() RETURNS TABLE (package text, status text, report boolean,
                                                   attestations bigint) LANGUAGE sql AS $$
    SELECT pkg.label, p.status,
           EXISTS (SELECT 1 FROM jam.jam_work_reports r WHERE r.package_id = p.id),
           (SELECT count(*) FROM jam.jam_attestations a WHERE a.package_id = p.id)
    FROM pkg JOIN jam.jam_work_packages p ON p.id = decode(pkg.id, 'hex') ORDER BY 1
$$;
CREATE FUNCTION pg_temp.reports() RETURNS TABLE (report text, attestations bigint) LANGUAGE sql AS $$
    SELECT pkg.label, (SELECT count(*) FROM jam.jam_attestations a WHERE a.package_id = r.package_id)
    FROM pkg JOIN jam.jam_work_reports r ON r.package_id = decode(pkg.id, 'hex') ORDER BY 1
$$;
CREATE FUNCTION pg_temp.pending() RETURNS TABLE (service_id text, pending_count bigint) LANGUAGE sql AS $$
    SELECT service_id, pending_count FROM jam.jam_services ORDER BY 1
$$;
-- A cleanup's document without what changes from run to run; cutoff_ok
-- checks the cutoffs against now() (the same transaction's).
CREATE FUNCTION pg_temp.shown(doc jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT doc - 'cutoff' - 'preimage_cutoff' - 'duration_ms'
$$;
CREATE FUNCTION pg_temp.cutoffs_ok(doc jsonb, days integer, preimage_days integer) RETURNS boolean
LANGUAGE sql AS $$
    SELECT (doc->>'cutoff')::timestamptz = now() - days * interval '24 hours'
       AND (doc->>'preimage_cutoff')::timestamptz IS NOT DISTINCT FROM
           now() - preimage_days * interval '24 hours'
       AND (doc->>'duration_ms')::bigint >= 0
$$;

SHOW jam.retention_days;
SHOW jam.preimage_retention_days;
SHOW jam.retention_dry_run;
SHOW jam.retention_batch_size;

-- Nothing stored: nothing to do.
SELECT pg_temp.shown(d) AS empty, pg_temp.cutoffs_ok(d, 30, 30) AS cutoffs_ok
FROM jam_cleanup() AS d;

-- The scene.  Preimages a..h; packages:
--   p1 (svc ret-1, refs a), processed: p1 and its report r1 expire;
--   p2 (ret-2, refs a), pending and recent: a stays, shared with p1 and r1;
--   p3 (ret-3, refs b), processed late: p3 expires, its report does not, so
--     b is kept by a report alone;
--   p4 (ret-4, refs c), pending and expired: c goes with it, and ret-4's
--     pending count drops;
--   p5 (ret-5, refs f), processed, expires with its report; p6 (ret-6,
--     refs f), recent: f is re-referenced and stays;
--   p7 (ret-7, refs h, h), pending and expired: h held one reference;
--   p8 (ret-8, refs g), recent: g, old and unreferenced until p8, stays;
-- d is old and was never referenced; e is recent and unreferenced.
SELECT count(pg_temp.put(l)) AS preimages FROM unnest('{a,b,c,d,e,f,g,h}'::text[]) AS l;
SELECT pg_temp.submit('p1', 'ret-1', '{a}') AS p1;
SELECT pg_temp.process('ret-1') AS processed;
SELECT pg_temp.submit('p2', 'ret-2', '{a}') AS p2;
SELECT pg_temp.submit('p3', 'ret-3', '{b}') AS p3;
SELECT pg_temp.process('ret-3') AS processed;
SELECT pg_temp.submit('p4', 'ret-4', '{c}') AS p4;
SELECT pg_temp.submit('p5', 'ret-5', '{f}') AS p5;
SELECT pg_temp.process('ret-5') AS processed;
SELECT pg_temp.submit('p6', 'ret-6', '{f}') AS p6;
SELECT pg_temp.submit('p7', 'ret-7', '{h,h}') AS p7;
SELECT sum(pg_temp.age_package(l, 40)) AS packages_aged, sum(pg_temp.age_report(l, 40)) AS reports_aged
FROM unnest('{p1,p5}'::text[]) AS l;
SELECT sum(pg_temp.age_package(l, 40)) AS packages_aged FROM unnest('{p3,p4,p7}'::text[]) AS l;
SELECT sum(pg_temp.age_preimage(l, 100)) AS preimages_aged FROM unnest('{a,b,c,d,f,g,h}'::text[]) AS l;
SELECT pg_temp.submit('p8', 'ret-8', '{g}') AS p8;
SELECT * FROM pg_temp.preimages();
SELECT * FROM pg_temp.packages();
SELECT * FROM pg_temp.pending();
SELECT count(*) AS log_entries FROM jam_log_entries \gset
SELECT :log_entries AS log_entries;

-- Disabled: 0 or -1 days; nothing is counted or deleted.
SET jam.retention_days = 0;
SELECT jsonb_pretty(d - 'duration_ms') AS disabled FROM jam_cleanup() AS d;
SET jam.retention_days = -1;
SELECT pg_temp.shown(d) AS disabled FROM jam_cleanup() AS d;
SELECT pg_temp.shown(d) AS disabled_dry_run FROM jam_cleanup(true) AS d;
RESET jam.retention_days;
SELECT count(*) AS preimages_kept FROM pg_temp.preimages();
SELECT count(*) AS packages_kept FROM pg_temp.packages();

-- The dry run counts what the cleanup will delete, and deletes nothing:
-- reports r1 r5 (2 attestations), packages p1 p3 p4 p5 p7, preimages c d h,
-- and 7 references (a twice, f twice, b, c, h).
SELECT jsonb_pretty(pg_temp.shown(d)) AS dry_run, pg_temp.cutoffs_ok(d, 30, 30) AS cutoffs_ok
FROM jam_cleanup(true) AS d;
SET jam.retention_dry_run = on;
SELECT pg_temp.shown(d) AS dry_run_by_default FROM jam_cleanup() AS d;
-- Counting reads only, so it may run in a transaction block.
BEGIN;
SELECT pg_temp.shown(d) AS dry_run_in_a_block FROM jam_cleanup() AS d;
ROLLBACK;
RESET jam.retention_dry_run;
SELECT * FROM pg_temp.preimages();
SELECT * FROM pg_temp.packages();

-- The cleanup deletes just that.
SELECT jsonb_pretty(pg_temp.shown(d)) AS cleanup, pg_temp.cutoffs_ok(d, 30, 30) AS cutoffs_ok
FROM jam_cleanup(false) AS d;
SELECT * FROM pg_temp.preimages();
SELECT * FROM pg_temp.packages();
SELECT * FROM pg_temp.reports();
SELECT * FROM pg_temp.pending();
SELECT count(*) - :log_entries AS log_entries_changed FROM jam_log_entries;
SELECT jam_fsck() - 'preimages_checked' - 'services_checked' AS fsck;
-- The packages' receipts still prove their inclusion.
SELECT count(*) AS receipts, bool_and(jam_receipt(id) IS NOT NULL) AS all_found
FROM pkg WHERE label IN ('p1', 'p4', 'p7');
-- A second run finds nothing left to do.
SELECT pg_temp.shown(d) AS again FROM jam_cleanup() AS d;

-- The preimage retention: unreferenced preimages i (40 days old) and j
-- (100 days old).  60 days: j goes, i stays; 0: preimages are kept;
-- -1 (the default): jam.retention_days, so i goes too.
SELECT pg_temp.put('i') AS i, pg_temp.put('j') AS j;
SELECT pg_temp.age_preimage('i', 40) + pg_temp.age_preimage('j', 100) AS preimages_aged;
SET jam.preimage_retention_days = 0;
SELECT pg_temp.shown(d) AS keep_preimages, d->'preimage_cutoff' AS preimage_cutoff
FROM jam_cleanup() AS d;
SET jam.preimage_retention_days = 60;
SELECT pg_temp.shown(d) AS sixty_days, pg_temp.cutoffs_ok(d, 30, 60) AS cutoffs_ok
FROM jam_cleanup(true) AS d;
SELECT pg_temp.shown(d) AS sixty_days FROM jam_cleanup() AS d;
SELECT * FROM pg_temp.preimages() WHERE preimage IN ('i', 'j');
RESET jam.preimage_retention_days;
SELECT pg_temp.shown(d) AS same_as_packages FROM jam_cleanup() AS d;
SELECT * FROM pg_temp.preimages() WHERE preimage IN ('i', 'j');
-- Packages and reports go whatever the preimage retention.
SET jam.preimage_retention_days = 0;
SELECT pg_temp.submit('p9', 'ret-9', '{e}') AS p9;
SELECT pg_temp.process('ret-9') AS processed;
SELECT pg_temp.age_package('p9', 31) AS package_aged, pg_temp.age_report('p9', 31) AS report_aged,
       pg_temp.age_preimage('e', 31) AS preimage_aged;
SELECT pg_temp.shown(d) AS packages_only FROM jam_cleanup() AS d;
SELECT * FROM pg_temp.preimages() WHERE preimage = 'e';
RESET jam.preimage_retention_days;
SELECT pg_temp.shown(d) AS then_e FROM jam_cleanup() AS d;

-- Batches: with 2 rows a batch, 3 reports take 2 batches, 5 packages 3,
-- and the preimages they free go with them; the preimage phase, which
-- finds nothing left, takes 1.
SET jam.retention_batch_size = 2;
SELECT count(pg_temp.put(l)) AS preimages FROM unnest('{k1,k2,k3,k4,k5}'::text[]) AS l;
SELECT count(pg_temp.submit('q' || n, 'ret-q', ARRAY['k' || n])) AS packages FROM generate_series(1, 5) AS n;
SELECT count(pg_temp.process('ret-q')) AS processed FROM generate_series(1, 3);
SELECT sum(pg_temp.age_package('q' || n, 31)) AS packages_aged, sum(pg_temp.age_report('q' || n, 31)) AS reports_aged,
       sum(pg_temp.age_preimage('k' || n, 31)) AS preimages_aged
FROM generate_series(1, 5) AS n;
SELECT * FROM pg_temp.pending() WHERE service_id = 'ret-q';
SELECT pg_temp.shown(d) AS small_batches FROM jam_cleanup() AS d;
SELECT count(*) AS left_over FROM pg_temp.preimages() WHERE preimage LIKE 'k%';
SELECT * FROM pg_temp.pending() WHERE service_id = 'ret-q';
RESET jam.retention_batch_size;

-- A refcount lower than the references it counts (drift) stops the
-- cleanup rather than going below zero; the batch rolls back whole.
SELECT pg_temp.put('m') AS m;
SELECT pg_temp.submit('p10', 'ret-10', '{m}') AS p10;
SELECT pg_temp.age_package('p10', 31) AS package_aged;
UPDATE jam_preimages SET refcount = 0 WHERE hash = (SELECT decode(hash, 'hex') FROM pre WHERE label = 'm');
SELECT jam_cleanup();
SELECT * FROM pg_temp.packages() WHERE package = 'p10';
SELECT * FROM pg_temp.pending() WHERE service_id = 'ret-10';
SELECT jam_fsck(repair => true)->'drift_count' AS repaired_drift;
SELECT pg_temp.shown(d) AS after_repair FROM jam_cleanup() AS d;
SELECT jam_fsck()->'drift_count' AS drift;

-- Refused: a null argument; with jam disabled; inside a transaction block
-- or after writing in the same transaction (the worker that commits the
-- batches would wait for this transaction's locks).
SELECT expect_error('SELECT jam.jam_cleanup(NULL)') AS null_dry_run;
SET jam.enabled = off;
SELECT expect_error('SELECT jam.jam_cleanup()') AS disabled;
RESET jam.enabled;
BEGIN;
SELECT jam_cleanup(false);
ROLLBACK;
DO $$
BEGIN
    PERFORM jam.jam_put_preimage('retention:written');
    PERFORM jam.jam_cleanup(false);
END
$$;

-- Operators only: PUBLIC may not call it.
SELECT has_function_privilege('public', 'jam.jam_cleanup(boolean)', 'EXECUTE') AS public_may_call;
SELECT proname, provolatile, proisstrict, pg_get_function_arguments(oid) AS arguments
FROM pg_proc WHERE oid = 'jam.jam_cleanup(boolean)'::regprocedure;

-- Scheduling with pg_cron (src/schedule.c; test/t/021_retention_cron.pl
-- runs it): without pg_cron loaded, a clear error.
SELECT expect_error('SELECT jam.jam_schedule_retention()') AS schedule;
SELECT expect_error('SELECT jam.jam_unschedule_retention()') AS unschedule;
SELECT expect_error('SELECT jam.jam_schedule_retention(NULL)') AS null_schedule;
SELECT jam_schedule_retention();
SELECT has_function_privilege('public', 'jam.jam_schedule_retention(text)', 'EXECUTE') AS public_may_schedule,
       has_function_privilege('public', 'jam.jam_unschedule_retention()', 'EXECUTE') AS public_may_unschedule;

\c :regress_db
DROP DATABASE :"own_db";
