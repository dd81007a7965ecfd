-- jam 1.0 to 1.1: hashes stored as 32 bytes, batches, keyset paging.
\echo Use "ALTER EXTENSION jam UPDATE TO '1.1'" to load this file. \quit

-- Hash arrays between the API's hex text and the tables' bytes (hash.c).
CREATE FUNCTION jam_hex_array(hashes bytea[]) RETURNS text[]
AS 'MODULE_PATHNAME', 'jam_hex_array'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION jam_unhex_array(hashes text[]) RETURNS bytea[]
AS 'MODULE_PATHNAME', 'jam_unhex_array'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- Every hash column becomes its 32 raw bytes: half the width in the rows
-- and in every index that holds one.  The API keeps speaking 64-character
-- lowercase hex; the statements of the C code convert at the boundary.
-- The hex checks go (they would not parse on bytea) and a length check
-- takes their place.

ALTER TABLE jam_preimages DROP CONSTRAINT jam_preimages_hash_check;
ALTER TABLE jam_preimages
    ALTER COLUMN hash TYPE bytea USING decode(hash, 'hex'),
    ADD CONSTRAINT jam_preimages_hash_check CHECK (octet_length(hash) = 32);

ALTER TABLE jam_services
    ALTER COLUMN log_root TYPE bytea USING decode(log_root, 'hex'),
    ADD CONSTRAINT jam_services_log_root_check CHECK (octet_length(log_root) = 32);

ALTER TABLE jam_work_packages DROP CONSTRAINT jam_work_packages_id_check;
ALTER TABLE jam_work_packages ALTER COLUMN preimage_hashes DROP DEFAULT;
ALTER TABLE jam_work_packages
    ALTER COLUMN id TYPE bytea USING decode(id, 'hex'),
    ALTER COLUMN preimage_hashes TYPE bytea[] USING jam_unhex_array(preimage_hashes),
    ADD CONSTRAINT jam_work_packages_id_check CHECK (octet_length(id) = 32);
ALTER TABLE jam_work_packages ALTER COLUMN preimage_hashes SET DEFAULT '{}';

ALTER TABLE jam_work_reports DROP CONSTRAINT jam_work_reports_package_id_check;
ALTER TABLE jam_work_reports DROP CONSTRAINT jam_work_reports_report_hash_check;
ALTER TABLE jam_work_reports ALTER COLUMN preimage_hashes DROP DEFAULT;
ALTER TABLE jam_work_reports
    ALTER COLUMN package_id TYPE bytea USING decode(package_id, 'hex'),
    ALTER COLUMN report_hash TYPE bytea USING decode(report_hash, 'hex'),
    ALTER COLUMN output_hash TYPE bytea USING decode(output_hash, 'hex'),
    ALTER COLUMN preimage_hashes TYPE bytea[] USING jam_unhex_array(preimage_hashes),
    ADD CONSTRAINT jam_work_reports_package_id_check CHECK (octet_length(package_id) = 32),
    ADD CONSTRAINT jam_work_reports_report_hash_check CHECK (octet_length(report_hash) = 32),
    ADD CONSTRAINT jam_work_reports_output_hash_check CHECK (octet_length(output_hash) = 32);
ALTER TABLE jam_work_reports ALTER COLUMN preimage_hashes SET DEFAULT '{}';

ALTER TABLE jam_attestations
    ALTER COLUMN package_id TYPE bytea USING decode(package_id, 'hex'),
    ALTER COLUMN report_hash TYPE bytea USING decode(report_hash, 'hex');

-- The log's rows are only ever appended; its triggers refuse UPDATE, which
-- a column's type change does not go through.
ALTER TABLE jam_log_entries
    ALTER COLUMN hash TYPE bytea USING decode(hash, 'hex'),
    ALTER COLUMN leaf_hash TYPE bytea USING decode(leaf_hash, 'hex'),
    ALTER COLUMN prev_root TYPE bytea USING decode(prev_root, 'hex'),
    ALTER COLUMN new_root TYPE bytea USING decode(new_root, 'hex');

