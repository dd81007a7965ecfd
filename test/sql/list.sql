-- list: the paginated lists (src/list.c) behind jam_list_packages and
-- jam_list_reports: the envelope {items, limit, offset, total,
-- next_offset}, filters, paging to the end, and the legacy plain array.
SET search_path = jam, public;
\set VERBOSITY default
\getenv abs_srcdir PG_ABS_SRCDIR
\set helpers :abs_srcdir '/sql/include/helpers.psql'
\i :helpers

-- Packages of two services, a1..a5 and b1..b2, submitted in this order:
-- a1 b1 a2 a3 b2 a4 a5.  lp names them.
CREATE TEMP TABLE lp (label text PRIMARY KEY, id text UNIQUE);
CREATE FUNCTION pg_temp.submit(label text) RETURNS text LANGUAGE sql AS $$
    INSERT INTO lp VALUES (label, jam.jam_submit_package(
        CASE WHEN label LIKE 'a%' THEN 'list-a' ELSE 'list-b' END,
        convert_to('list:' || label, 'UTF8'))->>'id')
    RETURNING label || CASE WHEN id = jam.jam_package_id(
        CASE WHEN label LIKE 'a%' THEN 'list-a' ELSE 'list-b' END,
        convert_to('list:' || label, 'UTF8')) THEN ' submitted' ELSE ' has an unexpected id' END
$$;
-- labels(items): the names of a list's items, in the list's order.
CREATE FUNCTION pg_temp.labels(items jsonb) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(coalesce(lp.label, '?'), ' ' ORDER BY o), '')
    FROM jsonb_array_elements(items) WITH ORDINALITY AS e(item, o)
    LEFT JOIN lp ON lp.id = coalesce(item->>'id', item->>'package_id')
$$;
SELECT pg_temp.submit(l) AS submitted FROM unnest(ARRAY['a1', 'b1', 'a2', 'a3', 'b2', 'a4', 'a5']) AS l;

----------------------------------------------------------------------
-- jam_list_packages
----------------------------------------------------------------------

-- The envelope and an item.
SELECT jsonb_object_keys(jam_list_packages(service_id => 'list-a')) AS envelope_key ORDER BY 1;
SELECT jsonb_object_keys(jam_list_packages(service_id => 'list-a')->'items'->0) AS item_key ORDER BY 1;
SELECT (jam_list_packages(service_id => 'list-a')->'items'->0)
       = (SELECT jam_get_package(id) - 'payload' FROM lp WHERE label = 'a1') AS item_is_the_summary;
SELECT d->'items'->0->'payload_size' AS payload_size, d->'items'->0->'status' AS status,
       d->'items'->0->'preimage_hashes' AS preimage_hashes
FROM jam_list_packages(service_id => 'list-a') AS d;

-- Defaults: limit 50, offset 0; one service's packages in arrival order.
SELECT pg_temp.labels(d->'items') AS items, d->'limit' AS "limit", d->'offset' AS "offset",
       d->'total' AS total, d->'next_offset' AS next_offset
FROM jam_list_packages(service_id => 'list-a') AS d;
SELECT pg_temp.labels(d->'items') AS items, d->'total' AS total, d->'next_offset' AS next_offset
FROM jam_list_packages(service_id => 'list-b') AS d;

-- Pages of 2: next_offset is the next page's offset, null on the last page
-- and past the end.
SELECT o AS "offset", pg_temp.labels(d->'items') AS items, d->'limit' AS "limit",
       d->'offset' AS offset_echoed, d->'total' AS total, d->'next_offset' AS next_offset
FROM generate_series(0, 6) AS o,
LATERAL jam_list_packages(service_id => 'list-a', "limit" => 2, "offset" => o) AS d
ORDER BY o;
SELECT pg_temp.labels(d->'items') AS items, d->'total' AS total, d->'next_offset' AS next_offset
FROM jam_list_packages(service_id => 'list-a', "limit" => 1000, "offset" => 2147483647) AS d;
SELECT pg_temp.labels(d->'items') AS items, d->'next_offset' AS next_offset
FROM jam_list_packages(service_id => 'list-a', "limit" => 1) AS d;

-- Following next_offset to the end visits each package once.
WITH RECURSIVE pages(n, doc) AS (
    SELECT 1, jam_list_packages(service_id => 'list-a', "limit" => 2)
    UNION ALL
    SELECT n + 1, jam_list_packages(service_id => 'list-a', "limit" => 2,
                                    "offset" => (doc->>'next_offset')::integer)
    FROM pages WHERE doc->'next_offset' <> 'null'
)
SELECT n AS page, pg_temp.labels(doc->'items') AS items, doc->'next_offset' AS next_offset
FROM pages ORDER BY n;

