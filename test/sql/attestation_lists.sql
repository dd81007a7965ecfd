-- attestation_lists: jam_list_attestations answers each combination of its
-- filters with the attestations a plain query of the table finds, and a
-- page filtered by a rare attester, alone or with a service, reads a few
-- blocks, however many attestations the node has signed (1.6:
-- jam_attestations_attester_idx; 1.7: jam_attestations_service_attester_idx;
-- src/attestation.c plans each combination of filters on its own).
\getenv abs_srcdir PG_ABS_SRCDIR
\set own_db regress_jam_attestation_lists
\set own_db_include :abs_srcdir '/sql/include/own_database.psql'
\i :own_db_include

-- 3,000 reports in two services, each attested by the node; an external
-- auditor attests three packages of one service and two of the other.
SELECT jsonb_array_length(jam_submit_packages('al-big', ARRAY(
       SELECT convert_to('big ' || g, 'UTF8') FROM generate_series(1, 2990) g))->'packages') AS big;
SELECT jsonb_array_length(jam_submit_packages('al-small', ARRAY(
       SELECT convert_to('small ' || g, 'UTF8') FROM generate_series(1, 10) g))->'packages') AS small;
SELECT jam_process_packages('al-big', 3000)->'processed' AS big_processed,
       jam_process_packages('al-small', 10)->'processed' AS small_processed;
SELECT jam_register_attester('al-auditor', jam_note_verifier_key('al-auditor', decode(repeat('a5', 32), 'hex')))
       ->>'name' AS auditor;
SELECT count(jam_attest(a->>'package_id', 'al-auditor',
                        jam_sign_attestation(a, 'al-auditor', decode(repeat('a5', 32), 'hex')))) AS attested
FROM (SELECT jam_attestations(encode(id, 'hex'))->0 AS a
      FROM jam_work_packages WHERE service_id = 'al-big' AND seq % 1000 = 7
      UNION ALL
      (SELECT jam_attestations(encode(id, 'hex'))->0 FROM jam_work_packages
       WHERE service_id = 'al-small' ORDER BY seq LIMIT 2)) AS s;
SELECT pg_relation_size('jam.jam_attestations') / 8192 > 30 AS attestations_span_over_30_blocks;
ANALYZE jam_attestations;

-- Every combination of the three filters (absent, or a value that matches
-- some rows), with a small page and keyset paging through all of it: the
-- ids listed are those the table holds, in order.
CREATE FUNCTION pg_temp.listed(svc text, att text, pkg text) RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[] := '{}';
    page jsonb;
    after bigint := 0;
BEGIN
    LOOP
        page := jam.jam_list_attestations(svc, att, pkg, 700, 0, after);
        ids := ids || ARRAY(SELECT (i->>'id')::bigint FROM jsonb_array_elements(page->'items') i);
        EXIT WHEN page->'next_after' = 'null';
        after := (page->>'next_after')::bigint;
    END LOOP;
    RETURN ids;
END
$$;
CREATE FUNCTION pg_temp.stored(svc text, att text, pkg text) RETURNS bigint[] LANGUAGE sql AS $$
    SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM jam.jam_attestations
    WHERE (svc IS NULL OR service_id = svc) AND (att IS NULL OR attester = att)
      AND (pkg IS NULL OR package_id = decode(pkg, 'hex'))
$$;
SELECT encode(package_id, 'hex') AS audited_pkg FROM jam_attestations
WHERE attester = 'al-auditor' AND service_id = 'al-small' ORDER BY id LIMIT 1 \gset
SELECT count(*) AS combinations,
       count(*) FILTER (WHERE pg_temp.listed(svc, att, pkg) = pg_temp.stored(svc, att, pkg)) AS listed_right,
       sum(cardinality(pg_temp.stored(svc, att, pkg))) AS attestations_compared
FROM (VALUES (NULL), ('al-small')) AS a(svc),
     (VALUES (NULL), ('al-auditor'), (current_setting('jam.node_name'))) AS b(att),
     (VALUES (NULL), (:'audited_pkg')) AS c(pkg);

