SET search_path = jam, public;
-- note: C2SP signed notes with Ed25519 (src/note.c) through
-- jam_verify_checkpoint, jam_sign_note and jam_note_verifier_key: Go's
-- published example, signing round trips, what a note with several
-- signatures means, and garbage, which is false and never an error.
-- The vector file's known answers (C2SP's example, signing Go's note from
-- its seed) are tested in test/t/010_merkle_vectors.pl.
\set VERBOSITY terse
\getenv abs_srcdir PG_ABS_SRCDIR
\set helpers :abs_srcdir '/sql/include/helpers.psql'
\i :helpers

-- Go's example (golang.org/x/mod/sumdb/note), as the issue gives it.
CREATE TEMP TABLE go AS
SELECT 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW' AS vkey,
       E'If you think cryptography is the answer to your problem,\nthen you don''t know what your problem is.\n' AS text,
       E'— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n' AS sig;
SELECT jam_verify_checkpoint(text || E'\n' || sig, vkey) AS verifies,
       jam_verify_checkpoint(replace(text, 'answer', 'question') || E'\n' || sig, vkey) AS altered_text,
       jam_verify_checkpoint(replace(text, E'is.\n', E'is!\n') || E'\n' || sig, vkey) AS altered_last_byte,
       jam_verify_checkpoint(text || E'\n' || replace(sig, 'kuBS9', 'kuBS8'), vkey) AS altered_signature,
       jam_verify_checkpoint(text || E'\n' || replace(sig, 'AM=', 'AI='), vkey) AS altered_signature_end,
       jam_verify_checkpoint(text || E'\n' || sig, replace(vkey, 'ARpc2', 'ARpc3')) AS altered_key,
       jam_verify_checkpoint(text || E'\n' || sig, replace(vkey, 'c74f20a3', 'c74f20a4')) AS altered_key_id,
       jam_verify_checkpoint(text || E'\n' || sig, replace(vkey, 'PeterNeumann', 'PeterNeuman')) AS altered_key_name,
       jam_verify_checkpoint(text || E'\n' || replace(sig, 'PeterNeumann', 'PeterNeuman'), vkey) AS altered_signer_name,
       jam_verify_checkpoint(text || E'\n' || replace(sig, 'x08go', 'x08gp'), vkey) AS altered_signer_key_id
FROM go;
-- The key id is hex; Go reads it in either case.
SELECT jam_verify_checkpoint(text || E'\n' || sig, replace(vkey, 'c74f20a3', 'C74F20A3')) AS upper_case_key_id
FROM go;

-- The note's frame: the text ends at the last blank line, the signature
-- block is not empty and ends in a newline, each line is "— name base64".
SELECT jam_verify_checkpoint(text || sig, vkey) AS no_blank_line,
       jam_verify_checkpoint(text || E'\n' || rtrim(sig, E'\n'), vkey) AS no_final_newline,
       jam_verify_checkpoint(text || E'\n', vkey) AS no_signature,
       jam_verify_checkpoint(text || E'\n\n' || sig, vkey) AS blank_line_added_to_text,
       jam_verify_checkpoint(text || E'\n' || sig || E'\n', vkey) AS blank_line_after_signatures,
       jam_verify_checkpoint(text || E'\n' || replace(sig, '— ', '-- '), vkey) AS ascii_dashes,
       jam_verify_checkpoint(text || E'\n' || replace(sig, '— ', '—'), vkey) AS no_space_after_dash,
       jam_verify_checkpoint(text || E'\n' || replace(sig, 'PeterNeumann ', 'PeterNeumann  '), vkey) AS two_spaces,
       jam_verify_checkpoint(text || E'\n' || replace(sig, 'PeterNeumann x08', 'PeterNeumannx08'), vkey) AS no_space_before_signature,
       jam_verify_checkpoint(replace(text || E'\n' || sig, E'\n', E'\r\n'), vkey) AS crlf,
       jam_verify_checkpoint(text || E'\n' || replace(sig, '=', ''), vkey) AS unpadded_base64
FROM go;

