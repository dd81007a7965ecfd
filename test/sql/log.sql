-- The verifiable log: receipts, roots, inclusion and consistency proofs,
-- jam_verify_log, checkpoints, and the log's append-only guarantee.
-- Roots depend on timestamps inside the entries, so the output shows only
-- what is stable: counts, sequence numbers and verdicts.
SET search_path = jam, public;
\set VERBOSITY terse

SELECT jam_put_preimage('log preimage'::bytea) IS NOT NULL AS stored;

-- Two services: log-a gets 9 packages (one referencing a preimage), log-b 3.
CREATE TEMP TABLE submitted AS
SELECT s.service_id, g AS n,
       jam_submit_package(s.service_id, convert_to(s.service_id || ' payload ' || g, 'UTF8'),
                          preimage_hashes => CASE WHEN g = 1 THEN ARRAY[jam_hash('log preimage'::bytea)]
                                                  ELSE '{}'::text[] END) AS doc
FROM (VALUES ('log-a', 9), ('log-b', 3)) AS s(service_id, count),
     generate_series(1, s.count) AS g
ORDER BY s.service_id, g;

-- Every submit returns its receipt: seq is contiguous from 0 per service,
-- tree_size = seq + 1, each prev_root is the previous new_root, the first
-- prev_root is the empty tree's hash, and the receipt names the package.
SELECT service_id,
       count(*) AS receipts,
       array_agg((doc->'receipt'->>'seq')::int ORDER BY n) AS seqs,
       bool_and((doc->'receipt'->>'tree_size')::int = (doc->'receipt'->>'seq')::int + 1) AS sizes_ok,
       bool_and(doc->'receipt'->>'hash' = doc->>'id') AS names_package,
       bool_and(doc->'receipt'->>'kind' = 'package' AND doc->'receipt'->>'status' = 'pending') AS kind_ok
FROM submitted GROUP BY service_id ORDER BY service_id;

SELECT count(*) AS chained
FROM submitted a JOIN submitted b
  ON a.service_id = b.service_id AND (b.doc->'receipt'->>'seq')::int = (a.doc->'receipt'->>'seq')::int + 1
WHERE b.doc->'receipt'->>'prev_root' = a.doc->'receipt'->>'new_root';

SELECT bool_and(doc->'receipt'->>'prev_root' = encode(sha256(''::bytea), 'hex')) AS starts_empty
FROM submitted WHERE doc->'receipt'->>'seq' = '0';

-- The leaf hash is SHA-256(0x00 || entry) over the stored 74-byte entry.
SELECT bool_and(encode(leaf_hash, 'hex') = encode(sha256('\x00'::bytea || entry), 'hex')) AS leaf_hashes_ok,
       bool_and(octet_length(entry) = 74) AS entry_size_ok,
       bool_and(get_byte(entry, 0) = 1 AND encode(substring(entry FROM 2 FOR 32), 'hex') = encode(hash, 'hex')) AS entry_names_item
FROM jam_log_entries WHERE service_id IN ('log-a', 'log-b');

-- A retried submit returns the same receipt and appends nothing.
SELECT jam_submit_package('log-a', convert_to('log-a payload 2', 'UTF8'))->'receipt'
       = (SELECT doc->'receipt' FROM submitted WHERE service_id = 'log-a' AND n = 2) AS same_receipt,
       (SELECT log_size FROM jam_services WHERE service_id = 'log-a') AS log_a_size;

-- A refused submit appends nothing.
SELECT jam_submit_package('log-a', 'refused'::bytea, preimage_hashes => ARRAY[repeat('7', 64)]);
SELECT log_size FROM jam_services WHERE service_id = 'log-a';

-- Processing appends the report, with the report's hash and outcome.
CREATE TEMP TABLE processed AS
SELECT g AS n, jam_process_next('log-a') AS doc FROM generate_series(1, 3) g;
SELECT n, doc->'receipt'->>'seq' AS seq, doc->'receipt'->>'kind' AS kind,
       doc->'receipt'->>'status' AS status,
       doc->'receipt'->>'hash' = doc->>'report_hash' AS names_report
FROM processed ORDER BY n;

-- The receipt an append builds is the one read back from the stored entry,
-- member for member, for reports as for packages (retries above).
SELECT n, doc->'receipt' = jam_receipt(doc->>'report_hash') - 'inclusion' AS same_as_stored
FROM processed ORDER BY n;

-- jam_roots: every service's head, equal to its latest receipt's root.
SELECT r->>'service_id' AS service_id, (r->>'tree_size')::int AS tree_size,
       r->>'root' = (SELECT encode(new_root, 'hex') FROM jam_log_entries e
                     WHERE e.service_id = r->>'service_id' ORDER BY seq DESC LIMIT 1) AS root_is_latest
FROM jsonb_array_elements(jam_roots()) r
WHERE r->>'service_id' IN ('log-a', 'log-b') ORDER BY 1;

-- jam_root at every size equals the new_root the receipt at that size gave.
SELECT service_id, count(*) AS sizes, bool_and(jam_root(service_id, seq + 1) = encode(new_root, 'hex')) AS roots_ok
FROM jam_log_entries WHERE service_id IN ('log-a', 'log-b') GROUP BY service_id ORDER BY 1;
SELECT jam_root('log-a', 0) = encode(sha256(''::bytea), 'hex') AS empty_root;

-- Every inclusion proof, for every entry in every tree that contains it,
-- verifies against that tree's root; a proof moved to another leaf does not.
SELECT count(*) AS proofs,
       bool_and(jam_verify_inclusion(p->>'leaf_hash', e.seq, size, ARRAY(SELECT jsonb_array_elements_text(p->'proof')), p->>'root')) AS all_verify,
       bool_and(p->>'root' = jam_root('log-a', size)) AS roots_match,
       bool_and(p->>'leaf_hash' = encode(e.leaf_hash, 'hex')) AS leaves_match
