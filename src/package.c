/*
 * package.c: work packages (jam_submit_package, jam_get_package,
 * jam_list_packages, jam_package_id).
 *
 * A submit writes the package, the service's pending count, the refcounts
 * of the preimages it references and the package's entry in the service's
 * verifiable log with its receipt, all in the caller's transaction: an error
 * anywhere leaves none of it behind.
 */
#include "jam.h"
#include "auth.h"
#include "claim_hint.h"
#include "errors.h"
#include "metrics.h"
#include "holders.h"
#include "package.h"
#include "processor.h"
#include "quota.h"
#include "xact_rows.h"

#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

#define PACKAGE_JSON \
	PACKAGE_SUMMARY_JSON " || jsonb_build_object('payload', " \
	"translate(encode(payload, 'base64'), E'\\n', ''))"

static JamStatement insert_package = {
	"INSERT INTO jam.jam_work_packages "
	"(id, service_id, contract_version, weight_hint, payload, preimage_hashes, token_id) "
	"VALUES (@h($1), $2, $3, $4, $5, @ha($6), $7) ON CONFLICT (id) DO NOTHING",
	7, {TEXTOID, TEXTOID, INT4OID, INT4OID, BYTEAOID, TEXTARRAYOID, TEXTOID}
};

static JamStatement select_package_summary = {
	"SELECT " PACKAGE_SUMMARY_JSON " FROM jam.jam_work_packages WHERE id = @h($1)",
	1, {TEXTOID}
};

static JamStatement select_package = {
	"SELECT " PACKAGE_JSON ", service_id FROM jam.jam_work_packages WHERE id = @h($1)",
	1, {TEXTOID}
};

static JamStatement first_missing_preimage = {
	"SELECT h FROM unnest($1::text[]) WITH ORDINALITY AS r(h, i) "
	"WHERE NOT EXISTS (SELECT 1 FROM jam.jam_preimages p WHERE p.hash = @h(r.h)) ORDER BY i LIMIT 1",
	1, {TEXTARRAYOID}
};

/* A service's packages in status (NULL: in all), as its copy in memory counts them. */
static int64
packages_in_copy(const JamService *svc, const char *status)
{
	if (status == NULL)
		return svc->pending_count + svc->applied_count + svc->failed_count;
	if (strcmp(status, "pending") == 0)
		return svc->pending_count;
	return strcmp(status, "applied") == 0 ? svc->applied_count : svc->failed_count;
}

static const char *const package_statuses[] = {"pending", "applied", "failed", NULL};

static JamList package_list = {
	"jam.jam_work_packages", PACKAGE_SUMMARY_JSON, {"status", "service_id"},
	"pending_count + applied_count + failed_count",
	"CASE %s WHEN 'pending' THEN pending_count WHEN 'applied' THEN applied_count "
	"WHEN 'failed' THEN failed_count ELSE 0 END",
	packages_in_copy,
	package_statuses
};

/*
 * Checks preimage_hashes (a one-dimensional text[] without nulls, each a
 * valid hash) and fills the raw hashes and the distinct set into pkg.
 */
static void
check_preimage_hashes(ArrayType *hashes, CheckedPackage *pkg)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	Datum	   *distinct;

	if (ARR_NDIM(hashes) > 1)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("preimage_hashes must be a one-dimensional array")));
	deconstruct_array(hashes, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (n > JAM_MAX_PREIMAGE_REFS)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_TOO_MANY_PREIMAGES),
				 errmsg("a package may reference at most %d preimages", JAM_MAX_PREIMAGE_REFS),
				 errdetail("This package references %d.", n)));

	pkg->fields.n_preimages = n;
	pkg->fields.preimage_hashes = palloc((Size) Max(n, 1) * JAM_HASH_BYTES);
	distinct = palloc(sizeof(Datum) * Max(n, 1));
	pkg->n_distinct = 0;
	for (int i = 0; i < n; i++)
	{
		uint8	   *raw = pkg->fields.preimage_hashes + (Size) i * JAM_HASH_BYTES;
		bool		seen = false;

		if (nulls[i])
			ereport(ERROR,
					(jam_errcode(JAM_ERR_INVALID_HASH),
					 errmsg("preimage_hashes[%d] is null", i + 1)));
		jam_parse_hash(DatumGetTextPP(elems[i]), psprintf("preimage_hashes[%d]", i + 1), raw);
		for (int j = 0; j < i && !seen; j++)
			seen = memcmp(raw, pkg->fields.preimage_hashes + (Size) j * JAM_HASH_BYTES,
						  JAM_HASH_BYTES) == 0;
		if (!seen)
			distinct[pkg->n_distinct++] = elems[i];
	}
	pkg->preimage_array = construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT);
	pkg->distinct_array = construct_array(distinct, pkg->n_distinct, TEXTOID, -1, false,
										  TYPALIGN_INT);
}

