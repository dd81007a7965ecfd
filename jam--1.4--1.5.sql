-- jam 1.4 to 1.5: a list's total read from counts, not by counting history.
\echo Use "ALTER EXTENSION jam UPDATE TO '1.5'" to load this file. \quit

-- jam_list_packages and jam_list_reports answer with the total of what
-- matches their filters.  That was a count(*) of the matching rows: the
-- first page of a list with no filter took 0.7 s with 780,000 packages,
-- growing with every package ever kept.  Each service row already counts
-- its pending packages; from 1.5 it also counts its applied and failed
-- packages and its applied and failed reports, changed in the transactions
-- that change those rows (processing, retention), so a total costs one
-- read of the matching services' rows, whatever the history.  jam_fsck
-- recounts them.  These columns are not indexed: the service row's updates
-- stay HOT.
--
-- Counting first: no writer may change the counted tables until the
-- update commits (readers pass).
LOCK TABLE jam_services, jam_work_packages, jam_work_reports IN SHARE ROW EXCLUSIVE MODE;

ALTER TABLE jam_services
    ADD COLUMN applied_count bigint NOT NULL DEFAULT 0,
    ADD COLUMN failed_count bigint NOT NULL DEFAULT 0,
    ADD COLUMN applied_report_count bigint NOT NULL DEFAULT 0,
    ADD COLUMN failed_report_count bigint NOT NULL DEFAULT 0,
    -- One constraint for every count, the log's size and pending_count
    -- among them, in place of one each: PostgreSQL compiles every CHECK of
    -- a table again at each statement that writes it, and this row is
    -- written by every submit and every processed package.  With four
    -- checks where 1.4 had five, the processor workers drain as fast as on
    -- 1.4 (with the four counts checked one by one, 4% slower).
    DROP CONSTRAINT jam_services_log_size_check,
    DROP CONSTRAINT jam_services_pending_count_check,
    ADD CONSTRAINT jam_services_counts_check
        CHECK (least(log_size, pending_count, applied_count, failed_count,
                     applied_report_count, failed_report_count) >= 0);

UPDATE jam_services s
SET applied_count = c.applied, failed_count = c.failed
FROM (SELECT service_id,
             count(*) FILTER (WHERE status = 'applied') AS applied,
             count(*) FILTER (WHERE status = 'failed') AS failed
      FROM jam_work_packages GROUP BY service_id) c
WHERE c.service_id = s.service_id AND (c.applied > 0 OR c.failed > 0);

UPDATE jam_services s
SET applied_report_count = c.applied, failed_report_count = c.failed
FROM (SELECT service_id,
             count(*) FILTER (WHERE status = 'applied') AS applied,
             count(*) FILTER (WHERE status = 'failed') AS failed
      FROM jam_work_reports GROUP BY service_id) c
WHERE c.service_id = s.service_id;
