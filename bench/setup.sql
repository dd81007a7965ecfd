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
