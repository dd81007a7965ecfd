-- attestation_lists: jam_list_attestations answers each combination of its
-- filters with the attestations a plain query of the table finds, and a
-- page filtered by a rare attester reads a few blocks, however many
-- attestations the node has signed (1.6: jam_attestations_attester_idx;
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
CREATE FUNCTION pg_temp.blocks() RETURNS bigint LANGUAGE sql AS $$
    SELECT sum(pg_stat_get_xact_blocks_fetched(c))::bigint
    FROM (SELECT 'jam.jam_attestations'::regclass::oid
          UNION ALL SELECT indexrelid FROM pg_index WHERE indrelid = 'jam.jam_attestations'::regclass) AS r(c)
$$;
BEGIN;
SELECT pg_temp.blocks() AS before_page \gset
SELECT jsonb_array_length(jam_list_attestations(attester => 'al-auditor')->'items') AS auditor_items;
SELECT pg_temp.blocks() - :before_page < 12 AS page_reads_few_blocks;
SELECT count(jam_list_attestations(attester => 'al-auditor', "limit" => 2)) AS warm_up FROM generate_series(1, 6);
SELECT pg_temp.blocks() AS before_generic \gset
SELECT jsonb_array_length(jam_list_attestations(attester => 'al-auditor')->'items') AS auditor_items;
SELECT pg_temp.blocks() - :before_generic < 12 AS generic_page_reads_few_blocks;
COMMIT;

\c :regress_db
DROP DATABASE :own_db;
