-- jam 1.2 to 1.3: events that name the package a report is of.
\echo Use "ALTER EXTENSION jam UPDATE TO '1.3'" to load this file. \quit

-- A report's log entry holds the report's hash; its event (NOTIFY
-- jam_events, jam_log_events, GET /jam/events) now also names the package,
-- which is what a follower waits for.  The announcer and jam_log_events
-- find it through this index (events.c, announcer.c); before it, the only
-- way from a report hash to its package was reading the whole table.
-- Built over the reports already stored, so their events name their
-- packages too.
CREATE INDEX jam_work_reports_report_hash_idx ON jam_work_reports (report_hash);
