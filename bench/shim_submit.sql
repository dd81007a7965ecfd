-- The direct side of the shim benchmark's POST: the statement jam-shim runs
-- for POST /jam/packages, a fresh 1 KiB payload for one of 16 services.
\set svc random(0, 15)
SELECT s.r - 'receipt', (s.r->>'created')::boolean, s.r->>'id', s.r->>'service_id'
FROM (SELECT jam.jam_submit_package(service_id => 'svc-' || :svc,
                                    payload => decode(repeat(md5(random()::text), 64), 'hex')) AS r
      FROM pg_catalog.set_config('application_name', 'jam-shim trace=00000000000000000000000000000001', true) AS trace(app),
           LATERAL jam.jam_authenticate(CASE WHEN trace.app IS NOT NULL THEN :token END) AS auth
      OFFSET 0) s;
