-- errors: the table of stable error codes (src/errors.c), every code raised
-- by a real call with its SQLSTATE, and the null-argument rule of the API.
SET search_path = jam, public;
\set VERBOSITY default
\getenv abs_srcdir PG_ABS_SRCDIR
\set helpers :abs_srcdir '/sql/include/helpers.psql'
\i :helpers

-- The whole table, in the order of the enum.
SELECT * FROM jam_error_codes();

-- Codes and SQLSTATEs are unique, SQLSTATEs are of class JM, codes are snake_case.
SELECT count(*) AS codes, count(DISTINCT code) AS distinct_codes,
       count(DISTINCT sqlstate) AS distinct_sqlstates,
       bool_and(sqlstate ~ '^JM[0-9]{3}$') AS class_jm,
       bool_and(code ~ '^[a-z]+(_[a-z]+)*$') AS snake_case,
       bool_and(description <> '') AS described
FROM jam_error_codes();

-- The HTTP statuses the shim answers with.
SELECT http_status, string_agg(code, ', ' ORDER BY sqlstate) AS codes
FROM jam_error_codes() GROUP BY http_status ORDER BY http_status;

-- jam_error_codes() is immutable and takes no arguments.
SELECT proname, provolatile, proisstrict, pronargs
FROM pg_proc WHERE oid = 'jam.jam_error_codes()'::regprocedure;

-- The declared shape of the API this suite covers: only jam_hash is
-- STRICT; reads are STABLE, writes VOLATILE, pure computations IMMUTABLE.
SELECT p.oid::regprocedure AS function, provolatile, proisstrict, proparallel,
       prorettype::regtype AS returns
FROM pg_proc p WHERE pronamespace = 'jam'::regnamespace
AND proname IN ('jam_error_codes', 'jam_hash', 'jam_package_id', 'jam_put_preimage', 'jam_get_preimage',
                'jam_preimage_meta', 'jam_register_service', 'jam_submit_package', 'jam_get_package',
                'jam_list_packages', 'jam_process_next', 'jam_get_report', 'jam_list_reports',
                'jam_attestations')
ORDER BY proname;

-- Every code, raised by a real call.  Setup: one preimage, one pending and
-- one processed package, and a non-immutable function.
SELECT jam_put_preimage('errors:stored')->>'hash' AS stored_hash \gset
SELECT jam_submit_package('err-1', 'errors:pending')->>'id' AS pending_id \gset
SELECT jam_submit_package('err-2', 'errors:processed')->>'id' AS processed_id \gset
SELECT jam_process_next('err-2')->>'status' AS processed_status;
CREATE FUNCTION public.errors_volatile_refine(bytea, bytea[]) RETURNS bytea
LANGUAGE sql VOLATILE AS 'SELECT $1';

CREATE TEMP TABLE every_code (code text PRIMARY KEY, call text NOT NULL);
INSERT INTO every_code VALUES
    ('invalid_argument', $$SELECT jam.jam_get_preimage(NULL)$$),
    ('invalid_hash', $$SELECT jam.jam_get_preimage('abc')$$),
    ('invalid_service_id', $$SELECT jam.jam_submit_package('bad id', 'x')$$),
    ('invalid_weight', $$SELECT jam.jam_submit_package('err-1', 'x', weight_hint => 0)$$),
    ('invalid_media_type', $$SELECT jam.jam_put_preimage('errors:x', 'text')$$),
    ('invalid_status', $$SELECT jam.jam_list_packages(status => 'done')$$),
    ('invalid_pagination', $$SELECT jam.jam_list_packages("limit" => 0)$$),
    ('too_many_preimages', $$SELECT jam.jam_submit_package('err-1', 'x', preimage_hashes => array_fill(jam.jam_hash(''), ARRAY[1025]))$$),
    ('invalid_refine_function', $$SELECT jam.jam_register_service('err-3', 'public.errors_volatile_refine(bytea,bytea[])')$$),
    ('preimage_not_found', format($$SELECT jam.jam_preimage_meta(%L)$$, jam_hash('errors:never stored'))),
    ('package_not_found', format($$SELECT jam.jam_get_package(%L)$$, jam_hash('errors:no package'))),
    ('report_not_found', format($$SELECT jam.jam_get_report(%L)$$, :'pending_id')),
    ('payload_too_large', $$SET LOCAL jam.max_payload_bytes = 1; SELECT jam.jam_submit_package('err-1', 'xy')$$),
    ('media_type_not_allowed', $$SET LOCAL jam.allowed_media_types = 'text/*'; SELECT jam.jam_put_preimage('errors:x', 'image/png')$$),
    ('hash_mismatch', format($$SELECT jam.jam_submit_package('err-1', 'x', declared_hash => %L)$$, jam_hash('x'))),
    ('unsupported_contract_version', $$SELECT jam.jam_submit_package('err-1', 'x', contract_version => 2)$$),
    ('missing_preimage', format($$SELECT jam.jam_submit_package('err-1', 'x', preimage_hashes => ARRAY[%L])$$, jam_hash('errors:never stored'))),
    ('quota_exceeded', $$SET LOCAL jam.max_pending_packages = 1; SELECT jam.jam_submit_package('err-1', 'another')$$),
    ('disabled', $$SET LOCAL jam.enabled = off; SELECT jam.jam_list_packages()$$);