-- A page of the auditor's attestations reads a few blocks of the table and
-- its indexes (3 in a calibration run), where walking every attestation in
-- id order reads them all (111); so does it once the session's plan is
-- generic, as it is after the calls above and after five more.
\set list_pages_include :abs_srcdir '/sql/include/list_pages.psql'
\i :list_pages_include
\set list_tables 'ARRAY[''jam.jam_attestations'']::regclass[]'
BEGIN;
SELECT pg_temp.blocks(:list_tables) AS before_page \gset
SELECT jsonb_array_length(jam_list_attestations(attester => 'al-auditor')->'items') AS auditor_items;
SELECT pg_temp.blocks(:list_tables) - :before_page < 12 AS page_reads_few_blocks;
SELECT count(jam_list_attestations(attester => 'al-auditor', "limit" => 2)) AS warm_up FROM generate_series(1, 6);
SELECT pg_temp.blocks(:list_tables) AS before_generic \gset
SELECT jsonb_array_length(jam_list_attestations(attester => 'al-auditor')->'items') AS auditor_items;
SELECT pg_temp.blocks(:list_tables) - :before_generic < 12 AS generic_page_reads_few_blocks;
COMMIT;

-- A page of the auditor's attestations of one service, and the same
-- through a token of that service, whose page is merged service by service,
-- read a few blocks too (1.7: jam_attestations_service_attester_idx),
-- where walking the service's attestations read the node's one per report,
-- and walking the auditor's read those of every other service: here 600
-- more, of al-audited, attested first.
SELECT jsonb_array_length(jam_submit_packages('al-audited', ARRAY(
       SELECT convert_to('audited ' || g, 'UTF8') FROM generate_series(1, 600) g))->'packages') AS audited,
       jam_process_packages('al-audited', 600)->'processed' AS audited_processed;
SELECT count(jam_attest(a->>'package_id', 'al-auditor',
                        jam_sign_attestation(a, 'al-auditor', decode(repeat('a5', 32), 'hex')))) AS attested
FROM (SELECT jam_attestations(encode(id, 'hex'))->0 AS a FROM jam_work_packages
      WHERE service_id = 'al-audited') AS s;
ANALYZE jam_attestations;
SELECT jam_create_token('al-big-reader', '{jam:read}', ARRAY['al-big']) AS big_token \gset
SELECT by_keyset,
       pg_temp.listed('al-big', 'al-auditor', NULL) = pg_temp.stored('al-big', 'al-auditor', NULL) AS service_page_right,
       pg_temp.every_page('jam.jam_list_attestations(NULL, ''al-auditor'', NULL, 2, %s, %s)', by_keyset, :'big_token')
         = pg_temp.stored('al-big', 'al-auditor', NULL)::text[] AS token_pages_right
FROM (VALUES (false), (true)) AS k(by_keyset);
SELECT count(jam_list_attestations('al-big', 'al-auditor')) AS warm_up FROM generate_series(1, 6);
SELECT count(jam_list_attestations(attester => 'al-auditor')) AS warm_up
FROM jam_authenticate(:'big_token'), generate_series(1, 6);
BEGIN;
SELECT pg_temp.blocks(:list_tables) AS before_pages \gset
SELECT jsonb_array_length(jam_list_attestations('al-big', 'al-auditor')->'items') AS service_auditor_items;
SELECT jsonb_array_length(jam_list_attestations(attester => 'al-auditor')->'items') AS token_auditor_items
FROM jam_authenticate(:'big_token');
SELECT pg_temp.blocks(:list_tables) - :before_pages < 20 AS service_and_token_pages_read_few_blocks;
COMMIT;
-- Without the index (a catalog before 1.7), whose drop the library
-- notices, the same pages, through the older statements (which read 274
-- blocks in a calibration run, against 6 above).
BEGIN;
DROP INDEX jam.jam_attestations_service_attester_idx;
SELECT pg_temp.listed('al-big', 'al-auditor', NULL) = pg_temp.stored('al-big', 'al-auditor', NULL) AS service_page_right,
       pg_temp.every_page('jam.jam_list_attestations(NULL, ''al-auditor'', NULL, 2, %s, %s)', true, :'big_token')
         = pg_temp.stored('al-big', 'al-auditor', NULL)::text[] AS token_pages_right;
ROLLBACK;

\c :regress_db
DROP DATABASE :own_db;