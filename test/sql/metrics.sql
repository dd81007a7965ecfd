-- metrics: jam_metrics() and jam_metrics_reset() (src/metrics.c): the shape
-- the HTTP shim relies on, each operation counted with its outcome, errors
-- by code (raised at top level, in a subtransaction, or after the call
-- returned), refusals by reason and service, refcounts, retention (in a
-- database of its own), jam.metrics = off, the reset and who may call it.
-- Counters are shared by the whole instance, so the suite checks how they
-- move around each call, never their absolute values.
SET search_path = jam, public;
\set VERBOSITY default
\getenv abs_srcdir PG_ABS_SRCDIR
\set helpers :abs_srcdir '/sql/include/helpers.psql'
\i :helpers

-- The contract with the shim: (name, kind, help, labels, value), kind
-- 'counter' or 'gauge', one kind and one help per name, labels a flat
-- object of strings, no series twice, each name's series together.
SELECT pg_get_function_result('jam.jam_metrics()'::regprocedure) AS result;
-- (jam_refusals_total has series once something has been refused.)
SELECT name, min(kind) AS kind FROM jam_metrics() WHERE name <> 'jam_refusals_total'
GROUP BY name ORDER BY name;
SELECT count(*) AS bad_kinds FROM jam_metrics() WHERE kind NOT IN ('counter', 'gauge');
SELECT name FROM jam_metrics() GROUP BY name
HAVING count(DISTINCT kind) > 1 OR count(DISTINCT help) > 1 OR min(help) = '';
SELECT count(*) AS labels_not_flat_strings
FROM jam_metrics() m
WHERE jsonb_typeof(m.labels) <> 'object'
   OR EXISTS (SELECT 1 FROM jsonb_each(m.labels) e WHERE jsonb_typeof(e.value) <> 'string');
SELECT name, labels FROM jam_metrics() GROUP BY name, labels HAVING count(*) > 1;
SELECT count(*) = count(DISTINCT name) AS each_name_together
FROM (SELECT name, lag(name) OVER (ORDER BY n) AS prev
      FROM jam_metrics() WITH ORDINALITY AS m(name, kind, help, labels, value, n)) r
WHERE prev IS DISTINCT FROM name;
-- Counter names end in _total; every operation, with the outcomes it can have.
SELECT DISTINCT name FROM jam_metrics() WHERE kind = 'counter' AND name NOT LIKE '%\_total';
SELECT labels->>'op' AS op, string_agg(labels->>'outcome', ', ' ORDER BY n) AS outcomes
FROM jam_metrics() WITH ORDINALITY AS m(name, kind, help, labels, value, n)
WHERE name = 'jam_operations_total' GROUP BY 1 ORDER BY 1;
-- Every stable error code has its series.
SELECT (SELECT count(*) FROM jam_error_codes()) =
       (SELECT count(*) FROM jam_metrics() m JOIN jam_error_codes() c ON c.code = m.labels->>'code'
        WHERE m.name = 'jam_errors_total') AS every_code_counted;
SELECT name, labels, value FROM jam_metrics() WHERE name = 'jam_metrics_max_services';
SELECT value BETWEEN extract(epoch FROM now()) - 86400 AND extract(epoch FROM now()) + 1
       AS reset_time_is_unix_time
FROM jam_metrics() WHERE name = 'jam_metrics_reset_time_seconds';

