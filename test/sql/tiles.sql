-- tiles: a service's log as C2SP tlog-tiles (src/tiles.c): hash tiles of
-- every level and entry bundles, full and partial, each checked against
-- what the log's rows say independently (the leaf hashes, and Merkle roots
-- of the entries computed by jam_merkle_root); the checkpoint; who may
-- read them; and every bad argument.  In a database of its own, so that
-- its services do not show in other suites' lists.
\getenv abs_srcdir PG_ABS_SRCDIR
\set own_db jam_tiles_regress
\set own_database :abs_srcdir '/sql/include/own_database.psql'
\i :own_database

-- A log of 600 entries: two full level-0 tiles and a partial one of 88,
-- and a partial level-1 tile of 2; and an empty log.
SELECT jam_submit_packages('tiles', (SELECT array_agg(convert_to('t' || g, 'UTF8')) FROM generate_series(1, 600) g))
       ->'packages'->-1->>'created' AS last_created;
SELECT jam_register_service('tiles-empty')->>'log_size' AS empty_log_size;

-- Level 0: tile n is the leaf hashes of entries n*256 .. n*256+W-1.
SELECT n, w, jam_tile('tiles', 0, n, w) = (
         SELECT string_agg(leaf_hash, ''::bytea ORDER BY seq) FROM jam_log_entries
         WHERE service_id = 'tiles' AND seq >= n * 256 AND seq < n * 256 + w) AS leaf_hashes,
       octet_length(jam_tile('tiles', 0, n, w)) AS bytes
FROM (VALUES (0, 256), (1, 256), (2, 88), (0, 1), (1, 100), (2, 1)) AS t(n, w);
-- The default width is a full tile.
SELECT jam_tile('tiles', 0, 1) = jam_tile('tiles', 0, 1, 256) AS default_full;

-- Level 1: hash i is the Merkle root of the full level-0 tile i, computed
-- here from the entries themselves.
SELECT jam_tile('tiles', 1, 0, 2) = (
         SELECT string_agg(decode(jam_merkle_root(e), 'hex'), ''::bytea ORDER BY i) FROM (
           SELECT i, (SELECT array_agg(entry ORDER BY seq) FROM jam_log_entries
                      WHERE service_id = 'tiles' AND seq >= i * 256 AND seq < (i + 1) * 256) AS e
           FROM generate_series(0, 1) i) t) AS level_1_is_roots_of_level_0;
SELECT encode(jam_tile('tiles', 1, 0, 1), 'hex') = jam_root('tiles', 256) AS first_hash_is_root_at_256,
       encode(substr(jam_tile('tiles', 1, 0, 2), 33), 'hex') = (
         SELECT jam_merkle_root(array_agg(entry ORDER BY seq)) FROM jam_log_entries
         WHERE service_id = 'tiles' AND seq >= 256 AND seq < 512) AS second_hash;

-- Entry bundles: each 74-byte entry behind its length, a big-endian u16.
SELECT n, w, jam_entry_bundle('tiles', n, w) = (
         SELECT string_agg('\x004a'::bytea || entry, ''::bytea ORDER BY seq) FROM jam_log_entries
         WHERE service_id = 'tiles' AND seq >= n * 256 AND seq < n * 256 + w) AS entries,
       octet_length(jam_entry_bundle('tiles', n, w)) AS bytes
FROM (VALUES (0, 256), (1, 256), (2, 88), (2, 7)) AS t(n, w);
SELECT jam_entry_bundle('tiles', 0) = jam_entry_bundle('tiles', 0, 256) AS default_full;
-- Each entry hashes to its leaf in the level-0 tile.
SELECT bool_and(decode(jam_merkle_leaf_hash(substr(b, i * 76 + 3, 74)), 'hex') = substr(t, i * 32 + 1, 32))
       AS bundle_hashes_to_tile
FROM (SELECT jam_entry_bundle('tiles', 2, 88) AS b, jam_tile('tiles', 0, 2, 88) AS t) x,
     generate_series(0, 87) i;

