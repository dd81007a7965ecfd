-- jam 1.7 to 1.8: the rules of the rows every submit and every processed
-- package writes, checked by one call per table.
\echo Use "ALTER EXTENSION jam UPDATE TO '1.8'" to load this file. \quit

-- PostgreSQL reads every CHECK of a table back from its stored text and
-- plans it again at each statement that writes the table.  The column
-- checks of the four tables below, eighteen of them, were nearly a
-- quarter of a submit's instructions and a fifth of a processed package's:
-- a submit writes a package, a log entry and its service's head,
-- processing a report, a log entry, the package's status and the head.
-- Each table now has one check, a C function of the columns its rules
-- name (src/row_checks.c), which keeps the same rules: a third of the
-- text to read, and nothing to fold.  The rules, table by table, are in
-- each function's comment.  Adding a check reads the table once to verify
-- its rows; the update holds off writers until it commits.

CREATE FUNCTION jam_package_row_valid(id bytea, weight_hint integer, status text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'jam_package_row_valid'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION jam_package_row_valid(bytea, integer, text) IS
'jam_work_packages'' check: id is 32 bytes, weight_hint is positive, status is pending, applied or failed';

CREATE FUNCTION jam_log_entry_row_valid(seq bigint, kind text, status text, package_id bytea)
RETURNS boolean
AS 'MODULE_PATHNAME', 'jam_log_entry_row_valid'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION jam_log_entry_row_valid(bigint, text, text, bytea) IS
'jam_log_entries'' check: seq is not negative, kind is package or report, status is pending, applied or failed, and only a report''s entry has a package_id, of 32 bytes';

CREATE FUNCTION jam_service_row_valid(service_id text, log_root bytea, share integer,
                                      log_size bigint, pending_count bigint,
                                      applied_count bigint, failed_count bigint,
                                      applied_report_count bigint, failed_report_count bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'jam_service_row_valid'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION jam_service_row_valid(text, bytea, integer, bigint, bigint, bigint, bigint, bigint, bigint) IS
'jam_services'' check: service_id is a service id, log_root is 32 bytes, share is between 1 and 1000000, and no count is negative';

CREATE FUNCTION jam_report_row_valid(package_id bytea, report_hash bytea, output_hash bytea,
                                     refine_hash bytea, status text, output bytea,
                                     failure_reason text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'jam_report_row_valid'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION jam_report_row_valid(bytea, bytea, bytea, bytea, text, bytea, text) IS
'jam_work_reports'' check: the hashes are 32 bytes, status is applied or failed, an applied report has an output and its hash, a failed one a failure_reason, and neither has the other''s';

-- Like jam_is_service_id, they are the tables' and nobody's to call.
REVOKE ALL ON FUNCTION jam_package_row_valid(bytea, integer, text),
    jam_log_entry_row_valid(bigint, text, text, bytea),
    jam_service_row_valid(text, bytea, integer, bigint, bigint, bigint, bigint, bigint, bigint),
    jam_report_row_valid(bytea, bytea, bytea, bytea, text, bytea, text) FROM PUBLIC;

ALTER TABLE jam_work_packages
    DROP CONSTRAINT jam_work_packages_id_check,
    DROP CONSTRAINT jam_work_packages_weight_hint_check,
    DROP CONSTRAINT jam_work_packages_status_check,
    ADD CONSTRAINT jam_work_packages_row_check
        CHECK (jam_package_row_valid(id, weight_hint, status));

ALTER TABLE jam_log_entries
    DROP CONSTRAINT jam_log_entries_seq_check,
    DROP CONSTRAINT jam_log_entries_kind_check,
    DROP CONSTRAINT jam_log_entries_status_check,
    DROP CONSTRAINT jam_log_entries_package_id_check,
    ADD CONSTRAINT jam_log_entries_row_check
        CHECK (jam_log_entry_row_valid(seq, kind, status, package_id));

ALTER TABLE jam_services
    DROP CONSTRAINT jam_services_service_id_check,
    DROP CONSTRAINT jam_services_log_root_check,
    DROP CONSTRAINT jam_services_share_check,
    DROP CONSTRAINT jam_services_counts_check,
    ADD CONSTRAINT jam_services_row_check
        CHECK (jam_service_row_valid(service_id, log_root, share, log_size, pending_count,
                                     applied_count, failed_count, applied_report_count,
                                     failed_report_count));

ALTER TABLE jam_work_reports
    DROP CONSTRAINT jam_work_reports_package_id_check,
    DROP CONSTRAINT jam_work_reports_report_hash_check,
    DROP CONSTRAINT jam_work_reports_output_hash_check,
    DROP CONSTRAINT jam_work_reports_refine_hash_check,
    DROP CONSTRAINT jam_work_reports_status_check,
    DROP CONSTRAINT jam_work_reports_check,
    DROP CONSTRAINT jam_work_reports_check1,
    ADD CONSTRAINT jam_work_reports_row_check
        CHECK (jam_report_row_valid(package_id, report_hash, output_hash, refine_hash,
                                    status, output, failure_reason));
