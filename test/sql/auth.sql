-- auth: tokens (src/tokens.c, src/auth.c), scopes, service and tenant
-- isolation of every read and write function, expiry and revocation, the
-- roles, and every quota error (src/quota.c, src/ratelimit.c).  It runs in
-- a database of its own, so that its packages do not show in other suites'
-- lists.
\getenv abs_srcdir PG_ABS_SRCDIR
\set own_db jam_auth_regress
\set own_database :abs_srcdir '/sql/include/own_database.psql'
\i :own_database

-- call(token, sql) runs "SELECT (sql)::text" with the token presented in
-- the same statement, and shows the result or the error as expect_error does.
CREATE FUNCTION public.call(token text, sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    result text;
BEGIN
    EXECUTE format('SELECT (%s)::text FROM jam.jam_authenticate(%L)', sql, token) INTO result;
    RETURN coalesce(result, '(null)');
EXCEPTION WHEN OTHERS THEN
    RETURN public.expect_error(format('SELECT (%s)::text FROM jam.jam_authenticate(%L)', sql, token));
END
$$;

-- The roles exist, cannot log in, and the shim's role reaches no table.
SELECT rolname, rolcanlogin, rolsuper FROM pg_roles
WHERE rolname IN ('jam_api', 'jam_reader', 'jam_operator') ORDER BY rolname;
SELECT r.rolname, t.tbl,
       has_table_privilege(r.rolname, 'jam.' || t.tbl, 'SELECT') AS may_select,
       has_table_privilege(r.rolname, 'jam.' || t.tbl, 'INSERT') AS may_insert
FROM (VALUES ('jam_api'), ('jam_reader'), ('jam_operator')) AS r(rolname),
     (VALUES ('jam_work_packages'), ('jam_tokens'), ('jam_node_keys')) AS t(tbl)
ORDER BY 1, 2;
SELECT has_column_privilege('jam_operator', 'jam.jam_tokens', 'secret_hash', 'SELECT') AS operator_sees_secret_hashes,
       has_column_privilege('jam_operator', 'jam.jam_tokens', 'name', 'SELECT') AS operator_sees_names;

-- Who may call what.
SELECT f AS function,
       has_function_privilege('public', f, 'EXECUTE') AS public,
       has_function_privilege('jam_api', f, 'EXECUTE') AS api,
       has_function_privilege('jam_reader', f, 'EXECUTE') AS reader,
       has_function_privilege('jam_operator', f, 'EXECUTE') AS operator
FROM unnest(ARRAY[
    'jam.jam_hash(bytea)', 'jam.jam_authenticate(text)', 'jam.jam_get_package(text)',
    'jam.jam_submit_package(text,bytea,text,integer,integer,text[])', 'jam.jam_process_next(text)',
    'jam.jam_put_preimage(bytea,text)', 'jam.jam_create_token(text,text[],text[],text,timestamptz)',
    'jam.jam_set_quota(text,text,integer,bigint,integer)', 'jam.jam_quota_usage(text,text)',
    'jam.jam_cleanup(boolean)', 'jam.jam_register_service(text,regprocedure,text,integer)']) AS f;

-- Every SECURITY DEFINER function pins its search_path.
SELECT count(*) AS definers,
       count(*) FILTER (WHERE 'search_path=pg_catalog, jam, pg_temp' = ANY(proconfig)) AS pinned
FROM pg_proc WHERE pronamespace = 'jam'::regnamespace AND prosecdef;
SELECT proname FROM pg_proc
WHERE pronamespace = 'jam'::regnamespace AND prosecdef
  AND NOT ('search_path=pg_catalog, jam, pg_temp' = ANY(coalesce(proconfig, '{}')));

-- Making tokens: the token is shown once, in the form jam_<id>_<secret>.
SELECT jam_create_token('reader', '{jam:read}') AS reader \gset
SELECT jam_create_token('submitter-a', '{jam:submit,jam:read}', '{auth-a}') AS sub_a \gset
SELECT jam_create_token('worker-a', '{jam:process}', '{auth-a}') AS proc_a \gset
SELECT jam_create_token('all-of-a', '{jam:read,jam:submit,jam:process}', '{auth-a}') AS all_a \gset
SELECT jam_create_token('all-of-b', '{jam:read,jam:submit,jam:process}', '{auth-b}') AS all_b \gset
SELECT jam_create_token('admin', '{jam:admin}') AS admin \gset
SELECT :'reader' ~ '^jam_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$' AS token_form,
       :'reader' <> :'sub_a' AS tokens_differ;
SELECT substr(:'sub_a', 5, 16) AS sub_a_id \gset
SELECT substr(:'all_a', 5, 16) AS all_a_id \gset

-- Only a hash of the secret is stored; the list shows no secret.
SELECT count(*) AS tokens, count(*) FILTER (WHERE octet_length(secret_hash) = 32) AS hashed,
       count(*) FILTER (WHERE position(encode(secret_hash, 'hex') IN :'reader') > 0) AS secret_in_clear
FROM jam_tokens;
SELECT jsonb_array_length(jam_list_tokens()) AS listed,
       (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(jam_list_tokens()->0) AS k) AS fields,
       position(substr(:'reader', 22) IN jam_list_tokens()::text) AS secret_shown_at;
SELECT t->>'name' AS name, t->'scopes' AS scopes, t->'services' AS services, t->'tenant' AS tenant,
       t->'active' AS active
FROM jsonb_array_elements(jam_list_tokens()) AS t ORDER BY t->>'name';

-- What jam_authenticate grants, and what it refuses.
SELECT jam_authenticate(:'sub_a') - 'token_id' AS capability;
SELECT jam_authenticate(NULL) AS no_token;
SELECT expect_error(format('SELECT jam.jam_authenticate(%L)', t)) AS refused
FROM unnest(ARRAY[
    '', 'garbage', 'Bearer ' || :'reader', upper(:'reader'), :'reader' || 'x',
    substr(:'reader', 1, 63), 'jam_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
    -- the right id with another secret
    substr(:'reader', 1, 21) || 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
    -- a secret that is not base64url
    substr(:'reader', 1, 21) || '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!']) AS t;

-- Bad arguments to jam_create_token.
SELECT expect_error(sql) AS create_token
FROM unnest(ARRAY[
    $$SELECT jam.jam_create_token(NULL, '{jam:read}')$$,
    $$SELECT jam.jam_create_token('', '{jam:read}')$$,
    $$SELECT jam.jam_create_token(repeat('n', 201), '{jam:read}')$$,
    $$SELECT jam.jam_create_token('x', NULL)$$,
    $$SELECT jam.jam_create_token('x', '{}')$$,
    $$SELECT jam.jam_create_token('x', '{jam:write}')$$,
    $$SELECT jam.jam_create_token('x', '{jam:read,NULL}')$$,
    $$SELECT jam.jam_create_token('x', '{{jam:read}}')$$,
    $$SELECT jam.jam_create_token('x', '{jam:read}', '{}')$$,
    $$SELECT jam.jam_create_token('x', '{jam:read}', '{NULL}')$$,
    $$SELECT jam.jam_create_token('x', '{jam:read}', '{"bad service"}')$$,
    $$SELECT jam.jam_create_token('x', '{jam:read}', NULL, 'bad tenant')$$,
    $$SELECT jam.jam_create_token('x', '{jam:read}', NULL, NULL, now() - interval '1 second')$$]) AS sql;

-- Through the shim's role: a token is needed (jam.auth_required), and
-- then it is held to its scopes and services.
CREATE ROLE regress_jam_shim LOGIN IN ROLE jam_api;
SELECT jam_put_preimage('\x0a0b'::bytea)->>'hash' AS pre \gset
SELECT jam_submit_package('auth-b', '\x0b', preimage_hashes => ARRAY[:'pre'])->>'id' AS pkg_b \gset
SELECT jam_process_next('auth-b')->>'report_hash' AS report_b \gset
SELECT jam_submit_package('auth-b', '\x0c')->>'id' AS pending_b \gset
SET ROLE regress_jam_shim;
SELECT expect_error(sql) AS without_token
FROM unnest(ARRAY[
    $$SELECT jam.jam_put_preimage('\x01')$$,
    $$SELECT jam.jam_get_preimage(repeat('0', 64))$$,
    $$SELECT jam.jam_preimage_meta(repeat('0', 64))$$,
    $$SELECT jam.jam_submit_package('auth-a', '\x01')$$,
    $$SELECT jam.jam_get_package(repeat('0', 64))$$,
    $$SELECT jam.jam_list_packages()$$,
    $$SELECT jam.jam_process_next()$$,
    $$SELECT jam.jam_get_report(repeat('0', 64))$$,
    $$SELECT jam.jam_list_reports()$$,
    $$SELECT jam.jam_attestations(repeat('0', 64))$$,
    $$SELECT jam.jam_receipt(repeat('0', 64))$$,
    $$SELECT jam.jam_inclusion_proof('auth-b', 0, 1)$$,
    $$SELECT jam.jam_consistency_proof('auth-b', 0, 1)$$,
    $$SELECT jam.jam_root('auth-b', 1)$$,
    $$SELECT jam.jam_roots()$$,
    $$SELECT jam.jam_checkpoint('auth-b')$$,
    $$SELECT jam.jam_verify_log('auth-b')$$,
    $$SELECT jam.jam_quota_usage('auth-b')$$]) AS sql;
-- jam_status needs no token (health checks); the shim's role manages tokens
-- only for a token with jam:admin (GET and POST /jam/tokens), never without.
SELECT jam.jam_status()->'auth'->'auth_required' AS auth_required;
SELECT expect_error($$SELECT jam.jam_create_token('x', '{jam:read}')$$) AS shim_makes_token,
       expect_error($$SELECT jam.jam_list_tokens()$$) AS shim_lists_tokens;
SELECT expect_error($$SELECT count(*) FROM jam.jam_work_packages$$) AS shim_reads_table;

-- Scopes: a read token cannot write, a process token cannot read.
SELECT call(:'reader', $$jam.jam_submit_package('auth-a', '\x01')$$) AS read_submits,
       call(:'reader', $$jam.jam_put_preimage('\x01')$$) AS read_puts,
       call(:'reader', $$jam.jam_process_next()$$) AS read_processes;
SELECT call(:'proc_a', format('jam.jam_get_package(%L)', :'pkg_b')) AS process_reads,
       call(:'sub_a', 'jam.jam_process_next()') AS submit_processes;
-- An admin token has every scope.
SELECT call(:'admin', format('jam.jam_get_package(%L)->>%L', :'pkg_b', 'status')) AS admin_reads;
-- Through the shim's role, tokens are managed with jam:admin only.
SELECT call(:'reader', $$jam.jam_create_token('x', '{jam:read}')$$) AS reader_makes_token,
       call(:'reader', $$jam.jam_list_tokens()$$) AS reader_lists_tokens,
       call(:'admin', $$jam.jam_create_token('made over http', '{jam:read}') LIKE 'jam_%'$$) AS admin_makes_token,
       call(:'admin', $$jam.jam_revoke_token((SELECT t->>'id' FROM jsonb_array_elements(jam.jam_list_tokens()) t
                                               WHERE t->>'name' = 'made over http'))$$) AS admin_revokes_it;

-- Service isolation: a token of auth-a is refused auth-b by name, and
-- finds nothing of auth-b by id.
SELECT call(:'all_a', $$jam.jam_submit_package('auth-a', '\x0a')->>'created'$$) AS submits_own;
SELECT call(:'all_a', sql) AS foreign_service
FROM unnest(ARRAY[
    $$jam.jam_submit_package('auth-b', '\x0a')$$,
    $$jam.jam_list_packages(service_id => 'auth-b')$$,
    $$jam.jam_list_reports(service_id => 'auth-b')$$,
    $$jam.jam_process_next('auth-b')$$,
    $$jam.jam_inclusion_proof('auth-b', 0, 1)$$,
    $$jam.jam_consistency_proof('auth-b', 0, 1)$$,
    $$jam.jam_root('auth-b', 1)$$,
    $$jam.jam_checkpoint('auth-b')$$,
    $$jam.jam_verify_log('auth-b')$$,
    $$jam.jam_quota_usage('auth-b')$$]) AS sql;
SELECT call(:'all_a', format(sql, :'pkg_b')) AS foreign_object
FROM unnest(ARRAY[
    'jam.jam_get_package(%L)', 'jam.jam_get_report(%L)', 'jam.jam_attestations(%L)',
    'jam.jam_receipt(%L)']) AS sql;
SELECT call(:'all_a', format('jam.jam_receipt(%L)', :'report_b')) AS foreign_report_receipt;
-- Lists, roots and status show the token's services only.
SELECT call(:'all_a', $$jam.jam_list_packages()->'total'$$) AS a_packages,
       call(:'all_b', $$jam.jam_list_packages()->'total'$$) AS b_packages,
       call(:'reader', $$jam.jam_list_packages()->'total'$$) AS all_packages;
SELECT call(:'all_a', $$jam.jam_list_reports()->'total'$$) AS a_reports,
       call(:'all_b', $$jam.jam_list_reports()->'total'$$) AS b_reports;
SELECT call(:'all_a', $$(SELECT array_agg(r->>'service_id') FROM jsonb_array_elements(jam.jam_roots()) r)$$) AS a_roots,
       call(:'reader', $$(SELECT array_agg(r->>'service_id' ORDER BY 1) FROM jsonb_array_elements(jam.jam_roots()) r)$$) AS all_roots;
SELECT call(:'all_a', $$jam.jam_status()->'counts'->'services'$$) AS a_status_services;
-- Processing with a token of auth-a takes auth-a's package, never auth-b's
-- older one; then nothing is left for it.
SELECT call(:'all_a', $$jam.jam_process_next()->>'service_id'$$) AS processed,
       call(:'all_a', $$jam.jam_process_next()$$) AS then_nothing;
SELECT call(:'all_b', format('jam.jam_get_package(%L)->>%L', :'pending_b', 'status')) AS b_still_pending;
-- The package records the token that submitted it.
SELECT call(:'all_a', $$jam.jam_submit_package('auth-a', '\x0d')->>'token_id'$$) = :'all_a_id' AS token_recorded;
RESET ROLE;
SELECT token_id = :'all_a_id' AS recorded_in_table FROM jam_work_packages WHERE payload = '\x0d';

-- Tenants: a tenant's token makes services of its tenant, and may not use
-- another tenant's, nor a service of no tenant.
SELECT jam_create_token('t1', '{jam:read,jam:submit,jam:process}', NULL, 'tenant-1') AS t1 \gset
SELECT jam_create_token('t2', '{jam:read,jam:submit,jam:process}', NULL, 'tenant-2') AS t2 \gset
SET ROLE regress_jam_shim;
SELECT call(:'t1', $$jam.jam_submit_package('auth-t1', '\x01')->>'id'$$) AS t1_pkg \gset
SELECT call(:'t2', $$jam.jam_submit_package('auth-t1', '\x02')$$) AS t2_on_t1,
       call(:'t2', $$jam.jam_submit_package('auth-b', '\x02')$$) AS t2_on_untenanted,
       call(:'t2', format('jam.jam_get_package(%L)', :'t1_pkg')) AS t2_reads_t1,
       call(:'t2', $$jam.jam_list_packages()->'total'$$) AS t2_sees,
       call(:'t2', $$jam.jam_process_next()$$) AS t2_processes;
SELECT call(:'t1', $$jam.jam_list_packages()->'total'$$) AS t1_sees,
       call(:'t1', $$jam.jam_roots()$$)::jsonb->0->>'service_id' AS t1_roots;
-- A tenant's admin token manages its own tenant only.
RESET ROLE;
SELECT jam_create_token('t1-admin', '{jam:admin}', NULL, 'tenant-1') AS t1_admin \gset
SELECT call(:'t1_admin', $$jam.jam_create_token('x', '{jam:read}', NULL, 'tenant-2')$$) AS other_tenant_token,
       call(:'t1_admin', $$jam.jam_create_token('x', '{jam:read}') ~ '^jam_'$$) AS own_tenant_token,
       call(:'t1_admin', $$jsonb_array_length(jam.jam_list_tokens()) > 0$$) AS listed;
SELECT call(:'t1_admin', $$(SELECT array_agg(DISTINCT t->>'tenant') FROM jsonb_array_elements(jam.jam_list_tokens()) t)$$) AS tenants_listed,
       regexp_replace(call(:'t1_admin', format('jam.jam_revoke_token(%L)', :'sub_a_id')),
                      '[0-9a-f]{16}', '(token id)') AS revokes_other_tenant;
SELECT jam_register_service('auth-t3', tenant => 'tenant-3')->>'tenant' AS registered_tenant;

-- Revocation takes effect from the next call, in this backend too.
SELECT call(:'sub_a', $$jam.jam_list_packages()->'total'$$) AS before_revoke;
SELECT jam_revoke_token(:'sub_a_id') AS revoked, jam_revoke_token(:'sub_a_id') AS again;
SELECT call(:'sub_a', $$jam.jam_list_packages()->'total'$$) AS after_revoke;
SELECT (SELECT t->'active' FROM jsonb_array_elements(jam_list_tokens()) t WHERE t->>'id' = :'sub_a_id') AS active;
SELECT expect_error(sql) AS revoke
FROM unnest(ARRAY[
    $$SELECT jam.jam_revoke_token('0000000000000000')$$,
    $$SELECT jam.jam_revoke_token('not-an-id')$$,
    $$SELECT jam.jam_revoke_token(NULL)$$]) AS sql;

-- Expiry: a token past its expires_at is refused.
SELECT jam_create_token('short', '{jam:read}', expires_at => now() + interval '1 hour') AS short \gset
SELECT call(:'short', $$jam.jam_roots() IS NOT NULL$$) AS before_expiry;
UPDATE jam_tokens SET expires_at = now() - interval '1 second' WHERE name = 'short';
SELECT call(:'short', $$jam.jam_roots() IS NOT NULL$$) AS after_expiry;

-- jam.auth_required off: the shim's role may call without a token, and a
-- token it presents still restricts it.
SET jam.auth_required = off;
SET ROLE regress_jam_shim;
SELECT jam.jam_list_packages()->'total' AS without_token;
SELECT call(:'all_b', $$jam.jam_list_packages()->'total'$$) AS with_token;
RESET ROLE;
RESET jam.auth_required;

-- Quotas.  Bad calls first.
SELECT expect_error(sql) AS set_quota
FROM unnest(ARRAY[
    $$SELECT jam.jam_set_quota()$$,
    $$SELECT jam.jam_set_quota(service_id => 'q', token_id => '0000000000000000')$$,
    $$SELECT jam.jam_set_quota(service_id => 'bad service', rate_limit_per_minute => 1)$$,
    $$SELECT jam.jam_set_quota(token_id => '0000000000000000', rate_limit_per_minute => 1)$$,
    $$SELECT jam.jam_set_quota(token_id => 'xyz', rate_limit_per_minute => 1)$$,
    $$SELECT jam.jam_set_quota(service_id => 'q', rate_limit_per_minute => -2)$$,
    $$SELECT jam.jam_set_quota(service_id => 'q', max_preimage_bytes => 9223372036854775807)$$,
    $$SELECT jam.jam_set_quota(service_id => 'q', max_pending_packages => -5)$$]) AS sql;

-- A service's rate: 2 per minute, a burst of 2.
SELECT jam_set_quota(service_id => 'auth-q', rate_limit_per_minute => 2) - 'updated_at' AS quota;
SELECT jam_submit_package('auth-q', '\x01')->>'created' AS first,
       jam_submit_package('auth-q', '\x02')->>'created' AS second;
SELECT expect_error($$SELECT jam.jam_submit_package('auth-q', '\x03')$$) AS third,
       -- 30 s until the bucket has room again (29 on a machine that stalled)
       error_detail($$SELECT jam.jam_submit_package('auth-q', '\x03')$$)
           ~ '^JM028: Retry after (29|30) seconds\.$' AS retry_after;
-- A retry of a stored package is not charged.
SELECT jam_submit_package('auth-q', '\x01')->>'created' AS retry;
-- Other services are not limited by it.
SELECT jam_submit_package('auth-other', '\x01')->>'created' AS other_service;
SELECT jam_quota_usage(service_id => 'auth-q') AS usage;
-- A weight over the burst can never pass.
SELECT jam_set_quota(service_id => 'auth-w', rate_limit_per_minute => 10) IS NOT NULL AS set;
SELECT expect_error($$SELECT jam.jam_submit_package('auth-w', '\x01', weight_hint => 11)$$) AS too_heavy;
SELECT jam_submit_package('auth-w', '\x01', weight_hint => 10)->>'created' AS whole_burst;
SELECT expect_error($$SELECT jam.jam_submit_package('auth-w', '\x02')$$) AS spent;
-- The global default applies where a service has no override.
SET jam.rate_limit_per_minute = 1;
SELECT jam_submit_package('auth-default', '\x01')->>'created' AS first_default;
SELECT expect_error($$SELECT jam.jam_submit_package('auth-default', '\x02')$$) AS second_default;
SELECT jam_quota_usage(service_id => 'auth-default')->'rate'->>'source' AS source;
RESET jam.rate_limit_per_minute;

-- A token's rate, on top of its service's.
SELECT jam_create_token('limited', '{jam:submit,jam:read}') AS limited \gset
SELECT substr(:'limited', 5, 16) AS limited_id \gset
SELECT (jam_set_quota(token_id => :'limited_id', rate_limit_per_minute => 1, max_pending_packages => 2)
        - 'updated_at' - 'token_id') AS token_quota;
SELECT call(:'limited', $$jam.jam_submit_package('auth-tok', '\x01')->>'created'$$) AS token_first,
       call(:'limited', $$jam.jam_submit_package('auth-tok', '\x02')$$) AS token_second;
SELECT call(:'limited', $$jam.jam_quota_usage() - 'token_id'$$) AS own_usage;
-- A token's pending packages.
SELECT jam_set_quota(token_id => :'limited_id', rate_limit_per_minute => -1)->'rate_limit_per_minute' AS rate_cleared;
SELECT call(:'limited', $$jam.jam_submit_package('auth-tok', '\x03')->>'created'$$) AS token_pending_2,
       call(:'limited', $$jam.jam_submit_package('auth-tok', '\x04')$$) AS token_pending_3;
-- A service's pending packages.
SELECT jam_set_quota(service_id => 'auth-p', max_pending_packages => 1)->'max_pending_packages' AS pending_quota;
SELECT jam_submit_package('auth-p', '\x01')->>'created' AS pending_1;
SELECT expect_error($$SELECT jam.jam_submit_package('auth-p', '\x02')$$) AS pending_2;
-- Preimage sizes: a token's put, and what a service's packages reference.
SELECT jam_set_quota(token_id => :'limited_id', max_preimage_bytes => 4)->'max_preimage_bytes' AS token_bytes;
SELECT call(:'limited', $$jam.jam_put_preimage('\x01020304')->>'size'$$) AS put_4,
       call(:'limited', $$jam.jam_put_preimage('\x0102030405')$$) AS put_5;
SELECT jam_put_preimage('\x010203040506'::bytea)->>'hash' AS six \gset
SELECT jam_set_quota(service_id => 'auth-s', max_preimage_bytes => 5)->'max_preimage_bytes' AS service_bytes;
SELECT expect_error(format($$SELECT jam.jam_submit_package('auth-s', '\x01', preimage_hashes => ARRAY[%L])$$, :'six')) AS refs_6;
SELECT count(*) AS nothing_written FROM jam_work_packages WHERE service_id = 'auth-s';
SELECT refcount AS refcount_unchanged FROM jam_preimages WHERE hash = decode(:'six', 'hex');
-- -1 goes back to the default; an override with no limit left is removed.
SELECT jam_set_quota(service_id => 'auth-s', max_preimage_bytes => -1) - 'updated_at' AS cleared;
SELECT count(*) AS rows_left FROM jam_quotas WHERE service_id = 'auth-s';
-- A refused submit writes nothing.
SELECT count(*) AS refused_written FROM jam_work_packages
WHERE (service_id, payload) IN (('auth-q', '\x03'), ('auth-p', '\x02'), ('auth-w', '\x02'), ('auth-default', '\x02'));
-- The jam_api role may read its own quota, not another token's.
SET ROLE regress_jam_shim;
SELECT call(:'all_a', format('jam.jam_quota_usage(token_id => %L)', :'limited_id')) AS others_usage;
RESET ROLE;
SELECT expect_error($$SELECT jam.jam_quota_usage()$$) AS usage_of_nothing,
       expect_error($$SELECT jam.jam_quota_usage('a', '0000000000000000')$$) AS usage_of_both;

-- Changes to tokens by hand are seen too (the statement trigger).
SELECT call(:'all_b', $$jam.jam_roots() IS NOT NULL$$) AS before_hand_revoke;
UPDATE jam_tokens SET revoked_at = now() WHERE name = 'all-of-b';
SELECT call(:'all_b', $$jam.jam_roots() IS NOT NULL$$) AS after_hand_revoke;

-- jam.enabled off: a token may still be presented, so that jam_status()
-- answers health checks; the API refuses.
SET jam.enabled = off;
SELECT call(:'reader', $$jam.jam_status()->'enabled'$$) AS status_when_disabled,
       call(:'reader', $$jam.jam_roots()$$) AS roots_when_disabled;
RESET jam.enabled;

-- jam_status() for a tenant's token: the status, its services only (it
-- used to fail with "array size exceeds the maximum allowed", reading
-- memory SPI had freed), the same on every call.
SELECT jam_create_token('status of t3', '{jam:read}', NULL, 'tenant-3') AS t3 \gset
SET ROLE regress_jam_shim;
SELECT call(:'t3', $$jam.jam_status()->'counts'->'services'$$) AS no_services,
       call(:'t3', $$jam.jam_status()->'logs'$$) AS no_logs,
       call(:'t3', $$jam.jam_list_packages()->'total'$$) AS no_packages,
       call(:'t3', $$jam.jam_status()->'counts'->'services'$$) AS again;
