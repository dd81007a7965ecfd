-- package: services and work packages (src/package.c):
-- jam_register_service, jam_submit_package, jam_get_package.  Every refused
-- call is checked to have written nothing.  (Lists: list.sql; the package
-- id's encoding: encoding.sql.)
SET search_path = jam, public;
\set VERBOSITY default
\getenv abs_srcdir PG_ABS_SRCDIR
\set helpers :abs_srcdir '/sql/include/helpers.psql'
\i :helpers

-- jam_snapshot() digests everything jam stores; fails_cleanly(sql) runs sql
-- expecting an error and flags it if anything changed nevertheless.
CREATE OR REPLACE FUNCTION public.jam_snapshot() RETURNS text
LANGUAGE sql VOLATILE AS $$
    SELECT md5(concat_ws('|',
        (SELECT string_agg(concat_ws(',', hash, size, media_type, refcount, storage_class), ';' ORDER BY hash)
         FROM jam.jam_preimages),
        (SELECT string_agg(concat_ws(',', service_id, refine_function, pending_count), ';' ORDER BY service_id)
         FROM jam.jam_services),
        (SELECT string_agg(concat_ws(',', id, seq, service_id, status, weight_hint, failure_reason,
                                     preimage_hashes, processed_at), ';' ORDER BY id)
         FROM jam.jam_work_packages),
        (SELECT string_agg(concat_ws(',', package_id, seq, status, report_hash), ';' ORDER BY package_id)
         FROM jam.jam_work_reports),
        (SELECT string_agg(concat_ws(',', id, package_id, report_hash), ';' ORDER BY id)
         FROM jam.jam_attestations)))
$$;
CREATE OR REPLACE FUNCTION public.fails_cleanly(sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    before text := public.jam_snapshot();
    result text := public.expect_error(sql);
BEGIN
    IF public.jam_snapshot() IS DISTINCT FROM before THEN
        result := result || ' -- BUT SOMETHING WAS WRITTEN';
    END IF;
    RETURN result;
END
$$;

----------------------------------------------------------------------
-- jam_register_service
----------------------------------------------------------------------

-- A new service: no refine function (the built-in one), nothing pending.
SELECT jsonb_pretty(stable(jam_register_service('pkg-reg'))) AS registered;

-- Refine functions: (payload bytea, preimages bytea[]) RETURNS bytea, IMMUTABLE.
CREATE FUNCTION public.pkg_refine(payload bytea, preimages bytea[]) RETURNS bytea
LANGUAGE sql IMMUTABLE AS 'SELECT $1';
SELECT jsonb_pretty(stable(jam_register_service('pkg-reg', 'public.pkg_refine(bytea,bytea[])'))) AS with_refine;
SELECT service_id, refine_function, pending_count FROM jam_services WHERE service_id = 'pkg-reg';
-- Registering again with NULL clears it.
SELECT jam_register_service('pkg-reg')->'refine_function' AS cleared;
SELECT refine_function FROM jam_services WHERE service_id = 'pkg-reg';

-- Functions that cannot be refine functions.
CREATE FUNCTION public.pkg_volatile(bytea, bytea[]) RETURNS bytea LANGUAGE sql VOLATILE AS 'SELECT $1';
CREATE FUNCTION public.pkg_stable(bytea, bytea[]) RETURNS bytea LANGUAGE sql STABLE AS 'SELECT $1';
CREATE FUNCTION public.pkg_one_arg(bytea) RETURNS bytea LANGUAGE sql IMMUTABLE AS 'SELECT $1';
CREATE FUNCTION public.pkg_three_args(bytea, bytea[], integer) RETURNS bytea LANGUAGE sql IMMUTABLE AS 'SELECT $1';
CREATE FUNCTION public.pkg_returns_text(bytea, bytea[]) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT ''x''';
CREATE FUNCTION public.pkg_text_array(bytea, text[]) RETURNS bytea LANGUAGE sql IMMUTABLE AS 'SELECT $1';
CREATE FUNCTION public.pkg_swapped(bytea[], bytea) RETURNS bytea LANGUAGE sql IMMUTABLE AS 'SELECT $2';
CREATE FUNCTION public.pkg_setof(bytea, bytea[]) RETURNS SETOF bytea LANGUAGE sql IMMUTABLE AS 'SELECT $1';
CREATE FUNCTION public.pkg_agg_step(bytea, bytea, bytea[]) RETURNS bytea LANGUAGE sql IMMUTABLE AS 'SELECT $2';
CREATE AGGREGATE public.pkg_agg(bytea, bytea[]) (sfunc = public.pkg_agg_step, stype = bytea);
SELECT jam_register_service('pkg-reg', 'public.pkg_refine(bytea,bytea[])')->'refine_function' AS current;
SELECT fn, fails_cleanly(format('SELECT jam.jam_register_service(%L, %L)', 'pkg-reg', fn)) AS existing_service,
       fails_cleanly(format('SELECT jam.jam_register_service(%L, %L)', 'pkg-reg-new', fn)) AS new_service
FROM (VALUES
    ('public.pkg_volatile(bytea,bytea[])'),
    ('public.pkg_stable(bytea,bytea[])'),
    ('public.pkg_one_arg(bytea)'),
    ('public.pkg_three_args(bytea,bytea[],integer)'),
    ('public.pkg_returns_text(bytea,bytea[])'),
    ('public.pkg_text_array(bytea,text[])'),
    ('public.pkg_swapped(bytea[],bytea)'),
    ('public.pkg_setof(bytea,bytea[])'),
    ('public.pkg_agg(bytea,bytea[])'),
    ('0')
) AS t(fn);
-- In full.
SELECT jam_register_service('pkg-reg', 'public.pkg_volatile(bytea,bytea[])');
SELECT jam_register_service('pkg-reg', 'public.pkg_one_arg(bytea)');
SELECT jam_register_service('pkg-reg', 0::regprocedure);
-- The refused registrations changed nothing.
SELECT service_id, refine_function FROM jam_services WHERE service_id LIKE 'pkg-reg%' ORDER BY 1;

-- Service ids.
SELECT sid, fails_cleanly(format('SELECT jam.jam_register_service(%L)', sid)) AS result
FROM (VALUES (''), (repeat('r', 65)), ('_svc'), ('svc!'), ('svc 1'), ('svc' || chr(10))) AS t(sid);
SELECT jam_register_service('')->'service_id' AS empty;
SELECT jam_register_service(repeat('r', 65));
SELECT jam_register_service('pkg-reg:a.b_c-9')->'service_id' AS all_allowed_characters,
       jam_register_service(repeat('R', 64))->'service_id' AS sixty_four_characters;
SELECT jam_register_service(NULL);

----------------------------------------------------------------------
-- jam_submit_package
----------------------------------------------------------------------

-- fails_cleanly() notices a write: a call that succeeds is flagged.
SELECT fails_cleanly($$SELECT jam.jam_submit_package('pkg-detector', 'package:detector')$$) AS detector;

SELECT jam_put_preimage('package:a')->>'hash' AS a, jam_put_preimage('package:b')->>'hash' AS b \gset
SELECT jam_hash('package:never stored') AS missing \gset

-- A new package: "created": true, pending, with its id as jam_package_id
-- computes it; the service is created on the way.
SELECT count(*) AS service_rows_before FROM jam_services WHERE service_id = 'pkg-1';
SELECT jam_submit_package('pkg-1', 'package:first') AS first \gset
SELECT jsonb_pretty(stable(:'first'::jsonb)) AS first;
SELECT :'first'::jsonb->>'id' = jam_package_id('pkg-1', 'package:first') AS id_ok;
SELECT service_id, refine_function, pending_count FROM jam_services WHERE service_id = 'pkg-1';
SELECT service_id, status, contract_version, weight_hint, encode(payload, 'escape') AS payload,
       jam_hex_array(preimage_hashes) AS preimage_hashes, failure_reason, submitted_by = session_user AS by_me, processed_at
FROM jam_work_packages WHERE id = decode(:'first'::jsonb->>'id', 'hex');

-- The same package again: "created": false, the stored package unchanged,
-- nothing counted twice.
SELECT jam_snapshot() AS before \gset
SELECT jam_submit_package('pkg-1', 'package:first') - 'created' = :'first'::jsonb - 'created' AS same_document,
       jam_submit_package('pkg-1', 'package:first')->'created' AS created;
SELECT jam_snapshot() = :'before' AS nothing_changed;
SELECT pending_count FROM jam_services WHERE service_id = 'pkg-1';

-- Declared hashes: a matching one is accepted (also on a resubmit)...
SELECT jam_submit_package('pkg-1', 'package:second',
                          declared_hash => jam_package_id('pkg-1', 'package:second'))->'created' AS created;
SELECT jam_submit_package('pkg-1', 'package:second',
                          declared_hash => jam_package_id('pkg-1', 'package:second'))->'created' AS created_again;
-- ... a different one is refused with hash_mismatch, even for a package
-- already stored, and writes nothing.
SELECT jam_package_id('pkg-1', 'package:third') AS third_id, jam_package_id('pkg-1', 'package:other') AS other_id;
SELECT jam_submit_package('pkg-1', 'package:third', declared_hash => jam_package_id('pkg-1', 'package:other'));
SELECT call, fails_cleanly(call) AS result FROM (VALUES
    ($$SELECT jam.jam_submit_package('pkg-1', 'package:third', declared_hash => jam.jam_package_id('pkg-1', 'package:other'))$$),
    ($$SELECT jam.jam_submit_package('pkg-1', 'package:second', declared_hash => jam.jam_package_id('pkg-1', 'package:first'))$$),
    ($$SELECT jam.jam_submit_package('pkg-1', 'package:third', declared_hash => upper(jam.jam_package_id('pkg-1', 'package:third')))$$),
    ($$SELECT jam.jam_submit_package('pkg-1', 'package:third', declared_hash => '')$$)
) AS t(call);
SELECT count(*) AS third_stored FROM jam_work_packages WHERE id = decode(jam_package_id('pkg-1', 'package:third'), 'hex');

-- Preimage references: the refcount of each distinct preimage is raised
-- once; the package keeps the list as given.
SELECT encode(hash, 'hex') = :'a' AS is_a, refcount FROM jam_preimages WHERE hash IN (decode(:'a', 'hex'), decode(:'b', 'hex')) ORDER BY 1 DESC;
SELECT jam_submit_package('pkg-2', 'package:refs',
                          preimage_hashes => ARRAY[:'a', :'a', :'b', :'a'])->'preimage_hashes'
       = jsonb_build_array(:'a', :'a', :'b', :'a') AS list_as_given;
SELECT encode(hash, 'hex') = :'a' AS is_a, refcount FROM jam_preimages WHERE hash IN (decode(:'a', 'hex'), decode(:'b', 'hex')) ORDER BY 1 DESC;
-- Resubmitting does not raise them again.
SELECT jam_submit_package('pkg-2', 'package:refs',
                          preimage_hashes => ARRAY[:'a', :'a', :'b', :'a'])->'created' AS created;
SELECT encode(hash, 'hex') = :'a' AS is_a, refcount FROM jam_preimages WHERE hash IN (decode(:'a', 'hex'), decode(:'b', 'hex')) ORDER BY 1 DESC;
-- Another package referencing b.
SELECT jam_submit_package('pkg-2', 'package:refs b', preimage_hashes => ARRAY[:'b'])->'created' AS created;
SELECT encode(hash, 'hex') = :'a' AS is_a, refcount FROM jam_preimages WHERE hash IN (decode(:'a', 'hex'), decode(:'b', 'hex')) ORDER BY 1 DESC;
SELECT service_id, pending_count FROM jam_services WHERE service_id = 'pkg-2';

-- A reference to a preimage that is not stored: missing_preimage naming the
-- first one missing; nothing written (not the package, not the other
-- refcounts, not the pending count, not even a new service's row).
SELECT jam_submit_package('pkg-2', 'package:missing', preimage_hashes => ARRAY[:'a', :'missing', jam_hash('package:also missing')]);
SELECT :'missing' AS first_missing;
SELECT call, fails_cleanly(call) AS result FROM (VALUES
    ($$SELECT jam.jam_submit_package('pkg-2', 'package:missing', preimage_hashes => ARRAY[jam.jam_hash('package:a'), jam.jam_hash('package:never stored')])$$),
    ($$SELECT jam.jam_submit_package('pkg-new-missing', 'package:missing', preimage_hashes => ARRAY[jam.jam_hash('package:b'), jam.jam_hash('package:b'), jam.jam_hash('package:never stored')])$$)
) AS t(call);
SELECT encode(hash, 'hex') = :'a' AS is_a, refcount FROM jam_preimages WHERE hash IN (decode(:'a', 'hex'), decode(:'b', 'hex')) ORDER BY 1 DESC;
SELECT service_id, pending_count FROM jam_services WHERE service_id IN ('pkg-2', 'pkg-new-missing');
SELECT count(*) AS packages FROM jam_work_packages WHERE service_id IN ('pkg-2', 'pkg-new-missing');

-- The most preimages a package may reference: 1024.
SELECT count(jam_put_preimage(convert_to('package:ref:' || i, 'UTF8'))) AS stored
FROM generate_series(1, 1024) AS i;
CREATE TEMP TABLE refs AS
SELECT array_agg(jam_hash(convert_to('package:ref:' || i, 'UTF8')) ORDER BY i) AS hashes
FROM generate_series(1, 1025) AS i;
SELECT jam_submit_package('pkg-3', 'package:1024 refs', preimage_hashes => hashes[1:1024])->'created' AS created
FROM refs;
SELECT refcount, count(*) FROM jam_preimages
WHERE hash IN (SELECT unnest(jam_unhex_array(hashes)) FROM refs) GROUP BY refcount;
SELECT jam_put_preimage('package:ref:1025')->'created' AS created;
SELECT fails_cleanly(format('SELECT jam.jam_submit_package(%L, %L, preimage_hashes => %L)',
                            'pkg-3', 'package:1025 refs', hashes)) AS result
FROM refs;
SELECT jam_submit_package('pkg-3', 'package:1025 refs', preimage_hashes => hashes) FROM refs;

-- Every other refused submit writes nothing either.
SELECT call, fails_cleanly(call) AS result FROM (VALUES
    -- service ids
    ($$SELECT jam.jam_submit_package('', 'x')$$),
    ($$SELECT jam.jam_submit_package(repeat('p', 65), 'x')$$),
    ($$SELECT jam.jam_submit_package('pkg 1', 'x')$$),
    ($$SELECT jam.jam_submit_package(':pkg', 'x')$$),
    -- weights
    ($$SELECT jam.jam_submit_package('pkg-1', 'x', weight_hint => 0)$$),
    ($$SELECT jam.jam_submit_package('pkg-1', 'x', weight_hint => -1)$$),
    ($$SELECT jam.jam_submit_package('pkg-1', 'x', weight_hint => -2147483648)$$),
    -- contract versions
    ($$SELECT jam.jam_submit_package('pkg-1', 'x', contract_version => 2)$$),
    ($$SELECT jam.jam_submit_package('pkg-1', 'x', contract_version => 0)$$),
    -- the preimage list
    ($$SELECT jam.jam_submit_package('pkg-1', 'x', preimage_hashes => ARRAY[NULL]::text[])$$),
    ($$SELECT jam.jam_submit_package('pkg-1', 'x', preimage_hashes => ARRAY[jam.jam_hash('package:a'), NULL])$$),
    ($$SELECT jam.jam_submit_package('pkg-1', 'x', preimage_hashes => ARRAY[ARRAY[jam.jam_hash('package:a'), jam.jam_hash('package:b')]])$$),
    ($$SELECT jam.jam_submit_package('pkg-1', 'x', preimage_hashes => ARRAY[ARRAY[jam.jam_hash('package:a')], ARRAY[jam.jam_hash('package:b')]])$$),
    ($$SELECT jam.jam_submit_package('pkg-1', 'x', preimage_hashes => ARRAY[jam.jam_hash('package:a'), 'xyz'])$$),
    -- nulls
    ($$SELECT jam.jam_submit_package(NULL, 'x')$$),
    ($$SELECT jam.jam_submit_package('pkg-1', NULL)$$),
    ($$SELECT jam.jam_submit_package('pkg-1', 'x', contract_version => NULL)$$),
    ($$SELECT jam.jam_submit_package('pkg-1', 'x', weight_hint => NULL)$$),
    ($$SELECT jam.jam_submit_package('pkg-1', 'x', preimage_hashes => NULL)$$)
) AS t(call);
-- In full.
SELECT jam_submit_package('pkg-1', 'x', weight_hint => 0);
SELECT jam_submit_package('pkg-1', 'x', contract_version => 2);
SELECT jam_submit_package('pkg-1', 'x', preimage_hashes => ARRAY[:'a', NULL]);
SELECT jam_submit_package('pkg-1', 'x', preimage_hashes => ARRAY[ARRAY[:'a'], ARRAY[:'b']]);
-- A weight is part of the package: the same payload with another weight is
-- another package.
SELECT jam_submit_package('pkg-1', 'package:weighted', weight_hint => 1000)->'weight_hint' AS weight_hint,
       jam_submit_package('pkg-1', 'package:weighted', weight_hint => 2)->'created' AS other_weight_created;

-- The payload cap jam.max_payload_bytes.
SET jam.max_payload_bytes = 16;
SELECT jam_submit_package('pkg-1', 'package:16 bytes')->'payload_size' AS payload_size;
SELECT jam_submit_package('pkg-1', 'package:17 bytes!');
SELECT fails_cleanly($$SELECT jam.jam_submit_package('pkg-1', 'package:17 bytes!')$$) AS result;
RESET jam.max_payload_bytes;
SELECT jam_submit_package('pkg-1', 'package:17 bytes!')->'created' AS created_after_reset;

-- The pending cap jam.max_pending_packages: quota_exceeded once the
-- service has that many pending packages.
SET jam.max_pending_packages = 2;
SELECT jam_submit_package('pkg-quota', 'package:q1')->>'id' AS q1 \gset
SELECT jam_submit_package('pkg-quota', 'package:q2')->'created' AS created;
SELECT jam_submit_package('pkg-quota', 'package:q3');
SELECT fails_cleanly($$SELECT jam.jam_submit_package('pkg-quota', 'package:q3')$$) AS result;
SELECT pending_count FROM jam_services WHERE service_id = 'pkg-quota';
SELECT count(*) AS packages FROM jam_work_packages WHERE service_id = 'pkg-quota';
-- A resubmit of a stored package is not a new package: accepted at the cap.
SELECT jam_submit_package('pkg-quota', 'package:q2')->'created' AS resubmit_created;
-- The cap is per service.
SELECT jam_submit_package('pkg-quota-other', 'package:q3')->'created' AS other_service_created;
-- Processing one frees a place.
SELECT jam_process_next('pkg-quota')->>'package_id' = :'q1' AS processed_q1;
SELECT jam_submit_package('pkg-quota', 'package:q3')->'created' AS q3_created;
SELECT split_part(fails_cleanly($$SELECT jam.jam_submit_package('pkg-quota', 'package:q4')$$), ':', 1) AS q4;
-- 0 means no cap.
SET jam.max_pending_packages = 0;
SELECT jam_submit_package('pkg-quota', 'package:q4')->'created' AS q4_created;
RESET jam.max_pending_packages;
SELECT pending_count FROM jam_services WHERE service_id = 'pkg-quota';
SELECT status, count(*) FROM jam_work_packages WHERE service_id = 'pkg-quota' GROUP BY 1 ORDER BY 1;

-- Submitting to a registered service keeps its refine function and counts
-- its pending packages; registering again keeps the count.
SELECT jam_submit_package('pkg-reg', 'package:to registered')->'created' AS created;
SELECT jsonb_pretty(stable(jam_register_service('pkg-reg', 'public.pkg_refine(bytea,bytea[])'))) AS reregistered;

----------------------------------------------------------------------
-- jam_get_package
----------------------------------------------------------------------

-- The package with its payload in base64.
SELECT jsonb_pretty(stable(jam_get_package(:'first'::jsonb->>'id'))) AS package;
SELECT jam_get_package(:'first'::jsonb->>'id') - 'payload' = :'first'::jsonb - 'created' - 'receipt' AS summary_plus_payload;
SELECT encode(decode(jam_get_package(jam_package_id('pkg-2', 'package:refs', 1, 1, ARRAY[:'a', :'a', :'b', :'a']))->>'payload', 'base64'), 'escape') AS payload;
-- A long binary payload comes back whole, in one line of base64.
SELECT jam_submit_package('pkg-1', decode(repeat('00ff7f80', 1000), 'hex'))->>'id' AS long_id \gset
SELECT decode(p->>'payload', 'base64') = decode(repeat('00ff7f80', 1000), 'hex') AS round_trips,
       strpos(p->>'payload', E'\n') = 0 AS one_line, p->'payload_size' AS payload_size
FROM jam_get_package(:'long_id') AS p;

-- Not found, malformed, null.
SELECT jam_get_package(jam_hash('package:no such package'));
SELECT call, expect_error(call) AS result FROM (VALUES
    (format('SELECT jam.jam_get_package(%L)', jam_hash('package:no such package'))),
    ($$SELECT jam.jam_get_package('xyz')$$),
    (format('SELECT jam.jam_get_package(%L)', upper(:'first'::jsonb->>'id'))),
    ($$SELECT jam.jam_get_package(NULL)$$)
) AS t(call);

-- Where things stand: every package of this file, and its services.
SELECT service_id, status, count(*) AS packages, sum(cardinality(preimage_hashes)) AS refs
FROM jam_work_packages WHERE service_id LIKE 'pkg-%' GROUP BY 1, 2 ORDER BY 1, 2;
SELECT service_id, refine_function, pending_count FROM jam_services
WHERE service_id LIKE 'pkg-%' AND service_id NOT LIKE 'pkg-reg:%' ORDER BY 1;
