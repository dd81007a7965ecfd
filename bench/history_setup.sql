-- A history of :n processed packages of 16 other services, written straight
-- into jam_work_packages (through the API it would take far longer): ids
-- are the real ones (jam_package_id of the row's fields), stored the way
-- the installed version stores them (64 hex characters in 1.0, 32 bytes
-- in 1.1), with 256-byte payloads, one millisecond apart, all applied;
-- then ten failed ones.
SELECT count(jam.jam_register_service('hist-' || s)) FROM generate_series(0, 15) AS s;
SELECT atttypid = 'bytea'::regtype AS compact FROM pg_attribute
WHERE attrelid = 'jam.jam_work_packages'::regclass AND attname = 'id' \gset
\if :compact
\set id_of 'decode(jam.jam_package_id(svc, p), ''hex'')'
\else
\set id_of 'jam.jam_package_id(svc, p)'
\endif
INSERT INTO jam.jam_work_packages (id, service_id, contract_version, weight_hint, payload,
                                   status, submitted_at, processed_at)
SELECT :id_of, svc, 1, 1, p, 'applied', t, t
FROM generate_series(1, :n) AS g,
     LATERAL (SELECT 'hist-' || g % 16, convert_to(repeat(md5(g::text), 8), 'UTF8'),
                     now() - (:n - g) * interval '1 ms') AS x(svc, p, t);
-- And after them, ten failed packages of 'hist-0', whose page
-- bench/failed_page.sql reads: few among the service's many applied ones.
INSERT INTO jam.jam_work_packages (id, service_id, contract_version, weight_hint, payload,
                                   status, failure_reason, submitted_at, processed_at)
SELECT :id_of, svc, 1, 1, p, 'failed', 'bench failure', now(), now()
FROM generate_series(1, 10) AS g,
     LATERAL (SELECT 'hist-0', convert_to('failed ' || g, 'UTF8')) AS x(svc, p);
-- The counts by outcome those rows make, where the version keeps them (1.5):
-- what the API would have counted, as processing them would have.
SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'jam.jam_services'::regclass
               AND attname = 'applied_count') AS counted \gset
\if :counted
UPDATE jam.jam_services s SET applied_count = c.applied, failed_count = c.failed
FROM (SELECT service_id, count(*) FILTER (WHERE status = 'applied') AS applied,
             count(*) FILTER (WHERE status = 'failed') AS failed
      FROM jam.jam_work_packages GROUP BY service_id) c
WHERE c.service_id = s.service_id;
\endif

-- The node's attestation of each of those packages' reports, and, after
-- them all, ten by an external attester, 'bench-auditor', whose page
-- bench/attester_page.sql reads (written straight in, where the version
-- has signed attestations: 1.1 on).
SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('jam.jam_attestations')
               AND attname = 'signature') AS signed \gset
\if :signed
INSERT INTO jam.jam_attestations (package_id, report_hash, attester, service_id, report_created_at, signature)
SELECT id, sha256(id), a, service_id, processed_at, decode(repeat('00', 64), 'hex')
FROM (SELECT id, service_id, processed_at, current_setting('jam.node_name') AS a, seq
      FROM jam.jam_work_packages
      UNION ALL
      (SELECT id, service_id, processed_at, 'bench-auditor', seq + :n FROM jam.jam_work_packages ORDER BY seq LIMIT 10)) x
ORDER BY seq;
\endif

-- What tops the backlogs up between rounds.
--
-- bench_fill: the service's pending packages up to target, submitted
-- through the API (batches where the version has them), 100 or 1,000 per
-- transaction, so that the backlog is what jam itself would hold.
CREATE PROCEDURE bench_fill(svc text, target bigint)
LANGUAGE plpgsql AS $$
DECLARE
    batched boolean := to_regprocedure('jam.jam_submit_packages(text,bytea[],integer,integer)') IS NOT NULL;
    chunk integer := CASE WHEN batched THEN 1000 ELSE 100 END;
    missing bigint;
BEGIN
    SELECT target - count(*) INTO missing FROM jam.jam_work_packages
    WHERE service_id = svc AND status = 'pending';
    WHILE missing > 0 LOOP
        IF batched THEN
            PERFORM jam.jam_submit_packages(svc, ARRAY(
                SELECT decode(repeat(md5(random()::text), 64), 'hex')
                FROM generate_series(1, least(chunk, missing))));
        ELSE
            PERFORM count(jam.jam_submit_package(svc, decode(repeat(md5(random()::text), 64), 'hex')))
            FROM generate_series(1, least(chunk, missing));
        END IF;
        COMMIT;
        missing := missing - chunk;
    END LOOP;
END
$$;

-- The baseline: a plain queue table, consumed by deleting, so it keeps no
-- history; topped up at its tail like the backlog.
CREATE TABLE bench_queue (
    id          bigserial PRIMARY KEY,
    service_id  text NOT NULL,
    payload     bytea NOT NULL,
    enqueued_at timestamptz NOT NULL DEFAULT now()
);
CREATE PROCEDURE bench_queue_fill(target bigint)
LANGUAGE sql AS $$
    INSERT INTO bench_queue (service_id, payload)
    SELECT 'drain', decode(repeat(md5(random()::text), 64), 'hex')
    FROM generate_series(1, target - (SELECT count(*) FROM bench_queue));
$$;