-- Past the log: tile_not_found, however far.
SELECT expect_error(sql) FROM unnest(ARRAY[
    $$SELECT jam.jam_tile('tiles', 0, 2)$$,
    $$SELECT jam.jam_tile('tiles', 0, 2, 89)$$,
    $$SELECT jam.jam_tile('tiles', 0, 3, 1)$$,
    $$SELECT jam.jam_tile('tiles', 1, 0)$$,
    $$SELECT jam.jam_tile('tiles', 1, 0, 3)$$,
    $$SELECT jam.jam_tile('tiles', 2, 0, 1)$$,
    $$SELECT jam.jam_tile('tiles', 7, 0, 1)$$,
    $$SELECT jam.jam_tile('tiles', 63, 0, 1)$$,
    $$SELECT jam.jam_tile('tiles', 0, 9223372036854775807, 256)$$,
    $$SELECT jam.jam_tile('tiles-empty', 0, 0, 1)$$,
    $$SELECT jam.jam_entry_bundle('tiles', 2)$$,
    $$SELECT jam.jam_entry_bundle('tiles', 3, 1)$$,
    $$SELECT jam.jam_entry_bundle('tiles-empty', 0, 1)$$]) AS sql;
-- And with its detail.
SELECT error_detail($$SELECT jam.jam_tile('tiles', 0, 2)$$) AS detail;

-- Bad arguments: invalid_argument, invalid_service_id, service_not_found.
SELECT expect_error(sql) FROM unnest(ARRAY[
    $$SELECT jam.jam_tile('tiles', -1, 0)$$,
    $$SELECT jam.jam_tile('tiles', 64, 0)$$,
    $$SELECT jam.jam_tile('tiles', 0, -1)$$,
    $$SELECT jam.jam_tile('tiles', 0, 0, 0)$$,
    $$SELECT jam.jam_tile('tiles', 0, 0, 257)$$,
    $$SELECT jam.jam_entry_bundle('tiles', -1)$$,
    $$SELECT jam.jam_entry_bundle('tiles', 0, 0)$$,
    $$SELECT jam.jam_entry_bundle('tiles', 0, 257)$$,
    $$SELECT jam.jam_tile(NULL, 0, 0)$$,
    $$SELECT jam.jam_tile('tiles', NULL, 0)$$,
    $$SELECT jam.jam_tile('tiles', 0, NULL)$$,
    $$SELECT jam.jam_tile('tiles', 0, 0, NULL)$$,
    $$SELECT jam.jam_entry_bundle(NULL, 0)$$,
    $$SELECT jam.jam_entry_bundle('tiles', NULL)$$,
    $$SELECT jam.jam_entry_bundle('tiles', 0, NULL)$$,
    $$SELECT jam.jam_log_checkpoint(NULL)$$,
    $$SELECT jam.jam_set_log_public(NULL)$$,
    $$SELECT jam.jam_set_log_public('tiles', NULL)$$,
    $$SELECT jam.jam_tile('bad id', 0, 0)$$,
    $$SELECT jam.jam_tile('no-such-service', 0, 0)$$,
    $$SELECT jam.jam_entry_bundle('no-such-service', 0)$$,
    $$SELECT jam.jam_log_checkpoint('no-such-service')$$,
    $$SELECT jam.jam_set_log_public('no-such-service')$$]) AS sql;

-- The checkpoint: the node's signed note of the current head, jam_checkpoint's.
SELECT jam_log_checkpoint('tiles') = jam_checkpoint('tiles') AS same_as_jam_checkpoint,
       split_part(jam_log_checkpoint('tiles'), E'\n', 2) AS size,
       jam_verify_checkpoint(jam_log_checkpoint('tiles'), jam_status()->>'verifier_key') AS verifies;
SELECT split_part(jam_log_checkpoint('tiles-empty'), E'\n', 2) AS empty_size,
       split_part(jam_log_checkpoint('tiles-empty'), E'\n', 3) =
         encode(sha256(''), 'base64') AS empty_root_is_sha256_of_nothing;

-- The tiles follow the log as it grows, and old tiles do not change.
SELECT jam_tile('tiles', 0, 2, 88) AS before_88 \gset
SELECT jam_submit_packages('tiles', (SELECT array_agg(convert_to('u' || g, 'UTF8')) FROM generate_series(1, 168) g))
       ->'packages'->-1->>'created' AS grown;
SELECT jam_tile('tiles', 0, 2, 88) = :'before_88' AS partial_unchanged,
       substr(jam_tile('tiles', 0, 2), 1, 88 * 32) = :'before_88' AS full_tile_extends_it,
       octet_length(jam_tile('tiles', 1, 0, 3)) AS level_1_of_768;

-- Declared as they behave, and granted as receipts are; only operators
-- make a log public.
SELECT p.oid::regprocedure AS function, provolatile, proisstrict, prosecdef,
       'search_path=pg_catalog, jam, pg_temp' = ANY(proconfig) AS pinned