-- Indexes on the write path, and the query each one serves:
--   jam_work_packages
--     _pkey (id)                                 get, submit's idempotence, process
--     _service_pending_idx (service_id, seq)
--       WHERE status = 'pending'                 claims of one service (claim.c)
--     _status_idx (status, seq)                  claims of any service, lists by status
--     _service_idx (service_id, seq)             lists of one service
--     _seq_idx (seq)                             lists of every service
--     _submitted_at_idx (submitted_at)           retention
--     _token_pending_idx (token_id) WHERE ...    a token's max_pending_packages
--   jam_work_reports
--     _pkey (package_id)                         get, process
--     _seq_idx, _service_idx, _status_idx        the three list shapes
--     _created_at_idx                            retention
--   jam_log_entries
--     _pkey (service_id, seq)                    appends, proofs
--     _hash_idx (hash)                           receipts by package id or report hash
--   jam_attestations
--     _package_attester_idx (package_id, attester)  attestations of a package (one per
--                                                attester), retention
--     _service_idx (service_id, id)              jam_list_attestations of a service
--     _package_idx, _created_at_idx              (replaced; read by no query): dropped
--   jam_preimages
--     _pkey (hash), _created_at_idx              get, references; retention
--   jam_preimage_holders
--     _pkey (hash, tenant)                       what a tenant may see and reference
DROP INDEX jam_attestations_created_at_idx;

-- Which tenants hold which preimages (holders.c).  Bytes are stored once,
-- but a tenant's token sees a preimage only once its tenant has put it (or,
-- for what 1.0 stored, referenced it), with the media type and time of its
-- own put: no tenant can probe what another stored.
CREATE TABLE jam_preimage_holders (
    hash        bytea NOT NULL CHECK (octet_length(hash) = 32),
    tenant      text NOT NULL,
    media_type  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (hash, tenant)
);
SELECT pg_catalog.pg_extension_config_dump('jam_preimage_holders', '');
GRANT SELECT ON jam_preimage_holders TO jam_reader, jam_operator;
INSERT INTO jam_preimage_holders (hash, tenant, media_type, created_at)
SELECT DISTINCT ON (r.hash, s.tenant) r.hash, s.tenant, i.media_type, i.created_at
FROM jam_work_packages p
JOIN jam_services s ON s.service_id = p.service_id AND s.tenant IS NOT NULL
CROSS JOIN LATERAL unnest(p.preimage_hashes) AS r(hash)
JOIN jam_preimages i ON i.hash = r.hash;

-- Signed attestations (attestation.c).  Each attestation is signed with
-- Ed25519 over "jam/attestation/v1" || package id || report hash ||
-- service_id || attester || the report's created_at; the node signs its
-- own, registered external attesters add theirs.  Attestations written by
-- 1.0 carry no signature.
ALTER TABLE jam_attestations
    ADD COLUMN service_id text COLLATE "C",
    ADD COLUMN report_created_at timestamptz,
    ADD COLUMN signature bytea CHECK (octet_length(signature) = 64);
UPDATE jam_attestations a SET service_id = r.service_id, report_created_at = r.created_at
FROM jam_work_reports r WHERE r.package_id = a.package_id;
DROP INDEX jam_attestations_package_idx;
CREATE UNIQUE INDEX jam_attestations_package_attester_idx ON jam_attestations (package_id, attester);
CREATE INDEX jam_attestations_service_idx ON jam_attestations (service_id, id);

