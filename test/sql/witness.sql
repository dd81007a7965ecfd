-- witness: C2SP tlog-cosignature and tlog-witness (src/cosignature.c,
-- src/witness.c, src/witnessing.c, src/cosigned.c): cosignatures made and
-- checked against the spec's examples, this node witnessing a log (every
-- status the spec gives), and this node's logs carrying the cosignatures
-- of their witnesses.  In a database of its own.
\getenv abs_srcdir PG_ABS_SRCDIR
\set own_db jam_witness_regress
\set own_database :abs_srcdir '/sql/include/own_database.psql'
\i :own_database

-- The spec's example checkpoint, and a cosigner key of our own.
SELECT E'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n' AS body \gset
SELECT decode(repeat('42', 32), 'hex') AS seed \gset

-- A cosignature of the spec's example at the spec's example time: the
-- spec's example line carries that timestamp in the same bytes
-- (jWbPPwAAAABkGFDL...: key id, then 0x0000000064 1850cb = 1679315147).
SELECT jam_cosign_checkpoint(:'body' || E'\n— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n',
                             'witness.example.com/w1', :'seed', 1679315147) AS cosigned \gset
SELECT split_part(:'cosigned', E'\n', 6) LIKE '— witness.example.com/w1 %' AS a_cosignature_line,
       substr(decode(split_part(split_part(:'cosigned', E'\n', 6), ' ', 3), 'base64'), 5, 8) =
       substr(decode('jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==', 'base64'), 5, 8)
         AS timestamp_as_in_the_spec,
       octet_length(decode(split_part(split_part(:'cosigned', E'\n', 6), ' ', 3), 'base64')) AS bytes;

-- Its verifier key (type 0x04), and the check.
SELECT substr(decode(regexp_replace(jam_note_verifier_key('w', :'seed'), '^[^+]*[+][^+]*[+]', ''), 'base64'), 2) AS pub \gset
SELECT 'witness.example.com/w1+' ||
       encode(substr(sha256(convert_to('witness.example.com/w1', 'UTF8') || '\x0a04'::bytea || :'pub'::bytea), 1, 4), 'hex') ||
       '+' || encode('\x04'::bytea || :'pub'::bytea, 'base64') AS vkey \gset
SELECT jam_verify_cosignature(:'cosigned', :'vkey') AS verified_timestamp;
-- The same public key as an ordinary note key (type 0x01) is taken too.
SELECT jam_verify_cosignature(:'cosigned', jam_note_verifier_key('witness.example.com/w1', :'seed')) AS as_note_key;
-- A key id computed by another implementation (transparency-dev/formats'
-- tests): it parses, so the 0x04 key id agrees; no line of it here.
SELECT jam_verify_cosignature(:'cosigned', 'remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2') AS remora;
-- Anything changed does not verify: the body, the time, another key.
SELECT jam_verify_cosignature(replace(:'cosigned', '20852163', '20852164'), :'vkey') AS other_size,
       jam_verify_cosignature(jam_cosign_checkpoint(:'body' || E'\n', 'witness.example.com/w1', decode(repeat('43', 32), 'hex'), 1), :'vkey') AS other_key,
       jam_verify_cosignature(replace(:'cosigned', split_part(split_part(:'cosigned', E'\n', 6), ' ', 3),
           encode(overlay(decode(split_part(split_part(:'cosigned', E'\n', 6), ' ', 3), 'base64') placing '\xff'::bytea from 12 for 1), 'base64')),
           :'vkey') AS other_time;
SELECT expect_error(sql) FROM unnest(ARRAY[
    $$SELECT jam.jam_verify_cosignature('x', 'not a key')$$,
    $$SELECT jam.jam_verify_cosignature('x', 'remora.n621.de+00000000+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2')$$,
    $$SELECT jam.jam_cosign_checkpoint('no blank line', 'w', decode(repeat('42', 32), 'hex'), 1)$$,
    $$SELECT jam.jam_cosign_checkpoint(E'a\n1\n\n', 'w', '\x00', 1)$$,
    $$SELECT jam.jam_cosign_checkpoint(E'a\n1\n\n', 'w', decode(repeat('42', 32), 'hex'), -1)$$,
    $$SELECT jam.jam_cosign_checkpoint(E'a\n1\n\n', 'bad name', decode(repeat('42', 32), 'hex'), 1)$$]) AS sql;

