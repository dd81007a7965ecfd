-- config: the jam.* parameters (src/config.c), who may set them, and
-- jam.enabled = off refusing every API function with the code disabled.
SET search_path = jam, public;
\set VERBOSITY default
\getenv abs_srcdir PG_ABS_SRCDIR
\set helpers :abs_srcdir '/sql/include/helpers.psql'
\i :helpers

-- The parameters this suite covers, their built-in defaults, and that only
-- a superuser may set them (jam.node_name only from the configuration file).
\set params '{jam.enabled,jam.max_preimage_bytes,jam.max_payload_bytes,jam.allowed_media_types,jam.max_pending_packages,jam.legacy_list_response,jam.node_name,jam.auth_required,jam.rate_limit_per_minute,jam.rate_limit_burst,jam.rate_limit_buckets}'
SELECT name, boot_val, unit, context, vartype, min_val, max_val
FROM pg_settings WHERE name = ANY(:'params'::text[]) ORDER BY name;

-- The defaults are in effect.
SELECT name, setting = boot_val AS is_default
FROM pg_settings WHERE name = ANY(:'params'::text[]) ORDER BY name;

-- Sizes take units.
SET jam.max_preimage_bytes = '2MB';
SHOW jam.max_preimage_bytes;
SELECT current_setting('jam.max_preimage_bytes') AS max_preimage_bytes,
       (SELECT setting FROM pg_settings WHERE name = 'jam.max_preimage_bytes') AS in_bytes;
RESET jam.max_preimage_bytes;
SET jam.max_payload_bytes = 1000;
SELECT setting, unit FROM pg_settings WHERE name = 'jam.max_payload_bytes';
RESET jam.max_payload_bytes;

-- The allow-list is a list: several values are joined with ", ".
SET jam.allowed_media_types = 'text/plain', 'image/*';
SHOW jam.allowed_media_types;
RESET jam.allowed_media_types;

-- Out-of-range and malformed values are refused.
SET jam.max_preimage_bytes = -1;
SET jam.max_payload_bytes = '1GB';
SET jam.max_pending_packages = -1;
SET jam.enabled = maybe;
-- The prefix jam is reserved: misspelt parameters are caught.
SET jam.enable = off;
-- jam.node_name is read from the configuration file only.
SET jam.node_name = 'elsewhere';
SHOW jam.node_name;

-- A role that is not a superuser can set none of them.
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_jam_config_user;
RESET client_min_messages;
CREATE ROLE regress_jam_config_user;
SET ROLE regress_jam_config_user;
SELECT name, expect_error(format('SET %s = %L', name, boot_val)) AS result
FROM pg_settings WHERE name = ANY(:'params'::text[]) ORDER BY name;
-- Nor any other jam.* parameter.
SELECT count(*) FILTER (WHERE expect_error(format('SET %s = %L', name, boot_val)) = 'no error')
       AS settable_by_a_non_superuser
FROM pg_settings WHERE name LIKE 'jam.%';
RESET ROLE;
DROP ROLE regress_jam_config_user;

-- jam.enabled = off: every API function refuses with disabled, before it
-- looks at its arguments; jam_hash, jam_package_id and jam_error_codes
-- still answer.
SELECT jam_put_preimage('config:stored', 'text/plain')->>'created' AS created;
SELECT jam_submit_package('cfg-1', 'config:pending')->>'created' AS created;
SET jam.enabled = off;
SELECT call, expect_error(call) AS result FROM (VALUES
    ($$SELECT jam.jam_put_preimage('config:new')$$),
    ($$SELECT jam.jam_get_preimage(jam.jam_hash('config:stored'))$$),
    ($$SELECT jam.jam_preimage_meta(jam.jam_hash('config:stored'))$$),
    ($$SELECT jam.jam_register_service('cfg-2')$$),
    ($$SELECT jam.jam_submit_package('cfg-1', 'config:new')$$),
    ($$SELECT jam.jam_get_package(jam.jam_package_id('cfg-1', 'config:pending'))$$),
    ($$SELECT jam.jam_list_packages()$$),
    ($$SELECT jam.jam_process_next()$$),
    ($$SELECT jam.jam_process_next('cfg-1')$$),
    ($$SELECT jam.jam_get_report(jam.jam_package_id('cfg-1', 'config:pending'))$$),
    ($$SELECT jam.jam_list_reports()$$),
    ($$SELECT jam.jam_attestations(jam.jam_package_id('cfg-1', 'config:pending'))$$),
    -- bad arguments: disabled still comes first
    ($$SELECT jam.jam_get_preimage(NULL)$$),
    ($$SELECT jam.jam_list_packages("limit" => 0)$$),
    ($$SELECT jam.jam_submit_package('', 'x')$$)
) AS t(call);
-- In full, with its hint.
SELECT jam_get_preimage(jam_hash('config:stored'));
-- Still answering:
SELECT jam_hash('abc');
SELECT jam_package_id('cfg-1', 'config:pending') = jam_hash(
    '\x6a616d2f7061636b6167652f7631'::bytea || '\x05000000'::bytea || 'cfg-1'::bytea
    || '\x01000000'::bytea || '\x01000000'::bytea
    || '\x0e00000000000000'::bytea || 'config:pending'::bytea || '\x00000000'::bytea) AS package_id_ok;
SELECT count(*) AS error_codes FROM jam_error_codes();
RESET jam.enabled;

-- Nothing was written or processed while disabled.
SELECT count(*) AS new_preimage FROM jam_preimages WHERE hash = decode(jam_hash('config:new'), 'hex');
SELECT status, count(*) FROM jam_work_packages WHERE service_id LIKE 'cfg-%' GROUP BY status;
SELECT service_id, pending_count FROM jam_services WHERE service_id LIKE 'cfg-%' ORDER BY 1;
SELECT count(*) AS reports FROM jam_work_reports WHERE service_id LIKE 'cfg-%';

-- On again: the same calls work.
SELECT encode(jam_get_preimage(jam_hash('config:stored')), 'escape') AS data;
SELECT jam_process_next('cfg-1')->>'status' AS status;
SELECT jam_list_reports(service_id => 'cfg-1')->'total' AS reports;

-- Turning it off inside a transaction and rolling back restores it.
BEGIN;
SET LOCAL jam.enabled = off;
SELECT expect_error($$SELECT jam.jam_list_packages()$$) AS inside;
ROLLBACK;
SELECT jam_list_packages(service_id => 'cfg-1')->'total' AS after_rollback;
