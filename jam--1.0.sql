-- jam 1.0: tables, indexes and the SQL API.
\echo Use "CREATE EXTENSION jam" to load this file. \quit

-- Hashes are stored as their 64-character lowercase hex text, the form the
-- API speaks, so that operators can query the tables directly.
--
-- The tables carry no foreign keys between each other: the API functions are
-- their only writers and keep references consistent (refcounts, reports per
-- package), and key-free tables restore from pg_dump in any order.

CREATE TABLE jam_preimages (
    hash          text PRIMARY KEY CHECK (hash ~ '^[0-9a-f]{64}$'),
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
    service_id      text PRIMARY KEY CHECK (service_id ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$'),
    -- NULL: the built-in refine of the package's contract version
    refine_function regprocedure,
    -- maintained by submit and processing so that the cap costs one row, not a count
    pending_count   bigint NOT NULL DEFAULT 0 CHECK (pending_count >= 0),
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE SEQUENCE jam_work_packages_seq;
CREATE TABLE jam_work_packages (
    id               text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{64}$'),
    -- arrival order: the queue order and the list order
    seq              bigint NOT NULL DEFAULT nextval('jam_work_packages_seq'),
    service_id       text NOT NULL,
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
    package_id       text PRIMARY KEY CHECK (package_id ~ '^[0-9a-f]{64}$'),
    seq              bigint NOT NULL DEFAULT nextval('jam_work_reports_seq'),
    service_id       text NOT NULL,
    report_hash      text NOT NULL CHECK (report_hash ~ '^[0-9a-f]{64}$'),
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
    package_id   text NOT NULL,
    report_hash  text NOT NULL,
    -- the node (jam.node_name) and database role that produced the report
    attester     text NOT NULL,
    attested_by  name NOT NULL DEFAULT session_user,
    created_at   timestamptz NOT NULL DEFAULT now()
);
ALTER SEQUENCE jam_attestations_seq OWNED BY jam_attestations.id;
CREATE INDEX jam_attestations_package_idx ON jam_attestations (package_id);
CREATE INDEX jam_attestations_created_at_idx ON jam_attestations (created_at);

-- pg_dump keeps the data of extension tables only when they are registered.
SELECT pg_catalog.pg_extension_config_dump('jam_preimages', '');
SELECT pg_catalog.pg_extension_config_dump('jam_services', '');
SELECT pg_catalog.pg_extension_config_dump('jam_work_packages', '');
SELECT pg_catalog.pg_extension_config_dump('jam_work_packages_seq', '');
SELECT pg_catalog.pg_extension_config_dump('jam_work_reports', '');
SELECT pg_catalog.pg_extension_config_dump('jam_work_reports_seq', '');
SELECT pg_catalog.pg_extension_config_dump('jam_attestations', '');
SELECT pg_catalog.pg_extension_config_dump('jam_attestations_seq', '');

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