-- This node's cosigner key: its name, type 0x04, distinct from its log key.
SELECT split_part(jam_cosigner_key(), '+', 1) = current_setting('jam.node_name') AS named_as_the_node,
       substr(decode(regexp_replace(jam_cosigner_key(), '^[^+]*[+][^+]*[+]', ''), 'base64'), 1, 1) AS type,
       substr(decode(regexp_replace(jam_cosigner_key(), '^[^+]*[+][^+]*[+]', ''), 'base64'), 2) <>
         substr(decode(regexp_replace(jam_status()->>'verifier_key', '^[^+]*[+][^+]*[+]', ''), 'base64'), 2) AS another_key;

-- This node as a witness of a log of 12 entries, signed with a key of its own.
CREATE TEMP TABLE flog AS SELECT g AS n, convert_to('entry ' || g, 'UTF8') AS e FROM generate_series(1, 12) g;
CREATE FUNCTION pg_temp.cp(size int, seed bytea DEFAULT decode(repeat('07', 32), 'hex')) RETURNS text
LANGUAGE sql AS $$
    SELECT jam.jam_sign_note(b, 'example.org/log', seed)
    FROM (SELECT 'example.org/log' || E'\n' || size || E'\n' ||
                 encode(decode(jam.jam_merkle_root(coalesce((SELECT array_agg(e ORDER BY n) FROM flog WHERE n <= size), '{}')), 'hex'), 'base64') || E'\n' AS b) x
$$;
CREATE FUNCTION pg_temp.req(old int, size int, seed bytea DEFAULT decode(repeat('07', 32), 'hex')) RETURNS text
LANGUAGE sql AS $$
    SELECT 'old ' || old || E'\n' ||
           coalesce((SELECT string_agg(encode(decode(h, 'hex'), 'base64') || E'\n', '' ORDER BY o)
                     FROM unnest(CASE WHEN old > 0 AND old < size THEN
                         jam.jam_merkle_consistency_proof((SELECT array_agg(e ORDER BY n) FROM flog), old, size) END)
                          WITH ORDINALITY AS p(h, o)), '') ||
           E'\n' || pg_temp.cp(size, seed)
$$;
-- jam_merkle_consistency_proof over all 12 entries proves sizes within them.
SELECT jam_add_witnessed_log('example.org/log', jam_note_verifier_key('example.org/log', decode(repeat('07', 32), 'hex')))
       - 'updated_at' AS registered;
SELECT jam_add_witnessed_log('example.org/log', jam_note_verifier_key('example.org/log', decode(repeat('07', 32), 'hex')))
       ->> 'tree_size' AS registered_again_keeps_its_size;

-- The first checkpoint: old 0 and no proof; 200 and a cosignature this
-- node's cosigner key verifies over the checkpoint.
SELECT jam_witness_add_checkpoint(pg_temp.req(0, 5)) AS r \gset
SELECT (:'r'::jsonb)->>'status' AS status,
       jam_verify_cosignature(pg_temp.cp(5) || ((:'r'::jsonb)->>'cosignatures'), jam_cosigner_key())
         BETWEEN extract(epoch FROM now())::bigint - 60 AND extract(epoch FROM now())::bigint AS cosigned_now;
SELECT tree_size, root = decode(split_part(pg_temp.cp(5), E'\n', 3), 'base64') AS root_recorded
FROM jam_witnessed_logs;
-- Growing with a consistency proof: 200.
SELECT jam_witness_add_checkpoint(pg_temp.req(5, 11))->>'status' AS grown;
-- The same checkpoint again: 200 (cosigned again).
SELECT jam_witness_add_checkpoint(pg_temp.req(11, 11))->>'status' AS same_again;
-- A stale old size: 409 with the size this node holds; nothing changes.
SELECT jam_witness_add_checkpoint(pg_temp.req(5, 12)) AS stale;
SELECT jam_witness_add_checkpoint(pg_temp.req(0, 12)) AS from_nothing;
-- The same size with another root, signed by the log's key (a fork): 409.
SELECT jam_witness_add_checkpoint(E'old 11\n\n' || jam_sign_note(
           E'example.org/log\n11\n' || encode(sha256('fork'), 'base64') || E'\n', 'example.org/log',
           decode(repeat('07', 32), 'hex'))) AS same_size_fork;
