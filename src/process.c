/*
 * process.c: jam_process_next and jam_process_packages, the queue's
 * consumer side.
 *
 * The oldest pending package is claimed the way FOR UPDATE SKIP LOCKED
 * claims rows (claim.c), so any number of concurrent callers each take a
 * different package without waiting for one another, and refine
 * concurrently; only appending the report to the service's log queues
 * behind other writers of the same service, from the append until commit.
 * The refine runs, the report and attestation are written and the package
 * leaves the pending state, and the report is appended to the service's
 * verifiable log, all in the caller's transaction: if that transaction
 * aborts, the package is pending again.
 *
 * Locks are taken in the order submit takes them (service row, then
 * preimage rows, in hash order) so that processing and submitting cannot
 * deadlock.
 */
#include "jam.h"
#include "auth.h"
#include "errors.h"
#include "claim.h"
#include "fair.h"
#include "metrics.h"
#include "xact_rows.h"

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/regproc.h"

static JamStatement load_preimages = {
	"SELECT @x(hash), data FROM jam.jam_preimages WHERE hash = ANY(@ha($1))",
	1, {TEXTARRAYOID}
};

static JamStatement finish_package = {
	"UPDATE jam.jam_work_packages SET status = $2, failure_reason = $3, processed_at = now() "
	"WHERE id = @h($1)",
	3, {TEXTOID, TEXTOID, TEXTOID}
};

/*
 * Loads the referenced preimages' bytes in the package's order into inputs
 * and the distinct stored hashes into *held.  Returns the first hash that
 * is not stored, or NULL when all are.
 */
static char *
load_inputs(ArrayType *hashes, bytea ***inputs, int *n_inputs, ArrayType **held)
{
	Datum	   *wanted;
	int			n_wanted;
	char	  **found_names;
	Datum	   *held_hashes;
	int			n_held = 0;
	bytea	  **found_data;
	int			n_found;
	Datum		values[1] = {PointerGetDatum(hashes)};
	char	   *missing = NULL;

	deconstruct_array(hashes, TEXTOID, -1, false, TYPALIGN_INT, &wanted, NULL, &n_wanted);
	*inputs = palloc(sizeof(bytea *) * Max(n_wanted, 1));
	*n_inputs = n_wanted;

	n_found = n_wanted > 0 ? jam_spi_exec(&load_preimages, values, NULL, false, 0) : 0;
	found_names = palloc(sizeof(char *) * Max(n_found, 1));
	found_data = palloc(sizeof(bytea *) * Max(n_found, 1));
	for (int i = 0; i < n_found; i++)
	{
		HeapTuple	row = SPI_tuptable->vals[i];
		bool		isnull;

		found_names[i] = SPI_getvalue(row, SPI_tuptable->tupdesc, 1);
		found_data[i] = DatumGetByteaPP(SPI_getbinval(row, SPI_tuptable->tupdesc, 2, &isnull));
	}

	/* held lists each stored hash once, in the package's order, so reports are reproducible. */
	held_hashes = palloc(sizeof(Datum) * Max(n_wanted, 1));
	for (int i = 0; i < n_wanted; i++)
	{
		char	   *name = TextDatumGetCString(wanted[i]);
		int			found = -1;
		bool		already = false;

		for (int j = 0; j < n_found && found < 0; j++)
			if (strcmp(name, found_names[j]) == 0)
				found = j;
		(*inputs)[i] = found >= 0 ? found_data[found] : NULL;
		if (found < 0)
		{
			if (missing == NULL)
				missing = name;
			continue;
		}
		for (int h = 0; h < n_held && !already; h++)
			already = strcmp(name, TextDatumGetCString(held_hashes[h])) == 0;
		if (!already)
			held_hashes[n_held++] = wanted[i];
	}
	*held = construct_array(held_hashes, n_held, TEXTOID, -1, false, TYPALIGN_INT);
	return missing;
}

/*
 * Refines a claimed package and writes its outcome: the report and its
 * attestation, the package's new status, the report's log entry.  Returns
 * the report with its receipt; *applied says whether the refine succeeded.
 * Needs SPI.
 */
