-- list_totals: the total of jam_list_packages and jam_list_reports, read
-- from the counts each service row keeps (1.5; src/list.c): always the
-- number of rows that match, through single and batched submits,
-- processing that applies and fails, savepoints and retention, for an
-- operator and for a tenant's token; without reading the listed tables
-- beyond the page; and jam_fsck recounts and repairs those counts.  It runs
-- in a database of its own, so that its counts are only its own rows.
\getenv abs_srcdir PG_ABS_SRCDIR
\set own_db jam_list_totals_regress
\set own_database :abs_srcdir '/sql/include/own_database.psql'
\i :own_database

-- A refine that fails the packages whose payload starts with "bad".
CREATE FUNCTION public.lt_refine(payload bytea, inputs bytea[]) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF convert_from(payload, 'UTF8') LIKE 'bad%' THEN
        RAISE EXCEPTION 'refused';
    END IF;
    RETURN payload;
END
$$;

-- disagreements(): every filter of both lists (no filter, each service,
-- each status, each pair) whose total is not the count of its rows, and
-- checked: how many filters were compared.
CREATE FUNCTION pg_temp.filters() RETURNS TABLE (list text, service_id text, status text)
LANGUAGE sql AS $$
    SELECT l, s, st
    FROM (VALUES ('packages'), ('reports')) AS a(l),
         (SELECT NULL::text UNION ALL SELECT service_id FROM jam.jam_services) AS b(s),
         (VALUES (NULL::text), ('pending'), ('applied'), ('failed')) AS c(st)
    WHERE l = 'packages' OR st IS DISTINCT FROM 'pending'
$$;
CREATE FUNCTION pg_temp.disagreements() RETURNS TABLE (list text, service_id text, status text,
                                                       total bigint, counted bigint)
LANGUAGE sql AS $$
    SELECT * FROM (
        SELECT f.list, f.service_id, f.status,
               CASE f.list WHEN 'packages'
                   THEN (jam.jam_list_packages(f.status, f.service_id, 1)->>'total')::bigint
                   ELSE (jam.jam_list_reports(f.service_id, f.status, 1)->>'total')::bigint END AS total,
               CASE f.list WHEN 'packages'
                   THEN (SELECT count(*) FROM jam.jam_work_packages p
                         WHERE (f.service_id IS NULL OR p.service_id = f.service_id)
                           AND (f.status IS NULL OR p.status = f.status))
                   ELSE (SELECT count(*) FROM jam.jam_work_reports r
                         WHERE (f.service_id IS NULL OR r.service_id = f.service_id)
                           AND (f.status IS NULL OR r.status = f.status)) END AS counted
        FROM pg_temp.filters() f) x
    WHERE total IS DISTINCT FROM counted
$$;
CREATE FUNCTION pg_temp.agree() RETURNS text LANGUAGE sql AS $$
    SELECT CASE WHEN n = 0 THEN 'all ' || (SELECT count(*) FROM pg_temp.filters()) || ' totals agree'
                ELSE n || ' totals differ' END
    FROM (SELECT count(*) AS n FROM pg_temp.disagreements()) d
$$;
-- counts(service): the service row's counts, as pending/applied/failed packages, then reports.
CREATE FUNCTION pg_temp.counts(svc text) RETURNS text LANGUAGE sql AS $$
    SELECT format('%s/%s/%s packages, %s/%s reports', pending_count, applied_count, failed_count,
                  applied_report_count, failed_report_count)
    FROM jam.jam_services WHERE service_id = svc
$$;

-- The columns, and jam_services' checks: one for all its counts (each
-- CHECK is compiled again at every write of this hot row).
SELECT attname, format_type(atttypid, atttypmod) AS type, attnotnull, pg_get_expr(d.adbin, d.adrelid) AS "default"
FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = 'jam.jam_services'::regclass AND attname LIKE '%\_count' ORDER BY attnum;
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
WHERE conrelid = 'jam.jam_services'::regclass AND contype = 'c' ORDER BY conname;

SELECT jam_register_service('lt-a', 'public.lt_refine(bytea,bytea[])')->>'service_id' AS registered;
SELECT jam_register_service('lt-b', 'public.lt_refine(bytea,bytea[])')->>'service_id' AS registered;
SELECT jam_register_service('lt-t', 'public.lt_refine(bytea,bytea[])', 'tenant-t')->>'service_id' AS registered;
SELECT pg_temp.agree() AS nothing_yet;

