/*
 * report.c: work reports and attestations (jam_get_report,
 * jam_list_reports, jam_attestations, and the writing of both when a
 * package is processed).
 *
 * A report's hash commits to its outcome (integers little-endian):
 *
 *   "jam/report/v1" || package id (32 raw bytes) || u8 status
 *   || applied: output hash (32 raw bytes)
 *   || failed:  u32 len(reason) || reason (UTF-8)
 *
 * with status 1 for applied and 2 for failed.
 */
#include "jam.h"
#include "attestation.h"
#include "auth.h"
#include "errors.h"
#include "metrics.h"

#include <sodium.h>

#include "catalog/pg_type.h"
#include "utils/builtins.h"

#define JAM_REPORT_TAG "jam/report/v1"

#define REPORT_SUMMARY_JSON \
	"jsonb_build_object('package_id', @x(package_id), 'service_id', service_id, " \
	"'status', status, 'report_hash', @x(report_hash), 'contract_version', contract_version, " \
	"'refine', refine, 'output_size', octet_length(output), 'output_hash', @x(output_hash), " \
	"'failure_reason', failure_reason, 'preimage_hashes', to_jsonb(@xa(preimage_hashes)), " \
	"'created_at', created_at @c(, 'refine_hash', @x(refine_hash)))"

#define REPORT_JSON \
	REPORT_SUMMARY_JSON " || jsonb_build_object('output', " \
	"translate(encode(output, 'base64'), E'\\n', ''))"

static JamStatement insert_report = {
	"INSERT INTO jam.jam_work_reports (package_id, service_id, report_hash, status, "
	"contract_version, refine, output, output_hash, failure_reason, preimage_hashes "
	"@c(, refine_hash)) "
	"VALUES (@h($1), $2, @h($3), $4, $5, $6, $7, @h($8), $9, @ha($10) @c(, @h($11))) "
	"RETURNING " REPORT_JSON,
	11, {TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT4OID, TEXTOID, BYTEAOID, TEXTOID, TEXTOID,
	TEXTARRAYOID, TEXTOID}
};

/* Signed since 1.1 (attestation.c); a 1.0 catalog has no room for the signature. */
static JamStatement insert_attestation = {
	"INSERT INTO jam.jam_attestations (package_id, report_hash, attester "
	"@c(, service_id, report_created_at, signature)) "
	"VALUES (@h($1), @h($2), $3 @c(, $4, now(), $5))",
	5, {TEXTOID, TEXTOID, TEXTOID, TEXTOID, BYTEAOID}
};

static JamStatement select_report = {
	"SELECT " REPORT_JSON ", service_id FROM jam.jam_work_reports WHERE package_id = @h($1)",
	1, {TEXTOID}
};

static JamStatement package_exists = {
	"SELECT service_id FROM jam.jam_work_packages WHERE id = @h($1)",
	1, {TEXTOID}
};

static JamStatement select_attestations = {
	"SELECT coalesce(jsonb_agg(jsonb_build_object('id', id, 'package_id', @x(package_id), "
	"'report_hash', @x(report_hash), 'attester', attester, 'attested_by', attested_by, "
	"'created_at', created_at @c(, 'version', 1, 'service_id', service_id, "
	"'report_created_at', report_created_at, "
	"'signature', translate(encode(signature, 'base64'), E'\\n', ''))) ORDER BY id), '[]'::jsonb) "
	"FROM jam.jam_attestations WHERE package_id = @h($1)",
	1, {TEXTOID}
};

static JamList report_list = {
	"jam.jam_work_reports", REPORT_SUMMARY_JSON, {"service_id", "status"}
};

static const char *const report_statuses[] = {"applied", "failed", NULL};

static void
report_hash(const JamReport *r, const uint8 output_hash[JAM_HASH_BYTES], uint8 out[JAM_HASH_BYTES])
{
	crypto_generichash_state st;
	uint8		package_id[JAM_HASH_BYTES];
	uint8		status = r->applied ? 1 : 2;

	jam_parse_hash(cstring_to_text(r->package_id), "package id", package_id);
	crypto_generichash_init(&st, NULL, 0, JAM_HASH_BYTES);
	crypto_generichash_update(&st, (const uint8 *) JAM_REPORT_TAG, strlen(JAM_REPORT_TAG));
	crypto_generichash_update(&st, package_id, JAM_HASH_BYTES);
	crypto_generichash_update(&st, &status, 1);
	if (r->applied)
		crypto_generichash_update(&st, output_hash, JAM_HASH_BYTES);
	else
	{
		uint32		len = strlen(r->failure_reason);
		uint8		b[4] = {len & 0xff, (len >> 8) & 0xff, (len >> 16) & 0xff, len >> 24};

		crypto_generichash_update(&st, b, 4);
		crypto_generichash_update(&st, (const uint8 *) r->failure_reason, len);
	}
	crypto_generichash_final(&st, out, JAM_HASH_BYTES);
}

/*
 * Writes the report of a processed package and this node's attestation of
 * it, sets r->report_hash, and returns the report's document.  Needs SPI.
 */
