-- fair: weighted fair scheduling across services (src/fair.c).  Which
-- package jam_process_next() and jam_process_packages(NULL, n) take when
-- no service is named: services with a backlog take turns by cost
-- (weight_hint) over share; a service that floods cannot hold back one
-- that arrives later; jam.scheduling = 'fifo' takes the oldest instead.
-- Asserted by counts and by the order packages came out, never by time.
--
-- A database of its own: no other test's pending packages take turns here,
-- and the scheduler's state (per database) starts empty.
SELECT current_database() AS home \gset
CREATE DATABASE jam_fair;
\c jam_fair
CREATE EXTENSION jam;
SET search_path = jam, public;
\set VERBOSITY terse

-- n packages of svc, one batch; weight as given.
CREATE FUNCTION pg_temp.fill(svc text, n integer, weight integer DEFAULT 1) RETURNS integer
LANGUAGE sql AS $$
    SELECT jsonb_array_length(jam.jam_submit_packages(svc, ARRAY(
        SELECT convert_to(svc || ':' || g || ':' || random(), 'UTF8') FROM generate_series(1, n) g),
        1, weight)->'packages')
$$;
-- The services of the next n packages processed, in order.
CREATE TEMP TABLE taken (n serial, svc text);
CREATE FUNCTION pg_temp.take(n integer) RETURNS void LANGUAGE sql AS $$
    INSERT INTO taken (svc) SELECT jam.jam_process_next()->>'service_id' FROM generate_series(1, n)
$$;

-- 1. A flood does not hold back a later service.  'flood' queues 5,000
-- and is being worked on when 'late' submits 50: every one of late's
-- packages comes out before flood's 200th package after late arrived, in
-- fact alternating with flood's.
SELECT pg_temp.fill('flood', 5000) AS flood_queued;
SELECT pg_temp.take(30);
SELECT pg_temp.fill('late', 50) AS late_queued;
TRUNCATE taken RESTART IDENTITY;
SELECT pg_temp.take(200);
SELECT count(*) FILTER (WHERE svc = 'late') AS late_processed,
       max(n) FILTER (WHERE svc = 'late') AS late_done_at,
       count(*) FILTER (WHERE svc = 'flood' AND n < (SELECT max(n) FROM taken WHERE svc = 'late'))
           AS flood_before_late_done
FROM taken;
SELECT string_agg(left(svc, 1), '' ORDER BY n) AS first_twenty FROM taken WHERE n <= 20;
-- Drain the rest of flood's backlog out of the way (one service, FIFO).
SELECT (jam.jam_process_packages('flood', 10000)->>'processed')::int AS flood_rest;

-- 2. Shares 3:1 over a busy interval: 'three' gets three packages for
-- every one of 'one' (equal weights), within one package.
SELECT jam.jam_register_service('three', share => 3)->>'share' AS three_share;
SELECT jam.jam_register_service('one')->>'share' AS one_share;
SELECT pg_temp.fill('three', 400), pg_temp.fill('one', 400);
TRUNCATE taken RESTART IDENTITY;
SELECT pg_temp.take(200);
SELECT svc, count(*) FROM taken GROUP BY svc ORDER BY svc;
SELECT string_agg(left(svc, 2), ' ' ORDER BY n) AS first_eight FROM taken WHERE n <= 8;
-- Re-registering without a share keeps it; a share out of range is refused.
SELECT jam.jam_register_service('three')->>'share' AS still_three;
SELECT jam.jam_register_service('three', share => 0);
SELECT jam.jam_register_service('three', share => -2);
SELECT jam.jam_register_service('three', share => 1000001);
SELECT share FROM jam.jam_services WHERE service_id = 'three';
SELECT (jam.jam_process_packages('three', 10000)->>'processed')::int AS three_rest,
       (jam.jam_process_packages('one', 10000)->>'processed')::int AS one_rest;

-- 3. Cost is weight_hint: a package of weight 4 costs its service what four
-- of weight 1 cost the other.
SELECT pg_temp.fill('heavy', 100, 4), pg_temp.fill('light', 100, 1);
TRUNCATE taken RESTART IDENTITY;
SELECT pg_temp.take(50);
SELECT svc, count(*) FROM taken GROUP BY svc ORDER BY svc;
SELECT (jam.jam_process_packages('heavy', 10000)->>'processed')::int AS heavy_rest,
       (jam.jam_process_packages('light', 10000)->>'processed')::int AS light_rest;

-- 4. No credit banked while idle: 'idle' was served long ago; when it
-- comes back beside a busy 'busy', it takes turns with it rather than
-- running ahead on its old, low finish tag.
SELECT pg_temp.fill('idle', 3);
SELECT pg_temp.take(3);
SELECT pg_temp.fill('busy', 300);
SELECT pg_temp.take(100);
SELECT pg_temp.fill('idle', 20);
TRUNCATE taken RESTART IDENTITY;
SELECT pg_temp.take(20);
SELECT string_agg(left(svc, 1), '' ORDER BY n) AS taking_turns FROM taken;
SELECT (jam.jam_process_packages('busy', 10000)->>'processed')::int AS busy_rest,
       (jam.jam_process_packages('idle', 10000)->>'processed')::int AS idle_rest;

-- 5. jam_process_packages(NULL, n) follows the same order.
SELECT pg_temp.fill('pa', 50), pg_temp.fill('pb', 50);
SELECT string_agg(left(r->>'service_id', 2), ' ' ORDER BY ord) AS batch_order
FROM jsonb_array_elements(jam.jam_process_packages(NULL, 6)->'reports') WITH ORDINALITY AS x(r, ord);
SELECT (jam.jam_process_packages(NULL, 10000)->>'processed')::int AS batch_rest;

