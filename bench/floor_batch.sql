-- The floor of a batch (setup.sql): one statement writing 100 package rows
-- of one service (idempotently), their 100 log entries and one move of a
-- service's head, with the same payloads as submit_batch.sql.  The head
-- moved is one of 16: a plain UPDATE holds its row lock through the
-- commit's flush, which would serialize the clients on one head (jam
-- releases its lock before the flush, commit_flush.c), and a floor takes
-- every advantage.
--
-- A file of its own rather than floor.sql with the row count a pgbench
-- variable: a variable is a parameter of the prepared statement, and with
-- generate_series(1, $n) Postgres plans the statement anew at every
-- execution (it keeps choosing a custom plan), which took the single floor
-- from about 6,200 to 3,770 a second.  Literal sizes keep one cached plan, as
-- insert.sql and insert_batch.sql do.
\set head random(0, 15)
WITH head AS (
    UPDATE bench_floor_heads
    SET log_size = log_size + 100, pending_count = pending_count + 100
    WHERE service_id = 'svc-' || :head
    RETURNING log_size - 100 AS first),
package AS (
    INSERT INTO bench_floor_packages (id, service_id, contract_version, weight_hint, payload)
    SELECT bench_id(p), 'svc-batch', 1, 1, p
    FROM (SELECT decode(repeat(md5(random()::text), 64), 'hex') AS p
          FROM generate_series(1, 100)) AS s
    ON CONFLICT (id) DO NOTHING
    RETURNING id)
INSERT INTO bench_floor_log (service_id, seq, kind, hash, status, processed_at, entry,
                             leaf_hash, prev_root, new_root, nodes)
SELECT 'svc-' || :head, head.first + row_number() OVER () - 1, 'package', package.id, 'pending', now(),
       package.id || package.id || substr(package.id, 1, 10),
       sha256(package.id), sha256(package.id || '\x01'::bytea), sha256(package.id || '\x02'::bytea),
       sha256(package.id || '\x03'::bytea)
FROM head, package;