-- moved() shows the counters that moved since the last call, as
-- name{labels} +delta, and remembers where they are now.  Times are left
-- out (they vary), and so are the announcer's counts (it announces on its
-- own time, after the commits); seconds_moved() shows which operations'
-- time grew.
-- Tables, not temporary ones: the suite reconnects.
CREATE TABLE public.metrics_mark (name text, labels jsonb, value double precision);
INSERT INTO public.metrics_mark SELECT name, labels, value FROM jam.jam_metrics() WHERE kind = 'counter';
CREATE FUNCTION public.metrics_series(name text, labels jsonb) RETURNS text LANGUAGE sql AS $$
    SELECT name || '{' || coalesce((SELECT string_agg(k || '=' || (v #>> '{}'), ',' ORDER BY k)
                                    FROM jsonb_each(labels) AS e(k, v)), '') || '}'
$$;
CREATE FUNCTION public.metrics_moved() RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    CREATE TEMP TABLE metrics_now ON COMMIT DROP AS
        SELECT name, labels, value FROM jam.jam_metrics() WHERE kind = 'counter';
    RETURN QUERY
        SELECT public.metrics_series(n.name, n.labels) || ' +' || (n.value - coalesce(m.value, 0))
        FROM metrics_now n LEFT JOIN public.metrics_mark m USING (name, labels)
        WHERE n.value <> coalesce(m.value, 0) AND n.name NOT LIKE '%seconds%'
          AND n.name <> 'jam_events_total'
        ORDER BY 1;
    DELETE FROM public.metrics_mark;
    INSERT INTO public.metrics_mark SELECT * FROM metrics_now;
END
$$;
CREATE FUNCTION public.metrics_seconds_moved() RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
        SELECT public.metrics_series(n.name, n.labels)
        FROM jam.jam_metrics() n JOIN public.metrics_mark m USING (name, labels)
        WHERE n.name LIKE '%seconds%' AND n.value > m.value
        ORDER BY 1;
END
$$;
-- Reading the metrics counts nothing.
SELECT count(*) > 0 AS read FROM jam_metrics();
SELECT * FROM metrics_moved();

-- Preimages: created, then existing; a get and a meta; a get of a missing
-- preimage at top level (its transaction aborts), and a bad hash inside a
-- subtransaction (expect_error's exception block): each an error of the
-- operation and of its code.
SELECT jam_put_preimage('metrics:a')->>'created' AS created;
SELECT jam_put_preimage('metrics:a')->>'created' AS created;
SELECT length(jam_get_preimage(jam_hash('metrics:a'))) AS got;
SELECT jam_preimage_meta(jam_hash('metrics:a'))->>'size' AS size;
SELECT * FROM metrics_seconds_moved();
SELECT * FROM metrics_moved();
SELECT jam_get_preimage(jam_hash('metrics:nowhere'));
SELECT * FROM metrics_moved();
SELECT expect_error('SELECT jam.jam_preimage_meta(''XYZ'')') AS bad_hash;
SELECT * FROM metrics_seconds_moved();
SELECT * FROM metrics_moved();
-- Time keeps adding up: ten puts take longer than none.
SELECT count(*) FROM generate_series(1, 10) AS i, jam_put_preimage(convert_to('metrics:many' || i, 'UTF8'));
SELECT * FROM metrics_seconds_moved();
SELECT * FROM metrics_moved();

-- Packages: a submit referencing two preimages (a hash listed twice counts
-- once) raises two refcounts; the same again is "existing" and raises
-- none; a get and a list.
SELECT jam_put_preimage('metrics:b')->>'created' AS created;
SELECT jam_submit_package('metrics-1', 'one',
    preimage_hashes => ARRAY[jam_hash('metrics:a'), jam_hash('metrics:b'), jam_hash('metrics:a')])->>'created' AS created;
SELECT jam_submit_package('metrics-1', 'one',
    preimage_hashes => ARRAY[jam_hash('metrics:a'), jam_hash('metrics:b'), jam_hash('metrics:a')])->>'created' AS created;
SELECT jam_get_package(jam_package_id('metrics-1', 'one',
    preimage_hashes => ARRAY[jam_hash('metrics:a'), jam_hash('metrics:b'), jam_hash('metrics:a')]))->>'status' AS status;
SELECT jam_list_packages(service_id => 'metrics-1')->>'total' AS total;
SELECT * FROM metrics_moved();
-- A reference to a missing preimage: the refcount of the stored one was
-- raised (and counted) before the error rolled it back.  Counters count
-- work as it is done, not as it commits.
SELECT expect_error($$SELECT jam.jam_submit_package('metrics-1', 'two',
    preimage_hashes => ARRAY[jam.jam_hash('metrics:a'), jam.jam_hash('metrics:nowhere')])$$) AS missing;
SELECT * FROM metrics_moved();
-- jam_package_id stores nothing and is not an operation.
SELECT jam_package_id('metrics-1', 'x') IS NOT NULL AS computed;
SELECT * FROM metrics_moved();

-- Processing: applied (raising the report's refcounts), a failure of the
-- registered refine (which runs in a subtransaction of its own that rolls
-- back: the call itself does not fail), and an empty poll.
SELECT jam_process_next('metrics-1')->>'status' AS status;
SELECT * FROM metrics_moved();
CREATE FUNCTION public.metrics_refine_raise(payload bytea, preimages bytea[]) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN RAISE EXCEPTION 'no'; END $$;
SELECT jam_register_service('metrics-2', 'public.metrics_refine_raise(bytea,bytea[])')->>'service_id' AS registered;
SELECT jam_submit_package('metrics-2', 'fails')->>'created' AS created;
SELECT jam_process_next('metrics-2')->>'status' AS status;
SELECT jam_process_next('metrics-2') IS NULL AS empty;
SELECT * FROM metrics_moved();

-- Reports and attestations; a report of a package not processed yet.
SELECT jam_get_report(jam_package_id('metrics-2', 'fails'))->>'status' AS status;
SELECT jam_list_reports(service_id => 'metrics-2')->>'total' AS total;
SELECT jsonb_array_length(jam_attestations(jam_package_id('metrics-2', 'fails'))) AS attestations;
SELECT jam_submit_package('metrics-2', 'waits')->>'created' AS created;
SELECT expect_error($$SELECT jam.jam_get_report(jam.jam_package_id('metrics-2', 'waits'))$$) AS no_report;
SELECT * FROM metrics_moved();

-- The verifiable log.
SELECT jam_receipt(jam_package_id('metrics-2', 'fails'))->>'kind' AS kind;
SELECT jam_inclusion_proof('metrics-2', 0, 2)->>'seq' AS seq;
SELECT cardinality(jam_consistency_proof('metrics-2', 1, 2)) AS proof_length;
SELECT length(jam_root('metrics-2', 1)) AS root_length;
SELECT jsonb_typeof(jam_roots()) AS roots;
SELECT jam_checkpoint('metrics-2') LIKE 'jam/metrics-2%' AS checkpoint;
SELECT jam_verify_log('metrics-2')->>'ok' AS ok;
SELECT jam_status()->>'enabled' AS enabled;
SELECT expect_error('SELECT jam.jam_checkpoint(''metrics-none'')') AS no_service;
SELECT * FROM metrics_moved();

-- Refusals, by reason and service: the pending cap, a payload over the
-- cap, a preimage over the cap (no service: "_none").  jam_package_id
-- refuses an oversized payload too.
SET jam.max_pending_packages = 1;
SELECT expect_error($$SELECT jam.jam_submit_package('metrics-2', 'over the cap')$$) AS quota;
RESET jam.max_pending_packages;
SET jam.max_payload_bytes = 3;
SELECT expect_error($$SELECT jam.jam_submit_package('metrics-3', 'long')$$) AS payload;
SELECT expect_error($$SELECT jam.jam_package_id('metrics-3', 'long')$$) AS payload_id;
RESET jam.max_payload_bytes;
SET jam.max_preimage_bytes = 3;
SELECT expect_error($$SELECT jam.jam_put_preimage('long')$$) AS preimage;
RESET jam.max_preimage_bytes;
SELECT * FROM metrics_moved();
SELECT labels->>'reason' AS reason, labels->>'service_id' AS service_id, value
FROM jam_metrics() WHERE name = 'jam_refusals_total' AND labels->>'service_id' LIKE 'metrics-%'
ORDER BY 1, 2;

-- Argument errors, and jam disabled: errors of the operation, by code.
SELECT expect_error('SELECT jam.jam_get_package(NULL)') AS null_id;
SELECT expect_error($$SELECT jam.jam_list_reports(status => 'lost')$$) AS bad_status;
SELECT expect_error($$SELECT jam.jam_register_service('metrics-2', 'pg_catalog.now()')$$) AS bad_refine;
SET jam.enabled = off;
SELECT expect_error('SELECT jam.jam_roots()') AS disabled;
RESET jam.enabled;
SELECT * FROM metrics_moved();

-- An error raised after the call returned is not the call's: the call is
-- counted as it ended.  A call whose error an exception block catches is
-- an error; the call after it in the same block is not.
SELECT (jam_roots() IS NOT NULL)::int / 0;
SELECT * FROM metrics_moved();
DO $$
BEGIN
    BEGIN
        PERFORM jam.jam_get_package('00');
    EXCEPTION WHEN others THEN
        NULL;
    END;
    PERFORM jam.jam_roots();
END
$$;
SELECT * FROM metrics_moved();
-- A call that fails inside a subtransaction that then commits nothing
-- else: counted once, even after the enclosing transaction aborts.
BEGIN;
SAVEPOINT s;
SELECT jam_get_package(repeat('0', 64));
ROLLBACK TO SAVEPOINT s;
SELECT jam_roots() IS NOT NULL AS roots;
ROLLBACK;
SELECT * FROM metrics_moved();

-- Tokens and quotas (src/auth.c, src/tokens.c, src/quota.c): no token
-- presented ("empty"), a token, a malformed one (an unauthenticated
-- refusal), a read token submitting (a forbidden refusal, before any
-- service is looked at), and a service's rate limit.
SELECT jam_create_token('metrics-reader', '{jam:read}') AS metrics_token \gset
SELECT jam_authenticate(:'metrics_token')->>'token_id' AS metrics_token_id \gset
SELECT jam_authenticate(NULL)->>'authenticated' AS anonymous;
SELECT expect_error($$SELECT jam.jam_authenticate('jam_nothing')$$) AS malformed;
SELECT expect_error(format('SELECT jam.jam_submit_package(%L, %L) FROM jam.jam_authenticate(%L)',
                           'metrics-4', 'x', :'metrics_token')) AS forbidden;
SELECT jsonb_array_length(jam_list_tokens()) > 0 AS listed;
SELECT jam_revoke_token(:'metrics_token_id') AS revoked;
SELECT * FROM metrics_moved();
SELECT jam_set_quota(service_id => 'metrics-rate', rate_limit_per_minute => 1) IS NOT NULL AS quota_set;
SELECT jam_submit_package('metrics-rate', 'one')->>'created' AS first;
SELECT expect_error($$SELECT jam.jam_submit_package('metrics-rate', 'two')$$) AS limited;
SELECT jam_quota_usage(service_id => 'metrics-rate') IS NOT NULL AS usage;
SELECT * FROM metrics_moved();

-- jam.metrics = off: nothing is counted; jam_metrics() still reads.
SET jam.metrics = off;
SELECT jam_put_preimage('metrics:off')->>'created' AS created;
SELECT expect_error('SELECT jam.jam_get_preimage(''0'')') AS bad_hash;
SELECT count(*) > 0 AS readable FROM jam_metrics();
SELECT * FROM metrics_moved();
RESET jam.metrics;
SELECT jam_put_preimage('metrics:off')->>'created' AS created;
SELECT * FROM metrics_moved();

-- Retention, in a database of its own so that nothing of the other suites
-- is cleaned up: a dry run counts a run and deletes nothing; a cleanup
-- counts its run, the rows each batch deleted by kind and the refcounts
-- it lowered; retention turned off counts a "disabled" run.  The counters
-- are the instance's, read from any database.
SELECT current_database() AS regress_db \gset
CREATE DATABASE jam_metrics_regress;
\c jam_metrics_regress
SET client_min_messages = warning;
CREATE EXTENSION jam;
RESET client_min_messages;
SET search_path = jam, public;
SELECT jam_put_preimage('metrics:old') IS NOT NULL AS put;
SELECT jam_submit_package('metrics-old', 'old', preimage_hashes => ARRAY[jam_hash('metrics:old')]) IS NOT NULL AS submitted;
SELECT jam_submit_package('metrics-old', 'old too') IS NOT NULL AS submitted;
SELECT jam_process_next('metrics-old')->>'status' AS status;
UPDATE jam_work_packages SET submitted_at = submitted_at - interval '40 days';
UPDATE jam_work_reports SET created_at = created_at - interval '40 days';
UPDATE jam_preimages SET created_at = created_at - interval '40 days';
\c :regress_db
SET search_path = jam, public;
SELECT * FROM metrics_moved();
\c jam_metrics_regress
SET search_path = jam, public;
SELECT jam_cleanup(dry_run => true) - 'cutoff' - 'preimage_cutoff' - 'duration_ms' AS dry_run;
SELECT jam_cleanup(dry_run => false) - 'cutoff' - 'preimage_cutoff' - 'duration_ms' AS cleanup;
SET jam.retention_days = 0;
SELECT jam_cleanup()->>'disabled' AS disabled;
RESET jam.retention_days;
\c :regress_db
DROP DATABASE jam_metrics_regress;
SET search_path = jam, public;
SELECT * FROM metrics_seconds_moved();
SELECT * FROM metrics_moved();

-- Who may call them: jam's three roles read (the shim as jam_api), only
-- jam_operator resets; PUBLIC may call neither.
SELECT has_function_privilege('public', 'jam.jam_metrics()', 'EXECUTE') AS public_may_read,
       has_function_privilege('public', 'jam.jam_metrics_reset()', 'EXECUTE') AS public_may_reset;
SELECT r AS role, has_function_privilege(r, 'jam.jam_metrics()', 'EXECUTE') AS may_read,
       has_function_privilege(r, 'jam.jam_metrics_reset()', 'EXECUTE') AS may_reset
FROM unnest(ARRAY['jam_api', 'jam_reader', 'jam_operator']) AS r ORDER BY r;
CREATE ROLE regress_jam_metrics_nobody;
GRANT USAGE ON SCHEMA jam TO regress_jam_metrics_nobody;
SET ROLE regress_jam_metrics_nobody;
SELECT expect_error('SELECT count(*) FROM jam.jam_metrics()') AS read;
SELECT expect_error('SELECT jam.jam_metrics_reset()') AS reset;
RESET ROLE;
REVOKE USAGE ON SCHEMA jam FROM regress_jam_metrics_nobody;
DROP ROLE regress_jam_metrics_nobody;

-- The reset: every counter back to zero, the services of the refusal
-- table forgotten, the reset time now.
SELECT jam_metrics_reset();
SELECT count(*) AS counters_not_zero FROM jam_metrics() WHERE kind = 'counter' AND value <> 0;
SELECT count(*) AS refusal_series FROM jam_metrics() WHERE name = 'jam_refusals_total';
SELECT value AS services_tracked FROM jam_metrics() WHERE name = 'jam_metrics_refusal_services';
SELECT value >= extract(epoch FROM now()) - 1 AS reset_just_now
FROM jam_metrics() WHERE name = 'jam_metrics_reset_time_seconds';
-- And counting starts again.
SELECT jam_roots() IS NOT NULL AS roots;
SELECT metrics_series(name, labels), value FROM jam_metrics() WHERE kind = 'counter' AND value <> 0
AND name NOT LIKE '%seconds%' AND name <> 'jam_events_total';
DROP TABLE public.metrics_mark;
DROP FUNCTION public.metrics_moved(), public.metrics_seconds_moved(), public.metrics_series(text, jsonb);
