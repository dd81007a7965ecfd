-- row_checks: the one check each of jam_work_packages, jam_log_entries,
-- jam_services and jam_work_reports has since 1.8 (src/row_checks.c)
-- refuses every row that breaks one of the rules the column checks kept
-- before it, and passes what they passed (NULL in a nullable column among
-- it); and the node's key pair, derived once a backend and found again by
-- a digest of its seed, still signs with the key the table holds.
\getenv abs_srcdir PG_ABS_SRCDIR
\set own_db regress_jam_row_checks
\set own_db_include :abs_srcdir '/sql/include/own_database.psql'
\i :own_db_include

-- One check a table, and its stored expression is short: PostgreSQL reads
-- it back and plans it at every statement that writes the table.
SELECT conrelid::regclass AS tab, count(*) AS checks, max(length(conbin)) < 1300 AS short
FROM pg_constraint
WHERE contype = 'c' AND conrelid IN ('jam_work_packages'::regclass, 'jam_log_entries'::regclass,
                                     'jam_services'::regclass, 'jam_work_reports'::regclass)
GROUP BY 1 ORDER BY 1::text;

SELECT jam_submit_package('rc-a', 'a package')->>'id' AS pkg \gset
SELECT jam_process_next('rc-a')->>'status' AS processed;

-- Every broken rule, written straight into the tables as a superuser can,
-- each changing a row jam wrote (or a copy of one) in one column, and each
-- rolled back, accepted or not.
CREATE FUNCTION pg_temp.refused(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    name text;
    n bigint;
BEGIN
    EXECUTE sql;
    GET DIAGNOSTICS n = ROW_COUNT;
    RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = format('accepted (%s rows)', n);
EXCEPTION
    WHEN check_violation THEN
        GET STACKED DIAGNOSTICS name = CONSTRAINT_NAME;
        RETURN 'refused by ' || name;
    WHEN raise_exception THEN
        RETURN SQLERRM;
END
$$;

-- A copy of log entry from_seq with the columns in changes changed.
CREATE FUNCTION pg_temp.log_copy(from_seq bigint, changes jsonb) RETURNS void LANGUAGE sql AS $$
    INSERT INTO jam.jam_log_entries
    SELECT (jsonb_populate_record(l, changes)).* FROM jam.jam_log_entries AS l WHERE l.seq = from_seq
$$;

SELECT what, pg_temp.refused(sql) AS outcome
FROM (VALUES
    ('package id of 31 bytes',
     $$UPDATE jam.jam_work_packages SET id = substr(id, 2) WHERE service_id = 'rc-a'$$),
    ('package id of 33 bytes',
     $$UPDATE jam.jam_work_packages SET id = id || '\x00'::bytea WHERE service_id = 'rc-a'$$),
    ('weight_hint 0',
     $$UPDATE jam.jam_work_packages SET weight_hint = 0 WHERE service_id = 'rc-a'$$),
    ('weight_hint -1',
     $$UPDATE jam.jam_work_packages SET weight_hint = -1 WHERE service_id = 'rc-a'$$),
    ('package status done',
     $$UPDATE jam.jam_work_packages SET status = 'done' WHERE service_id = 'rc-a'$$),
    ('package status Applied',
     $$UPDATE jam.jam_work_packages SET status = 'Applied' WHERE service_id = 'rc-a'$$),
    ('package status applie',
     $$UPDATE jam.jam_work_packages SET status = 'applie' WHERE service_id = 'rc-a'$$),
    ('package weight_hint 7 (allowed)',
     $$UPDATE jam.jam_work_packages SET weight_hint = 7 WHERE service_id = 'rc-a'$$),
    ('log seq -1', $$SELECT pg_temp.log_copy(0, '{"seq": -1}')$$),
    ('log kind preimage', $$SELECT pg_temp.log_copy(0, '{"seq": 7, "kind": "preimage"}')$$),
    ('log status failing', $$SELECT pg_temp.log_copy(0, '{"seq": 7, "status": "failing"}')$$),
    ('a package entry naming a package',
     $$SELECT pg_temp.log_copy(0, '{"seq": 7, "package_id": "\\x0000000000000000000000000000000000000000000000000000000000000000"}')$$),
    ('a report entry naming 31 bytes',
     $$SELECT pg_temp.log_copy(1, '{"seq": 7, "package_id": "\\x00000000000000000000000000000000000000000000000000000000000000"}')$$),
    ('a report entry (allowed)', $$SELECT pg_temp.log_copy(1, '{"seq": 7}')$$),
    ('service id with a space',
     $$INSERT INTO jam.jam_services (service_id) VALUES ('bad id')$$),
    ('service id empty',
     $$INSERT INTO jam.jam_services (service_id) VALUES ('')$$),
    ('service id of 200 characters',
     $$INSERT INTO jam.jam_services (service_id) VALUES (repeat('s', 200))$$),
    ('log_root of 31 bytes',
     $$UPDATE jam.jam_services SET log_root = substr(log_root, 2) WHERE service_id = 'rc-a'$$),
    ('share 0',
     $$UPDATE jam.jam_services SET share = 0 WHERE service_id = 'rc-a'$$),
    ('share 1000001',
     $$UPDATE jam.jam_services SET share = 1000001 WHERE service_id = 'rc-a'$$),
    ('share 1000000 and no log_root (allowed)',
     $$UPDATE jam.jam_services SET share = 1000000, log_root = NULL WHERE service_id = 'rc-a'$$),
    ('report package_id of 31 bytes',
     $$UPDATE jam.jam_work_reports SET package_id = substr(package_id, 2)$$),
    ('report_hash of 33 bytes',
     $$UPDATE jam.jam_work_reports SET report_hash = report_hash || '\x00'::bytea$$),
    ('output_hash of 31 bytes',
     $$UPDATE jam.jam_work_reports SET output_hash = substr(output_hash, 2)$$),
    ('refine_hash of 31 bytes',
     $$UPDATE jam.jam_work_reports SET refine_hash = substr(refine_hash, 2)$$),
    ('report status pending',
     $$UPDATE jam.jam_work_reports SET status = 'pending'$$),
    ('applied without an output',
     $$UPDATE jam.jam_work_reports SET output = NULL$$),
    ('applied without an output hash',
     $$UPDATE jam.jam_work_reports SET output_hash = NULL$$),
    ('applied with a failure_reason',
     $$UPDATE jam.jam_work_reports SET failure_reason = 'no'$$),
    ('failed with an output',
     $$UPDATE jam.jam_work_reports SET status = 'failed', failure_reason = 'no'$$),
    ('failed without a failure_reason',
     $$UPDATE jam.jam_work_reports SET status = 'failed', output = NULL, output_hash = NULL$$),
    ('failed, no output, a reason (allowed)',
     $$UPDATE jam.jam_work_reports SET status = 'failed', output = NULL, output_hash = NULL,
         failure_reason = 'no'$$),
    ('no refine_hash (allowed)',
     $$UPDATE jam.jam_work_reports SET refine_hash = NULL$$)
) AS t(what, sql);

-- Each count of a service, and its log size, below zero.
SELECT c || ' -1' AS what,
       pg_temp.refused(format('UPDATE jam.jam_services SET %I = -1 WHERE service_id = %L', c, 'rc-a')) AS outcome
FROM unnest(ARRAY['log_size', 'pending_count', 'applied_count', 'failed_count',
                  'applied_report_count', 'failed_report_count']) AS c;

-- The functions themselves, NULL by NULL: a NULL column passes its own
-- rule and no other.
SELECT jam_package_row_valid(NULL, NULL, NULL) AS all_null,
       jam_package_row_valid(NULL, 0, NULL) AS null_id_bad_weight,
       jam_log_entry_row_valid(NULL, NULL, NULL, decode(repeat('00', 32), 'hex')) AS package_id_no_kind,
       jam_log_entry_row_valid(NULL, NULL, NULL, '\x00') AS short_package_id_no_kind,
       jam_service_row_valid(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, -1) AS one_negative,
       jam_report_row_valid(NULL, NULL, NULL, NULL, NULL, NULL, 'why') AS no_status;

-- The node key: a key made again (its row deleted) signs in the same
-- backend with the new key, whose public key is what the table holds.
SELECT jam_status()->>'verifier_key' AS first_key \gset
SELECT jam_attestations(:'pkg')->0 AS first_att \gset
DELETE FROM jam.jam_node_keys WHERE name = current_setting('jam.node_name');
SELECT jam_submit_package('rc-a', 'another package')->>'id' AS pkg2 \gset
SELECT jam_process_next('rc-a')->>'status' AS processed;
SELECT jam_status()->>'verifier_key' AS second_key \gset
SELECT jam_attestations(:'pkg2')->0 AS second_att \gset
SELECT :'first_key' <> :'second_key' AS new_key,
       jam_verify_attestation(:'first_att', :'first_key') AS first_verifies,
       jam_verify_attestation(:'second_att', :'second_key') AS second_verifies,
       jam_verify_attestation(:'second_att', :'first_key') AS second_with_first_key,
       (SELECT public_key = ed25519_public_key FROM jam.jam_node_keys,
               LATERAL (SELECT decode(regexp_replace(:'second_key', '^[^+]*[+][^+]*[+]', ''), 'base64') AS k) AS v,
               LATERAL (SELECT substr(k, 2) AS ed25519_public_key) AS p
        WHERE name = current_setting('jam.node_name')) AS table_holds_it;

\c :regress_db
DROP DATABASE :own_db;
