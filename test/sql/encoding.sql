-- encoding: jam_package_id, the package id as BLAKE2b-256 over the
-- documented deterministic encoding (src/encoding.c), and the argument
-- checks it shares with jam_submit_package.
SET search_path = jam, public;
\set VERBOSITY default
\getenv abs_srcdir PG_ABS_SRCDIR
\set helpers :abs_srcdir '/sql/include/helpers.psql'
\i :helpers

-- le(v, n): v as n little-endian bytes.
CREATE OR REPLACE FUNCTION public.le(v bigint, nbytes integer) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT string_agg(set_byte('\x00'::bytea, 0, ((v >> (8 * k)) & 255)::integer), ''::bytea ORDER BY k)
    FROM generate_series(0, nbytes - 1) AS k
$$;

-- The encoding README.md documents, written independently in SQL.
CREATE OR REPLACE FUNCTION public.package_encoding(
    service_id text, payload bytea, contract_version integer, weight_hint integer,
    preimage_hashes text[]) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT convert_to('jam/package/v1', 'UTF8')
        || public.le(octet_length(convert_to(service_id, 'UTF8')), 4) || convert_to(service_id, 'UTF8')
        || public.le(contract_version, 4)
        || public.le(weight_hint, 4)
        || public.le(octet_length(payload), 8) || payload
        || public.le(coalesce(cardinality(preimage_hashes), 0), 4)
        || coalesce((SELECT string_agg(decode(h, 'hex'), ''::bytea ORDER BY o)
                     FROM unnest(preimage_hashes) WITH ORDINALITY AS u(h, o)), '')
$$;

SELECT encode(le(1, 4), 'hex') AS one_u32, encode(le(258, 8), 'hex') AS u64_258;

-- README.md's test vectors.
SELECT jam_package_id('svc-1', '') AS vector_1;
SELECT jam_package_id('svc-1', 'hello') AS vector_2;
SELECT jam_package_id('svc-1', 'payload', 1, 7, ARRAY[jam_hash('hello'), jam_hash('')]) AS vector_3;
-- README.md's encoding of the first, byte for byte.
SELECT encode(package_encoding('svc-1', '', 1, 1, '{}'), 'hex') AS encoding_1;
SELECT encode(package_encoding('svc-1', '', 1, 1, '{}'), 'hex') =
       '6a616d2f7061636b6167652f7631' || '05000000' || '7376632d31' || '01000000' || '01000000'
       || '0000000000000000' || '00000000' AS encoding_1_as_documented;

-- More packages: the id is the hash of the encoding.
CREATE TEMP TABLE pkgs (n integer, service_id text, payload bytea, weight_hint integer, preimage_hashes text[]);
INSERT INTO pkgs VALUES
    (1, 'svc-1', '', 1, '{}'),
    (2, 'svc-1', 'hello', 1, '{}'),
    (3, 'svc-1', 'payload', 7, ARRAY[jam_hash('hello'), jam_hash('')]),
    (4, 'a', decode(repeat('ff', 300), 'hex'), 2147483647, '{}'),
    (5, repeat('Z', 64), '\x00ff', 256, ARRAY[jam_hash(''), jam_hash(''), jam_hash('abc')]),
    (6, 'enc.service_1:x-y', 'x', 1, ARRAY[jam_hash('abc'), jam_hash('')]),
    (7, 'enc-1', 'x', 1, (SELECT array_agg(jam_hash(convert_to(i::text, 'UTF8')) ORDER BY i)
                          FROM generate_series(1, 1024) AS i));
SELECT n, jam_package_id(service_id, payload, 1, weight_hint, preimage_hashes) AS id,
       jam_package_id(service_id, payload, 1, weight_hint, preimage_hashes) =
       jam_hash(package_encoding(service_id, payload, 1, weight_hint, preimage_hashes)) AS matches_encoding,
       octet_length(package_encoding(service_id, payload, 1, weight_hint, preimage_hashes)) AS encoding_len
FROM pkgs ORDER BY n;

-- Defaults: contract_version 1, weight_hint 1, no preimages.
SELECT jam_package_id('svc-1', 'hello') = jam_package_id('svc-1', 'hello', 1, 1, '{}') AS defaults_ok,
       jam_package_id('svc-1', 'hello') = jam_package_id('svc-1', 'hello', 1, 1, ARRAY[]::text[]) AS empty_array_ok;