-- Other lines: a key that is not the verifier's (another name, or the
-- same name with another id) is ignored, whatever its signature's length,
-- but every line must be well-formed (other_name_with_nbsp holds U+00A0);
-- a note may hold at most 100 lines.
SELECT jam_verify_checkpoint(text || E'\n' || E'— EnochRoot AAAAAAAAAAAA\n' || sig, vkey) AS other_key_before,
       jam_verify_checkpoint(text || E'\n' || sig || E'— PeterNeumann AAAAAAAAAAAA\n', vkey) AS same_name_other_id,
       jam_verify_checkpoint(text || E'\n' || sig || '— EnochRoot '
                             || replace(encode(decode(repeat('ab', 4700), 'hex'), 'base64'), E'\n', '') || E'\n', vkey) AS long_other_signature,
       jam_verify_checkpoint(text || E'\n' || sig || E'— EnochRoot !!!!\n', vkey) AS other_line_not_base64,
       jam_verify_checkpoint(text || E'\n' || sig || E'— EnochRoot AAAA\n', vkey) AS other_signature_too_short,
       jam_verify_checkpoint(text || E'\n' || sig || E'— EnochRoot \n', vkey) AS other_signature_empty,
       jam_verify_checkpoint(text || E'\n' || sig || E'— Enoch+Root AAAAAAAAAAAA\n', vkey) AS other_name_with_plus,
       jam_verify_checkpoint(text || E'\n' || sig || E'— Enoch Root AAAAAAAAAAAA\n', vkey) AS other_name_with_nbsp,
       jam_verify_checkpoint(text || E'\n' || sig || E'— AAAAAAAAAAAA\n', vkey) AS other_line_without_name,
       jam_verify_checkpoint(text || E'\n' || sig || repeat(E'— EnochRoot AAAAAAAAAAAA\n', 99), vkey) AS lines_100,
       jam_verify_checkpoint(text || E'\n' || sig || repeat(E'— EnochRoot AAAAAAAAAAAA\n', 100), vkey) AS lines_101
FROM go;

