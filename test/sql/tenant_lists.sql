-- tenant_lists: a token's lists without a service filter are merged from
-- each of its services' own rows (src/list.c page_sql, src/attestation.c):
-- every page is what the tables hold for those services, in order, by
-- offset and by keyset, and a first page reads a few blocks, however much
-- of other tenants' history comes before the token's own rows.
\getenv abs_srcdir PG_ABS_SRCDIR
\set own_db regress_jam_tenant_lists
\set own_db_include :abs_srcdir '/sql/include/own_database.psql'
\i :own_db_include

-- Another tenant's 3,000 packages first, then tenant t's two services,
-- interleaved; some of each processed (reports, attestations), some failed.
CREATE FUNCTION public.tl_refine(payload bytea, preimages bytea[]) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN convert_from(payload, 'UTF8') LIKE '%fail%' THEN NULL::bytea
                ELSE sha256(payload) END
$$;
SELECT jam_register_service('tl-other', NULL, 'tenant-o')->>'service_id' AS other;
SELECT jam_register_service('tl-a', 'public.tl_refine(bytea,bytea[])', 'tenant-t')->>'service_id' AS a,
       jam_register_service('tl-b', NULL, 'tenant-t')->>'service_id' AS b;
SELECT jsonb_array_length(jam_submit_packages('tl-other', ARRAY(
       SELECT convert_to('other ' || g, 'UTF8') FROM generate_series(1, 3000) g))->'packages') AS other_packages;
SELECT jam_process_packages('tl-other', 3000)->'processed' AS other_processed;
SELECT count(jam_submit_package(CASE WHEN g % 2 = 0 THEN 'tl-a' ELSE 'tl-b' END,
                                convert_to(CASE WHEN g % 10 = 0 THEN 'fail ' ELSE 'ok ' END || g, 'UTF8')))
       AS t_packages
FROM generate_series(1, 600) g;
SELECT jam_process_packages('tl-a', 200)->'processed' AS a_processed,
       jam_process_packages('tl-b', 100)->'processed' AS b_processed;
ANALYZE;
SELECT jam_create_token('tl-t', '{jam:read}', NULL, 'tenant-t') AS t_token \gset
SELECT jam_create_token('tl-t-a', '{jam:read}', ARRAY['tl-a'], 'tenant-t') AS a_token \gset

-- listed(kind, status, by_keyset, token): every page of the list, 70 at a
-- time, as the token sees it: the ids in order.
\set list_pages_include :abs_srcdir '/sql/include/list_pages.psql'
\i :list_pages_include
CREATE FUNCTION pg_temp.listed(kind text, status text, by_keyset boolean, token text) RETURNS text[]
LANGUAGE sql AS $$
    SELECT pg_temp.every_page(CASE kind
        WHEN 'packages' THEN format('jam.jam_list_packages(%L, NULL, 70, %%s, %%s)', status)
        WHEN 'reports' THEN format('jam.jam_list_reports(NULL, %L, 70, %%s, %%s)', status)
        ELSE format('jam.jam_list_attestations(NULL, %L, NULL, 70, %%s, %%s)', status) END, by_keyset, token)
$$;
-- stored(kind, wanted, services): what the tables hold, in the same order
-- (wanted: the status, or for attestations the attester).
CREATE FUNCTION pg_temp.stored(kind text, wanted text, services text[]) RETURNS text[] LANGUAGE sql AS $$
    SELECT CASE kind
        WHEN 'packages' THEN (SELECT coalesce(array_agg(encode(id, 'hex') ORDER BY seq), '{}')
                              FROM jam.jam_work_packages p
                              WHERE p.service_id = ANY(services) AND (wanted IS NULL OR p.status = wanted))
        WHEN 'reports' THEN (SELECT coalesce(array_agg(encode(package_id, 'hex') ORDER BY seq), '{}')
                             FROM jam.jam_work_reports r
                             WHERE r.service_id = ANY(services) AND (wanted IS NULL OR r.status = wanted))
        ELSE (SELECT coalesce(array_agg(id::text ORDER BY id), '{}') FROM jam.jam_attestations a
              WHERE a.service_id = ANY(services) AND (wanted IS NULL OR a.attester = wanted)) END
