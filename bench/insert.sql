-- The baseline: the same row (1 KiB payload, one of 16 services, a hash id)
-- inserted straight into a plain table with jam_work_packages' indexes.
\set svc random(0, 15)
INSERT INTO bench_insert (id, service_id, contract_version, weight_hint, payload)
SELECT bench_id(p), 'svc-' || :svc, 1, 1, p
FROM (SELECT decode(repeat(md5(random()::text), 64), 'hex') AS p) AS s;
