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

/*
 * The reports of processed packages: one row, or a batch's, one row per
 * element of the arrays (jam_spi_column); preimage hashes come joined with
 * commas, one string per report.  Without the document, when the caller
 * does not want it.
 */
#define INSERT_REPORT_COLUMNS \
	"INSERT INTO jam.jam_work_reports (package_id, service_id, report_hash, status, " \
	"contract_version, refine, output, output_hash, failure_reason, preimage_hashes " \
	"@c(, refine_hash)) "
#define INSERT_REPORT_ROW \
	INSERT_REPORT_COLUMNS \
	"VALUES (@h($1), $2, @h($3), $4, $5, $6, $7, @h($8), $9, " \
	"@ha(coalesce(string_to_array(nullif($10, ''), ','), '{}')) @c(, @h($11)))"
#define INSERT_REPORTS \
	INSERT_REPORT_COLUMNS \
	"SELECT @h(u.id), u.svc, @h(u.rh), u.st, u.cv, u.rf, u.out, @h(u.oh), u.fr, " \
	"@ha(coalesce(string_to_array(nullif(u.pre, ''), ','), '{}')) @c(, @h(u.rfh)) " \
	"FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[], " \
	"            $7::bytea[], $8::text[], $9::text[], $10::text[], $11::text[]) " \
	"     WITH ORDINALITY AS u(id, svc, rh, st, cv, rf, out, oh, fr, pre, rfh, ord) ORDER BY u.ord"
#define REPORT_ROW_ARG_TYPES \
	{TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT4OID, TEXTOID, BYTEAOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID}
#define REPORT_ARG_TYPES \
	{TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT4ARRAYOID, TEXTARRAYOID, \
	BYTEAARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID}

/* [one row][with the documents] */
static JamStatement insert_reports[2][2] = {
	{{INSERT_REPORTS, 11, REPORT_ARG_TYPES}, {INSERT_REPORTS " RETURNING " REPORT_JSON, 11, REPORT_ARG_TYPES}},
	{{INSERT_REPORT_ROW, 11, REPORT_ROW_ARG_TYPES},
	{INSERT_REPORT_ROW " RETURNING " REPORT_JSON, 11, REPORT_ROW_ARG_TYPES}}
};

/* This node's attestations of the reports: signed since 1.1 (attestation.c). */
#define INSERT_ATTESTATION_COLUMNS \
	"INSERT INTO jam.jam_attestations (package_id, report_hash, attester " \
	"@c(, service_id, report_created_at, signature)) "

