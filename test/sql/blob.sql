-- blob: the blob tier without a store (src/blob_*.c, src/offload.c): its
-- settings and their checks, the credentials file setting that only a
-- superuser may see, the 1.2 catalog (an 's3' row has no bytes, an inline
-- one has them), the delete queue a deleted row of the store fills only
-- when its transaction commits, and what needs a store failing fast with
-- blob_store_unavailable.  test/t/101_blob_store.pl and 102_blob_offload.pl
-- run it against a real S3-compatible server.  It runs in a database of
-- its own, so that what other suites leave behind is not counted.
\getenv abs_srcdir PG_ABS_SRCDIR
\set own_db jam_blob_regress
\set own_database :abs_srcdir '/sql/include/own_database.psql'
\i :own_database

-- The settings, their defaults, and that they are the server's (a reload
-- sets them; a session cannot).
SELECT name, boot_val, unit, context, vartype, min_val, max_val
FROM pg_settings WHERE name LIKE 'jam.blob%' ORDER BY name;
SET jam.blob_offload_threshold = 1;

-- Bad values are refused before they reach the configuration.
ALTER SYSTEM SET jam.blob_store_endpoint = 'https://s3.amazonaws.com';
ALTER SYSTEM SET jam.blob_store_endpoint = 's3.amazonaws.com/path';
ALTER SYSTEM SET jam.blob_store_bucket = 'ab';
ALTER SYSTEM SET jam.blob_store_region = 'us east';
ALTER SYSTEM SET jam.blob_store_prefix = '/jam';
ALTER SYSTEM SET jam.blob_store_prefix = 'jam//x';
ALTER SYSTEM SET jam.blob_store_prefix = 'jam x';
ALTER SYSTEM SET jam.blob_store_uri_style = 'both';
ALTER SYSTEM SET jam.blob_offload_threshold = 0;

-- The credentials file's path is for superusers only; nobody else may SHOW it.
CREATE ROLE jam_blob_regress_nobody;
SET ROLE jam_blob_regress_nobody;
SHOW jam.blob_store_credentials_file;
SELECT count(*) FROM pg_settings WHERE name = 'jam.blob_store_credentials_file';
RESET ROLE;
DROP ROLE jam_blob_regress_nobody;

-- The two error codes and what the shim answers them with.
SELECT code, sqlstate, http_status FROM jam_error_codes()
WHERE code IN ('blob_store_unavailable', 'integrity_error') ORDER BY sqlstate;

-- No store: jam_status says so; nothing is queued.
SELECT jam_status()->'blob_store' AS blob_store;

-- A preimage over the threshold stays inline when there is no store.
SELECT jam_put_preimage(convert_to(repeat('big', 400000), 'UTF8'))->>'storage_class' AS big_without_store;
SELECT storage_class, data IS NOT NULL AS has_bytes FROM jam_preimages;

-- An offload's dry run counts what would go; the offload itself needs a store.
SELECT jam_offload(dry_run => true) - 'duration_ms' AS dry_run;
SELECT expect_error('SELECT jam_offload()');
SELECT error_detail('SELECT jam_offload()');
SELECT expect_error('SELECT jam_drain_blob_deletes()');
SELECT expect_error('SELECT jam_drain_blob_deletes(0)');
SELECT expect_error('SELECT jam_offload(NULL)');

-- The catalog: a row of the store has no bytes, an inline row has them.
SELECT expect_error($$INSERT INTO jam_preimages (hash, data, size, media_type, storage_class)
    VALUES (decode(repeat('ab', 32), 'hex'), '\x00', 1, 'application/octet-stream', 's3')$$);
SELECT expect_error($$INSERT INTO jam_preimages (hash, data, size, media_type, storage_class)
    VALUES (decode(repeat('ab', 32), 'hex'), NULL, 1, 'application/octet-stream', 'inline')$$);
SELECT expect_error($$INSERT INTO jam_preimages (hash, data, size, media_type, storage_class)
    VALUES (decode(repeat('ab', 32), 'hex'), NULL, 1, 'application/octet-stream', 'glacier')$$);

-- A row of the store (written by hand here): its meta never needs the
-- store; its bytes do, and without one the read fails fast.
INSERT INTO jam_preimages (hash, data, size, media_type, storage_class)
VALUES (decode(repeat('ab', 32), 'hex'), NULL, 3, 'text/plain', 's3');
SELECT jam_preimage_meta(repeat('ab', 32)) - 'created_at' AS meta;
SELECT expect_error($$SELECT jam_get_preimage(repeat('ab', 32))$$);

-- Deleting it queues its object's delete in the same transaction: a
-- rollback queues nothing, a commit queues it once.  Inline rows queue
-- nothing.
BEGIN;
DELETE FROM jam_preimages WHERE hash = decode(repeat('ab', 32), 'hex');
SELECT encode(hash, 'hex') = repeat('ab', 32) AS queued, size, attempts FROM jam_blob_deletes;
ROLLBACK;
SELECT count(*) AS queued_after_rollback FROM jam_blob_deletes;
SELECT storage_class FROM jam_preimages WHERE hash = decode(repeat('ab', 32), 'hex');
DELETE FROM jam_preimages;
SELECT encode(hash, 'hex') = repeat('ab', 32) AS queued, size, attempts, last_error FROM jam_blob_deletes;
SELECT jam_status()->'blob_store'->'delete_queue' AS delete_queue;

-- Who may do what: operators offload and drain; readers see the queue;
-- the shim's role neither.
SELECT r.rolname, f.fn, has_function_privilege(r.rolname, f.fn, 'EXECUTE') AS may_call
FROM (VALUES ('jam_api'), ('jam_reader'), ('jam_operator')) AS r(rolname),
     (VALUES ('jam.jam_offload(boolean)'), ('jam.jam_drain_blob_deletes(integer)'),
             ('jam.jam_blob_queue_delete()')) AS f(fn)
ORDER BY 1, 2;
SELECT r.rolname, has_table_privilege(r.rolname, 'jam.jam_blob_deletes', 'SELECT') AS may_read,
       has_table_privilege(r.rolname, 'jam.jam_blob_deletes', 'DELETE') AS may_delete
FROM (VALUES ('jam_api'), ('jam_reader'), ('jam_operator')) AS r(rolname) ORDER BY 1;

\c :regress_db
DROP DATABASE :own_db;
