-- jam 1.0: tables, indexes and the SQL API.
\echo Use "CREATE EXTENSION jam" to load this file. \quit

-- Hashes are stored as their 64-character lowercase hex text, the form the
-- API speaks, so that operators can query the tables directly; hash and
-- service id columns use the "C" collation, which orders them bytewise and
-- keeps their indexes free of locale-aware comparisons.
--
-- The tables carry no foreign keys between each other: the API functions are
-- their only writers and keep references consistent (refcounts, reports per
-- package), and key-free tables restore from pg_dump in any order.

-- The checks the tables use: the same C code that validates API arguments,
-- much cheaper per row than a regular expression.
CREATE FUNCTION jam_is_hash(value text) RETURNS boolean
AS 'MODULE_PATHNAME', 'jam_is_hash'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION jam_is_service_id(value text) RETURNS boolean
AS 'MODULE_PATHNAME', 'jam_is_service_id'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TABLE jam_preimages (
    hash          text COLLATE "C" PRIMARY KEY CHECK (jam_is_hash(hash)),
    data          bytea NOT NULL,
    size          bigint NOT NULL CHECK (size >= 0),
    media_type    text NOT NULL,
    -- packages and reports that reference this preimage; never negative
    refcount      bigint NOT NULL DEFAULT 0 CHECK (refcount >= 0),
    storage_class text NOT NULL DEFAULT 'inline' CHECK (storage_class IN ('inline')),
    created_at    timestamptz NOT NULL DEFAULT now()
);
-- Content is usually compressed already; skip pglz and keep slices cheap.
ALTER TABLE jam_preimages ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE INDEX jam_preimages_created_at_idx ON jam_preimages (created_at);

CREATE TABLE jam_services (
    service_id      text COLLATE "C" PRIMARY KEY CHECK (jam_is_service_id(service_id)),
    -- NULL: the built-in refine of the package's contract version
    refine_function regprocedure,
    -- maintained by submit and processing so that the cap costs one row, not a count
    pending_count   bigint NOT NULL DEFAULT 0 CHECK (pending_count >= 0),
    -- head of the service's verifiable log: its size, root, and the hashes
    -- of the complete subtrees along its right edge (largest first), from
    -- which the next append computes the new root without reading the log
    log_size        bigint NOT NULL DEFAULT 0 CHECK (log_size >= 0),
    log_root        text,
    log_frontier    bytea NOT NULL DEFAULT ''::bytea,
    -- the tenant whose tokens may use the service (NULL: tokens without a
    -- tenant only); set by the first submit of a tenant's token
    tenant          text,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE SEQUENCE jam_work_packages_seq;
CREATE TABLE jam_work_packages (
    id               text COLLATE "C" PRIMARY KEY CHECK (jam_is_hash(id)),
    -- arrival order: the queue order and the list order
    seq              bigint NOT NULL DEFAULT nextval('jam_work_packages_seq'),
    service_id       text COLLATE "C" NOT NULL,
    contract_version integer NOT NULL,
    weight_hint      integer NOT NULL CHECK (weight_hint > 0),
    payload          bytea NOT NULL,
    preimage_hashes  text[] NOT NULL DEFAULT '{}',
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'applied', 'failed')),
    failure_reason   text,
    submitted_by     name NOT NULL DEFAULT session_user,
    -- the token (capability) that submitted it; NULL for a call without one
    token_id         text COLLATE "C",
    submitted_at     timestamptz NOT NULL DEFAULT now(),
    processed_at     timestamptz
);
ALTER SEQUENCE jam_work_packages_seq OWNED BY jam_work_packages.seq;
CREATE INDEX jam_work_packages_seq_idx ON jam_work_packages (seq);
CREATE INDEX jam_work_packages_status_idx ON jam_work_packages (status, seq);
CREATE INDEX jam_work_packages_service_idx ON jam_work_packages (service_id, seq);
CREATE INDEX jam_work_packages_service_pending_idx ON jam_work_packages (service_id, seq)
    WHERE status = 'pending';
CREATE INDEX jam_work_packages_submitted_at_idx ON jam_work_packages (submitted_at);
-- a token's pending packages, counted against its max_pending_packages quota
CREATE INDEX jam_work_packages_token_pending_idx ON jam_work_packages (token_id)
    WHERE status = 'pending' AND token_id IS NOT NULL;

