-- report: reading reports and attestations (src/report.c): jam_get_report
-- (report_not_found while pending, package_not_found when there is no such
-- package), jam_attestations, and the report hash.  (Listing reports:
-- list.sql; making them: process.sql and refine.sql.)
SET search_path = jam, public;
\set VERBOSITY default
\getenv abs_srcdir PG_ABS_SRCDIR
\set helpers :abs_srcdir '/sql/include/helpers.psql'
\i :helpers

-- le(v, n): v as n little-endian bytes.
CREATE OR REPLACE FUNCTION public.le(v bigint, nbytes integer) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT string_agg(set_byte('\x00'::bytea, 0, ((v >> (8 * k)) & 255)::integer), ''::bytea ORDER BY k)
    FROM generate_series(0, nbytes - 1) AS k
$$;

SELECT jam_put_preimage('report:a')->>'hash' AS a \gset

-- A pending package has no report yet: report_not_found; no attestations.
SELECT jam_submit_package('report-1', 'report:one', preimage_hashes => ARRAY[:'a'])->>'id' AS one \gset
SELECT jam_get_report(:'one');
SELECT expect_error(format('SELECT jam.jam_get_report(%L)', :'one')) AS pending;
SELECT jam_attestations(:'one') AS attestations_while_pending;

-- No such package: package_not_found, from both.
SELECT jam_get_report(jam_hash('report:no such package'));
SELECT jam_attestations(jam_hash('report:no such package'));
SELECT call, expect_error(call) AS result FROM (VALUES
    (format('SELECT jam.jam_get_report(%L)', jam_hash('report:no such package'))),
    (format('SELECT jam.jam_attestations(%L)', jam_hash('report:no such package'))),
    -- a preimage's hash is not a package id
    (format('SELECT jam.jam_get_report(%L)', :'a')),
    ($$SELECT jam.jam_get_report('nothex')$$),
    (format('SELECT jam.jam_attestations(%L)', upper(:'one'))),
    ($$SELECT jam.jam_get_report(NULL)$$),
    ($$SELECT jam.jam_attestations(NULL)$$)
) AS t(call);

-- Processed: jam_get_report returns the report jam_process_next returned
-- (less the verifiable log's receipt, if it has one).
SELECT jam_process_next('report-1') AS made \gset
SELECT jam_get_report(:'one') = :'made'::jsonb - 'receipt' AS same_as_processing;
SELECT jsonb_pretty(stable(jam_get_report(:'one'))) AS report;
SELECT jsonb_object_keys(jam_get_report(:'one')) AS report_key ORDER BY 1;
-- The output is the bytes whose hash is output_hash; the report hash
-- commits to the package and the output hash as README.md documents.
SELECT octet_length(decode(r->>'output', 'base64')) AS output_len,
       jam_hash(decode(r->>'output', 'base64')) = r->>'output_hash' AS output_hash_ok,
       r->>'report_hash' = jam_hash('jam/report/v1'::bytea || decode(r->>'package_id', 'hex')
                                    || '\x01'::bytea || decode(r->>'output_hash', 'hex')) AS report_hash_ok
FROM jam_get_report(:'one') AS r;

-- Its attestation: this node (jam.node_name), this role.
SELECT jsonb_pretty(stable(jsonb_agg(a - 'id'))) AS attestations FROM jsonb_array_elements(jam_attestations(:'one')) AS a;
SELECT (jam_attestations(:'one')->0->>'id')::bigint = (SELECT id FROM jam_attestations WHERE package_id = decode(:'one', 'hex')) AS id_ok,
       jam_attestations(:'one')->0->>'report_hash' = jam_get_report(:'one')->>'report_hash' AS attests_the_report,
       current_setting('jam.node_name') AS node_name;

-- A failed report: status failed, no output, the reason; its hash commits
-- to the reason.
CREATE FUNCTION public.report_failing_refine(payload bytea, preimages bytea[]) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN RAISE EXCEPTION 'report: no % today', convert_from(payload, 'UTF8'); END $$;
SELECT jam_register_service('report-2', 'public.report_failing_refine(bytea,bytea[])')->'service_id' AS registered;
SELECT jam_submit_package('report-2', 'report:two')->>'id' AS two \gset
SELECT jam_process_next('report-2') AS made_two \gset
SELECT jam_get_report(:'two') = :'made_two'::jsonb - 'receipt' AS same_as_processing;
SELECT jsonb_pretty(stable(jam_get_report(:'two'))) AS report;
SELECT r->>'report_hash' = jam_hash('jam/report/v1'::bytea || decode(r->>'package_id', 'hex') || '\x02'::bytea
                                    || le(octet_length(convert_to(r->>'failure_reason', 'UTF8')), 4)
                                    || convert_to(r->>'failure_reason', 'UTF8')) AS report_hash_ok
FROM jam_get_report(:'two') AS r;
SELECT jsonb_array_length(jam_attestations(:'two')) AS attestations,
       jam_attestations(:'two')->0->>'report_hash' = jam_get_report(:'two')->>'report_hash' AS attests_the_report;

-- A report is made once: a resubmit of a processed package neither
-- requeues it nor adds a report or an attestation.
SELECT jsonb_pretty(stable(jam_submit_package('report-1', 'report:one', preimage_hashes => ARRAY[:'a']))) AS resubmitted;
SELECT jam_process_next('report-1') IS NULL AS nothing_to_process;
SELECT (SELECT count(*) FROM jam_work_reports WHERE package_id = decode(:'one', 'hex')) AS reports,
       (SELECT count(*) FROM jam_attestations WHERE package_id = decode(:'one', 'hex')) AS attestations;

-- Reports of one service, through the list.
SELECT jsonb_array_length(d->'items') AS items, d->'items'->0 = jam_get_report(:'one') - 'output' AS item_is_summary
FROM jam_list_reports(service_id => 'report-1') AS d;

-- Reads only.
SELECT proname, provolatile, proisstrict FROM pg_proc
WHERE oid IN ('jam.jam_get_report(text)'::regprocedure, 'jam.jam_attestations(text)'::regprocedure)
ORDER BY 1;
