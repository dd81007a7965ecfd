-- holders: preimages across tenants (src/holders.c).  Bytes are stored
-- once, but a tenant sees and references only what it has put itself, and a
-- put of bytes another tenant stored answers as if they were new.
\getenv abs_srcdir PG_ABS_SRCDIR
\set own_db regress_jam_holders
\set own_db_include :abs_srcdir '/sql/include/own_database.psql'
\i :own_db_include

CREATE ROLE regress_holders_api LOGIN IN ROLE jam_api;
-- as(token, sql): sql's result as text, or its error, for a token through jam_api.
CREATE FUNCTION public.as_token(token text, sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    result text;
BEGIN
    EXECUTE format('SELECT (%s)::text FROM jam.jam_authenticate(%L)', sql, token) INTO result;
    RETURN coalesce(result, '(null)');
EXCEPTION WHEN OTHERS THEN
    RETURN public.expect_error(format('SELECT (%s)::text FROM jam.jam_authenticate(%L)', sql, token));
END
$$;
SELECT jam_create_token('a', '{jam:read,jam:submit}', NULL, 'tenant-a') AS a,
       jam_create_token('b', '{jam:read,jam:submit}', NULL, 'tenant-b') AS b,
       jam_create_token('c', '{jam:read,jam:submit}', NULL, 'tenant-c') AS c,
       jam_create_token('ops', '{jam:admin}') AS ops \gset
SELECT jam_hash('the same bytes') AS x \gset

SET ROLE regress_holders_api;
-- A stores the bytes; B stores the same bytes and is told they are new, and
-- sees its own media type, never A's.
SELECT as_token(:'a', $$jam.jam_put_preimage('the same bytes', 'text/plain')->>'created'$$) AS a_created,
       as_token(:'b', $$jam.jam_put_preimage('the same bytes', 'text/markdown')->>'created'$$) AS b_created,
       as_token(:'b', $$jam.jam_put_preimage('the same bytes', 'text/html')->>'created'$$) AS b_again;
SELECT as_token(:'a', format('jam.jam_preimage_meta(%L)->>%L', :'x', 'media_type')) AS a_sees,
       as_token(:'b', format('jam.jam_preimage_meta(%L)->>%L', :'x', 'media_type')) AS b_sees,
       as_token(:'b', format('jam.jam_preimage_meta(%L)->%L', :'x', 'refcount')) AS b_refcount;
-- C never put them: for C they are not stored, by get, meta or reference.
SELECT as_token(:'c', format('jam.jam_get_preimage(%L)', :'x')) AS c_get,
       as_token(:'c', format('jam.jam_preimage_meta(%L)', :'x')) AS c_meta;
SELECT as_token(:'c', format('jam.jam_submit_package(%L, %L, preimage_hashes => ARRAY[%L])', 'holders-c', 'p', :'x')) AS c_references,
       as_token(:'c', format('jam.jam_submit_packages(%L, jsonb_build_array(jsonb_build_object(%L, %L), jsonb_build_object(%L, %L, %L, jsonb_build_array(%L))))',
                             'holders-c', 'payload', 'b2s=', 'payload', 'eA==', 'preimage_hashes', :'x')) AS c_batch_references;
-- A and B may.
SELECT as_token(:'a', format('jam.jam_submit_package(%L, %L, preimage_hashes => ARRAY[%L])->>%L', 'holders-a', 'p', :'x', 'created')) AS a_references,
       as_token(:'b', format('jam.jam_get_preimage(%L)', :'x')) = '\x7468652073616d65206279746573' AS b_gets_the_bytes;
-- Once C puts them, C holds them too.
SELECT as_token(:'c', $$jam.jam_put_preimage('the same bytes')->>'created'$$) AS c_created,
       as_token(:'c', format('jam.jam_submit_package(%L, %L, preimage_hashes => ARRAY[%L])->>%L', 'holders-c', 'p', :'x', 'created')) AS c_references;
-- A token without a tenant (an operator's) sees the preimage as stored.
SELECT as_token(:'ops', format('jam.jam_preimage_meta(%L)->>%L', :'x', 'media_type')) AS ops_sees,
       as_token(:'ops', format('jam.jam_preimage_meta(%L)->%L', :'x', 'refcount')) AS ops_refcount,
       as_token(:'ops', $$jam.jam_put_preimage('the same bytes')->>'created'$$) AS ops_created;
RESET ROLE;

SELECT count(*) AS stored_once FROM jam_preimages WHERE hash = decode(:'x', 'hex');
SELECT tenant, media_type FROM jam_preimage_holders WHERE hash = decode(:'x', 'hex') ORDER BY tenant;

-- Retention that deletes a preimage deletes who held it: a later put by
-- the same tenant is new again.
SELECT jam_put_preimage('short-lived', 'text/plain')->>'created' AS stored;
SET ROLE regress_holders_api;
SELECT as_token(:'a', $$jam.jam_put_preimage('short-lived')->>'created'$$) AS a_holds;
RESET ROLE;
UPDATE jam_preimages SET created_at = now() - interval '90 days' WHERE hash = decode(jam_hash('short-lived'), 'hex');
SELECT (jam_cleanup(false))->'preimages_deleted' AS deleted;
SELECT count(*) AS holders_left FROM jam_preimage_holders WHERE hash = decode(jam_hash('short-lived'), 'hex');
SET ROLE regress_holders_api;
SELECT as_token(:'a', $$jam.jam_put_preimage('short-lived')->>'created'$$) AS a_new_again;
RESET ROLE;

\c :regress_db
DROP DATABASE :own_db;
DROP ROLE regress_holders_api;