CREATE SEQUENCE jam_work_reports_seq;
CREATE TABLE jam_work_reports (
    package_id       text COLLATE "C" PRIMARY KEY CHECK (jam_is_hash(package_id)),
    seq              bigint NOT NULL DEFAULT nextval('jam_work_reports_seq'),
    service_id       text COLLATE "C" NOT NULL,
    report_hash      text COLLATE "C" NOT NULL CHECK (jam_is_hash(report_hash)),
    status           text NOT NULL CHECK (status IN ('applied', 'failed')),
    contract_version integer NOT NULL,
    -- what ran: builtin:v1 or the registered function's signature
    refine           text NOT NULL,
    output           bytea,
    output_hash      text,
    failure_reason   text,
    -- distinct preimages this report holds a reference on
    preimage_hashes  text[] NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'applied') = (output IS NOT NULL AND output_hash IS NOT NULL)),
    CHECK ((status = 'failed') = (failure_reason IS NOT NULL))
);
ALTER SEQUENCE jam_work_reports_seq OWNED BY jam_work_reports.seq;
CREATE INDEX jam_work_reports_seq_idx ON jam_work_reports (seq);
CREATE INDEX jam_work_reports_service_idx ON jam_work_reports (service_id, seq);
CREATE INDEX jam_work_reports_status_idx ON jam_work_reports (status, seq);
CREATE INDEX jam_work_reports_created_at_idx ON jam_work_reports (created_at);

CREATE SEQUENCE jam_attestations_seq;
CREATE TABLE jam_attestations (
    id           bigint PRIMARY KEY DEFAULT nextval('jam_attestations_seq'),
    package_id   text COLLATE "C" NOT NULL,
    report_hash  text COLLATE "C" NOT NULL,
    -- the node (jam.node_name) and database role that produced the report
    attester     text NOT NULL,
    attested_by  name NOT NULL DEFAULT session_user,
    created_at   timestamptz NOT NULL DEFAULT now()
);
ALTER SEQUENCE jam_attestations_seq OWNED BY jam_attestations.id;
CREATE INDEX jam_attestations_package_idx ON jam_attestations (package_id);
CREATE INDEX jam_attestations_created_at_idx ON jam_attestations (created_at);

-- The verifiable log: one append-only RFC 9162 Merkle tree per service.
-- Each row is one leaf and the receipt given for it; tree_size is seq + 1.
-- Only jam's C code writes it, from values it has just computed, so its
-- hashes carry no per-row check; jam_verify_log audits them.
CREATE TABLE jam_log_entries (
    service_id   text COLLATE "C" NOT NULL,
    seq          bigint NOT NULL CHECK (seq >= 0),
    kind         text NOT NULL CHECK (kind IN ('package', 'report')),
    hash         text COLLATE "C" NOT NULL,
    status       text NOT NULL CHECK (status IN ('pending', 'applied', 'failed')),
    processed_at timestamptz NOT NULL,
    -- the leaf's input bytes; leaf_hash = SHA-256(0x00 || entry)
    entry        bytea NOT NULL,
    leaf_hash    text NOT NULL,
    prev_root    text NOT NULL,
    new_root     text NOT NULL,
    -- hashes (32 bytes each, level 1 upwards) of the complete subtrees
    -- whose last leaf is this one: what makes a proof O(log n) reads
    nodes        bytea NOT NULL DEFAULT ''::bytea,
    PRIMARY KEY (service_id, seq)
);
CREATE INDEX jam_log_entries_hash_idx ON jam_log_entries (hash);

-- Old proofs must stay valid: nothing, retention included, rewrites the log.
CREATE FUNCTION jam_log_entries_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    RAISE EXCEPTION 'jam_log_entries is append-only'
        USING ERRCODE = 'JM022', DETAIL = 'Rows of the verifiable log are never updated or deleted.';
END
$$;
CREATE TRIGGER jam_log_entries_append_only
    BEFORE UPDATE OR DELETE ON jam_log_entries
    FOR EACH ROW EXECUTE FUNCTION jam_log_entries_append_only();
CREATE TRIGGER jam_log_entries_no_truncate
    BEFORE TRUNCATE ON jam_log_entries
    FOR EACH STATEMENT EXECUTE FUNCTION jam_log_entries_append_only();