SELECT call(:'t1', $$(SELECT array_agg(l->>'service_id') FROM jsonb_array_elements(jam.jam_status()->'logs') l)$$)
       AS t1_logs;

-- Without a token through jam_api, jam_status() is a health summary:
-- nobody's services, counts or limits.
SELECT jsonb_object_keys(jam.jam_status()) AS anonymous_keys ORDER BY 1;
SELECT jam.jam_status()->'auth' AS anonymous_auth;
RESET ROLE;
SELECT jam_status() ? 'logs' AS operator_sees_logs;

-- A service's quota may be set before its first submit creates it; the
-- answer says whether the service exists, so a misspelt id shows.
SELECT jam_set_quota(service_id => 'auth-a', max_pending_packages => 100)->'service_exists' AS existing_service,
       jam_set_quota(service_id => 'auth-not-yet', max_pending_packages => 100)->'service_exists' AS future_service;

-- The new error codes and their HTTP statuses.
SELECT code, sqlstate, http_status FROM jam_error_codes()
WHERE code IN ('unauthenticated', 'forbidden', 'rate_limited', 'quota_exceeded', 'payload_too_large', 'token_not_found')
ORDER BY sqlstate;

\c :regress_db
DROP DATABASE :"own_db";
DROP ROLE regress_jam_shim;
