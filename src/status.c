/*
 * status.c: jam_status, what an operator or a client needs to know about
 * this node at a glance.
 *
 * Counts that would need a full scan (preimages, packages, reports) are
 * the planner's estimates and say so in their names; pending packages and
 * log sizes are exact, from the per-service rows.
 */
#include "jam.h"
#include "auth.h"
#include "blob.h"
#include "metrics.h"
#include "xact_rows.h"
#include "ratelimit.h"
#include "note.h"

#include <sodium.h>

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

static JamStatement select_health = {
	"SELECT jsonb_build_object("
	"'enabled', $1::boolean, "
	"'version', (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'jam'), "
	"'node_name', $2::text, "
	"'verifier_key', $3::text, "
	"'auth', jsonb_build_object('auth_required', true, 'authenticated', false))",
	3, {BOOLOID, TEXTOID, TEXTOID}
};

static JamStatement select_status = {
	"SELECT jsonb_build_object("
	"'enabled', $1::boolean, "
	"'version', (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'jam'), "
	"'node_name', $2::text, "
	"'verifier_key', $3::text, "
	"'limits', jsonb_build_object("
	"  'max_preimage_bytes', $4::integer, 'max_payload_bytes', $5::integer, "
	"  'allowed_media_types', $6::text, 'max_pending_packages', $7::integer, "
	"  'legacy_list_response', $8::boolean, "
	"  'rate_limit_per_minute', $11::integer, 'rate_limit_burst', $12::integer), "
	"'auth', jsonb_build_object('auth_required', $10::boolean, "
	"  'tokens', (SELECT count(*) FROM jam.jam_tokens WHERE $9::text[] IS NULL AND revoked_at IS NULL "
	"             AND (expires_at IS NULL OR expires_at > now()))), "
	"'counts', jsonb_build_object("
	"  'services', (SELECT count(*) FROM jam.jam_services WHERE $9::text[] IS NULL OR service_id = ANY($9)), "
	"  'pending_packages', (SELECT coalesce(sum(pending_count), 0) FROM jam.jam_services "
	"                       WHERE $9::text[] IS NULL OR service_id = ANY($9)), "
	"  'log_entries', (SELECT coalesce(sum(log_size), 0) FROM jam.jam_services "
	"                  WHERE $9::text[] IS NULL OR service_id = ANY($9)), "
	"  'preimages_estimate', (SELECT greatest(reltuples, 0)::bigint FROM pg_catalog.pg_class "
	"                         WHERE oid = 'jam.jam_preimages'::regclass), "
	"  'packages_estimate', (SELECT greatest(reltuples, 0)::bigint FROM pg_catalog.pg_class "
	"                        WHERE oid = 'jam.jam_work_packages'::regclass), "
	"  'reports_estimate', (SELECT greatest(reltuples, 0)::bigint FROM pg_catalog.pg_class "
	"                       WHERE oid = 'jam.jam_work_reports'::regclass)), "
	"'logs', (SELECT coalesce(jsonb_agg(jsonb_build_object('service_id', service_id, "
	"  'tree_size', log_size, 'root', @x(log_root)) ORDER BY service_id), '[]'::jsonb) "
	"  FROM jam.jam_services WHERE $9::text[] IS NULL OR service_id = ANY($9)))",
	12, {BOOLOID, TEXTOID, TEXTOID, INT4OID, INT4OID, TEXTOID, INT4OID, BOOLOID,
	TEXTARRAYOID, BOOLOID, INT4OID, INT4OID}
};

/*
 * The node key's signed-note verifier key as a statement parameter; none on
 * a standby that has not yet received the key.  Needs SPI.
 */
static void
verifier_key(Datum *value, char *null)
{
	JamNodeKey	key;

	*null = 'n';
	if (!jam_node_key(&key))
		return;
	*value = CStringGetTextDatum(jam_note_verifier_key(key.name, key.public_key));
	*null = ' ';
	sodium_memzero(key.seed, sizeof(key.seed));
}

/* {enabled, version, node_name, verifier_key, auth: {auth_required, authenticated: false}} */
static Datum
health_summary(void)
{
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	Datum		doc;

	SPI_connect();
	values[0] = BoolGetDatum(jam_enabled);
	values[1] = CStringGetTextDatum(jam_node_name);
	verifier_key(&values[2], &nulls[2]);
	jam_spi_exec(&select_health, values, nulls, true, 1);
	doc = jam_spi_copy_jsonb(1);
	SPI_finish();
	return doc;
}

PG_FUNCTION_INFO_V1(jam_status);

/*
 * jam_status() returns enablement, version, the node's signed-note
 * verifier key, the limits in force, auth, counts, every service's log
 * head and the blob store (blob_config.c).  It needs no token (health
 * checks call it); without one through jam_api, while tokens are
 * required, it is only a health summary; with one, the counts and heads
 * cover the token's services only.
 */
Datum
jam_status(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_STATUS);
	Datum		values[12];
	char		nulls[12] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	ArrayType  *visible = jam_auth_visible_services();
	Datum		doc;

	/*
	 * Anonymous callers (health checks through the shim) learn that jam is
	 * up and how to check its signatures, nothing about anyone's services.
	 */
	if (jam_auth_anonymous())
	{
		doc = health_summary();
		jam_metrics_end(metrics, JAM_OUTCOME_OK);
		PG_RETURN_DATUM(doc);
	}
	(void) jam_xact_rows_flush();
	SPI_connect();
	values[0] = BoolGetDatum(jam_enabled);
	values[1] = CStringGetTextDatum(jam_node_name);
	verifier_key(&values[2], &nulls[2]);
	values[3] = Int32GetDatum(jam_max_preimage_bytes);
	values[4] = Int32GetDatum(jam_max_payload_bytes);
	values[5] = CStringGetTextDatum(jam_allowed_media_types ? jam_allowed_media_types : "");
	values[6] = Int32GetDatum(jam_max_pending_packages);
	values[7] = BoolGetDatum(jam_legacy_list_response);
	values[8] = PointerGetDatum(visible);
	nulls[8] = visible ? ' ' : 'n';
	values[9] = BoolGetDatum(jam_auth_required);
	values[10] = Int32GetDatum(jam_rate_limit_per_minute);
	values[11] = Int32GetDatum(jam_rate_limit_burst);
	jam_spi_exec(&select_status, values, nulls, false, 1);
	doc = jam_spi_copy_jsonb(1);
	SPI_finish();
	doc = jam_with_member(doc, "blob_store", jam_blob_status());

	jam_metrics_end(metrics, JAM_OUTCOME_OK);
	PG_RETURN_DATUM(doc);
}
