-- claim_hints: where claims start across transactions (src/claim_hint.c).
-- A claim that met none of its own processed packages, because this very
-- transaction had moved them out of 'pending', must not let the hint pass
-- them: a rolled-back savepoint makes them pending again.  Its own database,
-- so that nothing else is pending below the package.
\getenv abs_srcdir PG_ABS_SRCDIR
\set own_db regress_jam_claim_hints
\set own_db_include :abs_srcdir '/sql/include/own_database.psql'
\i :own_db_include

-- fifo: every claim without a service reads the status index's one
-- 'pending' range, whichever service processed the package before.
SET jam.scheduling = 'fifo';
SELECT jam_submit_package('hint-a', 'p')->>'id' AS p \gset
BEGIN;
SAVEPOINT before_processing;
SELECT jam_process_next('hint-a')->>'package_id' = :'p' AS processed_through_its_service;
SELECT jam_process_next() IS NULL AS nothing_else_pending;
ROLLBACK TO SAVEPOINT before_processing;
COMMIT;
SELECT jam_process_next()->>'package_id' = :'p' AS claimed_after_the_rollback;
SELECT jam_process_next() IS NULL AS then_nothing;
SELECT status, (SELECT count(*) FROM jam_work_reports) AS reports
FROM jam_work_packages WHERE id = decode(:'p', 'hex');

\c :regress_db
DROP DATABASE :own_db;