static Datum
process_claimed(ClaimedPackage *pkg, bool *applied)
{
	JamReport	report;
	JamRefineResult result;
	JamService *svc;
	Oid			refine_function;
	int			attempt;
	uint8		meta[JAM_HASH_BYTES];
	Datum		receipt;
	bytea	  **inputs;
	int			n_inputs;
	char	   *missing;
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	Datum		doc;

	/*
	 * Refine before taking the service row's lock, so that the lock, which
	 * serializes the service's log and lasts until commit, covers only the
	 * writes.  The refine function is read without the lock; a concurrent
	 * re-registration takes effect from the next package.
	 */
	refine_function = jam_service_refine_function(pkg->service_id);
	missing = load_inputs(pkg->preimage_hashes, &inputs, &n_inputs, &report.preimage_hashes);
	attempt = jam_attempts_start(pkg->id);
	result.ok = false;
	result.output = NULL;
	if (missing)
		result.failure_reason = psprintf("referenced preimage %s is not stored", missing);
	else if (attempt > jam_max_refine_attempts)
		result.failure_reason =
			psprintf("the refine was interrupted %d times (canceled, timed out, or its server process ended) and is not run again",
					 attempt - 1);
	else
		result = jam_refine(pkg->contract_version, refine_function, pkg->payload,
							n_inputs, inputs);
	jam_attempts_done(pkg->id);

	svc = jam_service_lock(pkg->service_id);
	svc->pending_count--;
	if (jam_reference_preimages(report.preimage_hashes, NULL) !=
		ArrayGetNItems(ARR_NDIM(report.preimage_hashes), ARR_DIMS(report.preimage_hashes)))
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("a preimage of package %s was deleted while it was processed", pkg->id),
				 errhint("Retry: the package is still pending.")));

	report.package_id = pkg->id;
	report.service_id = pkg->service_id;
	report.contract_version = pkg->contract_version;
	report.refine = OidIsValid(refine_function)
		? format_procedure_qualified(refine_function)
		: psprintf("builtin:v%d", pkg->contract_version);
	{
		uint8		definition[JAM_HASH_BYTES];

		if (!jam_refine_definition_hash(refine_function, report.refine, definition))
			memset(definition, 0, sizeof(definition));
		jam_hex_encode(definition, JAM_HASH_BYTES, report.refine_hash);
	}
	report.applied = result.ok;
	report.output = result.output;
	report.failure_reason = result.failure_reason;
	doc = jam_store_report(&report);

	jam_log_meta_hash(pkg->service_id, jam_node_name, report.refine, meta);
	receipt = jam_log_append(svc, JAM_LOG_REPORT, report.report_hash, meta,
							 result.ok ? "applied" : "failed");

	values[0] = CStringGetTextDatum(pkg->id);
	values[1] = CStringGetTextDatum(result.ok ? "applied" : "failed");
	if (result.ok)
		nulls[2] = 'n';
	else
		values[2] = CStringGetTextDatum(result.failure_reason);
	jam_spi_exec(&finish_package, values, nulls, false, 0);

	*applied = result.ok;
	return jam_with_member(doc, "receipt", receipt);
}

/*
 * Claims the oldest pending package of service_id, or, when that is NULL,
 * the package fair scheduling picks among the services in visible (NULL:
 * all).  Needs SPI.
 */
static bool
claim(const char *service_id, ArrayType *visible, ClaimedPackage *pkg)
{
	if (service_id != NULL)
		return jam_claim_next(service_id, NULL, pkg);
	return jam_fair_claim(visible, pkg);
}

/* The service argument at argno checked against the token, or NULL for any service. */
static char *
service_filter(FunctionCallInfo fcinfo, int argno)
{
	char	   *service_id;

	if (PG_ARGISNULL(argno))
		return NULL;
	service_id = jam_check_service_id(PG_GETARG_TEXT_PP(argno));
	jam_auth_require_service(JAM_SCOPE_PROCESS, service_id);
	return service_id;
}

PG_FUNCTION_INFO_V1(jam_process_next);

/*
 * jam_process_next(service_id) processes the oldest pending package (of
 * that service, or of any when NULL) and returns its report, or NULL when
 * no package is pending.
 */