-- Lines of the verifier's key (its name and id): one that fails to
-- verify rejects the whole note (c2sp.org/signed-note: a client should),
-- wherever it is; the same valid line twice is fine.  (A changed id, as
-- in altered_signer_key_id above, makes the line another key's.)
SELECT jam_verify_checkpoint(text || E'\n' || sig || sig, vkey) AS same_line_twice,
       jam_verify_checkpoint(text || E'\n' || sig || replace(sig, 'kuBS9', 'kuBS8'), vkey) AS bad_copy_after,
       jam_verify_checkpoint(text || E'\n' || replace(sig, 'kuBS9', 'kuBS8') || sig, vkey) AS bad_copy_before,
       jam_verify_checkpoint(text || E'\n' || sig || replace(sig, 'x08go', 'x08gp'), vkey) AS other_id_copy_after,
       jam_verify_checkpoint(text || E'\n' || sig || E'— PeterNeumann x08go/ZJ\n', vkey) AS short_copy_after
FROM go;

-- Malformed verifier keys are not errors: nothing verifies with them.
SELECT k AS verifier_key, jam_verify_checkpoint(text || E'\n' || sig, k) AS verifies
FROM go, LATERAL (VALUES
    (''), ('PeterNeumann'), ('PeterNeumann+c74f20a3'), ('+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'),
    ('PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'),
    ('PeterNeumann+c74f20a3x+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'),
    ('PeterNeumann+c74f20g3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'),
    ('PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T'),
    ('PeterNeumann+c74f20a3+Apc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'),
    ('PeterNeumann+c74f20a3+Ahpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'),
    ('PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW '),
    ('Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW')) AS v(k);
SELECT jam_verify_checkpoint('', vkey) AS empty_note,
       jam_verify_checkpoint(E'\n', vkey) AS newline,
       jam_verify_checkpoint(E'\n\n', vkey) AS blank_line,
       jam_verify_checkpoint(E'x\n\n', 'a+b+c') AS garbage,
       jam_verify_checkpoint(E'\n\n— PeterNeumann x08go/ZJ\n', vkey) AS empty_text,
       jam_verify_checkpoint(repeat(E'\n', 10000), vkey) AS newlines,
       jam_verify_checkpoint(repeat('—', 10000), vkey) AS dashes
FROM go;
SELECT expect_error($$SELECT jam_verify_checkpoint(NULL, 'a+b+c')$$);
SELECT expect_error($$SELECT jam_verify_checkpoint(E'x\n', NULL)$$);

-- Signing.  Ed25519 is deterministic: a seed, a name and a text always
-- give the same key and note (these were checked independently with
-- Python's cryptography package).
SELECT jam_note_verifier_key('tester', decode(repeat('07', 32), 'hex')) AS verifier_key;
SELECT jam_sign_note(E'hello\n', 'tester', decode(repeat('07', 32), 'hex')) AS note;
SELECT jam_verify_checkpoint(jam_sign_note(E'hello\n', 'tester', decode(repeat('07', 32), 'hex')),
                             jam_note_verifier_key('tester', decode(repeat('07', 32), 'hex'))) AS round_trip,
       jam_verify_checkpoint(jam_sign_note(E'hello\n', 'tester', decode(repeat('07', 32), 'hex')),
                             jam_note_verifier_key('tester', decode(repeat('08', 32), 'hex'))) AS other_seed,
       jam_verify_checkpoint(jam_sign_note(E'hello\n', 'tester', decode(repeat('07', 32), 'hex')),
                             jam_note_verifier_key('tester2', decode(repeat('07', 32), 'hex'))) AS other_name;

-- Round trips over texts that test the frame: empty lines inside the
-- text or at its end, a text that is one newline, non-ASCII text and
-- key names, a checkpoint body.
SELECT t AS text, name, jam_verify_checkpoint(jam_sign_note(t, name, seed), jam_note_verifier_key(name, seed)) AS round_trip
FROM (VALUES (E'a\n\nb\n', 'tester'), (E'a\n\n', 'tester'), (E'\n', 'tester'), (E'\n\n\n', 'tester'),
             (E'— not a signature\n', 'tester'), (E'naïve café ☕\n', 'пример.example/журнал'),
             (E'example.com/log\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n', 'example.com/log')) AS v(t, name),
     (SELECT decode(repeat('2a', 32), 'hex') AS seed) AS s;

-- A note signed by two keys verifies with each and not with a third.
CREATE TEMP TABLE two AS
SELECT jam_sign_note(E'two signers\n', 'alpha', decode(repeat('01', 32), 'hex'))
       || substring(jam_sign_note(E'two signers\n', 'beta', decode(repeat('02', 32), 'hex'))
                    FROM length(E'two signers\n\n') + 1) AS note;
SELECT note FROM two;
SELECT jam_verify_checkpoint(note, jam_note_verifier_key('alpha', decode(repeat('01', 32), 'hex'))) AS alpha,
       jam_verify_checkpoint(note, jam_note_verifier_key('beta', decode(repeat('02', 32), 'hex'))) AS beta,
       jam_verify_checkpoint(note, jam_note_verifier_key('gamma', decode(repeat('03', 32), 'hex'))) AS gamma,
       jam_verify_checkpoint(note, jam_note_verifier_key('beta', decode(repeat('01', 32), 'hex'))) AS alpha_seed_beta_name
FROM two;

-- What cannot be signed: a text that is empty, does not end in a newline
-- or holds a control character; a name that is empty or holds a space
-- (any Unicode space: below, U+00A0 and U+2003, written as themselves
-- since the database need not be UTF8) or "+"; a seed that is not 32
-- bytes; nulls.
SELECT expect_error($$SELECT jam_sign_note('no newline', 'tester', decode(repeat('07', 32), 'hex'))$$);
SELECT expect_error($$SELECT jam_sign_note('', 'tester', decode(repeat('07', 32), 'hex'))$$);
SELECT expect_error($$SELECT jam_sign_note(E'tab\there\n', 'tester', decode(repeat('07', 32), 'hex'))$$);
SELECT expect_error($$SELECT jam_sign_note(E'cr\r\n', 'tester', decode(repeat('07', 32), 'hex'))$$);
SELECT expect_error($$SELECT jam_sign_note(E'x\n', 'two words', decode(repeat('07', 32), 'hex'))$$);
SELECT expect_error($$SELECT jam_sign_note(E'x\n', '', decode(repeat('07', 32), 'hex'))$$);
SELECT expect_error($$SELECT jam_sign_note(E'x\n', 'a+b', decode(repeat('07', 32), 'hex'))$$);
SELECT expect_error($$SELECT jam_sign_note(E'x\n', 'no break', decode(repeat('07', 32), 'hex'))$$);
SELECT expect_error($$SELECT jam_sign_note(E'x\n', 'em space', decode(repeat('07', 32), 'hex'))$$);
SELECT expect_error($$SELECT jam_sign_note(E'x\n', 'tester', '\x0102')$$);
SELECT expect_error($$SELECT jam_sign_note(E'x\n', 'tester', decode(repeat('07', 33), 'hex'))$$);
SELECT expect_error($$SELECT jam_sign_note(NULL, 'tester', decode(repeat('07', 32), 'hex'))$$);
SELECT expect_error($$SELECT jam_sign_note(E'x\n', 'tester', NULL)$$);
SELECT expect_error($$SELECT jam_note_verifier_key('tester', '\x0102')$$);
SELECT expect_error($$SELECT jam_note_verifier_key('a b', decode(repeat('07', 32), 'hex'))$$);
SELECT expect_error($$SELECT jam_note_verifier_key(NULL, decode(repeat('07', 32), 'hex'))$$);
