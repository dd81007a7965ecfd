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
#include "blob.h"
#include "errors.h"
#include "claim.h"
#include "fair.h"
#include "metrics.h"
#include "xact_rows.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "postmaster/interrupt.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/regproc.h"

/* Services whose refine function a batch remembers. */
#define JAM_PROCESS_SERVICES_CACHED 16

/* data is NULL for a preimage in the blob store, read through it (blob_tier.c). */
static JamStatement load_preimages = {
	"SELECT @x(hash), data, size FROM jam.jam_preimages WHERE hash = ANY(@ha($1))",
	1, {TEXTARRAYOID}
};

/* The new status of each package of a batch, or of one package (jam_spi_column). [one row] */
static JamStatement finish_packages[2] = {
	{"UPDATE jam.jam_work_packages p SET status = u.st, failure_reason = u.fr, processed_at = now() "
		"FROM unnest($1::text[], $2::text[], $3::text[]) AS u(id, st, fr) WHERE p.id = @h(u.id)",
	3, {TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID}},
	{"UPDATE jam.jam_work_packages SET status = $2, failure_reason = $3, processed_at = now() "
		"WHERE id = @h($1)",
	3, {TEXTOID, TEXTOID, TEXTOID}}
};

/* A claimed package, refined, its outcome not written yet. */
typedef struct Refined
{
	ClaimedPackage pkg;
	JamReport	report;
	Datum		receipt;
} Refined;

/* The refine function of each service a batch has met: read once per service. */
typedef struct RefineCache
{
	int			n;
	const char *service_ids[JAM_PROCESS_SERVICES_CACHED];
	Oid			functions[JAM_PROCESS_SERVICES_CACHED];
} RefineCache;

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

		Datum		data = SPI_getbinval(row, SPI_tuptable->tupdesc, 2, &isnull);

		found_names[i] = SPI_getvalue(row, SPI_tuptable->tupdesc, 1);
		found_data[i] = isnull
			? jam_blob_fetch(found_names[i],
							 DatumGetInt64(SPI_getbinval(row, SPI_tuptable->tupdesc, 3, &isnull)))
			: DatumGetByteaPP(data);
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
 * The service's refine function, read without the service row's lock (a
 * concurrent re-registration takes effect from the next package or batch).
 * Needs SPI.
 */
static Oid
refine_function_of(const char *service_id, RefineCache *cache)
{
	Oid			fn;

	for (int i = 0; i < cache->n; i++)
		if (strcmp(cache->service_ids[i], service_id) == 0)
			return cache->functions[i];
	fn = jam_service_refine_function(service_id);
	if (cache->n < JAM_PROCESS_SERVICES_CACHED)
	{
		cache->service_ids[cache->n] = service_id;
		cache->functions[cache->n++] = fn;
	}
	return fn;
}

/*
 * Refines a claimed package into out->report, writing nothing: the writes
 * come after, for one package or a batch (write_outcomes), so that the
 * service row's lock, which serializes the service's log and lasts until
 * commit, covers only them.  Needs SPI.
 */
static void
refine_claimed(ClaimedPackage *pkg, RefineCache *cache, Refined *out)
{
	JamReport  *report = &out->report;
	JamRefineResult result;
	Oid			refine_function = refine_function_of(pkg->service_id, cache);
	int			attempt;
	bytea	  **inputs;
	int			n_inputs;
	char	   *missing;
	uint8		definition[JAM_HASH_BYTES];

	out->pkg = *pkg;
	missing = load_inputs(pkg->preimage_hashes, &inputs, &n_inputs, &report->preimage_hashes);
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

	report->package_id = pkg->id;
	report->service_id = pkg->service_id;
	report->contract_version = pkg->contract_version;
	report->refine = OidIsValid(refine_function)
		? format_procedure_qualified(refine_function)
		: psprintf("builtin:v%d", pkg->contract_version);
	if (!jam_refine_definition_hash(refine_function, report->refine, definition))
		memset(definition, 0, sizeof(definition));
	jam_hex_encode(definition, JAM_HASH_BYTES, report->refine_hash);
	report->applied = result.ok;
	report->output = result.output;
	report->failure_reason = result.failure_reason;
}