SELECT tree_size FROM jam_witnessed_logs;

-- The statuses the spec gives, each as an error with its code: 400
-- malformed (and old larger than the checkpoint), 403 no valid signature
-- of the log, 404 an unknown origin, 422 a proof that does not verify.
SELECT expect_error(format('SELECT jam.jam_witness_add_checkpoint(%L)', r)) FROM unnest(ARRAY[
    '',
    E'old 11\n',
    E'old 011\n\n' || pg_temp.cp(12),
    E'old -1\n\n' || pg_temp.cp(12),
    E'old 11\nnot base64\n\n' || pg_temp.cp(12),
    E'old 11\n' || repeat(encode(sha256(''), 'base64') || E'\n', 64) || E'\n' || pg_temp.cp(12),
    E'old 11\n\nexample.org/log\nx\n' || E'\n',
    E'old 11\n\nexample.org/log\n12\nnot a root\n\n— x AAAA\n',
    E'old 11\n\nexample.org/log\n12\n',
    pg_temp.req(12, 11),
    pg_temp.req(11, 12, decode(repeat('08', 32), 'hex')),
    replace(pg_temp.req(11, 12), 'example.org/log', 'example.org/other'),
    replace(pg_temp.req(11, 12), split_part(pg_temp.req(11, 12), E'\n', 2), encode(sha256('x'), 'base64')),
    replace(pg_temp.req(11, 12), split_part(pg_temp.cp(12), E'\n', 3), encode(sha256('x'), 'base64'))]) AS r;
-- Signed by the right key, but not by its name: ignored, so unsigned.
SELECT expect_error(format('SELECT jam.jam_witness_add_checkpoint(%L)',
    replace(pg_temp.req(11, 12), E'\n— example.org/log ', E'\n— example.org/other '))) AS other_name;
-- None of it moved the record.
SELECT tree_size FROM jam_witnessed_logs;
-- Then the right request: 200.
SELECT jam_witness_add_checkpoint(pg_temp.req(11, 12))->>'status' AS extended;
SELECT tree_size FROM jam_witnessed_logs;

-- This node's logs and their witnesses.  Registering: the key must be a
-- cosigner's (or a plain note key) under the same name, the URL http(s).
SELECT expect_error(sql) FROM unnest(ARRAY[
    $$SELECT jam.jam_add_witness('w1', 'not a key', 'http://127.0.0.1:1')$$,
    format($$SELECT jam.jam_add_witness('w2', %L, 'http://127.0.0.1:1')$$, :'vkey'),
    format($$SELECT jam.jam_add_witness('witness.example.com/w1', %L, 'ftp://x')$$, :'vkey'),
    $$SELECT jam.jam_add_witness(NULL, 'x', 'y')$$,
    $$SELECT jam.jam_witness_checkpoints('no-such-service')$$,
    $$SELECT jam.jam_witness_checkpoints('bad id')$$,
    $$SELECT jam.jam_witnessed_checkpoint('no-such-service')$$]) AS sql;
SELECT jam_add_witness('witness.example.com/w1', :'vkey', 'http://127.0.0.1:1/witness') - 'created_at' AS witness;

-- A witness that cannot be reached: recorded, not raised.
SELECT jam_submit_packages('wlog', ARRAY['\x01'::bytea, '\x02', '\x03'])->>'count' AS submitted;
SET jam.witness_timeout_ms = 2000;
SELECT e->>'witness' AS witness, e->>'service_id' AS service_id, e->>'tree_size' AS tree_size,
       e->>'outcome' AS outcome, e->>'http_status' AS http_status, e->>'error' LIKE 'no answer from %' AS unreachable
FROM jsonb_array_elements(jam_witness_checkpoints()) e;
SELECT witness, service_id, tree_size, last_error IS NOT NULL AS has_error FROM jam_witness_sizes;

-- A cosignature the witness gave (made here with its key): checkpoints carry it.
SELECT jam_checkpoint('wlog') AS plain \gset
INSERT INTO jam_cosignatures (service_id, tree_size, witness, root, cosigned_at, signature)
SELECT 'wlog', 3, 'witness.example.com/w1', log_root, to_timestamp(1700000000),
       decode(split_part(split_part(jam_cosign_checkpoint(:'plain', 'witness.example.com/w1', :'seed', 1700000000),
                                    E'\n', 6), ' ', 3), 'base64')
