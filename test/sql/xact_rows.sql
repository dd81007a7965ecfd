-- xact_rows: a transaction's service rows and refcounts, kept in memory and
-- written once before commit (src/xact_rows.c).  What a transaction has
-- written is what its own later reads see; savepoints undo exactly what
-- they covered; a rolled-back transaction leaves nothing.
\getenv abs_srcdir PG_ABS_SRCDIR
\set own_db regress_jam_xact_rows
\set own_db_include :abs_srcdir '/sql/include/own_database.psql'
\i :own_db_include

-- head(): the service's stored head and pending count, and what its log says.
CREATE FUNCTION pg_temp.head(svc text) RETURNS TABLE (log_size bigint, pending bigint, log_ok jsonb)
LANGUAGE sql AS $$
    SELECT s.log_size, s.pending_count, jam.jam_verify_log(svc)->'ok'
    FROM jam.jam_services s WHERE s.service_id = svc
$$;

SELECT jam_put_preimage('xr-pre', 'text/plain')->>'created' AS stored;

-- Within a transaction, the API's reads see the transaction's own writes:
-- roots, a receipt's inclusion proof against the current tree, a checkpoint,
-- the refcount (also in a put's answer), the quota usage.
BEGIN;
SELECT jam_submit_package('xr', 'a1', preimage_hashes => ARRAY[jam_hash('xr-pre')])->'receipt'->>'tree_size' AS a1_size;
SELECT jam_put_preimage('xr-pre', 'text/plain')->'refcount' AS refcount_on_put;
SELECT jam_submit_package('xr', 'a2')->'receipt'->>'tree_size' AS a2_size;
SELECT (jam_roots()->0)->>'tree_size' AS roots_size,
       jam_receipt(jam_package_id('xr', 'a2'))->'inclusion'->>'tree_size' AS receipt_proved_in,
       split_part(jam_checkpoint('xr'), E'\n', 2) AS checkpoint_size,
       jam_preimage_meta(jam_hash('xr-pre'))->'refcount' AS refcount,
       jam_quota_usage(service_id => 'xr')->'pending_packages' AS pending;
SELECT jam_submit_package('xr', 'a3')->'receipt'->>'tree_size' AS a3_size;
SELECT (jam_roots()->0)->>'tree_size' AS size_seen, jam_verify_log('xr')->'ok' AS log_ok;
COMMIT;
SELECT * FROM pg_temp.head('xr');

-- A savepoint rolled back undoes its packages, log entries, pending counts
-- and references, and the log goes on from where the savepoint began.
BEGIN;
SELECT jam_submit_package('xr', 'b1')->'receipt'->>'tree_size' AS b1_size;
SAVEPOINT s;
SELECT jam_submit_package('xr', 'b2', preimage_hashes => ARRAY[jam_hash('xr-pre')])->'receipt'->>'tree_size' AS b2_size;
SELECT jam_submit_package('xr-other', 'c1')->'receipt'->>'tree_size' AS c1_size;
ROLLBACK TO SAVEPOINT s;
SELECT jam_submit_package('xr', 'b3')->'receipt'->>'tree_size' AS b3_size;
COMMIT;
SELECT * FROM pg_temp.head('xr');
SELECT count(*) AS other_services FROM jam_services WHERE service_id = 'xr-other';
SELECT jam_preimage_meta(jam_hash('xr-pre'))->'refcount' AS refcount;

-- A savepoint released keeps its work; a flush inside a savepoint that is
-- then rolled back is undone with it (jam_verify_log audits the stored
-- row, so it writes the transaction's rows first).
BEGIN;
SAVEPOINT s1;
SELECT jam_submit_package('xr', 'd1')->'receipt'->>'tree_size' AS d1_size;
RELEASE SAVEPOINT s1;
SAVEPOINT s2;
SELECT jam_submit_package('xr', 'd2')->'receipt'->>'tree_size' AS d2_size;
SELECT jam_verify_log('xr')->>'tree_size' AS flushed_size;
ROLLBACK TO SAVEPOINT s2;
SELECT (jam_roots()->0)->>'tree_size' AS after_rollback;
COMMIT;
SELECT * FROM pg_temp.head('xr');

-- The DBA's loop with an exception block per row: a subtransaction each.
DO $$
BEGIN
    FOR i IN 1..50 LOOP
        BEGIN
            PERFORM jam.jam_submit_package('xr', convert_to('loop ' || i, 'UTF8'),
                                           weight_hint => CASE WHEN i % 10 = 0 THEN 0 ELSE 1 END);
        EXCEPTION WHEN OTHERS THEN
            NULL;
        END;
    END LOOP;
END
$$;
SELECT * FROM pg_temp.head('xr');

-- Processing in the same transaction as submitting, then a rollback: nothing.
BEGIN;
SELECT jam_submit_package('xr', 'e1')->>'created' AS e1;
SELECT count(jam_process_next('xr')) AS processed FROM generate_series(1, 3);
ROLLBACK;
SELECT * FROM pg_temp.head('xr');
SELECT count(*) FILTER (WHERE status = 'pending') AS pending, count(*) AS packages
FROM jam_work_packages WHERE service_id = 'xr';

-- Processing many in one transaction, with a savepoint around some.
BEGIN;
SELECT count(jam_process_next('xr')) AS processed FROM generate_series(1, 10);
SAVEPOINT p;
SELECT count(jam_process_next('xr')) AS processed FROM generate_series(1, 10);
ROLLBACK TO SAVEPOINT p;
SELECT count(jam_process_next('xr')) AS processed FROM generate_series(1, 5);
COMMIT;
SELECT * FROM pg_temp.head('xr');
SELECT count(*) FILTER (WHERE status = 'pending') AS pending FROM jam_work_packages WHERE service_id = 'xr';
SELECT jam_fsck() - 'services_checked' - 'preimages_checked' AS fsck;

-- Reads between writes in one transaction (roots, root, proofs, receipts,
-- checkpoints of all kinds, a service's quota usage, a preimage's refcount)
-- take what the transaction changed from its copies instead of writing them
-- first: each write would leave a version of the service or preimage row
-- that no one can prune before the transaction ends and that every later
-- read steps over.  pairs() submits and reads n times and counts the reads
-- that disagree with the submit's own receipt.
CREATE FUNCTION pg_temp.pairs(svc text, n int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    wrong int := 0;
    pre text := jam.jam_hash('xr-pre');
    refs bigint := (jam.jam_preimage_meta(pre)->>'refcount')::bigint;
    receipt jsonb;
    head jsonb;
    size bigint;
BEGIN
    FOR i IN 1..n LOOP
        receipt := jam.jam_submit_package(svc, convert_to('pair ' || i || ' of ' || n, 'UTF8'),
                                          preimage_hashes => ARRAY[pre])->'receipt';
        size := (receipt->>'tree_size')::bigint;
        SELECT e INTO head FROM jsonb_array_elements(jam.jam_roots()) e WHERE e->>'service_id' = svc;
        -- The consistency proof from the first leaf has ceil(log2 size) nodes.
        IF (head->>'tree_size')::bigint IS DISTINCT FROM size
           OR head->>'root' IS DISTINCT FROM receipt->>'new_root'
           OR jam.jam_root(svc, size) <> receipt->>'new_root'
           OR jam.jam_inclusion_proof(svc, size - 1, size)->>'root' <> receipt->>'new_root'
           OR cardinality(jam.jam_consistency_proof(svc, 1, size)) <> ceil(log(2, size))::int
           OR jam.jam_receipt(receipt->>'hash')->'inclusion'->>'tree_size' <> size::text
           OR split_part(jam.jam_checkpoint(svc), E'\n', 2) <> size::text
           OR split_part(jam.jam_log_checkpoint(svc), E'\n', 2) <> size::text
           OR (jam.jam_witnessed_checkpoint(svc)->>'tree_size')::bigint <> size
           OR (jam.jam_quota_usage(service_id => svc)->>'pending_packages')::bigint <> size
           OR (jam.jam_preimage_meta(pre)->>'refcount')::bigint <> refs + i
        THEN
            wrong := wrong + 1;
        END IF;
    END LOOP;
    RETURN wrong;
END
$$;
-- Blocks read from jam_services and jam_preimages and their indexes.
CREATE FUNCTION pg_temp.row_blocks() RETURNS bigint LANGUAGE sql AS $$
    SELECT sum(pg_stat_get_xact_blocks_fetched(c))::bigint
    FROM (SELECT t::oid FROM unnest(ARRAY['jam.jam_services'::regclass, 'jam.jam_preimages']) t
          UNION ALL
          SELECT indexrelid FROM pg_index WHERE indrelid IN ('jam.jam_services'::regclass, 'jam.jam_preimages'::regclass))
         AS r(c)
$$;
SELECT jam_register_service('xr-tenant', NULL, 'tenant-xr')->>'service_id' AS tenant_service;
SELECT jam_submit_package('xr-tenant', 'kept')->'receipt'->>'tree_size' AS tenant_size;
SELECT jam_create_token('xr-reader', '{jam:read}', NULL, 'tenant-xr') AS tenant_token \gset
BEGIN;
SELECT pg_temp.pairs('xr-pairs', 300) AS wrong_reads;
SELECT pg_temp.row_blocks() AS rows_before \gset
SELECT pg_temp.pairs('xr-pairs', 1) AS wrong_late_reads;
SELECT pg_temp.row_blocks() - :rows_before < 12 AS late_pair_reads_few_blocks,
       pg_relation_size('jam.jam_services') / 8192 < 4 AS service_table_stays_small,
       pg_relation_size('jam.jam_preimages') / 8192 < 4 AS preimage_table_stays_small;
-- Every head at once: the stored rows and the copy, in service order.
SELECT jsonb_agg(e->>'service_id' ORDER BY ord) AS services,
       (jam_roots() @> jsonb_build_array(jsonb_build_object('service_id', 'xr-pairs', 'tree_size', 301)))
       AS copy_in_roots
FROM jsonb_array_elements(jam_roots()) WITH ORDINALITY AS r(e, ord);
-- A tenant's token sees its own service only, not the transaction's copy.
SELECT jam_roots() @> '[{"service_id": "xr-tenant", "tree_size": 1}]' AS own_head,
       jsonb_array_length(jam_roots()) AS heads
FROM jam_authenticate(:'tenant_token');
COMMIT;
SELECT log_size, log_size = (SELECT count(*) FROM jam_log_entries WHERE service_id = 'xr-pairs') AS stored_head_right,
       (jam_roots() @> jsonb_build_array(jsonb_build_object('service_id', 'xr-pairs', 'root', jam_root('xr-pairs', 301))))
       AS root_after_commit
FROM jam_services WHERE service_id = 'xr-pairs';

-- A failure at commit (here: a deferred foreign key of the test's own) aborts the
-- whole transaction, the rows written at commit included.
CREATE TABLE pg_temp.guard_fk (id int PRIMARY KEY);
CREATE TABLE pg_temp.guard_ref (id int REFERENCES pg_temp.guard_fk DEFERRABLE INITIALLY DEFERRED);
BEGIN;
SELECT jam_submit_package('xr', 'f1')->'receipt'->>'tree_size' AS f1_size;
INSERT INTO pg_temp.guard_ref VALUES (1);
COMMIT;
SELECT * FROM pg_temp.head('xr');
SELECT count(*) AS f1_stored FROM jam_work_packages WHERE id = decode(jam_package_id('xr', 'f1'), 'hex');

\c :regress_db
DROP DATABASE :own_db;
