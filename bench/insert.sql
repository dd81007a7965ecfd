-- The baseline: the same row (1 KiB payload, one of 16 services, a 64-hex id)
-- inserted straight into a plain table with jam_work_packages' indexes.
\set svc random(0, 15)
INSERT INTO bench_insert (id, service_id, contract_version, weight_hint, payload)
SELECT encode(sha256(p), 'hex'), 'svc-' || :svc, 1, 1, p
FROM (SELECT decode(repeat(md5(random()::text), 64), 'hex') AS p) AS s;
