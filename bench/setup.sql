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