-- Packages that arrive while a client pages forward come at the end: the
-- client sees each package once.
SELECT pg_temp.labels(jam_list_packages(service_id => 'list-a', "limit" => 3)->'items') AS page_1;
SELECT pg_temp.submit('a6');
SELECT pg_temp.labels(d->'items') AS page_2, d->'total' AS total, d->'next_offset' AS next_offset
FROM jam_list_packages(service_id => 'list-a', "limit" => 3, "offset" => 3) AS d;

-- Status filters: process a1 and a2, fail b1.
CREATE FUNCTION public.list_failing_refine(payload bytea, preimages bytea[]) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN RAISE EXCEPTION 'list: refusing'; END $$;
SELECT jam_register_service('list-b', 'public.list_failing_refine(bytea,bytea[])')->'service_id' AS registered;
SELECT pg_temp.labels(jsonb_build_array(jam_process_next('list-a'), jam_process_next('list-a'),
                                        jam_process_next('list-b'))) AS processed;
SELECT s AS status, pg_temp.labels(d->'items') AS items, d->'total' AS total
FROM unnest(ARRAY['pending', 'applied', 'failed']) AS s,
LATERAL jam_list_packages(status => s, service_id => 'list-a') AS d;
SELECT pg_temp.labels(d->'items') AS items, d->'items'->0->'failure_reason' AS failure_reason
FROM jam_list_packages(status => 'failed', service_id => 'list-b') AS d;
SELECT pg_temp.labels(d->'items') AS items, d->'total' AS total, d->'next_offset' AS next_offset
FROM jam_list_packages(status => 'pending', service_id => 'list-a', "limit" => 2, "offset" => 1) AS d;

