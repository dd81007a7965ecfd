-- Merkle trees as RFC 6962/9162 build them, the offline verifiers, and
-- signed notes. The public vector files are tested in test/t/010; here are
-- the values the issue itself gives, and every edge the verifiers must get
-- right.
SET search_path = jam, public;
\set VERBOSITY terse

CREATE TEMP TABLE rfc AS
SELECT ARRAY['\x'::bytea, '\x00', '\x10', '\x2021', '\x3031', '\x40414243',
             '\x5051525354555657', '\x606162636465666768696a6b6c6d6e6f'] AS leaves;

-- The reference tree of 8 leaves.
SELECT jam_merkle_root(leaves) = '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328' AS root_ok
FROM rfc;
SELECT jam_merkle_root('{}') = encode(sha256(''), 'hex') AS empty_root_ok,
       jam_merkle_root(ARRAY['\x'::bytea]) = jam_merkle_leaf_hash('\x') AS one_leaf_root_ok,
       jam_merkle_leaf_hash('\x') = encode(sha256('\x00'), 'hex') AS leaf_prefix_ok;

-- Every inclusion proof of every prefix verifies against that prefix's
-- root; the same proof for the neighbouring leaf, or against the next
-- root, does not.
SELECT count(*) AS proofs,
       bool_and(jam_verify_inclusion(jam_merkle_leaf_hash(leaves[m + 1]), m, n,
                jam_merkle_inclusion_proof(leaves, m, n), jam_merkle_root(leaves[1:n]))) AS all_verify,
       bool_or(jam_verify_inclusion(jam_merkle_leaf_hash(leaves[m + 1]), (m + 1) % n, n,
               jam_merkle_inclusion_proof(leaves, m, n), jam_merkle_root(leaves[1:n])) AND n > 1) AS moved_verifies,
       bool_or(n < 8 AND jam_verify_inclusion(jam_merkle_leaf_hash(leaves[m + 1]), m, n,
               jam_merkle_inclusion_proof(leaves, m, n), jam_merkle_root(leaves[1:n + 1]))) AS other_root_verifies
FROM rfc, generate_series(1, 8) n, generate_series(0, 7) m WHERE m < n;

-- Every consistency proof between prefixes verifies; reversed roots,
-- a dropped element and a first size of 0 do not.
SELECT count(*) AS proofs,
       bool_and(jam_verify_consistency(m, n, jam_merkle_consistency_proof(leaves, m, n),
                jam_merkle_root(leaves[1:m]), jam_merkle_root(leaves[1:n]))) AS all_verify,
       bool_or(m < n AND jam_verify_consistency(m, n, jam_merkle_consistency_proof(leaves, m, n),
               jam_merkle_root(leaves[1:n]), jam_merkle_root(leaves[1:m]))) AS reversed_verifies,
       bool_or(m < n AND jam_verify_consistency(m, n, (jam_merkle_consistency_proof(leaves, m, n))[2:],
               jam_merkle_root(leaves[1:m]), jam_merkle_root(leaves[1:n]))) AS shortened_verifies
FROM rfc, generate_series(1, 8) n, generate_series(1, 8) m WHERE m <= n;
SELECT jam_verify_consistency(0, 3, '{}', encode(sha256(''), 'hex'), jam_merkle_root(leaves[1:3])) AS from_empty
FROM rfc;

-- Malformed input: not hex is an error, hex that is no hash proves nothing.
SELECT jam_verify_inclusion('xyz', 0, 1, '{}', repeat('0', 64));
SELECT jam_verify_inclusion(repeat('0', 63), 0, 1, '{}', repeat('0', 64));
SELECT jam_verify_inclusion(repeat('0', 62), 0, 1, '{}', repeat('0', 62)) AS short_hashes;
SELECT jam_verify_inclusion(jam_merkle_leaf_hash('\x'), 0, 1, '{}', jam_merkle_leaf_hash('\x')) AS single_leaf,
       jam_verify_inclusion(jam_merkle_leaf_hash('\x'), 1, 1, '{}', jam_merkle_leaf_hash('\x')) AS index_past_end,
       jam_verify_inclusion(jam_merkle_leaf_hash('\x'), -1, 1, '{}', jam_merkle_leaf_hash('\x')) AS negative_index,
       jam_verify_inclusion(jam_merkle_leaf_hash('\x'), 0, 1, ARRAY[repeat('0', 64)], jam_merkle_leaf_hash('\x')) AS extra_element;
