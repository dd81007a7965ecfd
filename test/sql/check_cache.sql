-- check_cache: the CHECK constraints of the tables in jam's schema are
-- parsed once a backend (src/check_cache.c), yet every statement checks
-- against the constraints as they are when it runs: one added, dropped or
-- replaced in the same session, and a SQL function a check calls replaced.
-- Everything runs in one session, so a stale tree would show.  Tables of
-- other schemas keep the executor's own path.
\getenv abs_srcdir PG_ABS_SRCDIR
\set own_db regress_jam_check_cache
\set own_db_include :abs_srcdir '/sql/include/own_database.psql'
\i :own_db_include

CREATE TABLE jam.probe (x int CONSTRAINT probe_positive CHECK (x > 0));

-- What a statement says of its rows: done, or the check that refused them.
CREATE FUNCTION pg_temp.run(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    name text;
BEGIN
    EXECUTE sql;
    RETURN 'done';
EXCEPTION
    WHEN check_violation THEN
        GET STACKED DIAGNOSTICS name = CONSTRAINT_NAME;
        RETURN 'refused by ' || name;
END
$$;
CREATE FUNCTION pg_temp.put(v int) RETURNS text LANGUAGE sql AS $$
    SELECT pg_temp.run(format('INSERT INTO jam.probe VALUES (%s)', v))
$$;

SELECT pg_temp.put(1) AS one, pg_temp.put(0) AS zero;
-- Again: these statements take the tree the first ones parsed.
SELECT pg_temp.put(2) AS two, pg_temp.put(-1) AS minus_one;

-- A second check joins the first.
ALTER TABLE jam.probe ADD CONSTRAINT probe_small CHECK (x < 10);
SELECT pg_temp.put(5) AS five, pg_temp.put(20) AS twenty, pg_temp.put(0) AS zero;

-- The first one goes: 0 now passes, 20 still does not.
ALTER TABLE jam.probe DROP CONSTRAINT probe_positive;
SELECT pg_temp.put(0) AS zero, pg_temp.put(20) AS twenty;

-- Replaced under the same name by its opposite.
TRUNCATE jam.probe;
ALTER TABLE jam.probe DROP CONSTRAINT probe_small, ADD CONSTRAINT probe_small CHECK (x >= 10);
SELECT pg_temp.put(5) AS five, pg_temp.put(20) AS twenty;

-- A check calling a SQL function, which the planner inlines: replacing the
-- function's body changes what the check does, and not the check's text.
TRUNCATE jam.probe;
ALTER TABLE jam.probe DROP CONSTRAINT probe_small;
CREATE FUNCTION jam.probe_ok(v int) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT v % 2 = 0';
ALTER TABLE jam.probe ADD CONSTRAINT probe_even CHECK (jam.probe_ok(x));
SELECT pg_temp.put(4) AS four, pg_temp.put(3) AS three;
CREATE OR REPLACE FUNCTION jam.probe_ok(v int) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT v % 2 = 1';
SELECT pg_temp.put(4) AS four, pg_temp.put(3) AS three;

-- UPDATE and INSERT ... ON CONFLICT DO UPDATE check the new row too.
TRUNCATE jam.probe;
ALTER TABLE jam.probe ADD PRIMARY KEY (x);
SELECT pg_temp.put(7) AS seven;
SELECT pg_temp.run('UPDATE jam.probe SET x = 8 WHERE x = 7') AS to_eight,
       pg_temp.run('UPDATE jam.probe SET x = 9 WHERE x = 7') AS to_nine;
SELECT pg_temp.run('INSERT INTO jam.probe VALUES (9) ON CONFLICT (x) DO UPDATE SET x = 10') AS to_ten,
       pg_temp.run('INSERT INTO jam.probe VALUES (9) ON CONFLICT (x) DO UPDATE SET x = 11') AS to_eleven;
SELECT x FROM jam.probe ORDER BY x;

-- A table of another schema, the executor's own path, checks the same.
CREATE TABLE public.probe_elsewhere (x int CONSTRAINT elsewhere_positive CHECK (x > 0));
SELECT pg_temp.run('INSERT INTO public.probe_elsewhere VALUES (1)') AS one,
       pg_temp.run('INSERT INTO public.probe_elsewhere VALUES (0)') AS zero;

-- jam's own tables: a submit, its processing, and a bad row written straight in.
SELECT jam_submit_package('cc-a', 'a package')->>'status' AS submitted;
SELECT jam_process_next('cc-a')->>'status' AS processed;
SELECT pg_temp.run($$UPDATE jam.jam_work_packages SET weight_hint = 0 WHERE service_id = 'cc-a'$$) AS weight_zero,
       pg_temp.run($$UPDATE jam.jam_work_packages SET weight_hint = 3 WHERE service_id = 'cc-a'$$) AS weight_three;
SELECT (jam_verify_log('cc-a'))->>'ok' AS log_ok;

\c :regress_db
DROP DATABASE :own_db;