-- Every field is committed to: changing any one changes the id; so do the
-- order of the preimages and a repeated preimage.
SELECT count(DISTINCT id) AS distinct_ids, count(*) AS variants FROM (VALUES
    (jam_package_id('svc-1', 'hello')),
    (jam_package_id('svc-2', 'hello')),
    (jam_package_id('svc-1', 'hellp')),
    (jam_package_id('svc-1', 'hello', weight_hint => 2)),
    (jam_package_id('svc-1', 'hello', preimage_hashes => ARRAY[jam_hash('a')])),
    (jam_package_id('svc-1', 'hello', preimage_hashes => ARRAY[jam_hash('a'), jam_hash('b')])),
    (jam_package_id('svc-1', 'hello', preimage_hashes => ARRAY[jam_hash('b'), jam_hash('a')])),
    (jam_package_id('svc-1', 'hello', preimage_hashes => ARRAY[jam_hash('a'), jam_hash('a')])),
    -- lengths are encoded: moving a byte between fields changes the id
    (jam_package_id('svc-1h', 'ello'))
) AS t(id);

-- jam_package_id stores nothing and does not need the preimages to exist.
SELECT count(*) AS packages FROM jam_work_packages WHERE service_id IN ('svc-1', 'a', 'enc-1', 'enc.service_1:x-y');
SELECT count(*) AS services FROM jam_services WHERE service_id IN ('svc-1', 'a', 'enc-1', 'enc.service_1:x-y');
SELECT provolatile, proisstrict FROM pg_proc
WHERE oid = 'jam.jam_package_id(text,bytea,integer,integer,text[])'::regprocedure;

-- The argument checks (shared with jam_submit_package).
SELECT call, expect_error(call) AS result FROM (VALUES
    -- service_id: 1 to 64 of [A-Za-z0-9._:-], starting with a letter or digit
    ($$SELECT jam.jam_package_id('', 'x')$$),
    ($$SELECT jam.jam_package_id(repeat('s', 65), 'x')$$),
    ($$SELECT jam.jam_package_id('-svc', 'x')$$),
    ($$SELECT jam.jam_package_id('.svc', 'x')$$),
    ($$SELECT jam.jam_package_id('svc 1', 'x')$$),
    ($$SELECT jam.jam_package_id('svc/1', 'x')$$),
    ($$SELECT jam.jam_package_id('svc-1' || chr(10), 'x')$$),
    -- the contract versions this node runs: 1
    ($$SELECT jam.jam_package_id('svc-1', 'x', 0)$$),
    ($$SELECT jam.jam_package_id('svc-1', 'x', 2)$$),
    ($$SELECT jam.jam_package_id('svc-1', 'x', -1)$$),
    -- weight_hint > 0
    ($$SELECT jam.jam_package_id('svc-1', 'x', 1, 0)$$),
    ($$SELECT jam.jam_package_id('svc-1', 'x', 1, -5)$$),
    -- at most 1024 preimages
    ($$SELECT jam.jam_package_id('svc-1', 'x', preimage_hashes => array_fill(jam.jam_hash(''), ARRAY[1025]))$$),
    -- one-dimensional, no nulls, each a hash
    ($$SELECT jam.jam_package_id('svc-1', 'x', preimage_hashes => ARRAY[ARRAY[jam.jam_hash('')]])$$),
    ($$SELECT jam.jam_package_id('svc-1', 'x', preimage_hashes => ARRAY[jam.jam_hash(''), NULL])$$),
    ($$SELECT jam.jam_package_id('svc-1', 'x', preimage_hashes => ARRAY[jam.jam_hash(''), 'nothex'])$$)
) AS t(call);

-- Limits that are accepted: 64-character service id, 1024 preimages,
-- repeated preimages, the largest weight.
SELECT length(jam_package_id(repeat('s', 64), 'x')) AS id_len_64_char_service,
       length(jam_package_id('svc-1', 'x', preimage_hashes => array_fill(jam_hash(''), ARRAY[1024]))) AS id_len_1024_refs,
       length(jam_package_id('9', 'x', 1, 2147483647)) AS id_len_max_weight;

-- The payload cap jam.max_payload_bytes applies.
SET jam.max_payload_bytes = 4;
SELECT length(jam_package_id('svc-1', 'abcd')) AS four_bytes_ok;
SELECT jam_package_id('svc-1', 'abcde');
RESET jam.max_payload_bytes;

-- In full, with their details.
SELECT jam_package_id(repeat('s', 65), 'x');
SELECT jam_package_id('svc 1', 'x');
SELECT jam_package_id('svc-1', 'x', 2);
SELECT jam_package_id('svc-1', 'x', 1, 0);
SELECT jam_package_id('svc-1', 'x', preimage_hashes => array_fill(jam_hash(''), ARRAY[2000]));
SELECT jam_package_id('svc-1', 'x', preimage_hashes => ARRAY[jam_hash(''), jam_hash(''), NULL]);
SELECT jam_package_id('svc-1', 'x', preimage_hashes => ARRAY[jam_hash(''), 'ab']);
SELECT jam_package_id('svc-1', 'x', preimage_hashes => ARRAY[ARRAY[jam_hash('')], ARRAY[jam_hash('')]]);