-- Submits, one by one and in a batch.
SELECT count(jam_submit_package('lt-a', convert_to(p, 'UTF8'))) AS submitted
FROM unnest(ARRAY['good 1', 'good 2', 'bad 1']) AS p;
SELECT jsonb_array_length(jam_submit_packages('lt-b', ARRAY[convert_to('good 3', 'UTF8'),
       convert_to('bad 2', 'UTF8'), convert_to('good 4', 'UTF8')])->'packages') AS batched;
SELECT jam_submit_package('lt-t', convert_to('good 5', 'UTF8'))->>'status' AS tenant_package;
SELECT pg_temp.counts('lt-a') AS lt_a, pg_temp.counts('lt-b') AS lt_b;
SELECT pg_temp.agree() AS all_pending;

-- Processing: applied and failed.
SELECT jam_process_packages('lt-a', 2)->'processed' AS processed;
SELECT jam_process_next('lt-b')->>'status' AS first, jam_process_next('lt-b')->>'status' AS second;
SELECT pg_temp.counts('lt-a') AS lt_a, pg_temp.counts('lt-b') AS lt_b;
SELECT pg_temp.agree() AS some_processed;

-- Within a transaction, a list sees the transaction's own submits and
-- outcomes (kept in memory until then); a savepoint rolled back undoes its share.
BEGIN;
SELECT jam_submit_package('lt-a', convert_to('good 6', 'UTF8'))->>'status' AS submitted;
SELECT jam_list_packages('pending', 'lt-a')->'total' AS pending_in_lt_a;
SELECT jam_process_next('lt-a')->>'status' AS processed;
SELECT jam_list_packages('applied', 'lt-a')->'total' AS applied_in_lt_a,
       jam_list_reports('lt-a', 'failed')->'total' AS failed_reports_in_lt_a;
SAVEPOINT s;
SELECT jam_submit_package('lt-a', convert_to('bad 3', 'UTF8'))->>'status' AS submitted;
SELECT jam_process_next('lt-a')->>'status' AS processed;
SELECT jam_list_packages(NULL, 'lt-a')->'total' AS lt_a_in_savepoint,
       jam_list_reports('lt-a')->'total' AS lt_a_reports_in_savepoint;
ROLLBACK TO SAVEPOINT s;
SELECT jam_list_packages(NULL, 'lt-a')->'total' AS lt_a_after_rollback,
       jam_list_reports('lt-a')->'total' AS lt_a_reports_after_rollback;
SELECT pg_temp.agree() AS in_transaction;
COMMIT;
SELECT pg_temp.counts('lt-a') AS lt_a;
SELECT pg_temp.agree() AS committed;

-- A tenant's token: the totals of its services only.
SELECT jam_create_token('lt-tenant', '{jam:read,jam:process}', NULL, 'tenant-t') AS tenant_token \gset
SELECT (jam_list_packages()->'total')::int AS tenant_packages,
       (jam_list_packages('pending')->'total')::int AS tenant_pending
FROM jam_authenticate(:'tenant_token');
SELECT jam_process_next()->>'status' AS processed FROM jam_authenticate(:'tenant_token');
SELECT (jam_list_reports()->'total')::int AS tenant_reports,
       (jam_list_packages('applied')->'total')::int AS tenant_applied
FROM jam_authenticate(:'tenant_token');
SELECT (jam_list_packages()->'total')::int AS all_packages;
SELECT pg_temp.agree() AS after_tenant;

-- Retention: packages and reports older than the cutoff go, with their counts.
UPDATE jam.jam_work_packages SET submitted_at = submitted_at - interval '100 days'
WHERE service_id = 'lt-b' OR convert_from(payload, 'UTF8') = 'good 1';
UPDATE jam.jam_work_reports SET created_at = created_at - interval '100 days' WHERE service_id = 'lt-b';
SELECT d->'packages_deleted' AS packages_deleted, d->'reports_deleted' AS reports_deleted
FROM jam_cleanup() AS d;
SELECT pg_temp.counts('lt-a') AS lt_a, pg_temp.counts('lt-b') AS lt_b;
SELECT pg_temp.agree() AS after_cleanup;

-- The total costs one row per matching service: with 5,000 more packages,
-- processed, the first page reads a few blocks of each table and its
-- indexes, where counting the rows would read them all.
CREATE FUNCTION pg_temp.blocks(tab regclass) RETURNS bigint LANGUAGE sql AS $$
    SELECT sum(pg_stat_get_xact_blocks_fetched(c))::bigint
    FROM (SELECT tab::oid UNION ALL SELECT indexrelid FROM pg_index WHERE indrelid = tab) AS r(c)