-- A status filter alone, and no filter: totals are those of the whole table
-- (other tests' packages included), items in arrival order.
SELECT s AS status,
       (d->>'total')::bigint = (SELECT count(*) FROM jam_work_packages WHERE status = s) AS total_ok,
       jsonb_array_length(d->'items') = least((d->>'total')::integer, 50) AS page_full,
       (SELECT array_agg(i->>'id' ORDER BY o) FROM jsonb_array_elements(d->'items') WITH ORDINALITY AS e(i, o))
       = (SELECT array_agg(encode(id, 'hex') ORDER BY seq) FROM (SELECT id, seq FROM jam_work_packages
                                                  WHERE status = s ORDER BY seq LIMIT 50) AS p) AS in_order
FROM unnest(ARRAY['pending', 'applied', 'failed']) AS s,
LATERAL jam_list_packages(status => s) AS d;
SELECT (d->>'total')::bigint = (SELECT count(*) FROM jam_work_packages) AS total_ok,
       d->'limit' AS "limit", d->'offset' AS "offset",
       d->'next_offset' = CASE WHEN (d->>'total')::integer > 50 THEN '50' ELSE 'null' END::jsonb AS next_offset_ok,
       (SELECT array_agg(i->>'id' ORDER BY o) FROM jsonb_array_elements(d->'items') WITH ORDINALITY AS e(i, o))
       = (SELECT array_agg(encode(id, 'hex') ORDER BY seq) FROM (SELECT id, seq FROM jam_work_packages
                                                  ORDER BY seq LIMIT 50) AS p) AS in_order
FROM jam_list_packages() AS d;

-- A service without packages: an empty page.
SELECT d - 'limit' - 'offset' AS empty FROM jam_list_packages(service_id => 'list-none') AS d;
SELECT d - 'limit' - 'offset' AS empty FROM jam_list_packages(status => 'failed', service_id => 'list-a') AS d;

-- Bad filters and pagination.
SELECT call, expect_error(call) AS result FROM (VALUES
    ($$SELECT jam.jam_list_packages(status => 'PENDING')$$),
    ($$SELECT jam.jam_list_packages(status => 'done')$$),
    ($$SELECT jam.jam_list_packages(status => '')$$),
    ($$SELECT jam.jam_list_packages(status => 'pending ')$$),
    ($$SELECT jam.jam_list_packages(service_id => '')$$),
    ($$SELECT jam.jam_list_packages(service_id => 'list a')$$),
    ($$SELECT jam.jam_list_packages("limit" => 0)$$),
    ($$SELECT jam.jam_list_packages("limit" => 1001)$$),
    ($$SELECT jam.jam_list_packages("limit" => -1)$$),
    ($$SELECT jam.jam_list_packages("offset" => -1)$$),
    ($$SELECT jam.jam_list_packages("limit" => NULL)$$),
    ($$SELECT jam.jam_list_packages("offset" => NULL)$$),
    ($$SELECT jam.jam_list_packages("limit" => 1000)->'limit'$$),
    ($$SELECT jam.jam_list_packages("limit" => 1)->'limit'$$)
) AS t(call);
-- In full.
SELECT jam_list_packages(status => 'done');
SELECT jam_list_packages("limit" => 0);
SELECT jam_list_packages("limit" => 1001);
SELECT jam_list_packages("offset" => -1);

----------------------------------------------------------------------
-- jam_list_reports
----------------------------------------------------------------------

-- Reports in the order they were made: a1, a2 (applied), b1 (failed).
SELECT jsonb_object_keys(jam_list_reports(service_id => 'list-a')) AS envelope_key ORDER BY 1;
SELECT jsonb_object_keys(jam_list_reports(service_id => 'list-a')->'items'->0) AS item_key ORDER BY 1;
SELECT jam_list_reports(service_id => 'list-a')->'items'->0 = (SELECT jam_get_report(id) - 'output'
                                                               FROM lp WHERE label = 'a1') AS item_is_the_summary;
SELECT pg_temp.labels(d->'items') AS items, d->'limit' AS "limit", d->'offset' AS "offset",
       d->'total' AS total, d->'next_offset' AS next_offset
FROM jam_list_reports(service_id => 'list-a') AS d;
SELECT s AS service_id, t AS status, pg_temp.labels(d->'items') AS items, d->'total' AS total
FROM unnest(ARRAY['list-a', 'list-b']) AS s, unnest(ARRAY['applied', 'failed']) AS t,
LATERAL jam_list_reports(service_id => s, status => t) AS d
ORDER BY 1, 2;
SELECT o AS "offset", pg_temp.labels(d->'items') AS items, d->'next_offset' AS next_offset
FROM generate_series(0, 2) AS o, LATERAL jam_list_reports(service_id => 'list-a', "limit" => 1, "offset" => o) AS d
ORDER BY o;
SELECT s AS status, (d->>'total')::bigint = (SELECT count(*) FROM jam_work_reports WHERE status = s) AS total_ok
FROM unnest(ARRAY['applied', 'failed']) AS s, LATERAL jam_list_reports(status => s) AS d;
SELECT (d->>'total')::bigint = (SELECT count(*) FROM jam_work_reports) AS total_ok,
       (SELECT array_agg(i->>'package_id' ORDER BY o) FROM jsonb_array_elements(d->'items') WITH ORDINALITY AS e(i, o))
       = (SELECT array_agg(encode(package_id, 'hex') ORDER BY seq) FROM (SELECT package_id, seq FROM jam_work_reports
                                                          ORDER BY seq LIMIT 50) AS p) AS in_order
FROM jam_list_reports() AS d;
SELECT d - 'limit' - 'offset' AS empty FROM jam_list_reports(service_id => 'list-none') AS d;

-- Bad filters and pagination; reports are never pending.
SELECT call, expect_error(call) AS result FROM (VALUES
    ($$SELECT jam.jam_list_reports(status => 'pending')$$),
    ($$SELECT jam.jam_list_reports(status => 'Applied')$$),
    ($$SELECT jam.jam_list_reports(service_id => '-list')$$),
    ($$SELECT jam.jam_list_reports("limit" => 0)$$),
    ($$SELECT jam.jam_list_reports("limit" => 1001)$$),
    ($$SELECT jam.jam_list_reports("offset" => -5)$$),
    ($$SELECT jam.jam_list_reports("limit" => NULL)$$),
    ($$SELECT jam.jam_list_reports("offset" => NULL)$$)
) AS t(call);
SELECT jam_list_reports(status => 'pending');

----------------------------------------------------------------------
-- jam.legacy_list_response = on: the plain array of items
----------------------------------------------------------------------

SELECT jam_list_packages(service_id => 'list-a', "limit" => 2, "offset" => 1)->'items' AS env_packages,
       jam_list_reports(service_id => 'list-a', "limit" => 1, "offset" => 1)->'items' AS env_reports \gset
SET jam.legacy_list_response = on;
SELECT jsonb_typeof(jam_list_packages(service_id => 'list-a')) AS packages_shape,
       jsonb_typeof(jam_list_reports(service_id => 'list-a')) AS reports_shape;
SELECT pg_temp.labels(jam_list_packages(service_id => 'list-a')) AS packages,
       pg_temp.labels(jam_list_packages(status => 'pending', service_id => 'list-a', "limit" => 2)) AS pending_page,
       pg_temp.labels(jam_list_reports(service_id => 'list-a')) AS reports;
SELECT jam_list_packages(service_id => 'list-a', "limit" => 2, "offset" => 1) = :'env_packages'::jsonb AS same_packages,
       jam_list_reports(service_id => 'list-a', "limit" => 1, "offset" => 1) = :'env_reports'::jsonb AS same_reports;
SELECT jam_list_packages(service_id => 'list-none') AS empty_packages,
       jam_list_reports(service_id => 'list-none') AS empty_reports;
-- The checks still apply.
SELECT expect_error($$SELECT jam.jam_list_packages("limit" => 0)$$) AS packages,
       expect_error($$SELECT jam.jam_list_reports(status => 'pending')$$) AS reports;
RESET jam.legacy_list_response;
SELECT jsonb_typeof(jam_list_packages(service_id => 'list-a')) AS packages_shape_after_reset;

-- Lists only read.
SELECT proname, provolatile FROM pg_proc
WHERE pronamespace = 'jam'::regnamespace AND proname LIKE 'jam_list_%' ORDER BY 1;
