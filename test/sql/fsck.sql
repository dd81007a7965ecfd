-- fsck: jam_fsck (src/fsck.c): refcounts recounted from packages (each
-- distinct hash once) and reports, pending counts recounted from pending
-- packages, drift reported and, with repair, fixed; references to
-- preimages that are not stored reported as missing.  Drift is made by
-- writing the tables by hand.  It runs in a database of its own, so that
-- what other suites leave behind is not counted.
\getenv abs_srcdir PG_ABS_SRCDIR
\set own_db jam_fsck_regress
\set own_database :abs_srcdir '/sql/include/own_database.psql'
\i :own_database

-- Preimages are named in pre; shown(doc) puts their labels in place of
-- their hashes.
CREATE TEMP TABLE pre (label text PRIMARY KEY, hash text UNIQUE);
CREATE FUNCTION pg_temp.put(label text) RETURNS text LANGUAGE sql AS $$
    INSERT INTO pre VALUES (label, jam.jam_put_preimage(convert_to('fsck:' || label, 'UTF8'))->>'hash')
    RETURNING label
$$;
CREATE FUNCTION pg_temp.refs(VARIADIC labels text[]) RETURNS text[] LANGUAGE sql AS $$
    SELECT array_agg(coalesce(p.hash, r.l) ORDER BY r.i)
    FROM unnest(labels) WITH ORDINALITY AS r(l, i) LEFT JOIN pre p ON p.label = r.l