Datum
jam_store_report(JamReport *r)
{
	uint8		output_hash[JAM_HASH_BYTES];
	uint8		hash[JAM_HASH_BYTES];
	Datum		values[11];
	char		nulls[11];
	Datum		doc;

	memset(nulls, ' ', sizeof(nulls));
	if (r->applied)
		jam_blake2b256(VARDATA_ANY(r->output), VARSIZE_ANY_EXHDR(r->output), output_hash);
	report_hash(r, output_hash, hash);
	jam_hex_encode(hash, JAM_HASH_BYTES, r->report_hash);

	values[0] = CStringGetTextDatum(r->package_id);
	values[1] = CStringGetTextDatum(r->service_id);
	values[2] = PointerGetDatum(jam_hash_to_text(hash));
	values[3] = CStringGetTextDatum(r->applied ? "applied" : "failed");
	values[4] = Int32GetDatum(r->contract_version);
	values[5] = CStringGetTextDatum(r->refine);
	if (r->applied)
	{
		values[6] = PointerGetDatum(r->output);
		values[7] = PointerGetDatum(jam_hash_to_text(output_hash));
		nulls[8] = 'n';
	}
	else
	{
		nulls[6] = nulls[7] = 'n';
		values[8] = CStringGetTextDatum(r->failure_reason);
	}
	values[9] = PointerGetDatum(r->preimage_hashes);
	values[10] = CStringGetTextDatum(r->refine_hash);

	jam_spi_exec(&insert_report, values, nulls, false, 0);
	doc = jam_spi_copy_jsonb(1);

	values[1] = values[2];
	values[2] = CStringGetTextDatum(jam_node_name);
	values[3] = CStringGetTextDatum(r->service_id);
	nulls[0] = nulls[1] = nulls[2] = nulls[3] = ' ';
	nulls[4] = 'n';
	if (jam_catalog() == JAM_CATALOG_COMPACT)
	{
		bytea	   *signature = jam_attestation_node_signature(r->package_id, r->report_hash,
															   r->service_id);

		if (signature != NULL)
		{
			values[4] = PointerGetDatum(signature);
			nulls[4] = ' ';
		}
	}
	jam_spi_exec(&insert_attestation, values, nulls, false, 0);
	return doc;
}

/*
 * Whether the package exists and the token in use (if any) may see its
 * service: another service's package is not found, as if it did not exist.
 */
static bool
visible_package_exists(Datum id)
{
	return jam_spi_exec(&package_exists, &id, NULL, true, 1) == 1 &&
		jam_auth_sees_service(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
}

/* Raises report_not_found, or package_not_found when there is no such package either. */
static void
raise_no_report(Datum id)
{
	char	   *id_str = TextDatumGetCString(id);

	if (!visible_package_exists(id))
		ereport(ERROR,
				(jam_errcode(JAM_ERR_PACKAGE_NOT_FOUND),
				 errmsg("package %s not found", id_str)));
	ereport(ERROR,
			(jam_errcode(JAM_ERR_REPORT_NOT_FOUND),
			 errmsg("package %s has no report yet", id_str),
			 errhint("A report is written when the package is processed.")));
}

PG_FUNCTION_INFO_V1(jam_get_report);

/* jam_get_report(package_id) returns the package's report with its output in base64. */
Datum
jam_get_report(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_REPORT_GET);
	Datum		id;
	Datum		doc;

	jam_check_enabled();
	jam_auth_require(JAM_SCOPE_READ, "jam_get_report");
	jam_require_arg(fcinfo, 0, "package_id");
	id = CStringGetTextDatum(jam_normalize_hash(PG_GETARG_TEXT_PP(0), "package_id"));

	SPI_connect();
	if (jam_spi_exec(&select_report, &id, NULL, true, 1) == 0 ||
		!jam_auth_sees_service(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2)))
		raise_no_report(id);
	doc = jam_spi_copy_jsonb(1);
	SPI_finish();

	jam_metrics_end(metrics, JAM_OUTCOME_OK);
	PG_RETURN_DATUM(doc);
}

PG_FUNCTION_INFO_V1(jam_list_reports);

/* jam_list_reports(service_id, status, limit, offset): report summaries in the order they were made. */
Datum
jam_list_reports(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_REPORT_LIST);
	text	   *filters[2] = {NULL, NULL};
	Datum		doc;

	jam_check_enabled();
	jam_auth_require(JAM_SCOPE_READ, "jam_list_reports");
	jam_require_arg(fcinfo, 2, "limit");
	jam_require_arg(fcinfo, 3, "offset");
	if (!PG_ARGISNULL(0))
	{
		char	   *service_id = jam_check_service_id(PG_GETARG_TEXT_PP(0));

		jam_auth_require_service(JAM_SCOPE_READ, service_id);
		filters[0] = cstring_to_text(service_id);
	}
	if (!PG_ARGISNULL(1))
	{
		filters[1] = PG_GETARG_TEXT_PP(1);
		jam_check_status_filter(filters[1], report_statuses);
	}

	doc = jam_list(&report_list, filters, jam_auth_visible_services(),
				   PG_GETARG_INT32(2), PG_GETARG_INT32(3), jam_list_after(fcinfo));
	jam_metrics_end(metrics, JAM_OUTCOME_OK);
	PG_RETURN_DATUM(doc);
}

PG_FUNCTION_INFO_V1(jam_attestations);

/* jam_attestations(package_id) returns the attestations of the package's report, oldest first. */
Datum
jam_attestations(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_ATTESTATIONS);
	Datum		id;
	Datum		doc;

	jam_check_enabled();
	jam_auth_require(JAM_SCOPE_READ, "jam_attestations");
	jam_require_arg(fcinfo, 0, "package_id");
	id = CStringGetTextDatum(jam_normalize_hash(PG_GETARG_TEXT_PP(0), "package_id"));

	SPI_connect();
	if (!visible_package_exists(id))
		ereport(ERROR,
				(jam_errcode(JAM_ERR_PACKAGE_NOT_FOUND),
				 errmsg("package %s not found", TextDatumGetCString(id))));
	jam_spi_exec(&select_attestations, &id, NULL, true, 1);
	doc = jam_spi_copy_jsonb(1);
	SPI_finish();

	jam_metrics_end(metrics, JAM_OUTCOME_OK);
	PG_RETURN_DATUM(doc);
}