static int
compare_cstrings(const void *a, const void *b)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/*
 * References, for their reports, the preimages the packages' refines read:
 * all in one call, so that their rows are locked in one order (hash order)
 * whatever the batch, as a submit locks them.  A preimage deleted since the
 * refine read it makes the transaction retry.  Needs SPI.
 */
static void
reference_inputs(Refined *items, int n)
{
	char	  **all;
	int			n_all = 0;
	int			total = 0;
	Datum	   *distinct;
	int64	   *counts;
	int			n_distinct = 0;

	for (int i = 0; i < n; i++)
		total += ArrayGetNItems(ARR_NDIM(items[i].report.preimage_hashes),
								ARR_DIMS(items[i].report.preimage_hashes));
	if (total == 0)
		return;
	all = palloc(sizeof(char *) * total);
	for (int i = 0; i < n; i++)
	{
		Datum	   *elems;
		int			k;

		deconstruct_array(items[i].report.preimage_hashes, TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, NULL, &k);
		for (int j = 0; j < k; j++)
			all[n_all++] = TextDatumGetCString(elems[j]);
	}
	qsort(all, n_all, sizeof(char *), compare_cstrings);
	distinct = palloc(sizeof(Datum) * n_all);
	counts = palloc(sizeof(int64) * n_all);
	for (int i = 0; i < n_all; i++)
	{
		if (n_distinct > 0 && strcmp(all[i], all[i - 1]) == 0)
		{
			counts[n_distinct - 1]++;
			continue;
		}
		distinct[n_distinct] = CStringGetTextDatum(all[i]);
		counts[n_distinct++] = 1;
	}
	if (jam_reference_preimages_counted(construct_array(distinct, n_distinct, TEXTOID, -1, false,
														TYPALIGN_INT), counts, NULL) == n_distinct)
		return;
	for (int i = 0; i < n_all; i++)
		if (!jam_preimage_referenced(all[i]))
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("preimage %s was deleted while a package referencing it was processed", all[i]),
					 errhint("Retry: the package is still pending.")));
}

static int
compare_by_service(const void *a, const void *b)
{
	const Refined *const *x = a;
	const Refined *const *y = b;
	int			c = strcmp((*x)->pkg.service_id, (*y)->pkg.service_id);

	if (c != 0)
		return c;
	return (*x)->pkg.seq < (*y)->pkg.seq ? -1 : (*x)->pkg.seq > (*y)->pkg.seq;
}

/*
 * Appends the reports of one service's packages (by_service[0..n), all of
 * that service) to its log, which the caller has locked, a run of packages
 * with the same refine (the same metadata hash) per statement.  Sets each
 * item's receipt when want_receipts.  Needs SPI.
 */
static void
append_reports(JamService *svc, Refined **by_service, int n, bool want_receipts)
{
	char	  **hashes = palloc(sizeof(char *) * n);
	char	  **packages = palloc(sizeof(char *) * n);
	const char **statuses = palloc(sizeof(char *) * n);
	Datum	   *receipts = palloc(sizeof(Datum) * n);

	for (int start = 0; start < n;)
	{
		int			end = start;
		uint8		meta[JAM_HASH_BYTES];

		while (end < n && strcmp(by_service[end]->report.refine, by_service[start]->report.refine) == 0)
		{
			hashes[end - start] = by_service[end]->report.report_hash;
			packages[end - start] = by_service[end]->pkg.id;
			statuses[end - start] = by_service[end]->report.applied ? "applied" : "failed";
			end++;
		}
		jam_log_meta_hash(svc->service_id, jam_node_name, by_service[start]->report.refine, meta);
		jam_log_append_many(svc, JAM_LOG_REPORT, end - start, hashes, meta, statuses, packages,
							want_receipts ? receipts : NULL);
		for (int i = start; want_receipts && i < end; i++)
			by_service[i]->receipt = receipts[i - start];
		start = end;
	}
}

/*
 * Writes the outcomes of n refined packages, each kind of row in one
 * statement: first the reports and attestations and the packages' new
 * status, which no other transaction can touch (the packages are claimed);
 * then each service's row locked (in service order, as every writer of
 * several services takes them), its pending count lowered and its counts
 * of outcomes (packages and reports, applied or failed) raised, the
 * preimages referenced (after the services, as a submit references them),
 * and the reports' log entries.  The service's lock serializes its log and
 * is held until commit, so it is taken last: another processor of the same
 * service waits only for the log append and the commit, not for this
 * transaction's other rows.  With docs, docs[i] is item i's report and
 * items[i].receipt its receipt.  Needs SPI.
 */
