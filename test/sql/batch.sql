-- batch: jam_submit_packages (src/batch.c) and jam_process_packages
-- (src/process.c): many packages of one service per call, all or nothing,
-- idempotent per package, a receipt per package from one log extension.
SET search_path = jam, public;
\set VERBOSITY default
\getenv abs_srcdir PG_ABS_SRCDIR
\set helpers :abs_srcdir '/sql/include/helpers.psql'
\i :helpers

-- The batch counters as this suite found them (other suites batch too).
CREATE TEMP TABLE batch_metrics_before AS
SELECT labels->>'op' AS op, labels->>'outcome' AS outcome, value FROM jam_metrics()
WHERE name = 'jam_operations_total' AND labels->>'op' IN ('package_submit_batch', 'process_batch');

SELECT jam_put_preimage('batch-pre', 'text/plain')->>'created' AS stored;

-- The bytea[] form: four payloads, one repeated.  Each gets the id a single
-- submit would give it; the repeat is "created": false with the same
-- package and receipt.
SELECT jam_submit_packages('batch-a', ARRAY['one', 'two', 'one', 'three']::bytea[]) AS b \gset
SELECT (:'b'::jsonb)->>'service_id' AS service, (:'b'::jsonb)->'count' AS count,
       (:'b'::jsonb)->'created' AS created;
SELECT i - 1 AS index, p->>'created' AS created, p->>'status' AS status,
       p->>'id' = jam_package_id('batch-a', convert_to(payload, 'UTF8')) AS id_as_single,
       (p->'receipt'->>'tree_size')::int AS tree_size
FROM jsonb_array_elements((:'b'::jsonb)->'packages') WITH ORDINALITY AS e(p, i)
JOIN unnest(ARRAY['one', 'two', 'one', 'three']) WITH ORDINALITY AS u(payload, j) ON i = j
ORDER BY i;

-- The receipts chain: each leaf's prev_root is the root before it, and the
-- log verifies; the service head agrees.
-- The new leaves are one, two and three (items 0, 1 and 3).
SELECT p->1->'receipt'->>'prev_root' = p->0->'receipt'->>'new_root'
       AND p->3->'receipt'->>'prev_root' = p->1->'receipt'->>'new_root' AS receipts_chain,
       p->2->'receipt' = p->0->'receipt' AS repeat_has_first_receipt
FROM (SELECT (:'b'::jsonb)->'packages' AS p) x;
SELECT jam_verify_log('batch-a')->'ok' AS log_ok, jam_verify_log('batch-a')->'tree_size' AS tree_size;
SELECT (SELECT r->>'root' FROM jsonb_array_elements(jam_roots()) r WHERE r->>'service_id' = 'batch-a')
       = ((:'b'::jsonb)->'packages'->3->'receipt'->>'new_root') AS head_is_last_root;

-- Resubmitting the same batch writes nothing and returns the same receipts.
SELECT (r->'created')::int AS created,
       r->'packages'->1->'receipt' = (:'b'::jsonb)->'packages'->1->'receipt' AS same_receipt
FROM jam_submit_packages('batch-a', ARRAY['one', 'two', 'one', 'three']::bytea[]) AS r;
SELECT count(*) AS packages, (SELECT pending_count FROM jam_services WHERE service_id = 'batch-a') AS pending
FROM jam_work_packages WHERE service_id = 'batch-a';

-- A single submit of a package the batch stored is a retry too.
SELECT jam_submit_package('batch-a', 'two')->>'created' AS single_retry;

-- The jsonb form: per-package fields, preimages referenced once per package.
SELECT jam_preimage_meta(jam_hash('batch-pre'))->'refcount' AS refcount_before;
SELECT (r->'created')::int AS created,
       r->'packages'->0->'preimage_hashes' = jsonb_build_array(jam_hash('batch-pre'), jam_hash('batch-pre')) AS listed_as_given,
       r->'packages'->1->>'weight_hint' AS weight, r->'packages'->1->>'contract_version' AS version
FROM jam_submit_packages(NULL, jsonb_build_array(
    jsonb_build_object('service_id', 'batch-j', 'payload', encode('j1', 'base64'),
                       'preimage_hashes', jsonb_build_array(jam_hash('batch-pre'), jam_hash('batch-pre'))),
    jsonb_build_object('service_id', 'batch-j', 'payload', encode('j2', 'base64'), 'weight_hint', 3,
                       'contract_version', 1, 'preimage_hashes', jsonb_build_array(jam_hash('batch-pre'))),
    jsonb_build_object('payload', encode('j3', 'base64'),
                       'declared_hash', jam_package_id('batch-j', 'j3')))) AS r;
SELECT jam_preimage_meta(jam_hash('batch-pre'))->'refcount' AS refcount_after;
SELECT jam_fsck()->'drift_count' AS drift;

-- A created package's answer is built without reading its row back
-- (src/package_summary.c): it is the stored summary, member for member.
SELECT jam_submit_packages(NULL, jsonb_build_array(
    jsonb_build_object('service_id', 'batch-s', 'payload', encode('s1', 'base64'), 'weight_hint', 2,
                       'preimage_hashes', jsonb_build_array(jam_hash('batch-pre'))),
    jsonb_build_object('service_id', 'batch-s', 'payload', encode('s2', 'base64'), 'contract_version', 1)))
    AS s \gset
