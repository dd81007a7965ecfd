-- Synthetic logs for timing proofs: 'proof-1k' with 10^3 entries and
-- 'proof-1m' with 10^6. Rows have the shape jam writes (a leaf hash per
-- entry, one 32-byte subtree hash per trailing one bit of seq); the hash
-- values are arbitrary, since timing depends only on what is read.

-- Hashes the way the installed version stores them: 64 hex characters
-- (1.0) or 32 bytes (1.1).
DO $$
BEGIN
    IF (SELECT atttypid FROM pg_attribute
        WHERE attrelid = 'jam.jam_log_entries'::regclass AND attname = 'hash') = 'bytea'::regtype THEN
        CREATE FUNCTION pg_temp.stored(hex text) RETURNS bytea
        LANGUAGE sql IMMUTABLE AS $f$SELECT decode(hex, 'hex')$f$;
    ELSE
        CREATE FUNCTION pg_temp.stored(hex text) RETURNS text
        LANGUAGE sql IMMUTABLE AS 'SELECT hex';
    END IF;
END
$$;

INSERT INTO jam.jam_services (service_id, log_size, log_root, log_frontier)
SELECT name, size, pg_temp.stored(md5(name) || md5(name)),
       decode(repeat(md5(name), 2 * length(replace(size::bit(64)::text, '0', ''))), 'hex')
FROM (VALUES ('proof-1k', 1000::bigint), ('proof-1m', 1000000::bigint)) AS s(name, size);

INSERT INTO jam.jam_log_entries (service_id, seq, kind, hash, status, processed_at,
                                 entry, leaf_hash, prev_root, new_root, nodes)
SELECT name, seq, 'package', pg_temp.stored(md5(seq::text) || md5(name)), 'pending', now(),
       decode(repeat(md5(seq::text), 5), 'hex'), pg_temp.stored(md5(seq::text || 'l') || md5(seq::text)),
       pg_temp.stored(md5(seq::text || 'p') || md5(name)), pg_temp.stored(md5(seq::text || 'n') || md5(name)),
       decode(repeat(md5(seq::text), 2 * (64 - length(rtrim(seq::bit(64)::text, '1')))), 'hex')
FROM (VALUES ('proof-1k', 1000), ('proof-1m', 1000000)) AS s(name, size),
     generate_series(0, size - 1) AS seq;
ANALYZE jam.jam_log_entries;
