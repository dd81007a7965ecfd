-- Benchmark schema: jam itself, and the baseline it is measured against.
--
-- The baseline is a plain table with the same columns, constraints and
-- indexes as jam.jam_work_packages (LIKE ... INCLUDING ALL copies them),
-- with its own sequence, so that a bare INSERT of the same row shows what
-- storing a package costs before jam adds anything.
CREATE EXTENSION jam;

CREATE SEQUENCE bench_insert_seq;
CREATE TABLE bench_insert (LIKE jam.jam_work_packages INCLUDING ALL);
ALTER TABLE bench_insert ALTER COLUMN seq SET DEFAULT nextval('bench_insert_seq');

-- The baseline's id, a hash of the payload in the form the installed
-- version stores ids: 64 hex characters (1.0) or 32 bytes (1.1).  A plain
-- SQL expression, which the planner inlines into the INSERT.
DO $$
BEGIN
    IF (SELECT atttypid FROM pg_attribute
        WHERE attrelid = 'jam.jam_work_packages'::regclass AND attname = 'id') = 'bytea'::regtype THEN
        CREATE FUNCTION bench_id(p bytea) RETURNS bytea
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT sha256(p)';
    ELSE
        CREATE FUNCTION bench_id(p bytea) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$SELECT encode(sha256(p), 'hex')$f$;
    END IF;
END
$$;

-- The floor: the rows a submit must write, written by plain SQL.  A
-- submit stores its package (idempotently), appends a leaf to its
-- service's log and moves the service's head, all in one transaction or
-- none of it.  bench/floor.sql and bench/floor_batch.sql write exactly
-- those rows, into copies of jam's tables with their columns, constraints
-- and indexes, without jam's checks, hashing, receipts, metrics or
-- events: a cost no implementation of that write set goes below on this
-- machine.
CREATE SEQUENCE bench_floor_seq;
CREATE TABLE bench_floor_packages (LIKE jam.jam_work_packages INCLUDING ALL);
ALTER TABLE bench_floor_packages ALTER COLUMN seq SET DEFAULT nextval('bench_floor_seq');
CREATE TABLE bench_floor_log (LIKE jam.jam_log_entries INCLUDING ALL);
CREATE TABLE bench_floor_heads (LIKE jam.jam_services INCLUDING ALL);
INSERT INTO bench_floor_heads (service_id)
SELECT 'svc-' || s FROM generate_series(0, 15) s UNION ALL SELECT 'svc-batch';