SELECT count(*) AS packages, bool_and(p->>'created' = 'true') AS created,
       bool_and((p - 'created' - 'receipt') = (jam_get_package(p->>'id') - 'payload')) AS answers_are_the_rows
FROM jsonb_array_elements((:'s'::jsonb)->'packages') AS p;

-- Every refusal names the first bad package and writes nothing.
CREATE TEMP TABLE before AS SELECT (SELECT count(*) FROM jam_work_packages) AS packages,
                                   (SELECT count(*) FROM jam_log_entries) AS entries;
SELECT expect_error(sql) AS refused FROM unnest(ARRAY[
    $$SELECT jam_submit_packages('batch-e', ARRAY['ok', NULL]::bytea[])$$,
    $$SELECT jam_submit_packages('batch-e', ARRAY[]::bytea[])$$,
    $$SELECT jam_submit_packages('batch-e', ARRAY[['a'], ['b']]::bytea[])$$,
    $$SELECT jam_submit_packages('batch-e', ARRAY['a']::bytea[], weight_hint => 0)$$,
    $$SELECT jam_submit_packages('batch-e', ARRAY['a']::bytea[], contract_version => 9)$$,
    $$SELECT jam_submit_packages('bad id!', ARRAY['a']::bytea[])$$,
    $$SELECT jam_submit_packages('batch-e', '[{"payload": "b2s="}, {"payload": "!!"}]'::jsonb)$$,
    $$SELECT jam_submit_packages('batch-e', '[{"payload": "b2s="}, {"payload": "b2s=", "bogus": 1}]'::jsonb)$$,
    $$SELECT jam_submit_packages('batch-e', '[{"payload": "b2s="}, {"service_id": "batch-x", "payload": "b2s="}]'::jsonb)$$,
    $$SELECT jam_submit_packages(NULL, '[{"payload": "b2s="}]'::jsonb)$$,
    $$SELECT jam_submit_packages('batch-e', '[{"payload": "b2s="}, {"payload": "eA==", "declared_hash": "$$ || repeat('0', 64) || $$"}]'::jsonb)$$,
    $$SELECT jam_submit_packages('batch-e', '[{"payload": "b2s="}, {"payload": "eA==", "weight_hint": 1.5}]'::jsonb)$$,
    $$SELECT jam_submit_packages('batch-e', '[{"payload": "b2s="}, {"payload": "eA==", "preimage_hashes": "x"}]'::jsonb)$$,
    $$SELECT jam_submit_packages('batch-e', '[{"payload": "b2s="}, {"payload": "eA==", "preimage_hashes": ["$$ || repeat('0', 64) || $$"]}]'::jsonb)$$,
    $$SELECT jam_submit_packages('batch-e', '[{"payload": "b2s="}, 7]'::jsonb)$$,
    $$SELECT jam_submit_packages('batch-e', '{"payload": "b2s="}'::jsonb)$$,
    $$SELECT jam_submit_packages('batch-e', '[]'::jsonb)$$,
    $$SELECT jam_submit_packages('batch-e', (SELECT array_agg(convert_to(g::text, 'UTF8')) FROM generate_series(1, 10001) g))$$
]) AS sql;
SELECT (SELECT count(*) FROM jam_work_packages) = packages AS no_package_written,
       (SELECT count(*) FROM jam_log_entries) = entries AS no_entry_written
FROM before;

-- Processing several packages of a service in one call, oldest first.
SELECT (r->'processed')::int AS processed,
       (SELECT array_agg(x->>'package_id' = jam_package_id('batch-a', convert_to(l, 'UTF8')) ORDER BY o)
        FROM jsonb_array_elements(r->'reports') WITH ORDINALITY AS e(x, o)
        JOIN unnest(ARRAY['one', 'two']) WITH ORDINALITY AS u(l, k) ON k = o) AS oldest_first,
       (SELECT bool_and(x ? 'receipt') FROM jsonb_array_elements(r->'reports') x) AS with_receipts
FROM jam_process_packages('batch-a', 2) AS r;
SELECT jam_process_packages('batch-a', 10)->'processed' AS the_rest,
       jam_process_packages('batch-a', 10) AS then_none;
SELECT expect_error($$SELECT jam_process_packages('batch-a', 0)$$) AS zero,
       expect_error($$SELECT jam_process_packages('batch-a', 10001)$$) AS too_many,
       expect_error($$SELECT jam_process_packages('batch-a', NULL)$$) AS null_max;
SELECT pending_count FROM jam_services WHERE service_id = 'batch-a';
SELECT jam_verify_log('batch-a')->'ok' AS log_ok, jam_fsck()->'drift_count' AS drift;

-- The metrics count a batch as one call, each processed package as a process.
SELECT m.labels->>'op' AS op, m.labels->>'outcome' AS outcome, m.value - coalesce(b.value, 0) AS value
FROM jam_metrics() m
LEFT JOIN batch_metrics_before b ON b.op = m.labels->>'op' AND b.outcome = m.labels->>'outcome'
WHERE m.name = 'jam_operations_total' AND m.labels->>'op' IN ('package_submit_batch', 'process_batch')
  AND m.value - coalesce(b.value, 0) > 0 ORDER BY 1, 2;
