-- events: the event stream's half in Postgres (src/events.c): jam.events,
-- and jam_log_events, which reads a service's log back as events after a
-- position, with jam_list_packages' token rules.  The NOTIFY itself, which
-- only a listening session sees, is tested in test/t/054_shim_events.pl.
-- It runs in a database of its own, so that tenants and tokens made here
-- do not show elsewhere.
\getenv abs_srcdir PG_ABS_SRCDIR
\set own_db jam_events_regress
\set own_database :abs_srcdir '/sql/include/own_database.psql'
\i :own_database

-- Announcing is on by default (the announcer worker sends the NOTIFYs after
-- the commits), and only a superuser may turn it off.
SHOW jam.events;
SELECT setting, context, boot_val FROM pg_settings WHERE name = 'jam.events';
CREATE ROLE regress_jam_events_user;
SET ROLE regress_jam_events_user;
SELECT expect_error('SET jam.events = off') AS user_sets_events;
RESET ROLE;
SET jam.events = off;
SHOW jam.events;
RESET jam.events;

-- A service with no log yet: nothing to read, the log's last position -1.
SELECT jam_log_events('ev-a') AS empty_log;

-- Three packages submitted, then one applied and one failed: five entries.
CREATE FUNCTION public.ev_refine(payload bytea, preimages bytea[]) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF payload = '\x66'::bytea THEN
        RAISE EXCEPTION 'ev refuses f';
    END IF;
    RETURN payload;
END
$$;
SELECT jam_register_service('ev-a', 'public.ev_refine(bytea,bytea[])')->>'service_id' AS registered;
SELECT jam_submit_package('ev-a', '\x61')->>'id' AS pkg_a \gset
SELECT jam_submit_package('ev-a', '\x66')->>'id' AS pkg_f \gset
SELECT jam_submit_package('ev-a', '\x63')->>'id' AS pkg_c \gset
SELECT jam_process_next('ev-a')->>'report_hash' AS report_a \gset
SELECT jam_process_next('ev-a')->>'report_hash' AS report_f \gset

-- Each event: its position, its kind, its id (the package id of a
-- package, the report hash of a report) and its status, in log order.
SELECT e->>'seq' AS seq, e->>'service_id' AS service_id, e->>'kind' AS kind,
       CASE e->>'id' WHEN :'pkg_a' THEN 'package a' WHEN :'pkg_f' THEN 'package f'
                     WHEN :'pkg_c' THEN 'package c' WHEN :'report_a' THEN 'report of a'
                     WHEN :'report_f' THEN 'report of f' ELSE e->>'id' END AS id,
       e->>'status' AS status
FROM jsonb_array_elements(jam_log_events('ev-a')->'events') AS e;
SELECT d - 'events' AS envelope, jsonb_array_length(d->'events') AS n_events
FROM jam_log_events('ev-a') AS d;
-- Exactly these members, and each event is its entry in the log.
SELECT DISTINCT jsonb_object_keys(e) AS event_member
FROM jsonb_array_elements(jam_log_events('ev-a')->'events') AS e ORDER BY 1;
SELECT bool_and(e->>'id' = encode(l.hash, 'hex') AND e->>'kind' = l.kind AND e->>'status' = l.status)
       AS events_are_the_log
FROM jsonb_array_elements(jam_log_events('ev-a')->'events') AS e
JOIN jam_log_entries l ON l.service_id = 'ev-a' AND l.seq = (e->>'seq')::bigint;
-- A report's event names the package it is of (1.3); a package's has no
-- package_id (its id is the package id).
SELECT e->>'kind' AS kind, count(*) AS events,
       count(*) FILTER (WHERE e->>'package_id' = encode(r.package_id, 'hex')) AS naming_their_package,
       count(*) FILTER (WHERE e ? 'package_id') AS with_package_id
FROM jsonb_array_elements(jam_log_events('ev-a')->'events') AS e
LEFT JOIN jam_work_reports r ON e->>'kind' = 'report' AND r.report_hash = decode(e->>'id', 'hex')
GROUP BY 1 ORDER BY 1;

-- Paging: after_seq and max_events; next_after is where to go on, null at the end.
SELECT a AS after_seq, m AS max_events,
       (SELECT string_agg(e->>'seq', ',') FROM jsonb_array_elements(d->'events') AS e) AS seqs,
       d->'last_seq' AS last_seq, d->'next_after' AS next_after
FROM (VALUES (-1, 2), (1, 2), (3, 2), (4, 2), (-1, 5), (-1, 1000), (2, 0), (4, 0), (-1, 0)) AS p(a, m),
LATERAL jam_log_events('ev-a', a, m) AS d
ORDER BY a, m;