FROM pg_proc p
WHERE pronamespace = 'jam'::regnamespace
  AND proname IN ('jam_tile', 'jam_entry_bundle', 'jam_log_checkpoint', 'jam_set_log_public')
ORDER BY proname;
SELECT f AS function,
       has_function_privilege('public', f, 'EXECUTE') AS public,
       has_function_privilege('jam_api', f, 'EXECUTE') AS api,
       has_function_privilege('jam_reader', f, 'EXECUTE') AS reader,
       has_function_privilege('jam_operator', f, 'EXECUTE') AS operator
FROM unnest(ARRAY['jam.jam_tile(text,integer,bigint,integer)', 'jam.jam_entry_bundle(text,bigint,integer)',
                  'jam.jam_log_checkpoint(text)', 'jam.jam_set_log_public(text,boolean)']) AS f;

-- Access through the shim's role: jam:read on the service, as for receipts.
SELECT jam_create_token('tiles-reader', '{jam:read}', '{tiles}') AS reader \gset
SELECT jam_create_token('other-reader', '{jam:read}', '{tiles-empty}') AS other \gset
SELECT jam_create_token('tiles-submitter', '{jam:submit}', '{tiles}') AS submitter \gset
SELECT jam_create_token('acme', '{jam:read}', NULL, 'acme') AS acme \gset
CREATE ROLE regress_jam_tiles_shim LOGIN IN ROLE jam_api;
CREATE FUNCTION public.tiles_call(token text, sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    result text;
BEGIN
    EXECUTE format('SELECT (%s)::text FROM jam.jam_authenticate(%L)', sql, token) INTO result;
    RETURN coalesce(result, '(null)');
EXCEPTION WHEN OTHERS THEN
    RETURN public.expect_error(format('SELECT (%s)::text FROM jam.jam_authenticate(%L)', sql, token));
END
$$;
SET ROLE regress_jam_tiles_shim;
SELECT who, tiles_call(token, $$octet_length(jam.jam_tile('tiles', 0, 0))$$) AS tile,
       tiles_call(token, $$octet_length(jam.jam_entry_bundle('tiles', 0, 3))$$) AS bundle,
       tiles_call(token, $$split_part(jam.jam_log_checkpoint('tiles'), E'\n', 2)$$) AS checkpoint,
       tiles_call(token, $$octet_length(jam.jam_tile('no-such-service', 0, 0))$$) AS unknown_service
FROM (VALUES ('reader', :'reader'), ('another service', :'other'), ('no jam:read', :'submitter'),
             ('another tenant', :'acme'), ('no token', NULL)) AS t(who, token);
-- Only operators make a log public.
SELECT tiles_call(NULL, $$jam.jam_set_log_public('tiles')$$) AS api_makes_public;
RESET ROLE;

-- A public log: anyone reads its tiles and checkpoint, without a token;
-- what is not public stays as it was.
SELECT jam_set_log_public('tiles') AS made_public;
SET ROLE regress_jam_tiles_shim;
SELECT who, tiles_call(token, $$octet_length(jam.jam_tile('tiles', 0, 0))$$) AS tile,
       tiles_call(token, $$octet_length(jam.jam_entry_bundle('tiles', 0, 3))$$) AS bundle,
       tiles_call(token, $$split_part(jam.jam_log_checkpoint('tiles'), E'\n', 2)$$) AS checkpoint,
       tiles_call(token, $$octet_length(jam.jam_tile('tiles-empty', 0, 0, 1))$$) AS not_public
FROM (VALUES ('no token', NULL), ('another tenant', :'acme'), ('no jam:read', :'submitter')) AS t(who, token);
-- A bad token is still refused: presenting one means being checked.
SELECT tiles_call('jam_0000000000000000_nope', $$octet_length(jam.jam_tile('tiles', 0, 0))$$) AS bad_token;
-- The receipts of a public log stay under the token rules.
SELECT tiles_call(NULL, $$jam.jam_checkpoint('tiles')$$) AS checkpoint_without_token;
RESET ROLE;
SELECT jam_set_log_public('tiles', false) AS made_private;
SET ROLE regress_jam_tiles_shim;
SELECT tiles_call(NULL, $$octet_length(jam.jam_tile('tiles', 0, 0))$$) AS private_again;
RESET ROLE;
SELECT log_public, count(*) FROM jam_services GROUP BY 1 ORDER BY 1;

DROP FUNCTION public.tiles_call(text, text);
\c :regress_db
DROP DATABASE :own_db;
DROP ROLE regress_jam_tiles_shim;