FROM jam_log_entries e,
     generate_series(e.seq + 1, (SELECT log_size FROM jam_services WHERE service_id = 'log-a')) size,
     jam_inclusion_proof('log-a', e.seq, size) p
WHERE e.service_id = 'log-a';

SELECT bool_or(jam_verify_inclusion(encode(e.leaf_hash, 'hex'), (e.seq + 1) % 12, 12,
               ARRAY(SELECT jsonb_array_elements_text(jam_inclusion_proof('log-a', e.seq, 12)->'proof')),
               jam_root('log-a', 12))) AS moved_proof_verifies
FROM jam_log_entries e WHERE e.service_id = 'log-a';

-- Every consistency proof between two sizes verifies; swapped roots do not.
SELECT count(*) AS proofs,
       bool_and(jam_verify_consistency(m, n, jam_consistency_proof('log-a', m, n),
                                       jam_root('log-a', m), jam_root('log-a', n))) AS all_verify,
       bool_or(m < n AND jam_verify_consistency(m, n, jam_consistency_proof('log-a', m, n),
                                                jam_root('log-a', n), jam_root('log-a', m))) AS swapped_verifies
FROM generate_series(1, 12) m, generate_series(1, 12) n WHERE m <= n;

-- jam_receipt: the receipt of a package or a report, with an inclusion
-- proof against the service's current tree.
SELECT r->>'kind' AS kind, r->>'seq' AS seq, r->'inclusion'->>'tree_size' AS current_size,
       jam_verify_inclusion(r->>'leaf_hash', (r->>'seq')::bigint, (r->'inclusion'->>'tree_size')::bigint,
                            ARRAY(SELECT jsonb_array_elements_text(r->'inclusion'->'proof')),
                            (SELECT encode(log_root, 'hex') FROM jam_services WHERE service_id = 'log-a')) AS verifies
FROM (SELECT jam_receipt(doc->>'id') AS r FROM submitted WHERE service_id = 'log-a' AND n = 4
      UNION ALL
      SELECT jam_receipt(doc->>'report_hash') FROM processed WHERE n = 1) receipts
ORDER BY kind;

-- jam_verify_log recomputes each log from its leaves.
SELECT v->>'service_id' AS service_id, v->>'ok' AS ok, v->>'entries_checked' AS checked,
       v->>'root' = v->>'computed_root' AS roots_agree
FROM (SELECT jam_verify_log('log-a') AS v UNION ALL SELECT jam_verify_log('log-b')) audits ORDER BY 1;

-- The log is append-only, for the owner too.
UPDATE jam_log_entries SET status = 'failed' WHERE service_id = 'log-b' AND seq = 0;
DELETE FROM jam_log_entries WHERE service_id = 'log-b';
TRUNCATE jam_log_entries;
SELECT count(*) AS log_b_entries FROM jam_log_entries WHERE service_id = 'log-b';

-- A tampered entry (the guard switched off by a superuser) is caught.
ALTER TABLE jam_log_entries DISABLE TRIGGER jam_log_entries_append_only;
UPDATE jam_log_entries SET entry = set_byte(entry, 40, (get_byte(entry, 40) + 1) % 256) WHERE service_id = 'log-b' AND seq = 1;
ALTER TABLE jam_log_entries ENABLE TRIGGER jam_log_entries_append_only;
SELECT v->>'ok' AS ok, v->>'problem_count' AS problems, v->'problems'->0 AS first_problem
FROM jam_verify_log('log-b') v;

-- Checkpoints: C2SP tlog-checkpoint signed with the node key from jam_status().
SELECT split_part(c, E'\n', 1) AS origin, split_part(c, E'\n', 2) AS tree_size,
       decode(split_part(c, E'\n', 3), 'base64') = (SELECT log_root FROM jam_services WHERE service_id = 'log-a') AS root_ok,
       split_part(c, E'\n', 4) = '' AS blank_line,
       split_part(c, E'\n', 5) LIKE '— jam %' AS signature_line,
       jam_verify_checkpoint(c, jam_status()->>'verifier_key') AS verifies,
       jam_verify_checkpoint(replace(c, E'\n12\n', E'\n13\n'), jam_status()->>'verifier_key') AS altered_verifies
FROM jam_checkpoint('log-a') c;
SELECT jam_status()->>'verifier_key' ~ '^jam\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}$' AS verifier_key_form,
       jam_status()->>'verifier_key' = jam_status()->>'verifier_key' AS key_is_stable;

-- The node key is readable by its owner only.
SELECT has_table_privilege('public', 'jam_node_keys', 'SELECT') AS public_can_read;

-- Errors.
SELECT jam_inclusion_proof('log-b', 3, 3);
SELECT jam_inclusion_proof('log-b', -1, 3);
SELECT jam_inclusion_proof('log-b', 0, 0);
SELECT jam_inclusion_proof('log-b', 0, 4);
SELECT jam_consistency_proof('log-b', 3, 2);
SELECT jam_consistency_proof('log-b', 1, 99);
SELECT jam_root('log-b', 4);
SELECT jam_root('log-none', 0);
SELECT jam_checkpoint('log-none');
SELECT jam_verify_log('log-none');
SELECT jam_receipt(repeat('0', 64));
SELECT jam_receipt('not a hash');
SELECT jam_inclusion_proof(NULL, 0, 1);
SELECT jam_root('bad id!', 1);
