-- costs: what a call touches does not grow with history or with the
-- calls before it in a transaction (src/claim.c, src/xact_rows.c,
-- src/list.c).  Counted in shared buffers (EXPLAIN ANALYZE BUFFERS
-- includes what the called function reads and writes), never in time.
\getenv abs_srcdir PG_ABS_SRCDIR
\set own_db regress_jam_costs
\set own_db_include :abs_srcdir '/sql/include/own_database.psql'
\i :own_db_include

-- buffers(sql): the shared buffers one statement touches (hit or read).
CREATE FUNCTION pg_temp.buffers(sql text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    plan jsonb;
BEGIN
    EXECUTE 'EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF, FORMAT JSON) ' || sql
        INTO plan;
    RETURN (plan->0->'Plan'->>'Shared Hit Blocks')::bigint
         + (plan->0->'Plan'->>'Shared Read Blocks')::bigint;
END
$$;

-- history(n): n processed packages of other services, written straight into
-- the table (the claim must not care how they got there).
CREATE FUNCTION pg_temp.history(n int) RETURNS void LANGUAGE sql AS $$
    INSERT INTO jam.jam_work_packages (id, service_id, contract_version, weight_hint, payload,
                                       status, processed_at)
    SELECT decode(jam.jam_hash(convert_to('history ' || g, 'UTF8')), 'hex'),
           'old-' || (g % 17), 1, 1, '\x00', CASE WHEN g % 10 = 0 THEN 'failed' ELSE 'applied' END,
           now()
    FROM generate_series((SELECT count(*) FROM jam.jam_work_packages) + 1,
                         (SELECT count(*) FROM jam.jam_work_packages) + n) g;
    ANALYZE jam.jam_work_packages;
$$;

-- One claim of a service with a small history, then with 200 times more:
-- the claim reads the pending index of that service, whatever lies in the
-- history.  (The planner, left to itself, used to pick the history's seq
-- index and scan it.)  Each probe submits its package first, untouched by
-- the measurement, then measures jam_process_next alone.
-- A first probe warms the caches (catalogs, plans) so both measure the same.
SELECT pg_temp.history(100);
SELECT count(jam_submit_package('fill', convert_to('claim ' || g, 'UTF8'))) AS queued
FROM generate_series(1, 4) g;
SELECT pg_temp.buffers($$SELECT jam.jam_process_next('fill')$$) > 0 AS warmed;
SELECT pg_temp.buffers($$SELECT jam.jam_process_next('fill')$$) AS small_history \gset
SELECT pg_temp.history(20000);
SELECT pg_temp.buffers($$SELECT jam.jam_process_next('fill')$$) > 0 AS warmed_again;
SELECT pg_temp.buffers($$SELECT jam.jam_process_next('fill')$$) AS large_history \gset
SELECT :large_history <= :small_history + 12 AS claim_of_a_service_is_flat,
       :large_history < 200 AS far_below_the_history;
-- The same without a service: the queue of every service, merged.
SELECT pg_temp.buffers($$SELECT jam.jam_process_next()$$) < 200 AS claim_of_any_is_flat;

-- The n-th submit of a transaction touches what the first does: the service
-- row and refcounts are written once, at commit.
BEGIN;
SELECT jam_put_preimage('shared by all', 'text/plain')->>'created' AS stored;
SELECT jam_submit_package('warm-up', 'warm', preimage_hashes => ARRAY[jam_hash('shared by all')])->>'created' AS warmed;
SELECT pg_temp.buffers(format($$SELECT jam.jam_submit_package('one-xact', 'first', preimage_hashes => ARRAY[%L])$$,
                              jam_hash('shared by all'))) AS first_submit \gset
SELECT count(jam_submit_package('one-xact', convert_to('middle ' || g, 'UTF8'),
                                preimage_hashes => ARRAY[jam_hash('shared by all')]))
FROM generate_series(1, 2000) g;
SELECT pg_temp.buffers(format($$SELECT jam.jam_submit_package('one-xact', 'last', preimage_hashes => ARRAY[%L])$$,
                              jam_hash('shared by all'))) AS last_submit \gset
-- The n-th claim of a transaction skips the packages it already processed.
SELECT count(jam_process_next('one-xact')) FROM generate_series(1, 1000);
SELECT pg_temp.buffers($$SELECT jam.jam_process_next('one-xact')$$) AS late_claim \gset
COMMIT;
SELECT :last_submit <= :first_submit + 12 AS nth_submit_is_flat,
       :late_claim < 200 AS nth_claim_is_flat;
SELECT jam_preimage_meta(jam_hash('shared by all'))->'refcount' AS refcount,
       (SELECT count(*) FROM jam_work_packages WHERE service_id = 'one-xact') AS submitted,
       (SELECT pending_count FROM jam_services WHERE service_id = 'one-xact') AS pending,
       jam_verify_log('one-xact')->'ok' AS log_ok,
       jam_fsck()->'drift_count' AS drift;

-- Across transactions, a claim starts where the claims before it left off
-- (src/claim_hint.c), not among the index entries of every package
-- processed since the last VACUUM (none runs here): after 10,000 claims,
-- each committed on its own, a claim touches what an early one did.
ALTER TABLE jam.jam_work_packages SET (autovacuum_enabled = off);
SELECT count(jam_submit_packages('drained', (SELECT array_agg(convert_to(b || ' drained ' || g, 'UTF8'))
                                             FROM generate_series(1, 1000) g)))
FROM generate_series(1, 11) b;
SELECT pg_temp.buffers($$SELECT jam.jam_process_next('drained')$$) > 0 AS warmed;
SELECT pg_temp.buffers($$SELECT jam.jam_process_next('drained')$$) AS early_claim \gset
DO $$
BEGIN
    FOR i IN 1 .. 10000 LOOP
        PERFORM jam.jam_process_next('drained');
        COMMIT;
    END LOOP;
END
$$;
SELECT pg_temp.buffers($$SELECT jam.jam_process_next('drained')$$) AS late_claim_after_many \gset
SELECT :late_claim_after_many <= :early_claim + 12 AS claim_after_many_is_flat;
SELECT count(*) FILTER (WHERE status = 'pending') AS still_pending,
       count(*) FILTER (WHERE status = 'applied') AS applied
FROM jam_work_packages WHERE service_id = 'drained';
ALTER TABLE jam.jam_work_packages RESET (autovacuum_enabled);

-- Keyset paging: a page far into the list costs what the first page does.
SELECT pg_temp.buffers($$SELECT jam.jam_list_packages("limit" => 20, after => 1)$$) > 0 AS warmed;
SELECT pg_temp.buffers($$SELECT jam.jam_list_packages("limit" => 20, after => 0)$$) AS first_page \gset
SELECT pg_temp.buffers($$SELECT jam.jam_list_packages("limit" => 20, after => 19000)$$) AS far_page \gset
SELECT :far_page <= :first_page + 12 AS far_page_is_flat;
SELECT jsonb_array_length(jam_list_packages("limit" => 20, after => 19000)->'items') AS far_items;

\c :regress_db
DROP DATABASE :own_db;
