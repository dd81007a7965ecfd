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

CREATE FUNCTION jam_register_service(service_id text, refine_function regprocedure DEFAULT NULL)
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
