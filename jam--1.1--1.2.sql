-- jam 1.1 to 1.2: fair scheduling and the event stream.
\echo Use "ALTER EXTENSION jam UPDATE TO '1.2'" to load this file. \quit

-- Fair scheduling (issue 13) -------------------------------------------------

-- A service's share of processing when several have packages pending
-- (fair.c): over a busy interval, processing cost (weight_hint) goes to
-- backlogged services in proportion to their shares.  Adding a column
-- with a constant default rewrites nothing.
ALTER TABLE jam_services
    ADD COLUMN share integer NOT NULL DEFAULT 1,
    ADD CONSTRAINT jam_services_share_check CHECK (share BETWEEN 1 AND 1000000);

-- jam_register_service gains share (NULL: 1 for a new service, unchanged
-- for an existing one).  A new signature is a new function: the old one
-- goes, so that a call naming three arguments still resolves to one.
DROP FUNCTION jam_register_service(text, regprocedure, text);
CREATE FUNCTION jam_register_service(service_id text, refine_function regprocedure DEFAULT NULL,
                                     tenant text DEFAULT NULL, share integer DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_register_service'
LANGUAGE C VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, jam, pg_temp;
REVOKE ALL ON FUNCTION jam_register_service(text, regprocedure, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION jam_register_service(text, regprocedure, text, integer) TO jam_operator;

-- Events (issue 13) -----------------------------------------------------------

-- Every log entry is an event.  The library announces each one with NOTIFY
-- on the channel jam_events when its transaction commits (events.c; no
-- catalog change: it works on 1.0 and 1.1 catalogs too), and
-- jam_log_events reads them back from the log, after a position, so that
-- a follower that was away (the HTTP shim's GET /jam/events with
-- Last-Event-ID) misses nothing.  The token rules are jam_list_packages'.
CREATE FUNCTION jam_log_events(service_id text, after_seq bigint DEFAULT -1,
                               max_events integer DEFAULT 100)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_log_events'
LANGUAGE C STABLE
SECURITY DEFINER SET search_path = pg_catalog, jam, pg_temp;
REVOKE ALL ON FUNCTION jam_log_events(text, bigint, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION jam_log_events(text, bigint, integer) TO jam_api, jam_reader, jam_operator;

-- Tiles and witnesses (issue 15) -----------------------------------------------

-- Each service's log as C2SP tlog-tiles (tiles.c): hash tiles and entry
-- bundles computed from the subtree hashes jam_log_entries already keeps,
-- O(tile) per call, and the checkpoint a tile client reads first.  Readable
-- with jam:read on the service, as its receipts are, or by anyone once an
-- operator makes the log public (outside auditors, witnesses).  Adding a
-- column with a constant default rewrites nothing.
ALTER TABLE jam_services ADD COLUMN log_public boolean NOT NULL DEFAULT false;

CREATE FUNCTION jam_tile(service_id text, level integer, index bigint, width integer DEFAULT 256)
RETURNS bytea
AS 'MODULE_PATHNAME', 'jam_tile'
LANGUAGE C STABLE
SECURITY DEFINER SET search_path = pg_catalog, jam, pg_temp;

CREATE FUNCTION jam_entry_bundle(service_id text, index bigint, width integer DEFAULT 256)
RETURNS bytea
AS 'MODULE_PATHNAME', 'jam_entry_bundle'
LANGUAGE C STABLE
SECURITY DEFINER SET search_path = pg_catalog, jam, pg_temp;

-- Makes the node key on first use, as jam_checkpoint does, hence VOLATILE.
CREATE FUNCTION jam_log_checkpoint(service_id text) RETURNS text
AS 'MODULE_PATHNAME', 'jam_log_checkpoint'
LANGUAGE C VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, jam, pg_temp;

CREATE FUNCTION jam_set_log_public(service_id text, public boolean DEFAULT true) RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_set_log_public'
LANGUAGE C VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, jam, pg_temp;

REVOKE ALL ON FUNCTION jam_tile(text, integer, bigint, integer),
    jam_entry_bundle(text, bigint, integer), jam_log_checkpoint(text),
    jam_set_log_public(text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION jam_tile(text, integer, bigint, integer),
    jam_entry_bundle(text, bigint, integer), jam_log_checkpoint(text)
TO jam_api, jam_reader, jam_operator;
GRANT EXECUTE ON FUNCTION jam_set_log_public(text, boolean) TO jam_operator;

-- Witness cosignatures (c2sp.org/tlog-witness, tlog-cosignature;
-- cosignature.c, witness.c, witnessing.c, cosigned.c).
--
-- jam as a log: the witnesses an operator registers, what each last
-- cosigned of each service's log, and the cosignatures they returned,
-- which served checkpoints carry.
CREATE TABLE jam_witnesses (
    name          text PRIMARY KEY,
    verifier_key  text NOT NULL,
    public_key    bytea NOT NULL CHECK (octet_length(public_key) = 32),
    -- the submission prefix: url || '/add-checkpoint' is called
    url           text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE jam_witness_sizes (
    witness     text NOT NULL,
    service_id  text COLLATE "C" NOT NULL,
    tree_size   bigint NOT NULL CHECK (tree_size >= 0),
    last_error  text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (witness, service_id)
);
CREATE TABLE jam_cosignatures (
    service_id   text COLLATE "C" NOT NULL,
    tree_size    bigint NOT NULL CHECK (tree_size > 0),
    witness      text NOT NULL,
    root         bytea NOT NULL CHECK (octet_length(root) = 32),
    cosigned_at  timestamptz NOT NULL,
    -- key id (4), timestamp (8), Ed25519 signature (64): the line's bytes
    signature    bytea NOT NULL CHECK (octet_length(signature) = 76),
    PRIMARY KEY (service_id, tree_size, witness)
);

-- jam as a witness: the logs an operator registers, each with the
-- checkpoint this node last cosigned (0 and no root: none yet).
CREATE TABLE jam_witnessed_logs (
    origin        text PRIMARY KEY,
    verifier_key  text NOT NULL,
    tree_size     bigint NOT NULL DEFAULT 0 CHECK (tree_size >= 0),
    root          bytea CHECK (octet_length(root) = 32),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

SELECT pg_catalog.pg_extension_config_dump('jam_witnesses', '');
SELECT pg_catalog.pg_extension_config_dump('jam_witness_sizes', '');
SELECT pg_catalog.pg_extension_config_dump('jam_cosignatures', '');
SELECT pg_catalog.pg_extension_config_dump('jam_witnessed_logs', '');
GRANT SELECT ON jam_witnesses, jam_witness_sizes, jam_cosignatures, jam_witnessed_logs
TO jam_reader, jam_operator;

CREATE FUNCTION jam_add_witness(name text, verifier_key text, url text) RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_add_witness'
LANGUAGE C VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, jam, pg_temp;

-- Sends checkpoints over HTTP and stores cosignatures: VOLATILE.
CREATE FUNCTION jam_witness_checkpoints(service_id text DEFAULT NULL) RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_witness_checkpoints'
LANGUAGE C VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, jam, pg_temp;

CREATE FUNCTION jam_witnessed_checkpoint(service_id text) RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_witnessed_checkpoint'
LANGUAGE C VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, jam, pg_temp;

CREATE FUNCTION jam_add_witnessed_log(origin text, verifier_key text) RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_add_witnessed_log'
LANGUAGE C VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, jam, pg_temp;

-- The add-checkpoint call of POST /jam/witness/add-checkpoint: no token
-- needed (a witness trusts the log's signature, not the caller).
CREATE FUNCTION jam_witness_add_checkpoint(request text) RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_witness_add_checkpoint'
LANGUAGE C VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, jam, pg_temp;

CREATE FUNCTION jam_cosigner_key() RETURNS text
AS 'MODULE_PATHNAME', 'jam_cosigner_key'
LANGUAGE C VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, jam, pg_temp;

-- Offline, usable on any log's checkpoints.
CREATE FUNCTION jam_cosign_checkpoint(checkpoint text, name text, seed bytea, "timestamp" bigint)
RETURNS text
AS 'MODULE_PATHNAME', 'jam_cosign_checkpoint'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION jam_verify_cosignature(checkpoint text, verifier_key text) RETURNS bigint
AS 'MODULE_PATHNAME', 'jam_verify_cosignature'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

REVOKE ALL ON FUNCTION jam_add_witness(text, text, text), jam_witness_checkpoints(text),
    jam_witnessed_checkpoint(text), jam_add_witnessed_log(text, text),
    jam_witness_add_checkpoint(text), jam_cosigner_key(),
    jam_cosign_checkpoint(text, text, bytea, bigint), jam_verify_cosignature(text, text)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION jam_cosign_checkpoint(text, text, bytea, bigint),
    jam_verify_cosignature(text, text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION jam_witnessed_checkpoint(text), jam_witness_add_checkpoint(text),
    jam_cosigner_key()
TO jam_api, jam_reader, jam_operator;
GRANT EXECUTE ON FUNCTION jam_add_witness(text, text, text), jam_witness_checkpoints(text),
    jam_add_witnessed_log(text, text)
TO jam_operator;

-- S3 blob tier (issue 14) -------------------------------------------------------

-- A preimage at or above jam.blob_offload_threshold bytes may live as an
-- object of an S3-compatible store, keyed by its hash, its row holding the
-- metadata only: storage_class 's3' and no data (blob.h).  Both constraints
-- are checked against the existing rows, which are all inline: a scan, no
-- rewrite.
ALTER TABLE jam_preimages ALTER COLUMN data DROP NOT NULL,
    DROP CONSTRAINT jam_preimages_storage_class_check,
    ADD CONSTRAINT jam_preimages_storage_class_check CHECK (storage_class IN ('inline', 's3')),
    ADD CONSTRAINT jam_preimages_data_check CHECK ((storage_class = 'inline') = (data IS NOT NULL));

-- Serves offload batches (offload.c): the inline preimages of at least the
-- threshold, largest first, by keyset, without scanning the table.
CREATE INDEX jam_preimages_inline_size_idx ON jam_preimages (size, hash)
    WHERE storage_class = 'inline';

-- The durable queue of object deletes (blob_deletes.c): a row of the store
-- that is deleted queues its object's delete in the same transaction, and
-- the blob worker (or jam_drain_blob_deletes) deletes the object after that
-- transaction commits, retrying with a backoff what the store refuses.
CREATE TABLE jam_blob_deletes (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hash            bytea NOT NULL CHECK (octet_length(hash) = 32),
    size            bigint NOT NULL,
    queued_at       timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text
);
CREATE INDEX jam_blob_deletes_due_idx ON jam_blob_deletes (next_attempt_at, id);
SELECT pg_catalog.pg_extension_config_dump('jam_blob_deletes', '');
SELECT pg_catalog.pg_extension_config_dump('jam_blob_deletes_id_seq', '');

CREATE FUNCTION jam_blob_queue_delete() RETURNS trigger
AS 'MODULE_PATHNAME', 'jam_blob_queue_delete'
LANGUAGE C
SECURITY DEFINER SET search_path = pg_catalog, jam, pg_temp;
REVOKE ALL ON FUNCTION jam_blob_queue_delete() FROM PUBLIC;

-- Whoever deletes a row of the store (retention, an operator) queues its
-- object's delete; inline rows do not call the function at all.
CREATE TRIGGER jam_preimages_blob_delete AFTER DELETE ON jam_preimages
    FOR EACH ROW WHEN (OLD.storage_class = 's3')
    EXECUTE FUNCTION jam_blob_queue_delete();

-- Moves inline preimages over the threshold to the store, in batches that
-- each commit (run by a task worker, as jam_cleanup's batches are).
CREATE FUNCTION jam_offload(dry_run boolean DEFAULT false) RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_offload'
LANGUAGE C VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, jam, pg_temp;

CREATE FUNCTION jam_drain_blob_deletes(max_deletes integer DEFAULT 1000) RETURNS jsonb
AS 'MODULE_PATHNAME', 'jam_drain_blob_deletes'
LANGUAGE C VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, jam, pg_temp;

REVOKE ALL ON FUNCTION jam_offload(boolean), jam_drain_blob_deletes(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION jam_offload(boolean), jam_drain_blob_deletes(integer) TO jam_operator;
GRANT SELECT ON jam_blob_deletes TO jam_reader, jam_operator;

-- A preimage's bytes as rows of chunk_bytes each, which the HTTP shim
-- streams one at a time (libpq's single-row mode), so that it never holds a
-- large preimage whole; jam_get_preimage's rules and checks.
CREATE FUNCTION jam_read_preimage(hash text, chunk_bytes integer DEFAULT 262144)
RETURNS SETOF bytea
AS 'MODULE_PATHNAME', 'jam_read_preimage'
LANGUAGE C STABLE ROWS 64
SECURITY DEFINER SET search_path = pg_catalog, jam, pg_temp;
REVOKE ALL ON FUNCTION jam_read_preimage(text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION jam_read_preimage(text, integer) TO jam_api, jam_reader, jam_operator;