-- Refused: missing arguments, a malformed service, a page out of range, a
-- position outside the log.
SELECT expect_error(sql) AS refused
FROM unnest(ARRAY[
    $$SELECT jam.jam_log_events(NULL)$$,
    $$SELECT jam.jam_log_events('ev-a', NULL)$$,
    $$SELECT jam.jam_log_events('ev-a', -1, NULL)$$,
    $$SELECT jam.jam_log_events('bad service')$$,
    $$SELECT jam.jam_log_events('ev-a', -1, -1)$$,
    $$SELECT jam.jam_log_events('ev-a', -1, 1001)$$,
    $$SELECT jam.jam_log_events('ev-a', -2)$$,
    $$SELECT jam.jam_log_events('ev-a', 5)$$,
    $$SELECT jam.jam_log_events('ev-nothing', 0)$$]) AS sql;

-- jam.enabled off: disabled, as every API function.
SET jam.enabled = off;
SELECT expect_error($$SELECT jam.jam_log_events('ev-a')$$) AS while_disabled;
RESET jam.enabled;

-- Who may call it: no one through PUBLIC, the three roles.
SELECT has_function_privilege('public', 'jam.jam_log_events(text,bigint,integer)', 'EXECUTE') AS public,
       has_function_privilege('jam_api', 'jam.jam_log_events(text,bigint,integer)', 'EXECUTE') AS api,
       has_function_privilege('jam_reader', 'jam.jam_log_events(text,bigint,integer)', 'EXECUTE') AS reader,
       has_function_privilege('jam_operator', 'jam.jam_log_events(text,bigint,integer)', 'EXECUTE') AS operator;
SELECT prosecdef AS security_definer, proconfig AS config, provolatile AS volatility
FROM pg_proc WHERE oid = 'jam.jam_log_events(text,bigint,integer)'::regprocedure;

-- The token rules of jam_list_packages, through the shim's role: a token
-- is needed, with jam:read, that may see the service; naming another's
-- service is forbidden.  A tenant's token makes its services by submitting.
CREATE FUNCTION public.ev_call(token text, sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    result text;
BEGIN
    EXECUTE format('SELECT (%s)::text FROM jam.jam_authenticate(%L)', sql, token) INTO result;
    RETURN coalesce(result, '(null)');
EXCEPTION WHEN OTHERS THEN
    RETURN public.expect_error(format('SELECT (%s)::text FROM jam.jam_authenticate(%L)', sql, token));
END
$$;
CREATE ROLE regress_jam_events_shim LOGIN IN ROLE jam_api;
SELECT jam_create_token('reader', '{jam:read}') AS reader \gset
SELECT jam_create_token('submitter', '{jam:submit}') AS submitter \gset
SELECT jam_create_token('b only', '{jam:read}', '{ev-b}') AS b_only \gset
SELECT jam_create_token('tenant 1', '{jam:read,jam:submit}', NULL, 'tenant-1') AS t1 \gset
SELECT jam_create_token('tenant 2', '{jam:read,jam:submit}', NULL, 'tenant-2') AS t2 \gset
SET ROLE regress_jam_events_shim;
SELECT expect_error($$SELECT jam.jam_log_events('ev-a')$$) AS without_token;
SELECT ev_call(:'reader', $$jam.jam_log_events('ev-a', 2, 10)->'events'->0->>'id' = '$$ || :'report_a' || $$'$$)
       AS reader_reads,
       ev_call(:'submitter', $$jam.jam_log_events('ev-a')$$) AS submitter,
       ev_call(:'b_only', $$jam.jam_log_events('ev-a')$$) AS other_service,
       ev_call(:'b_only', $$jam.jam_log_events('ev-b')->'last_seq'$$) AS its_service;
SELECT ev_call(:'t1', $$jam.jam_submit_package('ev-t1', '\x01')->>'status'$$) AS t1_submits;
SELECT ev_call(:'t1', $$jam.jam_log_events('ev-t1')->'events'->0->>'kind'$$) AS t1_reads_its_own,
       ev_call(:'t2', $$jam.jam_log_events('ev-t1')$$) AS t2_names_t1s,
       ev_call(:'t1', $$jam.jam_log_events('ev-a')$$) AS t1_names_untenanted;
RESET ROLE;

-- Counted as an operation.
SELECT value > 0 AS counted FROM jam_metrics()
WHERE name = 'jam_operations_total' AND labels = '{"op": "log_events", "outcome": "ok"}';

\c :regress_db
DROP DATABASE :"own_db";
DROP ROLE regress_jam_events_shim;
DROP ROLE regress_jam_events_user;
