-- hash: jam_hash, BLAKE2b-256 with a 32-byte output (src/hash.c), and the
-- validation of hashes given as arguments (exactly 64 lowercase hex).
SET search_path = jam, public;
\set VERBOSITY default
\getenv abs_srcdir PG_ABS_SRCDIR
\set helpers :abs_srcdir '/sql/include/helpers.psql'
\i :helpers

-- bytes 0, 1, ..., n-1 (mod 256)
CREATE OR REPLACE FUNCTION public.byte_ramp(n integer) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(decode(string_agg(lpad(to_hex(i % 256), 2, '0'), '' ORDER BY i), 'hex'), '')
    FROM generate_series(0, n - 1) AS i
$$;

-- Known answers (BLAKE2b-256, unkeyed, digest length 32; not a truncated
-- BLAKE2b-512).  Each is Python's hashlib.blake2b(data, digest_size=32).
SELECT jam_hash('') AS empty;
SELECT jam_hash('') = '0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8' AS empty_ok;
SELECT jam_hash('abc') AS abc;
SELECT jam_hash('\x00') AS one_zero_byte;
SELECT jam_hash('The quick brown fox jumps over the lazy dog') AS quick_brown_fox;
-- BLAKE2b-512 of "abc" (RFC 7693 Appendix A) begins ba80a53f: jam_hash is not it.
SELECT left(jam_hash('abc'), 8) <> 'ba80a53f' AS not_truncated_512;

-- Lengths around BLAKE2b's 128-byte block, and a large input.
SELECT n, jam_hash(byte_ramp(n)) AS hash
FROM unnest(ARRAY[1, 127, 128, 129, 255, 256, 1024, 100000]) AS n ORDER BY n;
SELECT jam_hash(convert_to(repeat('a', 1000000), 'UTF8')) AS million_a;

-- JAM's own preimage test vectors (w3f/jamtestvectors, stf/preimages/tiny):
-- jam's content addresses agree with JAM's.
SELECT octet_length(decode(blob, 'hex')) AS len, jam_hash(decode(blob, 'hex')) = want AS matches
FROM (VALUES
    ('92cdf578c47085a5992256f0dcf97d0b19f1f1c9de4d5fe30c3ace6191b6e5dbcee1b3419782ad92ec2dffed6d3f',
     '9e0e7d324d129dfbd86462546e6c3aaa533bb6f2079c639f85943c95a53a70a9'),
    ('31237cdb79ae1dfa7ffb87cde7ea8a80352d300ee5ac758a6cddd19d671925ec973d6a912166c954916057eb6a07d3e8',
     'b9de73a1057386205aed59c4dbfda7fcfc1b83aa95ad20583dfa3611253f74c2'),
    ('32c82fd887447c2af6cf43c6b2ff5686d00238bac1a3da0500a4cec53cc1255a84febbebbafa3da27e83e645065dbf68a2',
     'b35ab4df967382c1c3744d681e8bfa1f62e9da21602266d1c9d3ecd3be0509d2')
) AS v(blob, want);

-- The text form: 64 lowercase hex characters; equal bytes, equal hash;
-- a one-bit change changes it.
SELECT jam_hash('jam') ~ '^[0-9a-f]{64}$' AS lowercase_hex,
       jam_hash('jam') = jam_hash('\x6a616d') AS same_bytes_same_hash,
       jam_hash('jam') <> jam_hash('jan') AS one_bit_differs;

-- Declared properties: IMMUTABLE, STRICT (null in, null out), parallel safe.
SELECT provolatile, proisstrict, proparallel FROM pg_proc
WHERE oid = 'jam.jam_hash(bytea)'::regprocedure;
SELECT jam_hash(NULL) IS NULL AS null_in_null_out;
-- Usable in an index expression because it is immutable.
CREATE TEMP TABLE hashed (data bytea);
CREATE INDEX ON hashed (jam.jam_hash(data));
INSERT INTO hashed VALUES ('abc'), ('');
SELECT count(*) FROM hashed WHERE jam.jam_hash(data) = jam_hash('abc');
DROP TABLE hashed;

-- A hash argument is exactly 64 lowercase hex characters.  Every function
-- taking one refuses anything else with invalid_hash, naming the argument.
SELECT arg, expect_error(format('SELECT jam.jam_preimage_meta(%L)', arg)) AS result
FROM (VALUES
    (''),
    ('abc'),
    (repeat('a', 63)),
    (repeat('a', 65)),
    (upper(jam_hash('abc'))),
    ('g' || repeat('0', 63)),
    (repeat('0', 63) || 'G'),
    (' ' || repeat('0', 63)),
    ('0x' || repeat('0', 62))
) AS t(arg);
-- The same check in each function, with the argument's name.
SELECT call, expect_error(call) AS result FROM (VALUES
    ($$SELECT jam.jam_get_preimage('ABC')$$),
    ($$SELECT jam.jam_preimage_meta('ABC')$$),
    ($$SELECT jam.jam_get_package('ABC')$$),
    ($$SELECT jam.jam_get_report('ABC')$$),
    ($$SELECT jam.jam_attestations('ABC')$$),
    ($$SELECT jam.jam_submit_package('hash-1', 'x', declared_hash => 'ABC')$$),
    ($$SELECT jam.jam_submit_package('hash-1', 'x', preimage_hashes => ARRAY['ABC'])$$),
    ($$SELECT jam.jam_package_id('hash-1', 'x', preimage_hashes => ARRAY[jam.jam_hash(''), 'ABC'])$$)
) AS t(call);
-- In full: the detail says what is wrong.
SELECT jam_get_preimage(repeat('a', 63));
SELECT jam_get_preimage(repeat('0', 10) || 'X' || repeat('0', 53));
SELECT jam_get_package(upper(jam_hash('abc')));
-- Nothing was written by the refused submits.
SELECT count(*) AS packages FROM jam_work_packages WHERE service_id = 'hash-1';

-- The tables' own checks hold rows written by hand to the API's rules:
-- jam_is_service_id for service ids, 32 bytes for a hash (since 1.1 the
-- tables keep a hash's bytes; jam_is_hash checks the API's hex form).
SELECT jam_is_hash(repeat('a', 64)) AS lower_hex, jam_is_hash(repeat('A', 64)) AS upper_hex,
       jam_is_hash(repeat('a', 63)) AS short, jam_is_hash(repeat('g', 64)) AS not_hex,
       jam_is_service_id('svc-1.a:b_c') AS service_ok, jam_is_service_id('-svc') AS leading_dash,
       jam_is_service_id('') AS empty, jam_is_service_id(repeat('s', 65)) AS too_long;
\set VERBOSITY terse
INSERT INTO jam_preimages (hash, data, size, media_type) VALUES (decode(repeat('a', 62), 'hex'), '\x', 0, 'a/b');
INSERT INTO jam_services (service_id) VALUES ('bad id');
\set VERBOSITY default