Datum
jam_process_next(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_PROCESS);
	char	   *service_id;
	ClaimedPackage pkg;
	bool		applied;
	Datum		doc;

	jam_check_enabled();
	jam_auth_require(JAM_SCOPE_PROCESS, "jam_process_next");
	service_id = service_filter(fcinfo, 0);

	SPI_connect();
	if (!claim(service_id, service_id ? NULL : jam_auth_visible_services(), &pkg))
	{
		SPI_finish();
		jam_metrics_end(metrics, JAM_OUTCOME_EMPTY);
		PG_RETURN_NULL();
	}
	doc = SPI_datumTransfer(process_claimed(&pkg, &applied), false, -1);
	SPI_finish();

	jam_metrics_end(metrics, applied ? JAM_OUTCOME_APPLIED : JAM_OUTCOME_FAILED);
	PG_RETURN_DATUM(doc);
}

/*
 * Processes the oldest pending package of any service, as jam_process_next()
 * does, for the processor workers (processor.c); false when none is
 * pending.  *applied and *submitted_at describe the package processed.
 */
bool
jam_process_one(bool *applied, TimestampTz *submitted_at)
{
	ClaimedPackage pkg;
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_PROCESS);

	SPI_connect();
	if (!claim(NULL, NULL, &pkg))
	{
		SPI_finish();
		jam_metrics_end(metrics, JAM_OUTCOME_EMPTY);
		return false;
	}
	*submitted_at = pkg.submitted_at;
	(void) process_claimed(&pkg, applied);
	SPI_finish();
	jam_metrics_end(metrics, *applied ? JAM_OUTCOME_APPLIED : JAM_OUTCOME_FAILED);
	return true;
}

/* A call processes at most this many packages: a bound on one transaction's work. */
#define JAM_MAX_PROCESS_BATCH 10000

PG_FUNCTION_INFO_V1(jam_process_packages);

/*
 * jam_process_packages(service_id, max_packages) processes up to
 * max_packages pending packages, oldest first (of that service, or of any
 * when NULL), in the caller's transaction, and returns {processed, reports}.
 */
Datum
jam_process_packages(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_PROCESS_BATCH);
	char	   *service_id;
	int32		max_packages;
	ArrayType  *visible;
	StringInfoData s;
	int			processed = 0;
	Datum		doc;

	jam_check_enabled();
	jam_auth_require(JAM_SCOPE_PROCESS, "jam_process_packages");
	service_id = service_filter(fcinfo, 0);
	jam_require_arg(fcinfo, 1, "max_packages");
	max_packages = PG_GETARG_INT32(1);
	if (max_packages < 1 || max_packages > JAM_MAX_PROCESS_BATCH)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("max_packages must be between 1 and %d", JAM_MAX_PROCESS_BATCH),
				 errdetail("The max_packages given was %d.", max_packages)));
	visible = service_id ? NULL : jam_auth_visible_services();

	initStringInfo(&s);
	appendStringInfoString(&s, "[");
	SPI_connect();
	while (processed < max_packages)
	{
		ClaimedPackage pkg;
		bool		applied;
		Jsonb	   *report;
		JamMetricsCall one;

		if (!claim(service_id, visible, &pkg))
			break;
		/* Each package counts as a process call too, as if processed alone. */
		one = jam_metrics_begin(JAM_OP_PROCESS);
		report = DatumGetJsonbP(process_claimed(&pkg, &applied));
		jam_metrics_end(one, applied ? JAM_OUTCOME_APPLIED : JAM_OUTCOME_FAILED);
		if (processed++ > 0)
			appendStringInfoString(&s, ", ");
		(void) JsonbToCString(&s, &report->root, VARSIZE(report));
		CHECK_FOR_INTERRUPTS();
	}
	SPI_finish();
	appendStringInfoString(&s, "]");
	doc = jam_with_member(DirectFunctionCall1(jsonb_in, CStringGetDatum(
							  psprintf("{\"processed\": %d}", processed))),
						  "reports", DirectFunctionCall1(jsonb_in, CStringGetDatum(s.data)));

	jam_metrics_end(metrics, processed > 0 ? JAM_OUTCOME_OK : JAM_OUTCOME_EMPTY);
	PG_RETURN_DATUM(doc);
}
