-- The direct side of the shim benchmark's GET: the statement jam-shim runs
-- for GET /jam/preimages/{hash}/meta, with the same trace and token steps.
SELECT jam.jam_preimage_meta(:hash)
FROM pg_catalog.set_config('application_name', 'jam-shim trace=00000000000000000000000000000001', true) AS trace(app),
     LATERAL jam.jam_authenticate(CASE WHEN trace.app IS NOT NULL THEN :token END) AS auth;
