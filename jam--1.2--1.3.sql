-- jam 1.2 to 1.3: events that name the package a report is of.
\echo Use "ALTER EXTENSION jam UPDATE TO '1.3'" to load this file. \quit

-- A report's log entry holds the report's hash, which the log commits to;
-- its event (NOTIFY jam_events, jam_log_events, GET /jam/events) now also
-- names the package, which is what a follower waits for.  The package id
-- is kept beside the entry, outside what the leaf commits to (entry,
-- leaf_hash and the roots are unchanged), written by the same INSERT that
-- appends the report (log.c): an index on jam_work_reports (report_hash)
-- would serve too, at 15 us more per processed package, and would lose
-- the name once retention removed the report.  Adding a nullable column
-- rewrites nothing.
ALTER TABLE jam_log_entries
    ADD COLUMN package_id bytea,
    ADD CONSTRAINT jam_log_entries_package_id_check
        CHECK (package_id IS NULL OR (octet_length(package_id) = 32 AND kind = 'report'));

-- The reports' entries already in the log name their packages too, where
-- the report is still stored.  The log is append-only for everyone; this
-- one-time fill of a column no leaf commits to is the update's own.
ALTER TABLE jam_log_entries DISABLE TRIGGER jam_log_entries_append_only;
UPDATE jam_log_entries e SET package_id = r.package_id
FROM jam_work_reports r
WHERE e.kind = 'report' AND r.service_id = e.service_id AND r.report_hash = e.hash;
ALTER TABLE jam_log_entries ENABLE TRIGGER jam_log_entries_append_only;
