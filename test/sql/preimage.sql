-- preimage: content-addressed blobs (src/preimage.c): jam_put_preimage,
-- jam_get_preimage, jam_preimage_meta, the "created" flag and the size cap.
SET search_path = jam, public;
\set VERBOSITY default
\getenv abs_srcdir PG_ABS_SRCDIR
\set helpers :abs_srcdir '/sql/include/helpers.psql'
\i :helpers

-- A new preimage: "created": true, its meta, refcount 0.
SELECT jsonb_pretty(jam_put_preimage('preimage:hello', 'text/plain') - 'created_at') AS put;
SELECT jam_hash('preimage:hello') AS expected_hash;
-- created_at is a timestamp of this transaction's time or earlier.
SELECT (jam_preimage_meta(jam_hash('preimage:hello'))->>'created_at')::timestamptz <= now() AS created_at_ok;

-- The same bytes again: "created": false and the stored meta unchanged,
-- even with another media type.
SELECT jsonb_pretty(jam_put_preimage('preimage:hello', 'text/plain') - 'created_at') AS put_again;
SELECT jsonb_pretty(jam_put_preimage('preimage:hello', 'application/json') - 'created_at') AS put_other_type;
SELECT jam_put_preimage('preimage:hello', 'text/plain') - 'created' =
       jam_preimage_meta(jam_hash('preimage:hello')) AS put_returns_the_meta;
SELECT count(*) AS rows_for_hash FROM jam_preimages WHERE hash = decode(jam_hash('preimage:hello'), 'hex');

-- The default media type.
SELECT jam_put_preimage('preimage:default')->>'media_type' AS default_media_type;

-- jam_get_preimage returns the bytes; jam_preimage_meta the meta.
SELECT encode(jam_get_preimage(jam_hash('preimage:hello')), 'escape') AS data;
SELECT jsonb_pretty(jam_preimage_meta(jam_hash('preimage:hello')) - 'created_at') AS meta;
SELECT jsonb_object_keys(jam_preimage_meta(jam_hash('preimage:hello'))) AS meta_key ORDER BY 1;

-- What the table holds.
SELECT encode(hash, 'hex') = jam_hash(data) AS addressed_by_content, size, media_type, refcount, storage_class
FROM jam_preimages WHERE hash = decode(jam_hash('preimage:hello'), 'hex');

-- Binary data, every byte value, round-trips.
SELECT jam_put_preimage(decode(string_agg(lpad(to_hex(i), 2, '0'), '' ORDER BY i), 'hex'))->>'size' AS size
FROM generate_series(0, 255) AS i;
SELECT jam_get_preimage(jam_hash(decode(string_agg(lpad(to_hex(i), 2, '0'), '' ORDER BY i), 'hex')))
       = decode(string_agg(lpad(to_hex(i), 2, '0'), '' ORDER BY i), 'hex') AS all_bytes_round_trip
FROM generate_series(0, 255) AS i;

-- A large preimage (stored out of line) round-trips whole.
CREATE TEMP TABLE big AS
SELECT convert_to(string_agg(md5('preimage:big' || i), '' ORDER BY i), 'UTF8') AS data
FROM generate_series(1, 40000) AS i;
SELECT octet_length(data) FROM big;
SELECT (jam_put_preimage(data) - 'created_at' - 'hash') AS put_big,
       jam_put_preimage(data)->>'hash' = jam_hash(data) AS hash_ok FROM big;
SELECT jam_get_preimage(jam_hash(data)) = data AS big_round_trips,
       octet_length(jam_get_preimage(jam_hash(data))) AS len,
       jam_hash(jam_get_preimage(jam_hash(data))) = jam_hash(data) AS hash_of_bytes_ok
FROM big;

-- The empty preimage is a preimage.
SELECT jsonb_pretty(jam_put_preimage('', 'text/plain') - 'created_at') AS put_empty;
SELECT octet_length(jam_get_preimage('0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8')) AS empty_len;

-- Not found.
SELECT jam_get_preimage(jam_hash('preimage:never stored'));
SELECT jam_preimage_meta(jam_hash('preimage:never stored'));
SELECT expect_error(format('SELECT jam.jam_get_preimage(%L)', jam_hash('preimage:never stored'))) AS get,
       expect_error(format('SELECT jam.jam_preimage_meta(%L)', jam_hash('preimage:never stored'))) AS meta;

-- Bad arguments.
SELECT call, expect_error(call) AS result FROM (VALUES
    ($$SELECT jam.jam_put_preimage(NULL)$$),
    ($$SELECT jam.jam_put_preimage('preimage:x', NULL)$$),
    ($$SELECT jam.jam_put_preimage('preimage:x', '')$$),
    ($$SELECT jam.jam_get_preimage(NULL)$$),
    ($$SELECT jam.jam_get_preimage('')$$),
    ($$SELECT jam.jam_preimage_meta(NULL)$$),
    ($$SELECT jam.jam_preimage_meta(upper(jam.jam_hash('preimage:hello')))$$)
) AS t(call);
SELECT jam_put_preimage(NULL);

-- The size cap jam.max_preimage_bytes: at the cap is accepted, one byte
-- more is refused with payload_too_large, and nothing is stored.
SET jam.max_preimage_bytes = 16;
SELECT jam_put_preimage('preimage:16bytes')->>'size' AS size;
SELECT jam_put_preimage('preimage:17 bytes');
SELECT count(*) AS stored FROM jam_preimages WHERE hash = decode(jam_hash('preimage:17 bytes'), 'hex');
-- The cap applies to bytes already stored too: the size is decided first.
SELECT expect_error($$SELECT jam.jam_put_preimage('preimage:hello world!')$$) AS before_lowering;
RESET jam.max_preimage_bytes;
SELECT jam_put_preimage('preimage:hello world!')->>'created' AS created;
SET jam.max_preimage_bytes = 16;
SELECT expect_error($$SELECT jam.jam_put_preimage('preimage:hello world!')$$) AS already_stored;
-- With units.
SET jam.max_preimage_bytes = '1kB';
SELECT jam_put_preimage(convert_to(rpad('preimage:1k', 1024, '.'), 'UTF8'))->>'size' AS size;
SELECT expect_error($$SELECT jam.jam_put_preimage(convert_to(rpad('preimage:1k+1', 1025, '.'), 'UTF8'))$$) AS over;
-- Zero: only the empty preimage fits.
SET jam.max_preimage_bytes = 0;
SELECT jam_put_preimage('')->>'created' AS empty_created;
SELECT expect_error($$SELECT jam.jam_put_preimage('x')$$) AS one_byte;
RESET jam.max_preimage_bytes;
SELECT count(*) AS stored FROM jam_preimages
WHERE hash IN (decode(jam_hash('preimage:17 bytes'), 'hex'), decode(jam_hash(convert_to(rpad('preimage:1k+1', 1025, '.'), 'UTF8')), 'hex'));

-- Refcounts start at 0 and are not changed by puts or reads.
SELECT encode(hash, 'hex') = jam_hash('preimage:hello') AS hello, refcount FROM jam_preimages
WHERE hash IN (decode(jam_hash('preimage:hello'), 'hex'), decode(jam_hash('preimage:default'), 'hex'), decode(jam_hash('preimage:16bytes'), 'hex'))
ORDER BY 1, 2;

-- The functions' declared volatility: puts write, gets read.
SELECT proname, provolatile, proisstrict FROM pg_proc
WHERE pronamespace = 'jam'::regnamespace AND proname LIKE '%preimage%' ORDER BY proname;