$$;
SELECT kind, status, by_keyset,
       pg_temp.listed(kind, status, by_keyset, :'t_token') = pg_temp.stored(kind, status, ARRAY['tl-a', 'tl-b'])
         AS tenant_right,
       pg_temp.listed(kind, status, by_keyset, :'a_token') = pg_temp.stored(kind, status, ARRAY['tl-a'])
         AS one_service_right,
       cardinality(pg_temp.stored(kind, status, ARRAY['tl-a', 'tl-b'])) AS rows
FROM (VALUES ('packages', NULL), ('packages', 'pending'), ('packages', 'failed'),
             ('reports', NULL), ('reports', 'applied'),
             ('attestations', NULL), ('attestations', current_setting('jam.node_name'))) AS k(kind, status),
     (VALUES (false), (true)) AS p(by_keyset)
ORDER BY 1, 2, 3;

-- An offset near the largest integer is an empty page, also when a page
-- of each service is read up to it.
SELECT jsonb_array_length(jam_list_packages("offset" => 2147483600)->'items') AS packages_far,
       jsonb_array_length(jam_list_reports("offset" => 2147483647)->'items') AS reports_far,
       jsonb_array_length(jam_list_attestations("offset" => 2147483600)->'items') AS attestations_far
FROM jam_authenticate(:'t_token');

-- The totals, read from the token's services' counts one by one.
SELECT (jam_list_packages()->>'total')::int = cardinality(pg_temp.stored('packages', NULL, ARRAY['tl-a', 'tl-b']))
         AS packages_total_right,
       (jam_list_packages('failed')->>'total')::int = cardinality(pg_temp.stored('packages', 'failed', ARRAY['tl-a', 'tl-b']))
         AS failed_total_right,
       (jam_list_reports(NULL, 'applied')->>'total')::int
         = cardinality(pg_temp.stored('reports', 'applied', ARRAY['tl-a', 'tl-b'])) AS applied_reports_total_right
FROM jam_authenticate(:'t_token');
SELECT (jam_list_packages()->>'total')::int = cardinality(pg_temp.stored('packages', NULL, ARRAY['tl-a']))
         AS one_service_total_right
FROM jam_authenticate(:'a_token');

-- The three first pages read a few blocks of the packages, reports and
-- attestations and their indexes (38 in a calibration run), where the
-- filtered walk read 4,344: the other tenant's 3,000 of each come first.
-- The session's plans are generic by then (after five calls).
\set list_tables 'ARRAY[''jam.jam_work_packages'', ''jam.jam_work_reports'', ''jam.jam_attestations'']::regclass[]'
SELECT count(jam_list_packages("limit" => 10)) + count(jam_list_reports("limit" => 10))
       + count(jam_list_attestations("limit" => 10)) AS warm_up
FROM jam_authenticate(:'t_token'), generate_series(1, 6);
BEGIN;
SELECT pg_temp.blocks(:list_tables) AS before_pages \gset
SELECT jsonb_array_length(jam_list_packages("limit" => 10)->'items') AS packages,
       jsonb_array_length(jam_list_reports("limit" => 10)->'items') AS reports,
       jsonb_array_length(jam_list_attestations("limit" => 10)->'items') AS attestations
FROM jam_authenticate(:'t_token');
SELECT pg_temp.blocks(:list_tables) - :before_pages < 100 AS first_pages_read_few_blocks;
COMMIT;

-- A token of more services than are merged one by one takes the filtered
-- walk, with the same answers.
SELECT count(jam_register_service('tl-many-' || g, NULL, 'tenant-m')) AS many_services
FROM generate_series(1, 70) g;
SELECT count(jam_submit_package('tl-many-' || (g % 70 + 1), convert_to('many ' || g, 'UTF8'))) AS many_packages
FROM generate_series(1, 140) g;
SELECT jam_create_token('tl-m', '{jam:read}', NULL, 'tenant-m') AS m_token \gset
SELECT pg_temp.listed('packages', NULL, by_keyset, :'m_token')
       = pg_temp.stored('packages', NULL, ARRAY(SELECT 'tl-many-' || g FROM generate_series(1, 70) g)) AS many_right
FROM (VALUES (false), (true)) AS p(by_keyset);

\c :regress_db
DROP DATABASE :own_db;