-- The node's Ed25519 signing key, made on first use.  Readable by the
-- extension's owner only: no privilege on it is granted to anyone.
CREATE TABLE jam_node_keys (
    name        text PRIMARY KEY,
    seed        bytea NOT NULL CHECK (octet_length(seed) = 32),
    public_key  bytea NOT NULL CHECK (octet_length(public_key) = 32),
    created_at  timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON jam_node_keys FROM PUBLIC;

-- Tokens: bearer capabilities.  Only BLAKE2b-256 of a token's secret is
-- kept; the token itself is shown once, by jam_create_token.
CREATE TABLE jam_tokens (
    id          text COLLATE "C" PRIMARY KEY CHECK (id ~ '^[0-9a-f]{16}$'),
    name        text NOT NULL CHECK (name <> '' AND octet_length(name) <= 200),
    secret_hash bytea NOT NULL CHECK (octet_length(secret_hash) = 32),
    scopes      text[] NOT NULL
                CHECK (cardinality(scopes) > 0
                       AND scopes <@ ARRAY['jam:read', 'jam:submit', 'jam:process', 'jam:admin']),
    -- NULL: every service
    services    text[] CHECK (cardinality(services) > 0),
    tenant      text,
    created_by  name NOT NULL DEFAULT session_user,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    revoked_at  timestamptz
);

-- Quota overrides of one service or one token; a NULL limit is the default's.
CREATE TABLE jam_quotas (
    service_id            text COLLATE "C" CHECK (jam_is_service_id(service_id)),
    token_id              text COLLATE "C",
    rate_limit_per_minute integer CHECK (rate_limit_per_minute >= 0),
    max_preimage_bytes    bigint CHECK (max_preimage_bytes >= 0),
    max_pending_packages  integer CHECK (max_pending_packages >= 0),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CHECK ((service_id IS NULL) <> (token_id IS NULL))
);
CREATE UNIQUE INDEX jam_quotas_service_idx ON jam_quotas (service_id) WHERE service_id IS NOT NULL;
CREATE UNIQUE INDEX jam_quotas_token_idx ON jam_quotas (token_id) WHERE token_id IS NOT NULL;

-- Backends cache tokens and quotas; any change, by the API or by hand,
-- makes them drop their caches when it commits.
CREATE FUNCTION jam_auth_changed() RETURNS trigger
AS 'MODULE_PATHNAME', 'jam_auth_changed'
LANGUAGE C;
CREATE TRIGGER jam_tokens_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON jam_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION jam_auth_changed();
CREATE TRIGGER jam_quotas_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON jam_quotas
    FOR EACH STATEMENT EXECUTE FUNCTION jam_auth_changed();

-- pg_dump keeps the data of extension tables only when they are registered.
SELECT pg_catalog.pg_extension_config_dump('jam_preimages', '');
SELECT pg_catalog.pg_extension_config_dump('jam_services', '');
SELECT pg_catalog.pg_extension_config_dump('jam_work_packages', '');
SELECT pg_catalog.pg_extension_config_dump('jam_work_packages_seq', '');
SELECT pg_catalog.pg_extension_config_dump('jam_work_reports', '');
SELECT pg_catalog.pg_extension_config_dump('jam_work_reports_seq', '');
SELECT pg_catalog.pg_extension_config_dump('jam_attestations', '');
SELECT pg_catalog.pg_extension_config_dump('jam_attestations_seq', '');
SELECT pg_catalog.pg_extension_config_dump('jam_log_entries', '');
SELECT pg_catalog.pg_extension_config_dump('jam_node_keys', '');
SELECT pg_catalog.pg_extension_config_dump('jam_tokens', '');
SELECT pg_catalog.pg_extension_config_dump('jam_quotas', '');

-- Errors

CREATE FUNCTION jam_error_codes(
    OUT code text, OUT sqlstate text, OUT http_status integer, OUT description text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'jam_error_codes'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

-- Hashing

CREATE FUNCTION jam_hash(data bytea) RETURNS text
AS 'MODULE_PATHNAME', 'jam_hash'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION jam_package_id(
    service_id text, payload bytea, contract_version integer DEFAULT 1,
    weight_hint integer DEFAULT 1, preimage_hashes text[] DEFAULT '{}')
RETURNS text
AS 'MODULE_PATHNAME', 'jam_package_id'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

-- Preimages

CREATE FUNCTION jam_put_preimage(data bytea, media_type text DEFAULT 'application/octet-stream')
RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_put_preimage'
LANGUAGE C VOLATILE;

CREATE FUNCTION jam_get_preimage(hash text) RETURNS bytea
AS 'MODULE_PATHNAME', 'jam_get_preimage'
LANGUAGE C STABLE;

CREATE FUNCTION jam_preimage_meta(hash text) RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_preimage_meta'
LANGUAGE C STABLE;

-- Services and packages

CREATE FUNCTION jam_register_service(service_id text, refine_function regprocedure DEFAULT NULL,
                                     tenant text DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_register_service'
LANGUAGE C VOLATILE;

CREATE FUNCTION jam_submit_package(
    service_id text, payload bytea, declared_hash text DEFAULT NULL,
    contract_version integer DEFAULT 1, weight_hint integer DEFAULT 1,
    preimage_hashes text[] DEFAULT '{}')
RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_submit_package'
LANGUAGE C VOLATILE;

CREATE FUNCTION jam_get_package(id text) RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_get_package'
LANGUAGE C STABLE;

CREATE FUNCTION jam_list_packages(
    status text DEFAULT NULL, service_id text DEFAULT NULL,
    "limit" integer DEFAULT 50, "offset" integer DEFAULT 0)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_list_packages'
LANGUAGE C STABLE;

-- Processing and reports

CREATE FUNCTION jam_process_next(service_id text DEFAULT NULL) RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_process_next'
LANGUAGE C VOLATILE;

CREATE FUNCTION jam_get_report(package_id text) RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_get_report'
LANGUAGE C STABLE;

CREATE FUNCTION jam_list_reports(
    service_id text DEFAULT NULL, status text DEFAULT NULL,
    "limit" integer DEFAULT 50, "offset" integer DEFAULT 0)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_list_reports'
LANGUAGE C STABLE;

CREATE FUNCTION jam_attestations(package_id text) RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_attestations'
LANGUAGE C STABLE;

-- The verifiable log

CREATE FUNCTION jam_receipt(hash text) RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_receipt'
LANGUAGE C STABLE;

CREATE FUNCTION jam_inclusion_proof(service_id text, seq bigint, tree_size bigint) RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_inclusion_proof'
LANGUAGE C STABLE;

CREATE FUNCTION jam_consistency_proof(service_id text, first bigint, second bigint) RETURNS text[]
AS 'MODULE_PATHNAME', 'jam_consistency_proof'
LANGUAGE C STABLE;

CREATE FUNCTION jam_root(service_id text, tree_size bigint) RETURNS text
AS 'MODULE_PATHNAME', 'jam_root'
LANGUAGE C STABLE;

CREATE FUNCTION jam_roots() RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_roots'
LANGUAGE C STABLE;

CREATE FUNCTION jam_verify_log(service_id text) RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_verify_log'
LANGUAGE C STABLE;

-- Makes the node key on first use, hence VOLATILE.
CREATE FUNCTION jam_checkpoint(service_id text) RETURNS text
AS 'MODULE_PATHNAME', 'jam_checkpoint'
LANGUAGE C VOLATILE;

CREATE FUNCTION jam_status() RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_status'
LANGUAGE C VOLATILE;

-- Offline verification, usable on any RFC 9162 log and any signed note

CREATE FUNCTION jam_verify_inclusion(leaf_hash text, seq bigint, tree_size bigint, proof text[], root text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'jam_verify_inclusion'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION jam_verify_consistency(first bigint, second bigint, proof text[], first_root text, second_root text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'jam_verify_consistency'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION jam_verify_checkpoint(note text, verifier_key text) RETURNS boolean
AS 'MODULE_PATHNAME', 'jam_verify_checkpoint'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION jam_merkle_leaf_hash(entry bytea) RETURNS text
AS 'MODULE_PATHNAME', 'jam_merkle_leaf_hash_sql'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION jam_merkle_root(leaf_inputs bytea[]) RETURNS text
AS 'MODULE_PATHNAME', 'jam_merkle_root_sql'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION jam_merkle_inclusion_proof(leaf_inputs bytea[], seq bigint, tree_size bigint) RETURNS text[]
AS 'MODULE_PATHNAME', 'jam_merkle_inclusion_proof_sql'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION jam_merkle_consistency_proof(leaf_inputs bytea[], first bigint, second bigint) RETURNS text[]
AS 'MODULE_PATHNAME', 'jam_merkle_consistency_proof_sql'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION jam_sign_note(text text, name text, seed bytea) RETURNS text
AS 'MODULE_PATHNAME', 'jam_sign_note'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION jam_note_verifier_key(name text, seed bytea) RETURNS text
AS 'MODULE_PATHNAME', 'jam_note_verifier_key_sql'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

-- Retention: cleanup, its consistency check, and its schedule
-- (src/retention.c, src/fsck.c, src/schedule.c; the worker: src/retention_worker.c).
-- Operator functions: no privilege on them is granted to PUBLIC.

CREATE FUNCTION jam_cleanup(dry_run boolean DEFAULT current_setting('jam.retention_dry_run')::boolean)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_cleanup'
LANGUAGE C VOLATILE;

CREATE FUNCTION jam_fsck(repair boolean DEFAULT false) RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_fsck'
LANGUAGE C VOLATILE;

CREATE FUNCTION jam_schedule_retention(schedule text DEFAULT '17 3 * * *') RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_schedule_retention'
LANGUAGE C VOLATILE;

CREATE FUNCTION jam_unschedule_retention() RETURNS boolean
AS 'MODULE_PATHNAME', 'jam_unschedule_retention'
LANGUAGE C VOLATILE;

REVOKE ALL ON FUNCTION jam_cleanup(boolean), jam_fsck(boolean),
    jam_schedule_retention(text), jam_unschedule_retention() FROM PUBLIC;

-- Metrics (src/metrics.c): counters and timings in shared memory, one row
-- per series, which the HTTP shim serves at /metrics in the Prometheus text
-- format.  Operator functions: no privilege on them is granted to PUBLIC.

CREATE FUNCTION jam_metrics()
RETURNS TABLE (name text, kind text, help text, labels jsonb, value double precision)
AS 'MODULE_PATHNAME', 'jam_metrics'
LANGUAGE C VOLATILE;

CREATE FUNCTION jam_metrics_reset() RETURNS void
AS 'MODULE_PATHNAME', 'jam_metrics_reset'
LANGUAGE C VOLATILE;

REVOKE ALL ON FUNCTION jam_metrics(), jam_metrics_reset() FROM PUBLIC;

-- Capabilities and quotas (src/auth.c, src/tokens.c, src/quota.c,
-- src/ratelimit.c).

CREATE FUNCTION jam_authenticate(token text) RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_authenticate'
LANGUAGE C VOLATILE;

CREATE FUNCTION jam_create_token(
    name text, scopes text[], services text[] DEFAULT NULL, tenant text DEFAULT NULL,
    expires_at timestamptz DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'jam_create_token'
LANGUAGE C VOLATILE;

CREATE FUNCTION jam_revoke_token(token_id text) RETURNS boolean
AS 'MODULE_PATHNAME', 'jam_revoke_token'
LANGUAGE C VOLATILE;

CREATE FUNCTION jam_list_tokens() RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_list_tokens'
LANGUAGE C STABLE;

CREATE FUNCTION jam_set_quota(
    service_id text DEFAULT NULL, token_id text DEFAULT NULL,
    rate_limit_per_minute integer DEFAULT NULL, max_preimage_bytes bigint DEFAULT NULL,
    max_pending_packages integer DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_set_quota'
LANGUAGE C VOLATILE;

CREATE FUNCTION jam_quota_usage(service_id text DEFAULT NULL, token_id text DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_quota_usage'
LANGUAGE C VOLATILE;

-- Least-privilege roles.  Roles belong to the whole cluster, so they are
-- made only when missing, and outlive DROP EXTENSION.
--   jam_api       the HTTP shim: calls the API functions on behalf of a token
--   jam_reader    a DBA who reads: the read functions, SELECT on the tables
--   jam_operator  a DBA who runs jam: every function
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'jam_api') THEN
        CREATE ROLE jam_api NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'jam_reader') THEN
        CREATE ROLE jam_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'jam_operator') THEN
        CREATE ROLE jam_operator NOLOGIN;
    END IF;
END
$$;

-- Every function that touches a table runs as the extension's owner, which
-- is how the roles reach the tables they have no privilege on; each pins
-- its search_path so that no caller's schema can shadow what it uses.
-- jam_schedule_retention and jam_unschedule_retention touch only pg_cron's
-- jobs, which belong to their caller: they run as the caller.
DO $$
DECLARE
    fn regprocedure;
BEGIN
    FOR fn IN
        SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
        WHERE p.pronamespace = 'jam'::regnamespace AND p.proname = ANY (ARRAY[
            'jam_put_preimage', 'jam_get_preimage', 'jam_preimage_meta', 'jam_register_service',
            'jam_submit_package', 'jam_get_package', 'jam_list_packages', 'jam_process_next',
            'jam_get_report', 'jam_list_reports', 'jam_attestations', 'jam_receipt',
            'jam_inclusion_proof', 'jam_consistency_proof', 'jam_root', 'jam_roots',
            'jam_verify_log', 'jam_checkpoint', 'jam_status', 'jam_cleanup', 'jam_fsck',
            'jam_authenticate',
            'jam_create_token', 'jam_revoke_token', 'jam_list_tokens', 'jam_set_quota',
            'jam_quota_usage'])
    LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = pg_catalog, jam, pg_temp', fn);
    END LOOP;
END
$$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA jam FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA jam FROM PUBLIC;
GRANT USAGE ON SCHEMA jam TO jam_api, jam_reader, jam_operator;

-- Pure functions: anyone with the schema may call them.
GRANT EXECUTE ON FUNCTION
    jam_is_hash(text), jam_is_service_id(text), jam_error_codes(), jam_hash(bytea),
    jam_package_id(text, bytea, integer, integer, text[]),
    jam_verify_inclusion(text, bigint, bigint, text[], text),
    jam_verify_consistency(bigint, bigint, text[], text, text),
    jam_verify_checkpoint(text, text), jam_merkle_leaf_hash(bytea), jam_merkle_root(bytea[]),
    jam_merkle_inclusion_proof(bytea[], bigint, bigint),
    jam_merkle_consistency_proof(bytea[], bigint, bigint),
    jam_sign_note(text, text, bytea), jam_note_verifier_key(text, bytea)
TO PUBLIC;

-- Reading, for the shim (under a token's scopes) and for readers.
GRANT EXECUTE ON FUNCTION
    jam_authenticate(text), jam_get_preimage(text), jam_preimage_meta(text),
    jam_get_package(text), jam_list_packages(text, text, integer, integer),
    jam_get_report(text), jam_list_reports(text, text, integer, integer),
    jam_attestations(text), jam_receipt(text), jam_inclusion_proof(text, bigint, bigint),
    jam_consistency_proof(text, bigint, bigint), jam_root(text, bigint), jam_roots(),
    jam_verify_log(text), jam_checkpoint(text), jam_status(), jam_quota_usage(text, text),
    jam_metrics()
TO jam_api, jam_reader, jam_operator;

-- Writing through the shim: a token's jam:submit and jam:process.
GRANT EXECUTE ON FUNCTION
    jam_put_preimage(bytea, text),
    jam_submit_package(text, bytea, text, integer, integer, text[]),
    jam_process_next(text)
TO jam_api, jam_operator;

-- Running jam: services, tokens, quotas, retention.
GRANT EXECUTE ON FUNCTION
    jam_register_service(text, regprocedure, text),
    jam_create_token(text, text[], text[], text, timestamptz), jam_revoke_token(text),
    jam_list_tokens(), jam_set_quota(text, text, integer, bigint, integer),
    jam_cleanup(boolean), jam_fsck(boolean), jam_schedule_retention(text),
    jam_unschedule_retention(), jam_metrics_reset()
TO jam_operator;

-- Readers may query the tables directly; never the secrets.
GRANT SELECT ON jam_preimages, jam_services, jam_work_packages, jam_work_reports,
    jam_attestations, jam_log_entries, jam_quotas
TO jam_reader, jam_operator;
GRANT SELECT (id, name, scopes, services, tenant, created_by, created_at, expires_at, revoked_at)
    ON jam_tokens TO jam_operator;
