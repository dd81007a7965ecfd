-- process: jam_process_next (src/process.c), the queue's consumer: oldest
-- first, per-service filter, NULL when nothing is pending, what it writes
-- (report, attestation, package status, refcounts, pending count) and that
-- an aborted transaction leaves the package pending.  (The refine itself:
-- refine.sql; reading reports: report.sql.)
SET search_path = jam, public;
\set VERBOSITY default
\getenv abs_srcdir PG_ABS_SRCDIR
\set helpers :abs_srcdir '/sql/include/helpers.psql'
\i :helpers

-- Packages are named in pp; state() shows this file's queue.
CREATE TEMP TABLE pp (label text PRIMARY KEY, id text UNIQUE);
CREATE FUNCTION pg_temp.submit(label text, service_id text, refs text[] DEFAULT '{}') RETURNS text
LANGUAGE sql AS $$
    INSERT INTO pp VALUES (label, jam.jam_submit_package(service_id, convert_to('process:' || label, 'UTF8'),
                                                         preimage_hashes => refs)->>'id')
    RETURNING label
$$;
CREATE FUNCTION pg_temp.label(doc jsonb) RETURNS text LANGUAGE sql AS $$
    SELECT CASE WHEN doc IS NULL THEN 'NULL'
                ELSE coalesce((SELECT label FROM pp WHERE id = doc->>'package_id'), '?') END
$$;
CREATE FUNCTION pg_temp.state() RETURNS TABLE (label text, status text, failure_reason text,
                                               processed boolean, reports bigint, attestations bigint)
LANGUAGE sql AS $$
    SELECT pp.label, p.status, p.failure_reason, p.processed_at IS NOT NULL,
           (SELECT count(*) FROM jam.jam_work_reports r WHERE r.package_id = p.id),
           (SELECT count(*) FROM jam.jam_attestations a WHERE a.package_id = p.id)
    FROM pp LEFT JOIN jam.jam_work_packages p ON p.id = decode(pp.id, 'hex') ORDER BY pp.label
$$;
CREATE FUNCTION pg_temp.pending() RETURNS TABLE (service_id text, pending_count bigint, really_pending bigint)
LANGUAGE sql AS $$
    SELECT s.service_id, s.pending_count,
           (SELECT count(*) FROM jam.jam_work_packages p WHERE p.service_id = s.service_id AND p.status = 'pending')
    FROM jam.jam_services s WHERE s.service_id LIKE 'proc-%' ORDER BY 1
$$;

SELECT jam_put_preimage('process:a')->>'hash' AS a, jam_put_preimage('process:b')->>'hash' AS b,
       jam_put_preimage('process:c')->>'hash' AS c \gset
CREATE FUNCTION pg_temp.refcounts() RETURNS TABLE (preimage text, refcount bigint) LANGUAGE sql AS $$
    SELECT CASE encode(hash, 'hex') WHEN jam.jam_hash('process:a') THEN 'a' WHEN jam.jam_hash('process:b') THEN 'b'
                     WHEN jam.jam_hash('process:c') THEN 'c' END, refcount
    FROM jam.jam_preimages
    WHERE hash IN (decode(jam.jam_hash('process:a'), 'hex'), decode(jam.jam_hash('process:b'), 'hex'),
                   decode(jam.jam_hash('process:c'), 'hex'))
    ORDER BY 1
$$;

-- Nothing pending: NULL, for an unknown service and for one without packages.
SELECT jam_process_next('proc-unknown') IS NULL AS unknown_service;
SELECT jam_register_service('proc-empty')->'pending_count' AS pending_count;
SELECT jam_process_next('proc-empty') IS NULL AS empty_service;
SELECT count(*) AS services_created FROM jam_services WHERE service_id = 'proc-unknown';

-- Bad service filters.
SELECT call, expect_error(call) AS result FROM (VALUES
    ($$SELECT jam.jam_process_next('')$$),
    ($$SELECT jam.jam_process_next('proc a')$$),
    ($$SELECT jam.jam_process_next(repeat('p', 65))$$)
) AS t(call);
SELECT jam_process_next('proc a');

-- p1 p2 p3 for proc-a, q1 for proc-b, interleaved; p1 references a, a, b
-- and p3 references b.
SELECT pg_temp.submit('p1', 'proc-a', ARRAY[:'a', :'a', :'b']) AS submitted
UNION ALL SELECT pg_temp.submit('q1', 'proc-b')
UNION ALL SELECT pg_temp.submit('p2', 'proc-a')
UNION ALL SELECT pg_temp.submit('p3', 'proc-a', ARRAY[:'b']);
SELECT * FROM pg_temp.state();
SELECT * FROM pg_temp.pending();
SELECT * FROM pg_temp.refcounts();

-- The oldest package of the service comes first; processing returns its
-- report.
SELECT jam_process_next('proc-a') AS r1 \gset
SELECT pg_temp.label(:'r1'::jsonb) AS processed;
SELECT jsonb_pretty(stable(:'r1'::jsonb) - 'preimage_hashes') AS report;
-- The report holds one reference on each distinct preimage.
SELECT array_agg(h ORDER BY h) = (SELECT array_agg(h ORDER BY h) FROM unnest(ARRAY[:'a', :'b']) AS h) AS report_refs_a_b,
       count(*) AS n