/*
 * Checks the arguments shared by jam_submit_package and jam_package_id
 * (service_id, payload, contract_version, weight_hint, preimage_hashes at
 * the given argument positions) and computes the package hash.
 */
static void
check_package(FunctionCallInfo fcinfo, const int argno[5], CheckedPackage *pkg,
			  uint8 id[JAM_HASH_BYTES])
{
	jam_require_arg(fcinfo, argno[0], "service_id");
	jam_require_arg(fcinfo, argno[1], "payload");
	jam_require_arg(fcinfo, argno[2], "contract_version");
	jam_require_arg(fcinfo, argno[3], "weight_hint");
	jam_require_arg(fcinfo, argno[4], "preimage_hashes");
	jam_check_package(jam_check_service_id(PG_GETARG_TEXT_PP(argno[0])),
					  PG_GETARG_BYTEA_PP(argno[1]), PG_GETARG_INT32(argno[2]),
					  PG_GETARG_INT32(argno[3]), PG_GETARG_ARRAYTYPE_P(argno[4]), pkg, id);
}

/*
 * Checks one package's fields (service_id already checked) and computes its
 * hash into id: the rules every way of submitting shares.
 */
void
jam_check_package(char *service_id, bytea *payload, int32 contract_version, int32 weight_hint,
				  ArrayType *preimage_hashes, CheckedPackage *pkg, uint8 id[JAM_HASH_BYTES])
{
	pkg->fields.service_id = service_id;

	if (contract_version < JAM_CONTRACT_VERSION_MIN || contract_version > JAM_CONTRACT_VERSION_MAX)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_UNSUPPORTED_CONTRACT_VERSION),
				 errmsg("contract version %d is not supported", contract_version),
				 errdetail("This node runs contract versions %d to %d.",
						   JAM_CONTRACT_VERSION_MIN, JAM_CONTRACT_VERSION_MAX)));

	if (weight_hint <= 0)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_WEIGHT),
				 errmsg("weight_hint must be positive"),
				 errdetail("The weight_hint given was %d.", weight_hint)));

	pkg->payload = payload;
	pkg->fields.payload = VARDATA_ANY(pkg->payload);
	pkg->fields.payload_len = VARSIZE_ANY_EXHDR(pkg->payload);
	if (pkg->fields.payload_len > (Size) jam_max_payload_bytes)
	{
		jam_metrics_refusal("payload_too_large", pkg->fields.service_id);
		ereport(ERROR,
				(jam_errcode(JAM_ERR_PAYLOAD_TOO_LARGE),
				 errmsg("payload is too large"),
				 errdetail("The payload has %zu bytes; jam.max_payload_bytes allows %d.",
						   pkg->fields.payload_len, jam_max_payload_bytes)));
	}

	pkg->fields.contract_version = contract_version;
	pkg->fields.weight_hint = weight_hint;
	check_preimage_hashes(preimage_hashes, pkg);
	jam_package_hash(&pkg->fields, id);
}

/*
 * Raises missing_preimage naming the first referenced preimage that is not
 * stored, or, given one, that one.
 */
static void
raise_missing_preimage(CheckedPackage *pkg, const char *missing)
{
	Datum		values[1] = {PointerGetDatum(pkg->preimage_array)};

	if (missing == NULL)
		missing = jam_spi_exec(&first_missing_preimage, values, NULL, true, 1) == 1
			? SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1) : "(unknown)";
	ereport(ERROR,
			(jam_errcode(JAM_ERR_MISSING_PREIMAGE),
			 errmsg("package references preimage %s, which is not stored", missing),
			 errhint("Store it with jam_put_preimage first.")));
}