$$;
SELECT jsonb_array_length(jam_submit_packages('lt-bulk', ARRAY(
       SELECT convert_to('bulk ' || g, 'UTF8') FROM generate_series(1, 5000) g))->'packages') AS bulk;
SELECT jam_process_packages('lt-bulk', 5000)->'processed' AS processed;
SELECT pg_relation_size('jam.jam_work_packages') / 8192 > 100 AS packages_span_over_100_blocks,
       pg_relation_size('jam.jam_work_reports') / 8192 > 50 AS reports_span_over_50_blocks;
BEGIN;
SELECT pg_temp.blocks('jam.jam_work_packages') AS packages_before,
       pg_temp.blocks('jam.jam_work_reports') AS reports_before \gset
SELECT jam_list_packages("limit" => 10)->'total' AS packages_total,
       jam_list_packages('applied', "limit" => 10)->'total' AS applied_total,
       jam_list_reports("limit" => 10)->'total' AS reports_total;
SELECT pg_temp.blocks('jam.jam_work_packages') - :packages_before < 15 AS packages_page_only,
       pg_temp.blocks('jam.jam_work_reports') - :reports_before < 15 AS reports_page_only;
COMMIT;
SELECT pg_temp.agree() AS with_bulk;

-- Lists between submits in one transaction: the rows it has not written
-- yet are counted from their copies, so the 500th pair reads what the
-- first does (writing the copies at each list would leave a version of the
-- service row per call, which every later read of jam_services steps over).
BEGIN;
SELECT count(*) FILTER (WHERE total = n) AS totals_right
FROM generate_series(1, 500) n,
     LATERAL (SELECT jam_submit_package('lt-pairs', convert_to('pair ' || n, 'UTF8'))) s,
     LATERAL (SELECT (jam_list_packages(NULL, 'lt-pairs', 1)->>'total')::int AS total) l;
SELECT pg_temp.blocks('jam.jam_services') AS services_before \gset
SELECT jam_submit_package('lt-pairs', convert_to('pair 501', 'UTF8'))->>'status' AS submitted,
       jam_list_packages(NULL, 'lt-pairs', 1)->'total' AS total;
SELECT pg_temp.blocks('jam.jam_services') - :services_before < 6 AS late_pair_reads_few_blocks,
       pg_relation_size('jam.jam_services') / 8192 < 6 AS service_table_stays_small;
COMMIT;
SELECT pg_temp.counts('lt-pairs') AS lt_pairs;

-- A service row changed by SQL in the same transaction (jam_register_service)
-- is written back by its id: the copy's row version is gone.
BEGIN;
SELECT jam_submit_package('lt-moved', convert_to('moved 1', 'UTF8'))->>'status' AS submitted;
SELECT jam_list_packages(NULL, 'lt-moved', 1)->'total' AS total;
SELECT jam_register_service('lt-moved', NULL, NULL, 5)->'share' AS share;
SELECT jam_submit_package('lt-moved', convert_to('moved 2', 'UTF8'))->>'status' AS submitted;
COMMIT;
SELECT pg_temp.counts('lt-moved') AS lt_moved, (SELECT share FROM jam.jam_services WHERE service_id = 'lt-moved');
SELECT pg_temp.agree() AS after_pairs;

-- jam_fsck recounts: drifted counts are reported, then repaired.
UPDATE jam.jam_services SET applied_count = applied_count + 5, failed_report_count = 7
WHERE service_id = 'lt-a';
SELECT f->'count_drift_count' AS drifted, jsonb_pretty(f->'count_drift') AS count_drift,
       f->'repaired' AS repaired
FROM jam_fsck() AS f;
SELECT f->'count_drift_count' AS drifted, f->'repaired' AS repaired FROM jam_fsck(true) AS f;
SELECT f->'count_drift_count' AS drifted, f->'pending_drift_count' AS pending_drifted,
       f->'repaired' AS repaired
FROM jam_fsck() AS f;
SELECT pg_temp.agree() AS repaired;

-- A count cannot go below zero.
\set VERBOSITY terse
UPDATE jam.jam_services SET failed_count = -1 WHERE service_id = 'lt-a';

\c :regress_db
DROP DATABASE :own_db;