static void
write_outcomes(Refined *items, int n, Datum *docs)
{
	Refined   **by_service = palloc(sizeof(Refined *) * n);
	JamReport **reports = palloc(sizeof(JamReport *) * n);
	Datum	   *ids = palloc(sizeof(Datum) * n);
	Datum	   *statuses = palloc(sizeof(Datum) * n);
	Datum	   *reasons = palloc(sizeof(Datum) * n);
	bool	   *reason_null = palloc(sizeof(bool) * n);
	Datum		values[3];
	char		nulls[3];
	int			rows;

	for (int i = 0; i < n; i++)
		reports[i] = &items[i].report;
	jam_store_reports(reports, n, docs);

	for (int i = 0; i < n; i++)
	{
		ids[i] = CStringGetTextDatum(items[i].pkg.id);
		statuses[i] = CStringGetTextDatum(items[i].report.applied ? "applied" : "failed");
		reason_null[i] = items[i].report.applied;
		reasons[i] = reason_null[i] ? (Datum) 0 : CStringGetTextDatum(items[i].report.failure_reason);
	}
	jam_spi_column(values, nulls, 0, ids, NULL, n, TEXTOID);
	jam_spi_column(values, nulls, 1, statuses, NULL, n, TEXTOID);
	jam_spi_column(values, nulls, 2, reasons, reason_null, n, TEXTOID);
	rows = jam_spi_exec(&finish_packages[n == 1], values, nulls, false, 0);
	if (rows != n)
		elog(ERROR, "jam finished %d packages of %d", rows, n);

	for (int i = 0; i < n; i++)
		by_service[i] = &items[i];
	qsort(by_service, n, sizeof(Refined *), compare_by_service);
	for (int i = 0; i < n; i++)
		if (i == 0 || strcmp(by_service[i]->pkg.service_id, by_service[i - 1]->pkg.service_id) != 0)
			(void) jam_service_lock(by_service[i]->pkg.service_id);
	for (int i = 0; i < n; i++)
	{
		JamService *svc = jam_service_lock(by_service[i]->pkg.service_id);

		svc->pending_count--;
		if (by_service[i]->report.applied)
		{
			svc->applied_count++;
			svc->applied_report_count++;
		}
		else
		{
			svc->failed_count++;
			svc->failed_report_count++;
		}
	}
	reference_inputs(items, n);

	for (int start = 0; start < n;)
	{
		int			end = start;

		while (end < n && strcmp(by_service[end]->pkg.service_id, by_service[start]->pkg.service_id) == 0)
			end++;
		append_reports(jam_service_lock(by_service[start]->pkg.service_id), by_service + start,
					   end - start, docs != NULL);
		start = end;
	}
}

/* Pushes a report (write_outcomes' doc) with its receipt as a member. */
static JsonbValue *
with_receipt(JsonbParseState **state, Datum report, Datum receipt)
{
	return jam_jsonb_push_with_member(state, DatumGetJsonbP(report), "receipt",
									  DatumGetJsonbP(receipt));
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
		return jam_claim_next(service_id, pkg);
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
	RefineCache cache = {0};
	Refined		item;
	Datum		doc;
	JsonbParseState *state = NULL;

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
	refine_claimed(&pkg, &cache, &item);
	write_outcomes(&item, 1, &doc);
	doc = JsonbPGetDatum(JsonbValueToJsonb(with_receipt(&state, doc, item.receipt)));
	doc = SPI_datumTransfer(doc, false, -1);
	SPI_finish();

	jam_metrics_end(metrics, item.report.applied ? JAM_OUTCOME_APPLIED : JAM_OUTCOME_FAILED);
	PG_RETURN_DATUM(doc);
}

/*
 * Claims and refines, one by one, up to max_packages pending packages (of
 * service_id, or as fair scheduling picks among visible when it is NULL)
 * into *items; returns how many.  Each package counts as a process call,
 * timed by its refine: the writes it shares with the batch are counted by
 * the caller.  A processor worker asked to stop claims no more, so that it
 * writes what it has refined and leaves.  Needs SPI.
 */