$$;
CREATE FUNCTION pg_temp.shown(doc jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT doc
        || jsonb_build_object('refcount_drift', (
               SELECT coalesce(jsonb_agg(e || jsonb_build_object('hash', coalesce(pre.label, e->>'hash'))
                                         ORDER BY o), '[]')
               FROM jsonb_array_elements(doc->'refcount_drift') WITH ORDINALITY AS a(e, o)
               LEFT JOIN pre ON pre.hash = e->>'hash'))
        || jsonb_build_object('missing_preimages', (
               SELECT coalesce(jsonb_agg(coalesce(pre.label, h) ORDER BY o), '[]')
               FROM jsonb_array_elements_text(doc->'missing_preimages') WITH ORDINALITY AS a(h, o)
               LEFT JOIN pre ON pre.hash = h))
$$;
CREATE FUNCTION pg_temp.preimages() RETURNS TABLE (preimage text, refcount bigint) LANGUAGE sql AS $$
    SELECT pre.label, p.refcount FROM pre JOIN jam.jam_preimages p ON p.hash = decode(pre.hash, 'hex') ORDER BY 1
$$;

-- Nothing stored: nothing to check.
SELECT jsonb_pretty(jam_fsck()) AS empty;

-- Preimages a b c d; packages: f1 (svc fsck-1) references a, a, b (a is
-- listed twice but holds one reference) and is processed, so that its
-- report holds a and b too; f2 (fsck-1, pending) references b; f3 (fsck-2,
-- pending) references c; d is unreferenced.
SELECT count(pg_temp.put(l)) AS preimages FROM unnest('{a,b,c,d}'::text[]) AS l;
SELECT jam_submit_package('fsck-1', 'f1', preimage_hashes => pg_temp.refs('a', 'a', 'b'))->>'status' AS f1;
SELECT jam_submit_package('fsck-1', 'f2', preimage_hashes => pg_temp.refs('b'))->>'status' AS f2;
SELECT jam_submit_package('fsck-2', 'f3', preimage_hashes => pg_temp.refs('c'))->>'status' AS f3;
SELECT jam_process_next('fsck-1')->>'status' AS f1_processed;
SELECT * FROM pg_temp.preimages();
SELECT service_id, pending_count FROM jam_services ORDER BY 1;
-- All consistent.
SELECT jsonb_pretty(pg_temp.shown(jam_fsck())) AS consistent;

-- Drift by hand: a too high, b too low, d counted though unreferenced,
-- fsck-1's pending count too high and fsck-2's too low.  fsck reports it
-- and changes nothing.
UPDATE jam_preimages SET refcount = refcount + 2 WHERE hash = (SELECT decode(hash, 'hex') FROM pre WHERE label = 'a');
UPDATE jam_preimages SET refcount = refcount - 1 WHERE hash = (SELECT decode(hash, 'hex') FROM pre WHERE label = 'b');
UPDATE jam_preimages SET refcount = 5 WHERE hash = (SELECT decode(hash, 'hex') FROM pre WHERE label = 'd');
UPDATE jam_services SET pending_count = pending_count + 3 WHERE service_id = 'fsck-1';
UPDATE jam_services SET pending_count = 0 WHERE service_id = 'fsck-2';
SELECT jsonb_pretty(pg_temp.shown(jam_fsck())) AS drift;
SELECT jsonb_pretty(pg_temp.shown(jam_fsck(false))) = jsonb_pretty(pg_temp.shown(jam_fsck())) AS same_again;
SELECT * FROM pg_temp.preimages();

-- Repair: the same report, "repaired": true, and the counts are right.
SELECT jsonb_pretty(pg_temp.shown(jam_fsck(repair => true))) AS repaired;
SELECT * FROM pg_temp.preimages();
SELECT service_id, pending_count FROM jam_services ORDER BY 1;
SELECT pg_temp.shown(jam_fsck()) - 'preimages_checked' - 'services_checked' AS clean;
-- Repairing nothing: "repaired": false.
SELECT jam_fsck(repair => true)->'repaired' AS repaired_nothing;

-- A referenced preimage removed by hand is missing: it cannot be
-- repaired, only reported.
DELETE FROM jam_preimages WHERE hash = (SELECT decode(hash, 'hex') FROM pre WHERE label = 'c');
SELECT pg_temp.shown(jam_fsck(repair => true)) - 'preimages_checked' - 'services_checked' AS missing;
SELECT jam_fsck()->'missing_count' AS still_missing;

-- Lists stop at 100 entries; the counts do not.
INSERT INTO jam_preimages (hash, data, size, media_type, refcount)
SELECT decode(jam_hash(convert_to('fsck:many:' || n, 'UTF8')), 'hex'), convert_to('fsck:many:' || n, 'UTF8'),
       octet_length(convert_to('fsck:many:' || n, 'UTF8')), 'application/octet-stream', 1
FROM generate_series(1, 150) AS n;
SELECT f->'drift_count' AS drift_count, jsonb_array_length(f->'refcount_drift') AS listed,
       (SELECT array_agg(e->>'hash' ORDER BY o) FROM jsonb_array_elements(f->'refcount_drift') WITH ORDINALITY AS a(e, o))
       = (SELECT array_agg(e->>'hash' ORDER BY e->>'hash' COLLATE "C") FROM jsonb_array_elements(f->'refcount_drift') AS e)
       AS in_hash_order
FROM jam_fsck() AS f;
SELECT jam_fsck(true)->'drift_count' AS repaired;
SELECT jam_fsck()->'drift_count' AS left;

-- Repair counts and fixes under locks that it takes first, so it needs
-- each statement to see the tables afresh: not at REPEATABLE READ.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT jam_fsck(repair => true);
ROLLBACK;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT jam_fsck()->'drift_count' AS checking_is_fine;
ROLLBACK;

-- Refused: a null argument; with jam disabled.  Operators only.
SELECT expect_error('SELECT jam.jam_fsck(NULL)') AS null_repair;
SET jam.enabled = off;
SELECT expect_error('SELECT jam.jam_fsck()') AS disabled;
RESET jam.enabled;
SELECT has_function_privilege('public', 'jam.jam_fsck(boolean)', 'EXECUTE') AS public_may_call;
SELECT proname, provolatile, proisstrict, pg_get_function_arguments(oid) AS arguments
FROM pg_proc WHERE oid = 'jam.jam_fsck(boolean)'::regprocedure;

\c :regress_db
DROP DATABASE :"own_db";