-- 6. jam.scheduling = 'fifo': the oldest pending package of any service.
SELECT pg_temp.fill('older', 10), pg_temp.fill('newer', 10);
SET jam.scheduling = 'fifo';
TRUNCATE taken RESTART IDENTITY;
SELECT pg_temp.take(12);
SELECT string_agg(left(svc, 1), '' ORDER BY n) AS oldest_first FROM taken;
RESET jam.scheduling;
SELECT (jam.jam_process_packages(NULL, 10000)->>'processed')::int AS fifo_rest;
-- Only the two policies.
SET jam.scheduling = 'random';

-- 7. A claim does not read every service: with 1,000 idle services beside
-- a backlogged one, 50 claims fetch jam_services' pages about once (the
-- backend keeps the list of backlogged services until it may have grown),
-- not 50 times (a scan of every service per claim).
SELECT count(jam.jam_register_service('idle-' || g)) AS idle_services FROM generate_series(1, 1000) g;
SELECT pg_temp.fill('scan', 60);
BEGIN;
-- (The counter also holds what earlier transactions fetched and the server
-- has not been told yet: only a difference within one transaction counts.)
SELECT pg_stat_get_xact_blocks_fetched('jam.jam_services'::regclass) AS fetched_before \gset
SELECT count(jam.jam_process_next(NULL)) AS claimed FROM generate_series(1, 50);
SELECT pg_relation_size('jam.jam_services') / 8192 AS service_pages \gset
-- Each claim reads its service's refine function (one page); the list of
-- backlogged services is read once: 64 pages here, against about 660 when
-- every claim scanned every service.
SELECT pg_stat_get_xact_blocks_fetched('jam.jam_services'::regclass) - :fetched_before
         < 50 + 3 * :service_pages AS not_a_scan_per_claim,
       :service_pages >= 10 AS services_span_pages;
COMMIT;
-- A service that gets its first package is seen by the next claim.
SELECT pg_temp.fill('idle-7', 1);
SELECT jam.jam_process_next(NULL)->>'service_id' AS newly_backlogged_first;
SELECT (jam.jam_process_packages(NULL, 10000)->>'processed')::int AS scan_rest;

-- 8. A token limited to some services (here a tenant's) is never sent
-- through the queues of services it may not see, whose length it does not
-- control: with 'theirs' holding 2,000 pending packages, a tenant whose
-- services have none finds nothing without reading them, in fair and in
-- fifo order (a walk of every queue fetched a block per package).
SELECT jam.jam_register_service('mine-1', NULL, 'mine') IS NOT NULL AS mine_1,
       jam.jam_register_service('mine-2', NULL, 'mine') IS NOT NULL AS mine_2,
       jam.jam_register_service('theirs', NULL, 'theirs') IS NOT NULL AS theirs;
SELECT pg_temp.fill('theirs', 2000);
SELECT jam.jam_create_token('mine', '{jam:read,jam:process}', NULL, 'mine') AS mine_token \gset
BEGIN;
SELECT pg_stat_get_xact_blocks_fetched('jam.jam_work_packages'::regclass) AS fetched_before \gset
SELECT jam.jam_process_next() IS NULL AS nothing_for_mine FROM jam.jam_authenticate(:'mine_token');
SET LOCAL jam.scheduling = 'fifo';
SELECT jam.jam_process_next() IS NULL AS nothing_for_mine_fifo FROM jam.jam_authenticate(:'mine_token');
SELECT pg_stat_get_xact_blocks_fetched('jam.jam_work_packages'::regclass) - :fetched_before
         < 10 AS not_through_their_queue;
COMMIT;
-- In fifo order its packages come oldest first across its services
-- ('mine-2' submitted first), and never one of 'theirs', older still.
SELECT pg_temp.fill('mine-2', 2) AS mine_2_filled, pg_temp.fill('mine-1', 2) AS mine_1_filled;
SET jam.scheduling = 'fifo';
SELECT jam.jam_process_next()->>'service_id' AS fifo_1 FROM jam.jam_authenticate(:'mine_token');
SELECT jam.jam_process_next()->>'service_id' AS fifo_2 FROM jam.jam_authenticate(:'mine_token');
SELECT jam.jam_process_next()->>'service_id' AS fifo_3 FROM jam.jam_authenticate(:'mine_token');
SELECT jam.jam_process_next()->>'service_id' AS fifo_4 FROM jam.jam_authenticate(:'mine_token');
SELECT jam.jam_process_next() IS NULL AS fifo_then_nothing FROM jam.jam_authenticate(:'mine_token');
RESET jam.scheduling;
-- The tenant's services are found through jam_services_tenant_idx (1.4),
-- not by reading every service: with the 1,000 services of section 7, a
-- list reads a few rows of jam_services, not its pages.
BEGIN;
SELECT pg_stat_get_xact_blocks_fetched('jam.jam_services'::regclass) AS fetched_before \gset
SELECT jam.jam_list_packages() ->> 'total' AS mine_listed FROM jam.jam_authenticate(:'mine_token');
SELECT pg_stat_get_xact_blocks_fetched('jam.jam_services'::regclass) - :fetched_before
         < :service_pages / 2 AS tenant_services_not_a_scan;
COMMIT;
SELECT (jam.jam_process_packages(NULL, 10000)->>'processed')::int AS theirs_drained;

-- Nothing left pending, nothing processed twice.
SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
       count(*) AS packages,
       (SELECT count(*) FROM jam.jam_work_reports) AS reports
FROM jam.jam_work_packages;

\c :home
DROP DATABASE jam_fair;