-- Each call fails with its own code (and nothing else); every code is covered.
SELECT e.code, expect_error(e.call) LIKE c.sqlstate || ' ' || c.code || ': %' AS as_expected,
       expect_error(e.call) AS raised
FROM every_code AS e JOIN jam_error_codes() AS c USING (code)
ORDER BY c.sqlstate;
-- Every code up to disabled (JM019) is covered above.
SELECT code FROM jam_error_codes() WHERE sqlstate <= 'JM019'
EXCEPT SELECT code FROM every_code;

-- SET LOCAL inside the failed calls did not leak out.
SELECT current_setting('jam.max_payload_bytes') AS max_payload_bytes,
       current_setting('jam.allowed_media_types') AS allowed_media_types,
       current_setting('jam.max_pending_packages') AS max_pending_packages,
       current_setting('jam.enabled') AS enabled;

-- Null arguments: every required argument of every API function is refused
-- with invalid_argument, naming the argument.
SELECT call, expect_error(call) AS result FROM (VALUES
    ($$SELECT jam.jam_package_id(NULL, 'x')$$),
    ($$SELECT jam.jam_package_id('err-1', NULL)$$),
    ($$SELECT jam.jam_package_id('err-1', 'x', NULL)$$),
    ($$SELECT jam.jam_package_id('err-1', 'x', 1, NULL)$$),
    ($$SELECT jam.jam_package_id('err-1', 'x', 1, 1, NULL)$$),
    ($$SELECT jam.jam_put_preimage(NULL)$$),
    ($$SELECT jam.jam_put_preimage('errors:x', NULL)$$),
    ($$SELECT jam.jam_get_preimage(NULL)$$),
    ($$SELECT jam.jam_preimage_meta(NULL)$$),
    ($$SELECT jam.jam_register_service(NULL)$$),
    ($$SELECT jam.jam_submit_package(NULL, 'x')$$),
    ($$SELECT jam.jam_submit_package('err-1', NULL)$$),
    ($$SELECT jam.jam_submit_package('err-1', 'x', contract_version => NULL)$$),
    ($$SELECT jam.jam_submit_package('err-1', 'x', weight_hint => NULL)$$),
    ($$SELECT jam.jam_submit_package('err-1', 'x', preimage_hashes => NULL)$$),
    ($$SELECT jam.jam_get_package(NULL)$$),
    ($$SELECT jam.jam_list_packages("limit" => NULL)$$),
    ($$SELECT jam.jam_list_packages("offset" => NULL)$$),
    ($$SELECT jam.jam_get_report(NULL)$$),
    ($$SELECT jam.jam_list_reports("limit" => NULL)$$),
    ($$SELECT jam.jam_list_reports("offset" => NULL)$$),
    ($$SELECT jam.jam_attestations(NULL)$$)
) AS t(call);

-- One of them in full.
SELECT jam_submit_package('err-1', 'x', preimage_hashes => NULL);

-- Nulls that mean "none" or "any" are accepted: no declared hash, no refine
-- function (the built-in one), no service filter, no list filter.
SELECT jam_submit_package('err-1', 'errors:pending', declared_hash => NULL)->>'created' AS resubmit_created;
SELECT jam_register_service('err-4', NULL)->'refine_function' AS refine_function;
SELECT jam_list_packages(status => NULL, service_id => 'err-1')->'total' AS total;
SELECT jam_list_reports(service_id => 'err-2', status => NULL)->'total' AS total;
SELECT jam_process_next('err-4') IS NULL AS nothing_pending_for_err_4;
-- jam_hash is STRICT: null in, null out.
SELECT jam_hash(NULL) IS NULL AS hash_of_null_is_null;

-- An error repeats at most 64 bytes of a client's text (whole characters),
-- however long the text it refuses (an attester's name: attestation.sql).
SELECT length(e) AS message_length, e
FROM (VALUES (expect_error($$SELECT jam.jam_list_packages(status => repeat('s', 100000))$$)),
             (expect_error($$SELECT jam.jam_list_reports(status => repeat('é', 100))$$)),
             (expect_error($$SELECT jam.jam_put_preimage('errors:x', repeat('m', 100000))$$))) AS t(e);

-- The refused calls above wrote nothing.
SELECT service_id, pending_count, refine_function FROM jam_services
WHERE service_id LIKE 'err-%' ORDER BY service_id;
SELECT service_id, status, count(*) FROM jam_work_packages
WHERE service_id LIKE 'err-%' GROUP BY 1, 2 ORDER BY 1, 2;
SELECT count(*) AS preimages_written FROM jam_preimages WHERE hash = decode(jam_hash('errors:x'), 'hex');

DROP FUNCTION public.errors_volatile_refine(bytea, bytea[]);
