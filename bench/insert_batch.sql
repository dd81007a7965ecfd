-- The baseline of a batch: 100 fresh rows of one service (1 KiB payloads)
-- in one multi-row INSERT into the plain table with jam_work_packages'
-- indexes.
INSERT INTO bench_insert (id, service_id, contract_version, weight_hint, payload)
SELECT bench_id(p), 'svc-batch', 1, 1, p
FROM (SELECT decode(repeat(md5(random()::text), 64), 'hex') AS p FROM generate_series(1, 100)) AS s;
