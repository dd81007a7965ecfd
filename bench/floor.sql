-- The floor of a single submit (setup.sql): one statement writing the
-- package row (idempotently, as jam does), its log entry and the head of
-- its service, for one of 16 services, with the same 1 KiB payload as
-- submit.sql.  The log entry's hashes are derived from the package id;
-- its sizes are those of jam's (a 74-byte entry, one completed node).
\set svc random(0, 15)
WITH head AS (
    UPDATE bench_floor_heads
    SET log_size = log_size + 1, pending_count = pending_count + 1
    WHERE service_id = 'svc-' || :svc
    RETURNING log_size - 1 AS seq),
package AS (
    INSERT INTO bench_floor_packages (id, service_id, contract_version, weight_hint, payload)
    SELECT bench_id(p), 'svc-' || :svc, 1, 1, p
    FROM (SELECT decode(repeat(md5(random()::text), 64), 'hex') AS p) AS s
    ON CONFLICT (id) DO NOTHING
    RETURNING id)
INSERT INTO bench_floor_log (service_id, seq, kind, hash, status, processed_at, entry,
                             leaf_hash, prev_root, new_root, nodes)
SELECT 'svc-' || :svc, head.seq, 'package', package.id, 'pending', now(),
       package.id || package.id || substr(package.id, 1, 10),
       sha256(package.id), sha256(package.id || '\x01'::bytea), sha256(package.id || '\x02'::bytea),
       sha256(package.id || '\x03'::bytea)
FROM head, package;