static int
claim_and_refine(const char *service_id, ArrayType *visible, int max_packages,
				 Refined **items, RefineCache *cache)
{
	int			processed = 0;
	int			allocated = Min(max_packages, 64);

	*items = palloc(sizeof(Refined) * allocated);
	while (processed < max_packages && !ShutdownRequestPending)
	{
		ClaimedPackage pkg;
		JamMetricsCall one;

		if (!claim(service_id, visible, &pkg))
			break;
		if (processed == allocated)
		{
			allocated *= 2;
			*items = repalloc(*items, sizeof(Refined) * allocated);
		}
		one = jam_metrics_begin(JAM_OP_PROCESS);
		refine_claimed(&pkg, cache, &(*items)[processed]);
		jam_metrics_end(one, (*items)[processed].report.applied ? JAM_OUTCOME_APPLIED : JAM_OUTCOME_FAILED);
		processed++;
		CHECK_FOR_INTERRUPTS();
	}
	return processed;
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
	RefineCache cache = {0};
	Refined		item;
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_PROCESS);

	SPI_connect();
	if (!claim(NULL, NULL, &pkg))
	{
		SPI_finish();
		jam_metrics_end(metrics, JAM_OUTCOME_EMPTY);
		return false;
	}
	*submitted_at = pkg.submitted_at;
	refine_claimed(&pkg, &cache, &item);
	/* Nobody reads a worker's report document: none is made. */
	write_outcomes(&item, 1, NULL);
	*applied = item.report.applied;
	SPI_finish();
	jam_metrics_end(metrics, *applied ? JAM_OUTCOME_APPLIED : JAM_OUTCOME_FAILED);
	return true;
}

/*
 * Processes up to max_packages pending packages of any service in fair
 * order, their outcomes written together as jam_process_packages(NULL, n)
 * writes them, for the processor workers (jam.processor_batch_size);
 * returns how many, each described in out[i].
 */
int
jam_process_some(int max_packages, JamProcessed *out)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_PROCESS_BATCH);
	RefineCache cache = {0};
	Refined    *items;
	int			processed;

	SPI_connect();
	processed = claim_and_refine(NULL, NULL, max_packages, &items, &cache);
	if (processed > 0)
		write_outcomes(items, processed, NULL);
	for (int i = 0; i < processed; i++)
	{
		out[i].applied = items[i].report.applied;
		out[i].submitted_at = items[i].pkg.submitted_at;
	}
	SPI_finish();
	jam_metrics_end(metrics, processed > 0 ? JAM_OUTCOME_OK : JAM_OUTCOME_EMPTY);
	return processed;
}

/* A call processes at most this many packages: a bound on one transaction's work. */
#define JAM_MAX_PROCESS_BATCH 10000

PG_FUNCTION_INFO_V1(jam_process_packages);

/*
 * jam_process_packages(service_id, max_packages) processes up to
 * max_packages pending packages, oldest first (of that service, or as fair
 * scheduling picks when NULL), in the caller's transaction, and returns
 * {processed, reports}.  It claims and refines them one by one, then
 * writes all their outcomes together, a statement per kind of row.
 */
Datum
jam_process_packages(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_PROCESS_BATCH);
	char	   *service_id;
	int32		max_packages;
	ArrayType  *visible;
	JsonbParseState *state = NULL;
	JsonbValue	count;
	int			processed;
	Refined    *items;
	RefineCache cache = {0};
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

	SPI_connect();
	processed = claim_and_refine(service_id, visible, max_packages, &items, &cache);
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	jam_jsonb_push_key(&state, "processed");
	count.type = jbvNumeric;
	count.val.numeric = int64_to_numeric(processed);
	pushJsonbValue(&state, WJB_VALUE, &count);
	jam_jsonb_push_key(&state, "reports");
	pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
	if (processed > 0)
	{
		Datum	   *docs = palloc(sizeof(Datum) * processed);

		write_outcomes(items, processed, docs);
		for (int i = 0; i < processed; i++)
			(void) with_receipt(&state, docs[i], items[i].receipt);
	}
	pushJsonbValue(&state, WJB_END_ARRAY, NULL);
	doc = JsonbPGetDatum(JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL)));
	doc = SPI_datumTransfer(doc, false, -1);
	SPI_finish();

	jam_metrics_end(metrics, processed > 0 ? JAM_OUTCOME_OK : JAM_OUTCOME_EMPTY);
	PG_RETURN_DATUM(doc);
}
