-- attestation: signed attestations (src/attestation.c).  The node signs
-- its attestation of every report it writes; registered external attesters
-- add theirs, checked when they arrive; anyone with a key checks one
-- offline; lists filter by service, attester and package.
SET search_path = jam, public;
\set VERBOSITY default
\getenv abs_srcdir PG_ABS_SRCDIR
\set helpers :abs_srcdir '/sql/include/helpers.psql'
\i :helpers

SELECT jam_submit_package('att-a', 'attest me')->>'id' AS pkg \gset
SELECT jam_process_next('att-a')->>'status' AS processed;
SELECT jam_status()->>'verifier_key' AS node_key \gset
SELECT jam_attestations(:'pkg')->0 AS node_att \gset

-- The node's attestation is signed, and verifies with the node's key only.
SELECT (:'node_att'::jsonb)->>'attester' = current_setting('jam.node_name') AS by_the_node,
       length((:'node_att'::jsonb)->>'signature') AS signature_chars,
       (:'node_att'::jsonb)->>'service_id' AS service,
       jam_verify_attestation(:'node_att', :'node_key') AS verifies;
SELECT what, jam_verify_attestation(doc, :'node_key') AS verifies
FROM (VALUES
    ('another report hash', jsonb_set(:'node_att', '{report_hash}', to_jsonb(repeat('0', 64)))),
    ('another package', jsonb_set(:'node_att', '{package_id}', to_jsonb(repeat('1', 64)))),
    ('another service', jsonb_set(:'node_att', '{service_id}', '"att-b"')),
    ('another time', jsonb_set(:'node_att', '{report_created_at}', '"2020-01-01T00:00:00+00:00"')),
    ('another attester', jsonb_set(:'node_att', '{attester}', '"someone"')),
    ('a bad signature', jsonb_set(:'node_att', '{signature}', to_jsonb(repeat('A', 86) || '=='))),
    ('no signature', (:'node_att'::jsonb) - 'signature'),
    ('a malformed time', jsonb_set(:'node_att', '{report_created_at}', '"yesterday-ish"'))
) AS t(what, doc);
SELECT jam_verify_attestation(:'node_att', jam_note_verifier_key(current_setting('jam.node_name'),
                                                                   decode(repeat('07', 32), 'hex'))) AS other_key,
       jam_verify_attestation(:'node_att', 'not a key') AS malformed_key;

-- An external attester: registered with its verifier key, it signs what the
-- node signs, under its own name.
SELECT jam_note_verifier_key('auditor', decode(repeat('a5', 32), 'hex')) AS auditor_key \gset
SELECT (jam_register_attester('auditor', :'auditor_key'))->>'name' AS registered;
SELECT jam_sign_attestation(:'node_att', 'auditor', decode(repeat('a5', 32), 'hex')) AS auditor_sig \gset
SELECT a->>'attester' AS attester, jam_verify_attestation(a, :'auditor_key') AS verifies
FROM jam_attest(:'pkg', 'auditor', :'auditor_sig') AS a;
SELECT jam_attest(:'pkg', 'auditor', :'auditor_sig')->>'id' = (jam_attestations(:'pkg')->1->>'id') AS again_the_same;
SELECT jsonb_array_length(jam_attestations(:'pkg')) AS attestations;

-- Refusals: a signature by another key, of another report, a malformed one,
-- an unknown attester, a package without a report; keys that do not fit.
SELECT jam_submit_package('att-a', 'still pending')->>'id' AS pending \gset
SELECT expect_error(sql) AS refused FROM unnest(ARRAY[
    format('SELECT jam.jam_attest(%L, %L, %L)', :'pkg', 'auditor',
           jam_sign_attestation(:'node_att', 'auditor', decode(repeat('5a', 32), 'hex'))),
    format('SELECT jam.jam_attest(%L, %L, %L)', :'pkg', 'auditor',
           jam_sign_attestation(jsonb_set(:'node_att', '{report_hash}', to_jsonb(repeat('0', 64))), 'auditor',
                                decode(repeat('a5', 32), 'hex'))),
    format('SELECT jam.jam_attest(%L, %L, %L)', :'pkg', 'auditor', 'bm90IGEgc2lnbmF0dXJl'),
    format('SELECT jam.jam_attest(%L, %L, %L)', :'pkg', 'nobody', :'auditor_sig'),
    format('SELECT jam.jam_attest(%L, %L, %L)', :'pkg', repeat('nobody', 20000), :'auditor_sig'),
    format('SELECT jam.jam_attest(%L, %L, %L)', :'pending', 'auditor', :'auditor_sig'),
    format('SELECT jam.jam_register_attester(%L, %L)', 'auditor', 'not a key'),
    format('SELECT jam.jam_register_attester(%L, %L)', 'someone-else', :'auditor_key'),
    format('SELECT jam.jam_register_attester(%L, %L)', current_setting('jam.node_name'),
           jam_note_verifier_key(current_setting('jam.node_name'), decode(repeat('07', 32), 'hex')))
]) AS sql;

-- Lists: filtered by service, attester and package, paged.
SELECT jam_submit_package('att-b', 'other service')->>'created' AS created;
SELECT jam_process_next('att-b')->>'status' AS processed;
SELECT (l->'items'->0->>'attester') AS first, jsonb_array_length(l->'items') AS items, l->'next_offset' AS next
FROM jam_list_attestations(service_id => 'att-a') AS l;
SELECT jsonb_array_length(jam_list_attestations(attester => 'auditor')->'items') AS by_auditor,
       jsonb_array_length(jam_list_attestations(package_id => :'pkg')->'items') AS of_pkg,
       jsonb_array_length(jam_list_attestations()->'items') AS all_of_them;
SELECT l->'next_offset' AS next_offset, l->'next_after' IS NOT NULL AS has_next_after,
       jsonb_array_length(l->'items') AS items
FROM jam_list_attestations("limit" => 2) AS l;
SELECT jsonb_array_length(jam_list_attestations("limit" => 2, after =>
           (jam_list_attestations("limit" => 2)->>'next_after')::bigint)->'items') AS second_page;
SELECT expect_error($$SELECT jam.jam_list_attestations("limit" => 0)$$) AS bad_limit,
       expect_error($$SELECT jam.jam_list_attestations(package_id => 'nope')$$) AS bad_package;

-- Metrics: attestations by kind.
SELECT labels->>'attester' AS attester, value FROM jam_metrics()
WHERE name = 'jam_attestations_total' ORDER BY 1;