SELECT jam_verify_consistency(2, 2, '{}', repeat('a', 64), repeat('a', 64)) AS equal_trees,
       jam_verify_consistency(2, 2, ARRAY[repeat('a', 64)], repeat('a', 64), repeat('a', 64)) AS equal_with_proof,
       jam_verify_consistency(3, 2, '{}', repeat('a', 64), repeat('a', 64)) AS shrinking;
SELECT jam_verify_inclusion(NULL, 0, 1, '{}', repeat('0', 64));
SELECT jam_verify_consistency(1, 2, ARRAY[NULL], repeat('0', 64), repeat('0', 64));
SELECT jam_verify_consistency(1, 2, ARRAY[ARRAY[repeat('0', 64)]], repeat('0', 64), repeat('0', 64));
SELECT jam_merkle_inclusion_proof(leaves, 8, 8) FROM rfc;
SELECT jam_merkle_inclusion_proof(leaves, 0, 9) FROM rfc;
SELECT jam_merkle_consistency_proof(leaves, 5, 4) FROM rfc;
SELECT jam_merkle_root(ARRAY[NULL::bytea]);

-- Go's signed-note example (golang.org/x/mod/sumdb/note).
CREATE TEMP TABLE go AS
SELECT 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW' AS vkey,
       E'If you think cryptography is the answer to your problem,\nthen you don''t know what your problem is.\n' AS text,
       E'— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n' AS sig;
SELECT jam_verify_checkpoint(text || E'\n' || sig, vkey) AS verifies,
       jam_verify_checkpoint(replace(text, 'answer', 'question') || E'\n' || sig, vkey) AS altered_text,
       jam_verify_checkpoint(text || E'\n' || replace(sig, 'x08go', 'x08gp'), vkey) AS altered_signature,
       jam_verify_checkpoint(text || E'\n' || sig, replace(vkey, 'ARpc2', 'ARpc3')) AS altered_key,
       jam_verify_checkpoint(text || E'\n' || sig, replace(vkey, 'c74f20a3', 'c74f20a4')) AS wrong_key_id,
       jam_verify_checkpoint(text || sig, vkey) AS no_blank_line,
       jam_verify_checkpoint(text || E'\n' || rtrim(sig, E'\n'), vkey) AS no_final_newline,
       jam_verify_checkpoint(text || E'\n' || sig || E'— PeterNeumann !!!\n', vkey) AS garbage_line
FROM go;

-- Signing round trip with a fixed seed; the key is the same as Go's
-- verifier form.
SELECT jam_note_verifier_key('tester', decode(repeat('07', 32), 'hex')) ~ '^tester\+[0-9a-f]{8}\+A[A-Za-z0-9+/]{43}$' AS key_form,
       jam_verify_checkpoint(jam_sign_note(E'hello\n', 'tester', decode(repeat('07', 32), 'hex')),
                             jam_note_verifier_key('tester', decode(repeat('07', 32), 'hex'))) AS round_trip,
       jam_verify_checkpoint(jam_sign_note(E'hello\n', 'tester', decode(repeat('07', 32), 'hex')),
                             jam_note_verifier_key('tester', decode(repeat('08', 32), 'hex'))) AS other_key;
SELECT jam_sign_note('no newline', 'tester', decode(repeat('07', 32), 'hex'));
SELECT jam_sign_note(E'x\n', 'two words', decode(repeat('07', 32), 'hex'));
SELECT jam_note_verifier_key('tester', '\x0102');
SELECT jam_verify_checkpoint('', '') AS empty, jam_verify_checkpoint(E'x\n\n', 'a+b+c') AS garbage;