FROM jam_services WHERE service_id = 'wlog';
SELECT jam_checkpoint('wlog') = jam_cosign_checkpoint(:'plain', 'witness.example.com/w1', :'seed', 1700000000)
       AS checkpoint_carries_it,
       jam_log_checkpoint('wlog') = jam_checkpoint('wlog') AS log_checkpoint_too,
       jam_verify_cosignature(jam_log_checkpoint('wlog'), :'vkey') AS verifies,
       jam_verify_checkpoint(jam_log_checkpoint('wlog'), jam_status()->>'verifier_key') AS still_the_nodes;
SELECT stable(jam_witnessed_checkpoint('wlog') - 'checkpoint' - 'root') AS witnessed;
-- Up to date: not sent again.
SELECT e->>'outcome' AS outcome FROM jsonb_array_elements(jam_witness_checkpoints('wlog')) e;

-- The log grows: the head has no cosignature; with a quorum of 1 the
-- tile clients' checkpoint stays on the witnessed size 3.
SELECT jam_submit_package('wlog', '\x04')->'receipt'->>'tree_size' AS grown_to;
SELECT split_part(jam_log_checkpoint('wlog'), E'\n', 2) AS head_served,
       (SELECT count(*) FROM regexp_matches(jam_log_checkpoint('wlog'), E'\n— ', 'g')) AS signature_lines;
SET jam.witness_quorum = 1;
SELECT split_part(jam_log_checkpoint('wlog'), E'\n', 2) AS witnessed_served,
       jam_verify_cosignature(jam_log_checkpoint('wlog'), :'vkey') IS NOT NULL AS cosigned;
SELECT (jam_witnessed_checkpoint('wlog')->>'tree_size') AS witnessed_size,
       (jam_witnessed_checkpoint('wlog')->>'witnessed') AS witnessed;
SET jam.witness_quorum = 2;
SELECT split_part(jam_log_checkpoint('wlog'), E'\n', 2) AS not_enough_witnesses_serves_the_head,
       jam_witnessed_checkpoint('wlog')->>'witnessed' AS witnessed;
RESET jam.witness_quorum;

-- Declared as they behave, granted least-privilege.
SELECT f AS function,
       has_function_privilege('public', f, 'EXECUTE') AS public,
       has_function_privilege('jam_api', f, 'EXECUTE') AS api,
       has_function_privilege('jam_reader', f, 'EXECUTE') AS reader,
       has_function_privilege('jam_operator', f, 'EXECUTE') AS operator
FROM unnest(ARRAY['jam.jam_add_witness(text,text,text)', 'jam.jam_witness_checkpoints(text)',
                  'jam.jam_witnessed_checkpoint(text)', 'jam.jam_add_witnessed_log(text,text)',
                  'jam.jam_witness_add_checkpoint(text)', 'jam.jam_cosigner_key()',
                  'jam.jam_cosign_checkpoint(text,text,bytea,bigint)', 'jam.jam_verify_cosignature(text,text)']) AS f;
SELECT proname, provolatile, prosecdef, 'search_path=pg_catalog, jam, pg_temp' = ANY(proconfig) AS pinned
FROM pg_proc WHERE pronamespace = 'jam'::regnamespace
  AND proname IN ('jam_add_witness', 'jam_witness_checkpoints', 'jam_witnessed_checkpoint', 'jam_add_witnessed_log',
                  'jam_witness_add_checkpoint', 'jam_cosigner_key', 'jam_cosign_checkpoint', 'jam_verify_cosignature')
ORDER BY proname;
-- The shim's role reaches the witness endpoint without a token.
CREATE ROLE regress_jam_witness_shim LOGIN IN ROLE jam_api;
SELECT pg_temp.req(12, 12) AS again \gset
SET ROLE regress_jam_witness_shim;
SELECT jam.jam_witness_add_checkpoint(:'again')->>'status' AS anonymous_add_checkpoint;
SELECT expect_error($$SELECT jam.jam_witnessed_checkpoint('wlog')$$) AS needs_a_token;
RESET ROLE;

\c :regress_db
DROP DATABASE :own_db;
DROP ROLE regress_jam_witness_shim;
