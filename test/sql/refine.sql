-- refine: execution contract version 1 (src/refine.c): the built-in refine
-- and its output, registered refine functions, a refine that raises (the
-- package fails with the reason), errors that leave the package pending,
-- and the output cap.
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

-- The built-in refine as README.md documents it, written independently in
-- SQL: BLAKE2b-256 of "jam/refine/v1" || u32 n_inputs || for each input
-- (the payload, then the preimages in the package's order): u64 len || bytes.
CREATE OR REPLACE FUNCTION public.builtin_refine_v1(payload bytea, inputs bytea[]) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT decode(jam.jam_hash(
        convert_to('jam/refine/v1', 'UTF8')
        || public.le(1 + coalesce(cardinality(inputs), 0), 4)
        || public.le(octet_length(payload), 8) || payload
        || coalesce((SELECT string_agg(public.le(octet_length(x), 8) || x, ''::bytea ORDER BY o)
                     FROM unnest(inputs) WITH ORDINALITY AS u(x, o)), '')), 'hex')
$$;

-- The report hash as README.md documents it.
CREATE OR REPLACE FUNCTION public.report_hash(report jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT jam.jam_hash(convert_to('jam/report/v1', 'UTF8') || decode(report->>'package_id', 'hex')
        || CASE report->>'status'
           WHEN 'applied' THEN '\x01'::bytea || decode(report->>'output_hash', 'hex')
           ELSE '\x02'::bytea || public.le(octet_length(convert_to(report->>'failure_reason', 'UTF8')), 4)
                || convert_to(report->>'failure_reason', 'UTF8') END)
$$;

-- process(service, payload, refs) submits a package and processes it,
-- returning the report.
CREATE FUNCTION pg_temp.process(service_id text, payload bytea, refs text[] DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    id text := jam.jam_submit_package(service_id, payload, preimage_hashes => refs)->>'id';
    report jsonb := jam.jam_process_next(service_id);
BEGIN
    IF report->>'package_id' IS DISTINCT FROM id THEN
        RAISE EXCEPTION 'processed % instead of %', report->>'package_id', id;
    END IF;
    RETURN report;
END
$$;
-- summary(report): what a report says, and whether its hashes are right.
CREATE FUNCTION pg_temp.summary(report jsonb) RETURNS TABLE (
    status text, refine text, output text, output_size integer, output_hash_ok boolean,
    report_hash_ok boolean, failure_reason text)
LANGUAGE sql AS $$
    SELECT report->>'status', report->>'refine',
           CASE WHEN octet_length(decode(report->>'output', 'base64')) = 32
                THEN encode(decode(report->>'output', 'base64'), 'hex')
                ELSE encode(decode(report->>'output', 'base64'), 'escape') END,
           (report->>'output_size')::integer,
           report->>'output_hash' IS NOT DISTINCT FROM jam.jam_hash(decode(report->>'output', 'base64')),
           report->>'report_hash' = public.report_hash(report),
           report->>'failure_reason'
$$;

SELECT jam_put_preimage('refine:a')->>'hash' AS a, jam_put_preimage('refine:bb')->>'hash' AS b \gset

----------------------------------------------------------------------
-- The built-in refine (no registered function)
----------------------------------------------------------------------

-- Its output is the commitment to the payload and the preimages, in order.
SELECT n, s.*
FROM (VALUES
    (1, pg_temp.process('refine-builtin', 'refine:p1')),
    (2, pg_temp.process('refine-builtin', 'refine:p2', ARRAY[:'a'])),
    (3, pg_temp.process('refine-builtin', 'refine:p3', ARRAY[:'a', :'b', :'a'])),
    (4, pg_temp.process('refine-builtin', '', ARRAY[:'b']))
) AS t(n, r), LATERAL pg_temp.summary(r) AS s
ORDER BY n;
-- The same outputs computed by the SQL above.
SELECT encode(builtin_refine_v1('refine:p1', '{}'), 'hex') AS p1,
       encode(builtin_refine_v1('refine:p2', ARRAY['refine:a'::bytea]), 'hex') AS p2;
SELECT encode(builtin_refine_v1('refine:p3', ARRAY['refine:a', 'refine:bb', 'refine:a']::bytea[]), 'hex') AS p3,
       encode(builtin_refine_v1('', ARRAY['refine:bb'::bytea]), 'hex') AS p4;
-- Order matters.
SELECT encode(decode(pg_temp.process('refine-builtin', 'refine:p5', ARRAY[:'b', :'a'])->>'output', 'base64'), 'hex')
       = encode(builtin_refine_v1('refine:p5', ARRAY['refine:bb', 'refine:a']::bytea[]), 'hex') AS order_b_a,
       encode(builtin_refine_v1('refine:p5', ARRAY['refine:bb', 'refine:a']::bytea[]), 'hex')
       <> encode(builtin_refine_v1('refine:p5', ARRAY['refine:a', 'refine:bb']::bytea[]), 'hex') AS differs_from_a_b;

-- The output cap jam.max_payload_bytes applies to the output: at 31 bytes
-- the built-in refine's 32 bytes fail the package.
SET jam.max_payload_bytes = 31;
SELECT s.* FROM pg_temp.summary(pg_temp.process('refine-builtin', 'refine:capped')) AS s;
SET jam.max_payload_bytes = 32;
SELECT s.status, s.output_size FROM pg_temp.summary(pg_temp.process('refine-builtin', 'refine:at cap')) AS s;
RESET jam.max_payload_bytes;

----------------------------------------------------------------------
-- Registered refine functions
----------------------------------------------------------------------

-- concat: the payload and each input, joined with "|": shows what the
-- function is given, in order, duplicates included.
CREATE FUNCTION public.refine_concat(payload bytea, preimages bytea[]) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    out bytea := payload;
    x bytea;
BEGIN
    FOREACH x IN ARRAY preimages LOOP
        out := out || '|'::bytea || x;
    END LOOP;
    RETURN out || convert_to(' (' || coalesce(cardinality(preimages), 0) || ' inputs)', 'UTF8');
END
$$;
SELECT jam_register_service('refine-concat', 'public.refine_concat(bytea,bytea[])')->'refine_function' AS registered;
SELECT n, s.*
FROM (VALUES
    (1, pg_temp.process('refine-concat', 'refine:c1')),
    (2, pg_temp.process('refine-concat', 'refine:c2', ARRAY[:'a', :'b', :'a']))
) AS t(n, r), LATERAL pg_temp.summary(r) AS s
ORDER BY n;
-- Its output is capped too (the payload fits, the output does not).
SET jam.max_payload_bytes = 16;
SELECT s.* FROM pg_temp.summary(pg_temp.process('refine-concat', 'refine:c3', ARRAY[:'a'])) AS s;
RESET jam.max_payload_bytes;

-- A SQL-language function works the same.
CREATE FUNCTION public.refine_shout(payload bytea, preimages bytea[]) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$ SELECT convert_to(upper(convert_from(payload, 'UTF8')), 'UTF8') $$;
SELECT jam_register_service('refine-sql', 'public.refine_shout(bytea,bytea[])')->'refine_function' AS registered;
SELECT s.* FROM pg_temp.summary(pg_temp.process('refine-sql', 'refine:lower case')) AS s;

-- Changing the registration changes the refine of later packages; NULL
-- goes back to the built-in one.
SELECT jam_register_service('refine-sql', 'public.refine_concat(bytea,bytea[])')->'refine_function' AS changed;
SELECT s.refine, s.output FROM pg_temp.summary(pg_temp.process('refine-sql', 'refine:c4', ARRAY[:'a'])) AS s;
SELECT jam_register_service('refine-sql', NULL)->'refine_function' AS cleared;
SELECT s.refine, s.output = encode(builtin_refine_v1('refine:c5', ARRAY['refine:a'::bytea]), 'hex') AS builtin_output
FROM pg_temp.summary(pg_temp.process('refine-sql', 'refine:c5', ARRAY[:'a'])) AS s;

----------------------------------------------------------------------
-- A refine that raises: the package fails with the error's message
----------------------------------------------------------------------

CREATE FUNCTION public.refine_raise(payload bytea, preimages bytea[]) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF payload = 'refine:divide' THEN
        RETURN convert_to((1 / 0)::text, 'UTF8');
    ELSIF payload = 'refine:write' THEN
        CREATE TEMP TABLE refine_side_effect (x integer);
        RETURN payload;
    ELSIF payload = 'refine:retry' THEN
        RAISE EXCEPTION 'try again later' USING ERRCODE = 'serialization_failure';
    ELSIF payload = 'refine:out of memory' THEN
        RAISE EXCEPTION 'no memory left' USING ERRCODE = 'out_of_memory';
    ELSIF payload = 'refine:cancel' THEN
        RAISE EXCEPTION 'canceled' USING ERRCODE = 'query_canceled';
    ELSIF payload = 'refine:null' THEN
        RETURN NULL;
    ELSIF payload = 'refine:fine' THEN
        RETURN 'fine';
    END IF;
    RAISE EXCEPTION 'refusing %', convert_from(payload, 'UTF8') USING DETAIL = 'not shown in the reason';
END
$$;
SELECT jam_register_service('refine-raise', 'public.refine_raise(bytea,bytea[])')->'refine_function' AS registered;
SELECT jam_hash('refine:a') AS a_hash \gset
SELECT refcount AS a_refcount_before FROM jam_preimages WHERE hash = decode(:'a', 'hex');
SELECT n, s.*
FROM (VALUES
    (1, pg_temp.process('refine-raise', 'refine:r1', ARRAY[:'a'])),
    (2, pg_temp.process('refine-raise', 'refine:divide')),
    (3, pg_temp.process('refine-raise', 'refine:write'))
) AS t(n, r), LATERAL pg_temp.summary(r) AS s
ORDER BY n;
-- A failed report still holds its reference on the package's preimages;
-- the package is failed with the same reason; the function's writes are gone.
SELECT refcount AS a_refcount_after FROM jam_preimages WHERE hash = decode(:'a', 'hex');
SELECT p.status, p.failure_reason = r.failure_reason AS same_reason, p.processed_at IS NOT NULL AS processed,
       r.output IS NULL AND r.output_hash IS NULL AS no_output, jam_hex_array(r.preimage_hashes) = ARRAY[:'a'] AS report_refs
FROM jam_work_packages p JOIN jam_work_reports r ON r.package_id = p.id
WHERE p.id = decode(jam_package_id('refine-raise', 'refine:r1', preimage_hashes => ARRAY[:'a']), 'hex');
SELECT to_regclass('pg_temp.refine_side_effect') IS NULL AS no_side_effect;
SELECT service_id, pending_count FROM jam_services WHERE service_id = 'refine-raise';

-- A function returning NULL fails the package (the reason names the
-- function's oid, masked here).
SELECT regexp_replace(s.failure_reason, '[0-9]+', 'N') AS failure_reason, s.status, s.report_hash_ok
FROM pg_temp.summary(pg_temp.process('refine-raise', 'refine:null')) AS s;

-- Errors about the server, not the package (serialization failure, out of
-- memory, cancel), are raised to the caller: the package stays pending
-- and nothing is written; it is processed when asked again.
SELECT jam_submit_package('refine-raise', 'refine:retry')->>'id' AS retry_id \gset
SELECT pending_count FROM jam_services WHERE service_id = 'refine-raise';
SELECT jam_process_next('refine-raise');
SELECT status, (SELECT count(*) FROM jam_work_reports WHERE package_id = decode(:'retry_id', 'hex')) AS reports
FROM jam_work_packages WHERE id = decode(:'retry_id', 'hex');
SELECT pending_count FROM jam_services WHERE service_id = 'refine-raise';
SELECT expect_error($$SELECT jam.jam_process_next('refine-raise')$$) AS again;
-- Once the function is fixed, the same package is processed.
SELECT jam_register_service('refine-raise', 'public.refine_concat(bytea,bytea[])')->'refine_function' AS fixed;
SELECT x.r->>'package_id' = :'retry_id' AS same_package, s.status, s.output
FROM (SELECT jam_process_next('refine-raise') AS r OFFSET 0) AS x, LATERAL pg_temp.summary(x.r) AS s;
-- Out of memory, and a cancel (shown as the caller sees it).
SELECT jam_register_service('refine-raise', 'public.refine_raise(bytea,bytea[])')->'refine_function' AS back;
SELECT jam_submit_package('refine-raise', 'refine:out of memory')->>'id' AS oom_id \gset
SELECT expect_error($$SELECT jam.jam_process_next('refine-raise')$$) AS out_of_memory;
SELECT status FROM jam_work_packages WHERE id = decode(:'oom_id', 'hex');
SELECT jam_register_service('refine-raise', 'public.refine_concat(bytea,bytea[])')->'refine_function' AS fixed;
SELECT s.status, s.output FROM pg_temp.summary(jam_process_next('refine-raise')) AS s;
SELECT jam_register_service('refine-raise', 'public.refine_raise(bytea,bytea[])')->'refine_function' AS back;
SELECT jam_submit_package('refine-raise', 'refine:cancel')->>'id' AS cancel_id \gset
SELECT jam_process_next('refine-raise');
SELECT status FROM jam_work_packages WHERE id = decode(:'cancel_id', 'hex');
SELECT jam_register_service('refine-raise', 'public.refine_concat(bytea,bytea[])')->'refine_function' AS fixed;
SELECT s.status, s.output FROM pg_temp.summary(jam_process_next('refine-raise')) AS s;
SELECT jam_process_next('refine-raise') IS NULL AS none_left;
SELECT service_id, pending_count FROM jam_services WHERE service_id = 'refine-raise';

-- A refine function runs as its owner, restricted, not as the extension's
-- owner that jam_process_next runs as: registering a function lends it no
-- rights its owner lacks.
CREATE ROLE regress_refine_owner;
CREATE FUNCTION public.refine_whoami(payload bytea, preimages bytea[]) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$ SELECT pg_catalog.convert_to(current_user::text || ' ' || session_user::text, 'UTF8') $$;
ALTER FUNCTION public.refine_whoami(bytea, bytea[]) OWNER TO regress_refine_owner;
SELECT jam_register_service('refine-owner', 'public.refine_whoami(bytea,bytea[])')->'refine_function' AS registered;
SELECT convert_from(decode(pg_temp.process('refine-owner', 'refine:who')->>'output', 'base64'), 'UTF8')
       = 'regress_refine_owner ' || session_user AS runs_as_its_owner;
-- ... so a function reading jam's tables fails as its owner would,
-- where as the extension's owner it would have read the tokens.
CREATE FUNCTION public.refine_read_tokens(payload bytea, preimages bytea[]) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$ SELECT pg_catalog.convert_to((SELECT count(*) FROM jam.jam_tokens)::text, 'UTF8') $$;
ALTER FUNCTION public.refine_read_tokens(bytea, bytea[]) OWNER TO regress_refine_owner;
SELECT jam_register_service('refine-owner', 'public.refine_read_tokens(bytea,bytea[])')->'refine_function' AS registered;
SELECT s.status, s.failure_reason FROM pg_temp.summary(pg_temp.process('refine-owner', 'refine:read tokens')) AS s;
SELECT current_user = session_user AS caller_identity_restored;

-- A refine that calls jam's API is refused (refine_reentry): its package
-- fails with the reason, the queue behind it keeps flowing, and no report is
-- written twice.  (It used to process its own package from inside its
-- refine and make every later claim fail on a duplicate report.)
CREATE FUNCTION public.refine_reenters(payload bytea, preimages bytea[]) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    PERFORM jam.jam_process_next('refine-reenter');
    RETURN payload;
END
$$;
SELECT jam_register_service('refine-reenter', 'public.refine_reenters(bytea,bytea[])')->'refine_function' AS registered;
SELECT jam_submit_package('refine-reenter', convert_to('refine:re ' || g, 'UTF8'))->>'created' AS queued
FROM generate_series(1, 2) g;
SELECT r->>'status' AS status, r->>'failure_reason' AS reason
FROM jam_process_next('refine-reenter') AS r;
SELECT r->>'status' AS status FROM jam_process_next('refine-reenter') AS r;
SELECT jam_process_next('refine-reenter') IS NULL AS queue_drained;
SELECT count(*) AS reports FROM jam_work_reports WHERE service_id = 'refine-reenter';

-- A refine the server keeps interrupting (here statement_timeout) leaves its
-- package pending, and comes back at most jam.max_refine_attempts times:
-- the next claim fails the package without running the refine, and the
-- packages behind it are processed.
CREATE FUNCTION public.refine_sleeps(payload bytea, preimages bytea[]) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF payload = 'refine:slow' THEN
        PERFORM pg_catalog.pg_sleep(5);
    END IF;
    RETURN payload;
END
$$;
SELECT jam_register_service('refine-slow', 'public.refine_sleeps(bytea,bytea[])')->'refine_function' AS registered;
SELECT jam_submit_package('refine-slow', 'refine:slow')->>'created' AS poison,
       jam_submit_package('refine-slow', 'refine:fast')->>'created' AS behind_it;
SET jam.max_refine_attempts = 2;
SET statement_timeout = '300ms';
\set VERBOSITY terse
SELECT jam_process_next('refine-slow') AS first_try;
SELECT jam_process_next('refine-slow') AS second_try;
\set VERBOSITY default
SELECT r->>'status' AS third_claim, r->>'failure_reason' AS reason
FROM jam_process_next('refine-slow') AS r;
SELECT r->>'status' AS next_package FROM jam_process_next('refine-slow') AS r;
RESET statement_timeout;
RESET jam.max_refine_attempts;
SELECT labels->>'outcome' AS outcome, value FROM jam_metrics()
WHERE name = 'jam_refine_retries_total' ORDER BY 1;

-- Replay: the package's refine runs again, and nothing of it stays; the
-- answer compares it with the report, and tells a redefined refine apart.
CREATE FUNCTION public.refine_shout(payload bytea, preimages bytea[]) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$ SELECT pg_catalog.convert_to(pg_catalog.upper(pg_catalog.convert_from(payload, 'UTF8')), 'UTF8') $$;
SELECT jam_register_service('refine-replay', 'public.refine_shout(bytea,bytea[])')->'refine_function' AS registered;
SELECT pg_temp.process('refine-replay', 'refine:again')->>'status' AS processed;
SELECT jam_package_id('refine-replay', 'refine:again') AS again \gset
SELECT pg_temp.process('refine-builtin', 'refine:replay me')->>'status' AS processed;
SELECT (SELECT count(*) FROM jam_work_reports) AS reports, (SELECT count(*) FROM jam_log_entries) AS entries \gset
SELECT r->>'result' AS result, r->'stored'->>'output_hash' = r->'replayed'->>'output_hash' AS same_output,
       r->'stored'->>'refine_hash' = r->>'current_refine_hash' AS same_refine
FROM jam_replay(:'again') AS r;
SELECT jam_replay(jam_package_id('refine-builtin', 'refine:replay me'))->>'result' AS builtin;
SELECT (SELECT count(*) FROM jam_work_reports) = :reports AS no_report_written,
       (SELECT count(*) FROM jam_log_entries) = :entries AS no_log_entry;
-- A failed report replays to the same failure.
SELECT jam_replay(encode(package_id, 'hex'))->>'result' AS failed_report_replays
FROM jam_work_reports WHERE service_id = 'refine-raise' AND status = 'failed' ORDER BY seq LIMIT 1;
-- A stored output that differs from what the refine gives: mismatch.
UPDATE jam_work_reports SET output_hash = decode(repeat('ab', 32), 'hex') WHERE package_id = decode(:'again', 'hex');
SELECT r->>'result' AS result, r->'stored'->>'output_hash' AS stored FROM jam_replay(:'again') AS r;
-- The function redefined: contract_changed, with both definition hashes.
CREATE OR REPLACE FUNCTION public.refine_shout(payload bytea, preimages bytea[]) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$ SELECT pg_catalog.convert_to(pg_catalog.lower(pg_catalog.convert_from(payload, 'UTF8')), 'UTF8') $$;
SELECT r->>'result' AS result, r ? 'replayed' AS ran,
       r->'stored'->>'refine_hash' <> r->>'current_refine_hash' AS hashes_differ
FROM jam_replay(:'again') AS r;
SELECT expect_error(format('SELECT jam.jam_replay(%L)', repeat('0', 64))) AS unknown,
       expect_error($$SELECT jam.jam_replay('nope')$$) AS malformed;

-- What each report recorded as its refine.
SELECT r.refine, r.status, count(*) FROM jam_work_reports r
WHERE r.service_id LIKE 'refine-%' GROUP BY 1, 2 ORDER BY 1, 2;
-- Every report's hash follows the documented encoding.
SELECT count(*) AS reports,
       bool_and(encode(report_hash, 'hex') = public.report_hash(to_jsonb(r) || jsonb_build_object(
           'package_id', encode(package_id, 'hex'), 'output_hash', encode(output_hash, 'hex')))) AS all_report_hashes_ok,
       bool_and(encode(output_hash, 'hex') IS NOT DISTINCT FROM jam_hash(output)) AS all_output_hashes_ok
FROM jam_work_reports r WHERE r.service_id LIKE 'refine-%';