FROM jsonb_array_elements_text(:'r1'::jsonb->'preimage_hashes') AS h;
-- The package left the queue: applied, processed; the service has one
-- pending package fewer; a and b gained a reference for the report.
SELECT * FROM pg_temp.state();
SELECT * FROM pg_temp.pending();
SELECT * FROM pg_temp.refcounts();
-- What was written: the report row and this node's attestation.
SELECT r.service_id, r.status, r.contract_version, r.refine, octet_length(r.output) AS output_len,
       encode(r.output_hash, 'hex') = jam_hash(r.output) AS output_hash_ok, r.failure_reason,
       encode(r.report_hash, 'hex') = :'r1'::jsonb->>'report_hash' AS report_hash_ok, cardinality(r.preimage_hashes) AS refs
FROM jam_work_reports r JOIN pp ON decode(pp.id, 'hex') = r.package_id WHERE pp.label = 'p1';
SELECT encode(a.report_hash, 'hex') = :'r1'::jsonb->>'report_hash' AS report_hash_ok, a.attester,
       a.attested_by = session_user AS by_me
FROM jam_attestations a JOIN pp ON decode(pp.id, 'hex') = a.package_id WHERE pp.label = 'p1';

-- Then the next oldest, and NULL once the service has none pending;
-- another service's packages are left alone until asked for.
SELECT pg_temp.label(jam_process_next('proc-a')) AS first,
       pg_temp.label(jam_process_next('proc-a')) AS second,
       pg_temp.label(jam_process_next('proc-a')) AS third;
SELECT * FROM pg_temp.state();
SELECT pg_temp.label(jam_process_next('proc-b')) AS first,
       pg_temp.label(jam_process_next('proc-b')) AS second;
SELECT * FROM pg_temp.state();
SELECT * FROM pg_temp.pending();
SELECT * FROM pg_temp.refcounts();

-- Without a filter: the oldest pending package of any service.  Done in a
-- transaction that first processes whatever other tests left pending and
-- is rolled back at the end, so that it changes nothing for them.
SELECT count(*) AS pending_before, coalesce(md5(string_agg(encode(id, 'hex'), ',' ORDER BY id)), 'none') AS pending_ids_before
FROM jam_work_packages WHERE status = 'pending' \gset
BEGIN;
DO $$ BEGIN WHILE jam.jam_process_next() IS NOT NULL LOOP END LOOP; END $$;
SELECT count(*) AS pending_anywhere FROM jam_work_packages WHERE status = 'pending';
SELECT jam_process_next() IS NULL AS null_when_nothing_pending;
SELECT pg_temp.submit('x1', 'proc-c') AS submitted
UNION ALL SELECT pg_temp.submit('y1', 'proc-d')
UNION ALL SELECT pg_temp.submit('x2', 'proc-c', ARRAY[:'c']);
SELECT pg_temp.label(jam_process_next()) AS first,
       pg_temp.label(jam_process_next()) AS second,
       pg_temp.label(jam_process_next()) AS third,
       pg_temp.label(jam_process_next()) AS fourth;
SELECT * FROM pg_temp.state() WHERE label IN ('x1', 'x2', 'y1');
ROLLBACK;
DELETE FROM pp WHERE label IN ('x1', 'x2', 'y1');
SELECT count(*) AS rolled_back FROM jam_work_packages WHERE service_id IN ('proc-c', 'proc-d');
SELECT count(*) = :pending_before AND coalesce(md5(string_agg(encode(id, 'hex'), ',' ORDER BY id)), 'none') = :'pending_ids_before'
       AS others_untouched
FROM jam_work_packages WHERE status = 'pending';

-- An aborted transaction leaves the package pending and nothing written.
SELECT pg_temp.submit('e1', 'proc-e', ARRAY[:'c']) AS submitted;
BEGIN;
SELECT pg_temp.label(jam_process_next('proc-e')) AS processed_then_rolled_back;
SELECT * FROM pg_temp.state() WHERE label = 'e1';
ROLLBACK;
SELECT * FROM pg_temp.state() WHERE label = 'e1';
SELECT * FROM pg_temp.pending() WHERE service_id = 'proc-e';
SELECT * FROM pg_temp.refcounts() WHERE preimage = 'c';
-- Likewise a rolled-back savepoint: the same package is processed again.
BEGIN;
SAVEPOINT before_processing;
SELECT pg_temp.label(jam_process_next('proc-e')) AS processed;
ROLLBACK TO SAVEPOINT before_processing;
SELECT pg_temp.label(jam_process_next('proc-e')) AS processed_again;
COMMIT;
SELECT * FROM pg_temp.state() WHERE label = 'e1';
SELECT * FROM pg_temp.pending() WHERE service_id = 'proc-e';
SELECT * FROM pg_temp.refcounts() WHERE preimage = 'c';

-- A preimage removed behind jam's back (by hand, in the table) fails the
-- package with the reason; the report references the preimages still there.
SELECT jam_put_preimage('process:d')->>'hash' AS d \gset
SELECT pg_temp.submit('f1', 'proc-f', ARRAY[:'d', :'a']) AS submitted;
DELETE FROM jam_preimages WHERE hash = decode(:'d', 'hex');
SELECT jam_process_next('proc-f') AS rf \gset
SELECT jsonb_pretty(stable(:'rf'::jsonb)) AS report;
SELECT :'rf'::jsonb->>'failure_reason' = 'referenced preimage ' || :'d' || ' is not stored' AS reason_names_it;
SELECT * FROM pg_temp.state() WHERE label = 'f1';
SELECT * FROM pg_temp.pending() WHERE service_id = 'proc-f';
SELECT * FROM pg_temp.refcounts() WHERE preimage = 'a';

-- Everything this file processed, and the services' pending counts.
SELECT * FROM pg_temp.state();
SELECT * FROM pg_temp.pending();
SELECT proname, provolatile, proisstrict FROM pg_proc WHERE oid = 'jam.jam_process_next(text)'::regprocedure;