PG_FUNCTION_INFO_V1(jam_submit_package);

/*
 * jam_submit_package(service_id, payload, declared_hash, contract_version,
 * weight_hint, preimage_hashes) stores a new pending package and returns its
 * summary with "created": true; an identical package already stored is
 * returned unchanged with "created": false, so a client may retry safely.
 */
Datum
jam_submit_package(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_PACKAGE_SUBMIT);
	static const int argno[5] = {0, 1, 3, 4, 5};
	CheckedPackage pkg;
	uint8		id[JAM_HASH_BYTES];
	char		id_hex[JAM_HASH_HEX_CHARS + 1];
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	const char *token_id = jam_auth_token_id();
	JamSubmitQuota quota;
	int64		wait;
	Datum		doc;
	Datum		receipt = (Datum) 0;
	bool		created;

	jam_check_enabled();
	check_package(fcinfo, argno, &pkg, id);
	jam_hex_encode(id, JAM_HASH_BYTES, id_hex);

	if (!PG_ARGISNULL(2))
	{
		uint8		declared[JAM_HASH_BYTES];

		jam_parse_hash(PG_GETARG_TEXT_PP(2), "declared_hash", declared);
		if (memcmp(declared, id, JAM_HASH_BYTES) != 0)
			ereport(ERROR,
					(jam_errcode(JAM_ERR_HASH_MISMATCH),
					 errmsg("declared hash does not match the package"),
					 errdetail("The declared hash is %s; the package's hash is %s.",
							   text_to_cstring(PG_GETARG_TEXT_PP(2)), id_hex),
					 errhint("README.md documents the encoding the package hash is computed over.")));
	}

	values[0] = CStringGetTextDatum(id_hex);
	values[1] = CStringGetTextDatum(pkg.fields.service_id);
	values[2] = Int32GetDatum(pkg.fields.contract_version);
	values[3] = Int32GetDatum(pkg.fields.weight_hint);
	values[4] = PointerGetDatum(pkg.payload);
	values[5] = PointerGetDatum(pkg.preimage_array);
	values[6] = token_id ? CStringGetTextDatum(token_id) : (Datum) 0;
	if (token_id == NULL)
		nulls[6] = 'n';

	/*
	 * Metering at ingress: the rate is charged before anything is written.
	 * A refused retry of a package already stored is not refused: it gets
	 * the package, as every retry does.
	 */
	jam_auth_require_service(JAM_SCOPE_SUBMIT, pkg.fields.service_id);
	wait = jam_quota_try_submit(pkg.fields.service_id, pkg.fields.weight_hint, &quota);

	SPI_connect();
	if (wait != 0)
	{
		if (jam_spi_exec(&select_package_summary, values, NULL, false, 1) == 0)
			jam_quota_refuse_submit(pkg.fields.service_id, wait, &quota);
		created = false;
	}
	else
	{
		jam_claim_hint_submitting();
		created = jam_spi_exec(&insert_package, values, nulls, false, 0) == 1;
	}
	if (created)
	{
		JamService *svc;
		uint8		meta[JAM_HASH_BYTES];
		int64		largest;

		svc = jam_service_lock(pkg.fields.service_id);
		jam_auth_check_claim(pkg.fields.service_id, svc->tenant);
		svc->pending_count++;
		jam_quota_check_pending(pkg.fields.service_id, svc->pending_count, &quota);

		if (pkg.n_distinct > 0)
		{
			/* A tenant references only what it holds; the rest is not stored, for it. */
			const char *tenant = jam_holders_tenant();
			char	   *not_held = tenant ? jam_holders_first_missing(tenant, pkg.preimage_array) : NULL;

			if (not_held != NULL)
				raise_missing_preimage(&pkg, not_held);
			if (jam_reference_preimages(pkg.distinct_array, &largest) != pkg.n_distinct)
				raise_missing_preimage(&pkg, NULL);
			jam_quota_check_preimage_size(pkg.fields.service_id, largest, &quota);
		}

		jam_log_meta_hash(pkg.fields.service_id,
						  GetUserNameFromId(GetSessionUserId(), false), "", meta);
		receipt = jam_log_append(svc, JAM_LOG_PACKAGE, id_hex, meta,
								 "pending");
		jam_processor_wake_at_commit();
		/* Built whole in one pass, out of SPI's memory, which SPI_finish() frees. */
		doc = SPI_datumTransfer(jam_new_package_document(&pkg, id_hex, token_id, receipt),
								false, -1);
	}
	else
	{
		/* A retry of a stored package costs nothing. */
		if (wait == 0)
		{
			jam_quota_refund_submit(&quota);
			jam_spi_exec(&select_package_summary, values, NULL, false, 1);
		}
		doc = jam_spi_copy_jsonb(1);
		receipt = jam_log_receipt_of(id_hex, JAM_LOG_PACKAGE);
	}
	SPI_finish();

	if (!created)
		doc = jam_with_created_and_receipt(doc, false, receipt);
	jam_metrics_end(metrics, created ? JAM_OUTCOME_CREATED : JAM_OUTCOME_EXISTING);
	PG_RETURN_DATUM(doc);
}