CREATE TABLE jam_attesters (
    name          text PRIMARY KEY,
    verifier_key  text NOT NULL,
    public_key    bytea NOT NULL CHECK (octet_length(public_key) = 32),
    created_at    timestamptz NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('jam_attesters', '');
GRANT SELECT ON jam_attesters TO jam_reader, jam_operator;

CREATE FUNCTION jam_register_attester(name text, verifier_key text) RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_register_attester'
LANGUAGE C VOLATILE;

CREATE FUNCTION jam_attest(package_id text, attester text, signature text) RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_attest'
LANGUAGE C VOLATILE;

CREATE FUNCTION jam_list_attestations(
    service_id text DEFAULT NULL, attester text DEFAULT NULL, package_id text DEFAULT NULL,
    "limit" integer DEFAULT 50, "offset" integer DEFAULT 0, after bigint DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_list_attestations'
LANGUAGE C STABLE;

CREATE FUNCTION jam_verify_attestation(attestation jsonb, verifier_key text) RETURNS boolean
AS 'MODULE_PATHNAME', 'jam_verify_attestation'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION jam_sign_attestation(attestation jsonb, attester text, seed bytea) RETURNS text
AS 'MODULE_PATHNAME', 'jam_sign_attestation'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- Replay (replay.c): a report records the definition hash of the refine
-- that ran; jam_replay runs it again and compares.
ALTER TABLE jam_work_reports
    ADD COLUMN refine_hash bytea CHECK (octet_length(refine_hash) = 32);

CREATE FUNCTION jam_replay(package_id text) RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_replay'
LANGUAGE C VOLATILE;

-- Batches (package.c: jam_submit_packages; process.c: jam_process_packages).

CREATE FUNCTION jam_submit_packages(
    service_id text, payloads bytea[], contract_version integer DEFAULT 1,
    weight_hint integer DEFAULT 1)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_submit_packages'
LANGUAGE C VOLATILE;

CREATE FUNCTION jam_submit_packages(service_id text, packages jsonb)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_submit_packages_json'
LANGUAGE C VOLATILE;

CREATE FUNCTION jam_process_packages(service_id text DEFAULT NULL, max_packages integer DEFAULT 100)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_process_packages'
LANGUAGE C VOLATILE;

-- A receipt as a C2SP tlog-proof, checkable offline (proof.c).
CREATE FUNCTION jam_receipt_proof(hash text) RETURNS text
AS 'MODULE_PATHNAME', 'jam_receipt_proof'
LANGUAGE C VOLATILE;

-- Keyset paging: lists gain "after" (list.c).  The same C functions serve
-- the four-argument forms of a 1.0 catalog.
DROP FUNCTION jam_list_packages(text, text, integer, integer);
CREATE FUNCTION jam_list_packages(
    status text DEFAULT NULL, service_id text DEFAULT NULL,
    "limit" integer DEFAULT 50, "offset" integer DEFAULT 0, after bigint DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_list_packages'
LANGUAGE C STABLE;

DROP FUNCTION jam_list_reports(text, text, integer, integer);
CREATE FUNCTION jam_list_reports(
    service_id text DEFAULT NULL, status text DEFAULT NULL,
    "limit" integer DEFAULT 50, "offset" integer DEFAULT 0, after bigint DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_list_reports'
LANGUAGE C STABLE;

DO $$
DECLARE
    fn regprocedure;
BEGIN
    FOR fn IN
        SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
        WHERE p.pronamespace = 'jam'::regnamespace AND p.proname = ANY (ARRAY[
            'jam_submit_packages', 'jam_process_packages', 'jam_list_packages',
            'jam_list_reports', 'jam_receipt_proof', 'jam_register_attester', 'jam_attest',
            'jam_list_attestations', 'jam_replay'])
    LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = pg_catalog, jam, pg_temp', fn);
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION
    jam_submit_packages(text, bytea[], integer, integer), jam_submit_packages(text, jsonb),
    jam_process_packages(text, integer),
    jam_list_packages(text, text, integer, integer, bigint),
    jam_list_reports(text, text, integer, integer, bigint), jam_receipt_proof(text),
    jam_register_attester(text, text), jam_attest(text, text, text),
    jam_list_attestations(text, text, text, integer, integer, bigint), jam_replay(text)
FROM PUBLIC;

GRANT EXECUTE ON FUNCTION jam_hex_array(bytea[]), jam_unhex_array(text[]),
    jam_verify_attestation(jsonb, text), jam_sign_attestation(jsonb, text, bytea) TO PUBLIC;

GRANT EXECUTE ON FUNCTION
    jam_list_packages(text, text, integer, integer, bigint),
    jam_list_reports(text, text, integer, integer, bigint), jam_receipt_proof(text),
    jam_list_attestations(text, text, text, integer, integer, bigint), jam_replay(text)
TO jam_api, jam_reader, jam_operator;

GRANT EXECUTE ON FUNCTION
    jam_submit_packages(text, bytea[], integer, integer), jam_submit_packages(text, jsonb),
    jam_process_packages(text, integer), jam_attest(text, text, text)
TO jam_api, jam_operator;

GRANT EXECUTE ON FUNCTION jam_register_attester(text, text) TO jam_operator;

-- Token administration over HTTP (GET and POST /jam/tokens): the functions
-- themselves require a token with jam:admin (of the same tenant, for a
-- tenant's admin) from jam_api callers.
GRANT EXECUTE ON FUNCTION
    jam_create_token(text, text[], text[], text, timestamptz), jam_revoke_token(text),
    jam_list_tokens()
TO jam_api;
