-- status_lists: a page of one service's packages or reports in one status
-- (src/list.c page_sql; 1.7's partial indexes of the failed rows) is what
-- the tables hold, in order, by offset and by keyset, also through a
-- tenant's token; and its first page reads a few blocks, however many rows
-- of that service are in other statuses and however many other services'
-- rows are in that status.
\getenv abs_srcdir PG_ABS_SRCDIR
\set own_db regress_jam_status_lists
\set own_db_include :abs_srcdir '/sql/include/own_database.psql'
\i :own_db_include

-- sl-a: 3,000 packages, 12 of them failed, then 5 left pending; sl-noisy:
-- 3,000 packages, all failed, interleaved with sl-a's.
CREATE FUNCTION public.sl_refine(payload bytea, preimages bytea[]) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN convert_from(payload, 'UTF8') LIKE 'fail%' THEN NULL::bytea
                ELSE sha256(payload) END
$$;
SELECT jam_register_service('sl-a', 'public.sl_refine(bytea,bytea[])', 'tenant-a')->>'service_id' AS a,
       jam_register_service('sl-noisy', 'public.sl_refine(bytea,bytea[])', 'tenant-n')->>'service_id' AS noisy;
SELECT count(jam_submit_package(CASE WHEN g % 2 = 0 THEN 'sl-a' ELSE 'sl-noisy' END,
                                convert_to(CASE WHEN g % 2 = 1 OR g % 500 = 0 THEN 'fail ' ELSE 'ok ' END || g,
                                           'UTF8'))) AS submitted
FROM generate_series(1, 6000) g;
SELECT jam_process_packages('sl-a', 3000)->'processed' AS a_processed,
       jam_process_packages('sl-noisy', 3000)->'processed' AS noisy_processed;
SELECT count(jam_submit_package('sl-a', convert_to('late ' || g, 'UTF8'))) AS a_pending
FROM generate_series(1, 5) g;
VACUUM ANALYZE;
SELECT jam_create_token('sl-t', '{jam:read}', NULL, 'tenant-a') AS a_token \gset

-- listed(kind, service, status, by_keyset, token): every page, 5 at a
-- time, as the token (NULL: this superuser) sees it: the ids in order.
\set list_pages_include :abs_srcdir '/sql/include/list_pages.psql'
\i :list_pages_include
CREATE FUNCTION pg_temp.listed(kind text, service text, status text, by_keyset boolean, token text)
RETURNS text[] LANGUAGE sql AS $$
    SELECT pg_temp.every_page(CASE kind
        WHEN 'packages' THEN format('jam.jam_list_packages(%L, %L, 5, %%s, %%s)', status, service)
        ELSE format('jam.jam_list_reports(%L, %L, 5, %%s, %%s)', service, status) END, by_keyset, token)
$$;
-- stored(kind, service, status): what the tables hold, in the same order.
CREATE FUNCTION pg_temp.stored(kind text, service text, status text) RETURNS text[] LANGUAGE sql AS $$
    SELECT CASE kind
        WHEN 'packages' THEN (SELECT coalesce(array_agg(encode(id, 'hex') ORDER BY seq), '{}')
                              FROM jam.jam_work_packages p WHERE p.service_id = service AND p.status = stored.status)
        ELSE (SELECT coalesce(array_agg(encode(package_id, 'hex') ORDER BY seq), '{}')
              FROM jam.jam_work_reports r WHERE r.service_id = service AND r.status = stored.status) END
$$;
SELECT kind, status, by_keyset,
       pg_temp.listed(kind, 'sl-a', status, by_keyset, NULL) = pg_temp.stored(kind, 'sl-a', status)
         AS service_page_right,
       pg_temp.listed(kind, NULL, status, by_keyset, :'a_token') = pg_temp.stored(kind, 'sl-a', status)
         AS tenant_page_right,
       cardinality(pg_temp.stored(kind, 'sl-a', status)) AS rows
FROM (VALUES ('packages', 'pending'), ('packages', 'failed'), ('reports', 'failed')) AS k(kind, status),
     (VALUES (false), (true)) AS p(by_keyset)
ORDER BY 1, 2, 3;
-- The totals come from the service's counts.
SELECT (jam_list_packages('failed', 'sl-a')->>'total')::int AS failed_total,
       (jam_list_reports('sl-a', 'failed')->>'total')::int AS failed_reports_total,
       (jam_list_packages('pending', 'sl-a')->>'total')::int AS pending_total;

-- The first pages of sl-a's failed packages, failed reports and pending
-- packages read a few blocks of the tables and their indexes (18 in a
-- calibration run, against 68 with the statements before 1.7, which walked sl-a's rows
-- or every failed row in seq order, or read all of sl-a's index entries
-- through a bitmap).  The session's plans are generic by then (after five
-- calls).
\set list_tables 'ARRAY[''jam.jam_work_packages'', ''jam.jam_work_reports'']::regclass[]'
SELECT count(jam_list_packages('failed', 'sl-a', 5)) + count(jam_list_reports('sl-a', 'failed', 5))
       + count(jam_list_packages('pending', 'sl-a', 5)) AS warm_up
FROM generate_series(1, 6);
BEGIN;
SELECT pg_temp.blocks(:list_tables) AS before_pages \gset
SELECT jsonb_array_length(jam_list_packages('failed', 'sl-a', 5)->'items') AS failed_packages,
       jsonb_array_length(jam_list_reports('sl-a', 'failed', 5)->'items') AS failed_reports,
       jsonb_array_length(jam_list_packages('pending', 'sl-a', 5)->'items') AS pending_packages;
SELECT pg_temp.blocks(:list_tables) - :before_pages < 40 AS service_pages_read_few_blocks;
COMMIT;
-- The same through the tenant's token, whose pages are merged from its
-- services (here one): 14 blocks in a calibration run, 101 before 1.7.
SELECT count(jam_list_packages('failed', NULL, 5)) + count(jam_list_reports(NULL, 'failed', 5)) AS warm_up
FROM jam_authenticate(:'a_token'), generate_series(1, 6);
BEGIN;
SELECT pg_temp.blocks(:list_tables) AS before_pages \gset
SELECT jsonb_array_length(jam_list_packages('failed', NULL, 5)->'items') AS failed_packages,
       jsonb_array_length(jam_list_reports(NULL, 'failed', 5)->'items') AS failed_reports
FROM jam_authenticate(:'a_token');
SELECT pg_temp.blocks(:list_tables) - :before_pages < 40 AS tenant_pages_read_few_blocks;
COMMIT;

\c :regress_db
DROP DATABASE :own_db;