PG_FUNCTION_INFO_V1(jam_package_id);

/*
 * jam_package_id(service_id, payload, contract_version, weight_hint,
 * preimage_hashes) returns the id jam_submit_package would give the package,
 * without storing anything.
 */
Datum
jam_package_id(PG_FUNCTION_ARGS)
{
	static const int argno[5] = {0, 1, 2, 3, 4};
	CheckedPackage pkg;
	uint8		id[JAM_HASH_BYTES];

	check_package(fcinfo, argno, &pkg, id);
	PG_RETURN_TEXT_P(jam_hash_to_text(id));
}

PG_FUNCTION_INFO_V1(jam_get_package);

/* jam_get_package(id) returns the package with its payload in base64. */
Datum
jam_get_package(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_PACKAGE_GET);
	char	   *id;
	Datum		values[1];
	Datum		doc;

	jam_check_enabled();
	jam_auth_require(JAM_SCOPE_READ, "jam_get_package");
	jam_require_arg(fcinfo, 0, "id");
	id = jam_normalize_hash(PG_GETARG_TEXT_PP(0), "id");
	values[0] = CStringGetTextDatum(id);

	SPI_connect();
	/* Another service's package is not found, as if it did not exist. */
	if (jam_spi_exec(&select_package, values, NULL, true, 1) == 0 ||
		!jam_auth_sees_service(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2)))
		ereport(ERROR,
				(jam_errcode(JAM_ERR_PACKAGE_NOT_FOUND),
				 errmsg("package %s not found", id)));
	doc = jam_spi_copy_jsonb(1);
	SPI_finish();

	jam_metrics_end(metrics, JAM_OUTCOME_OK);
	PG_RETURN_DATUM(doc);
}

PG_FUNCTION_INFO_V1(jam_list_packages);

/* jam_list_packages(status, service_id, limit, offset): package summaries in arrival order. */
Datum
jam_list_packages(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_PACKAGE_LIST);
	text	   *filters[2] = {NULL, NULL};
	Datum		doc;

	jam_check_enabled();
	jam_auth_require(JAM_SCOPE_READ, "jam_list_packages");
	jam_require_arg(fcinfo, 2, "limit");
	jam_require_arg(fcinfo, 3, "offset");
	if (!PG_ARGISNULL(0))
	{
		filters[0] = PG_GETARG_TEXT_PP(0);
		jam_check_status_filter(filters[0], package_statuses);
	}
	if (!PG_ARGISNULL(1))
	{
		char	   *service_id = jam_check_service_id(PG_GETARG_TEXT_PP(1));

		jam_auth_require_service(JAM_SCOPE_READ, service_id);
		filters[1] = cstring_to_text(service_id);
	}

	doc = jam_list(&package_list, filters, jam_auth_visible_services(),
				   PG_GETARG_INT32(2), PG_GETARG_INT32(3), jam_list_after(fcinfo));
	jam_metrics_end(metrics, JAM_OUTCOME_OK);
	PG_RETURN_DATUM(doc);
}