/* [one row] */
static JamStatement insert_attestations[2] = {
	{INSERT_ATTESTATION_COLUMNS "SELECT @h(u.id), @h(u.rh), $3 @c(, u.svc, now(), u.sig) "
		"FROM unnest($1::text[], $2::text[], $4::text[], $5::bytea[]) AS u(id, rh, svc, sig)",
	5, {TEXTARRAYOID, TEXTARRAYOID, TEXTOID, TEXTARRAYOID, BYTEAARRAYOID}},
	{INSERT_ATTESTATION_COLUMNS "VALUES (@h($1), @h($2), $3 @c(, $4, now(), $5))",
	5, {TEXTOID, TEXTOID, TEXTOID, TEXTOID, BYTEAOID}}
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

/* A service's reports in status (NULL: in all), as its copy in memory counts them. */
static int64
reports_in_copy(const JamService *svc, const char *status)
{
	if (status == NULL)
		return svc->applied_report_count + svc->failed_report_count;
	return strcmp(status, "applied") == 0 ? svc->applied_report_count : svc->failed_report_count;
}

static const char *const report_statuses[] = {"applied", "failed", NULL};

static JamList report_list = {
	"jam.jam_work_reports", REPORT_SUMMARY_JSON, {"service_id", "status"},
	"applied_report_count + failed_report_count",
	"CASE %s WHEN 'applied' THEN applied_report_count WHEN 'failed' THEN failed_report_count "
	"ELSE 0 END",
	reports_in_copy,
	report_statuses
};

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

/* The text of each report's hashes, joined with commas ("" for none). */
static Datum
joined_hashes(ArrayType *hashes)
{
	Datum	   *elems;
	int			n;
	StringInfoData s;

	deconstruct_array(hashes, TEXTOID, -1, false, TYPALIGN_INT, &elems, NULL, &n);
	initStringInfo(&s);
	for (int i = 0; i < n; i++)
	{
		if (i > 0)
			appendStringInfoChar(&s, ',');
		appendStringInfoString(&s, TextDatumGetCString(elems[i]));
	}
	return CStringGetTextDatum(s.data);
}

/*
 * Writes the reports of n processed packages and this node's attestation of
 * each, in two statements, and sets each report's report_hash.  With docs,
 * docs[i] is report i's document; without, no document is made.  Needs SPI.
 */
void
jam_store_reports(JamReport **reports, int n, Datum *docs)
{
	Datum	   *ids = palloc(sizeof(Datum) * n);
	Datum	   *services = palloc(sizeof(Datum) * n);
	Datum	   *hashes = palloc(sizeof(Datum) * n);
	Datum	   *statuses = palloc(sizeof(Datum) * n);
	Datum	   *versions = palloc(sizeof(Datum) * n);
	Datum	   *refines = palloc(sizeof(Datum) * n);
	Datum	   *outputs = palloc(sizeof(Datum) * n);
	Datum	   *output_hashes = palloc(sizeof(Datum) * n);
	Datum	   *reasons = palloc(sizeof(Datum) * n);
	Datum	   *preimages = palloc(sizeof(Datum) * n);
	Datum	   *refine_hashes = palloc(sizeof(Datum) * n);
	Datum	   *signatures = palloc(sizeof(Datum) * n);
	bool	   *output_null = palloc(sizeof(bool) * n);
	bool	   *reason_null = palloc(sizeof(bool) * n);
	bool	   *signature_null = palloc(sizeof(bool) * n);
	Datum		values[11];
	char		nulls[11];
	int			rows;

	for (int i = 0; i < n; i++)
	{
		JamReport  *r = reports[i];
		uint8		output_hash[JAM_HASH_BYTES];
		uint8		hash[JAM_HASH_BYTES];

		if (r->applied)
			jam_blake2b256(VARDATA_ANY(r->output), VARSIZE_ANY_EXHDR(r->output), output_hash);
		report_hash(r, output_hash, hash);
		jam_hex_encode(hash, JAM_HASH_BYTES, r->report_hash);

		ids[i] = CStringGetTextDatum(r->package_id);
		services[i] = CStringGetTextDatum(r->service_id);
		hashes[i] = CStringGetTextDatum(r->report_hash);
		statuses[i] = CStringGetTextDatum(r->applied ? "applied" : "failed");
		versions[i] = Int32GetDatum(r->contract_version);
		refines[i] = CStringGetTextDatum(r->refine);
		output_null[i] = !r->applied;
		outputs[i] = r->applied ? PointerGetDatum(r->output) : (Datum) 0;
		output_hashes[i] = r->applied ? PointerGetDatum(jam_hash_to_text(output_hash)) : (Datum) 0;
		reason_null[i] = r->applied;
		reasons[i] = r->applied ? (Datum) 0 : CStringGetTextDatum(r->failure_reason);
		preimages[i] = joined_hashes(r->preimage_hashes);
		refine_hashes[i] = CStringGetTextDatum(r->refine_hash);
		signatures[i] = (Datum) 0;
		signature_null[i] = true;
		if (jam_catalog() == JAM_CATALOG_COMPACT)
		{
			bytea	   *signature = jam_attestation_node_signature(r->package_id, r->report_hash,
																   r->service_id);

			if (signature != NULL)
			{
				signatures[i] = PointerGetDatum(signature);
				signature_null[i] = false;
			}
		}
	}

	jam_spi_column(values, nulls, 0, ids, NULL, n, TEXTOID);
	jam_spi_column(values, nulls, 1, services, NULL, n, TEXTOID);
	jam_spi_column(values, nulls, 2, hashes, NULL, n, TEXTOID);
	jam_spi_column(values, nulls, 3, statuses, NULL, n, TEXTOID);
	jam_spi_column(values, nulls, 4, versions, NULL, n, INT4OID);
	jam_spi_column(values, nulls, 5, refines, NULL, n, TEXTOID);
	jam_spi_column(values, nulls, 6, outputs, output_null, n, BYTEAOID);
	jam_spi_column(values, nulls, 7, output_hashes, output_null, n, TEXTOID);
	jam_spi_column(values, nulls, 8, reasons, reason_null, n, TEXTOID);
	jam_spi_column(values, nulls, 9, preimages, NULL, n, TEXTOID);
	jam_spi_column(values, nulls, 10, refine_hashes, NULL, n, TEXTOID);
	rows = jam_spi_exec(&insert_reports[n == 1][docs != NULL], values, nulls, false, 0);
	if (rows != n)
		elog(ERROR, "jam wrote %d reports of %d", rows, n);
	/* RETURNING gives the rows in the order they were inserted: the arrays' order. */
	for (int i = 0; docs && i < n; i++)
	{
		bool		isnull;

		docs[i] = SPI_datumTransfer(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull),
									false, -1);
	}

	jam_spi_column(values, nulls, 0, ids, NULL, n, TEXTOID);
	jam_spi_column(values, nulls, 1, hashes, NULL, n, TEXTOID);
	values[2] = CStringGetTextDatum(jam_node_name);
	nulls[2] = ' ';
	jam_spi_column(values, nulls, 3, services, NULL, n, TEXTOID);
	jam_spi_column(values, nulls, 4, signatures, signature_null, n, BYTEAOID);
	jam_spi_exec(&insert_attestations[n == 1], values, nulls, false, 0);
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
