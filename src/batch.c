/*
 * batch.c: many packages of one service in one call (jam_submit_packages).
 *
 * A batch is checked whole before anything is written: every package's
 * fields, hash and declared hash, then the rate (charged once, for the sum
 * of the weights).  It is then written with one INSERT of all the
 * packages, one lock of the service row, one reference per preimage and one
 * extension of the service's log by a leaf per new package: the cost
 * of a package in a batch is a fraction of a single submit's.  Like a
 * single submit it is idempotent per package (a package already stored is
 * returned with "created": false and its receipt), and all or nothing: an
 * error names the first bad package as "packages[i]: ..." (0-based) and
 * writes nothing.
 */
#include "jam.h"
#include "auth.h"
#include "claim_hint.h"
#include "errors.h"
#include "holders.h"
#include "metrics.h"
#include "package.h"
#include "processor.h"
#include "quota.h"
#include "xact_rows.h"

#include "catalog/pg_type.h"
#include "common/base64.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

/* A batch holds at most this many packages: a bound on one transaction's work. */
#define JAM_MAX_BATCH 10000

typedef struct BatchItem
{
	CheckedPackage pkg;
	uint8		id[JAM_HASH_BYTES];
	char		id_hex[JAM_HASH_HEX_CHARS + 1];
	int			first;			/* the first item with this id (itself when it is) */
	bool		created;
	Datum		summary;		/* of a package stored before; one created here has none */
	Datum		receipt;
} BatchItem;

typedef struct IdSlot
{
	char		key[JAM_HASH_HEX_CHARS + 1];
	int			item;
} IdSlot;

static JamStatement insert_packages = {
	"INSERT INTO jam.jam_work_packages "
	"(id, service_id, contract_version, weight_hint, payload, preimage_hashes, token_id) "
	"SELECT @h(u.id), $2, u.cv, u.w, u.payload, @ha(string_to_array(u.h, ',')), $7 "
	"FROM unnest($1::text[], $3::integer[], $4::integer[], $5::bytea[], $6::text[]) "
	"     WITH ORDINALITY AS u(id, cv, w, payload, h, ord) "
	"ORDER BY u.ord ON CONFLICT (id) DO NOTHING "
	"RETURNING @x(id)",
	7, {TEXTARRAYOID, TEXTOID, INT4ARRAYOID, INT4ARRAYOID, BYTEAARRAYOID, TEXTARRAYOID, TEXTOID}
};

static JamStatement select_packages = {
	"SELECT @x(id), " PACKAGE_SUMMARY_JSON " FROM jam.jam_work_packages WHERE id = ANY(@ha($1))",
	1, {TEXTARRAYOID}
};

/*
 * Runs check on item i, naming the package in any error jam raises: the
 * checks are pure computations, so the error can be caught, renamed and
 * raised again.
 */
#define CHECK_ITEM(i, check) \
	do { \
		MemoryContext check_cxt = CurrentMemoryContext; \
		PG_TRY(); \
		{ \
			check; \
		} \
		PG_CATCH(); \
		{ \
			ErrorData  *edata; \
			MemoryContextSwitchTo(check_cxt); \
			edata = CopyErrorData(); \
			if (strncmp(unpack_sql_state(edata->sqlerrcode), "JM", 2) != 0) \
				PG_RE_THROW(); \
			FlushErrorState(); \
			edata->message = psprintf("packages[%d]: %s", (i), edata->message); \
			ReThrowError(edata); \
		} \
		PG_END_TRY(); \
	} while (0)

static void
raise_batch(const char *what)
{
	ereport(ERROR,
			(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
			 errmsg("%s", what)));
}

/* Checks one package and its declared hash, if any, into item. */
static void
check_item(BatchItem *item, char *service_id, bytea *payload, int32 contract_version,
		   int32 weight_hint, ArrayType *preimage_hashes, text *declared_hash)
{
	jam_check_package(service_id, payload, contract_version, weight_hint, preimage_hashes,
					  &item->pkg, item->id);
	jam_hex_encode(item->id, JAM_HASH_BYTES, item->id_hex);
	if (declared_hash != NULL)
	{
		uint8		declared[JAM_HASH_BYTES];

		jam_parse_hash(declared_hash, "declared_hash", declared);
		if (memcmp(declared, item->id, JAM_HASH_BYTES) != 0)
			ereport(ERROR,
					(jam_errcode(JAM_ERR_HASH_MISMATCH),
					 errmsg("declared hash does not match the package"),
					 errdetail("The declared hash is %s; the package's hash is %s.",
							   text_to_cstring(declared_hash), item->id_hex),
					 errhint("README.md documents the encoding the package hash is computed over.")));
	}
}

/* The hashes of a package's preimage list, joined with commas for the INSERT. */
static text *
joined_hashes(ArrayType *hashes)
{
	Datum	   *elems;
	int			n;
	StringInfoData s;

	deconstruct_array(hashes, TEXTOID, -1, false, TYPALIGN_INT, &elems, NULL, &n);
	initStringInfo(&s);
	for (int i = 0; i < n; i++)
		appendStringInfo(&s, "%s%s", i > 0 ? "," : "", TextDatumGetCString(elems[i]));
	return cstring_to_text(s.data);
}

static ArrayType *
text_array(Datum *elems, int n)
{
	return construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT);
}

/* Fills first, and returns a table from id to the first item with it. */
static HTAB *
index_ids(BatchItem *items, int n)
{
	HASHCTL		ctl;
	HTAB	   *ids;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = JAM_HASH_HEX_CHARS + 1;
	ctl.entrysize = sizeof(IdSlot);
	ctl.hcxt = CurrentMemoryContext;
	ids = hash_create("jam batch ids", Max(n, 16), &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	for (int i = 0; i < n; i++)
	{
		bool		found;
		IdSlot	   *slot = hash_search(ids, items[i].id_hex, HASH_ENTER, &found);

		if (!found)
			slot->item = i;
		items[i].first = slot->item;
	}
	return ids;
}

/* Inserts the batch's packages; marks and documents the ones that were new. Needs SPI. */
static int
insert_batch(const char *service_id, BatchItem *items, int n, HTAB *ids)
{
	Datum	   *id_elems = palloc(sizeof(Datum) * n);
	Datum	   *cv_elems = palloc(sizeof(Datum) * n);
	Datum	   *w_elems = palloc(sizeof(Datum) * n);
	Datum	   *payloads = palloc(sizeof(Datum) * n);
	Datum	   *hashes = palloc(sizeof(Datum) * n);
	const char *token_id = jam_auth_token_id();
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	int			rows;

	for (int i = 0; i < n; i++)
	{
		id_elems[i] = CStringGetTextDatum(items[i].id_hex);
		cv_elems[i] = Int32GetDatum(items[i].pkg.fields.contract_version);
		w_elems[i] = Int32GetDatum(items[i].pkg.fields.weight_hint);
		payloads[i] = PointerGetDatum(items[i].pkg.payload);
		hashes[i] = PointerGetDatum(joined_hashes(items[i].pkg.preimage_array));
	}
	values[0] = PointerGetDatum(text_array(id_elems, n));
	values[1] = CStringGetTextDatum(service_id);
	values[2] = PointerGetDatum(construct_array(cv_elems, n, INT4OID, 4, true, TYPALIGN_INT));
	values[3] = PointerGetDatum(construct_array(w_elems, n, INT4OID, 4, true, TYPALIGN_INT));
	values[4] = PointerGetDatum(construct_array(payloads, n, BYTEAOID, -1, false, TYPALIGN_INT));
	values[5] = PointerGetDatum(text_array(hashes, n));
	values[6] = token_id ? CStringGetTextDatum(token_id) : (Datum) 0;
	if (token_id == NULL)
		nulls[6] = 'n';

	rows = jam_spi_exec(&insert_packages, values, nulls, false, 0);
	for (int r = 0; r < rows; r++)
	{
		IdSlot	   *slot = hash_search(ids, SPI_getvalue(SPI_tuptable->vals[r],
														SPI_tuptable->tupdesc, 1),
									   HASH_FIND, NULL);

		if (slot == NULL)
			elog(ERROR, "jam inserted a package that is not in the batch");
		/* Its summary is built from the item (package_summary.c). */
		items[slot->item].created = true;
	}
	return rows;
}

/* Raises missing_preimage for the first new package of the batch that references hash. */
static void
raise_missing_in_batch(BatchItem *items, int n, const char *hash)
{
	for (int i = 0; i < n; i++)
	{
		Datum	   *elems;
		int			k;

		if (!items[i].created)
			continue;
		deconstruct_array(items[i].pkg.preimage_array, TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, NULL, &k);
		for (int j = 0; j < k; j++)
			if (strcmp(TextDatumGetCString(elems[j]), hash) == 0)
				ereport(ERROR,
						(jam_errcode(JAM_ERR_MISSING_PREIMAGE),
						 errmsg("packages[%d]: package references preimage %s, which is not stored",
								i, hash),
						 errhint("Store it with jam_put_preimage first.")));
	}
	elog(ERROR, "jam lost the package that references preimage %s", hash);
}

/*
 * References the preimages of the new packages, each distinct hash of a
 * package once, and checks that they are stored and within the size quota.
 * Needs SPI.
 */
static void
reference_batch_preimages(const char *service_id, BatchItem *items, int n,
						  const JamSubmitQuota *quota)
{
	HASHCTL		ctl;
	HTAB	   *counts;
	HASH_SEQ_STATUS seq;
	struct
	{
		char		key[JAM_HASH_HEX_CHARS + 1];
		int64		n;
	}		   *entry;
	Datum	   *hashes;
	int64	   *n_refs;
	int			n_hashes = 0;
	int64		largest;
	List	   *ordered = NIL;	/* each hash once, in the packages' order */
	ArrayType  *in_order = NULL;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = JAM_HASH_HEX_CHARS + 1;
	ctl.entrysize = sizeof(*entry);
	ctl.hcxt = CurrentMemoryContext;
	counts = hash_create("jam batch preimages", 64, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	for (int i = 0; i < n; i++)
	{
		Datum	   *elems;
		int			k;

		if (!items[i].created)
			continue;
		deconstruct_array(items[i].pkg.distinct_array, TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, NULL, &k);
		for (int j = 0; j < k; j++)
		{
			bool		found;

			entry = hash_search(counts, TextDatumGetCString(elems[j]), HASH_ENTER, &found);
			entry->n = found ? entry->n + 1 : 1;
			if (!found)
				ordered = lappend(ordered, DatumGetPointer(elems[j]));
		}
	}
	if (ordered != NIL)
	{
		Datum	   *elems = palloc(sizeof(Datum) * list_length(ordered));
		int			k = 0;
		ListCell   *lc;

		foreach(lc, ordered)
			elems[k++] = PointerGetDatum(lfirst(lc));
		in_order = text_array(elems, k);
	}
	if (hash_get_num_entries(counts) == 0)
		return;

	hashes = palloc(sizeof(Datum) * hash_get_num_entries(counts));
	n_refs = palloc(sizeof(int64) * hash_get_num_entries(counts));
	hash_seq_init(&seq, counts);
	while ((entry = hash_seq_search(&seq)) != NULL)
	{
		hashes[n_hashes] = CStringGetTextDatum(entry->key);
		n_refs[n_hashes++] = entry->n;
	}
	if (jam_holders_tenant() != NULL)
	{
		/*
		 * A tenant references only what it holds (holders.c).  Asked in the
		 * packages' order, so that the error names the first bad package.
		 */
		char	   *not_held = jam_holders_first_missing(jam_holders_tenant(), in_order);

		if (not_held != NULL)
			raise_missing_in_batch(items, n, not_held);
	}
	if (jam_reference_preimages_counted(text_array(hashes, n_hashes), n_refs, &largest) != n_hashes)
	{
		for (int i = 0; i < n; i++)
		{
			Datum	   *elems;
			int			k;

			if (!items[i].created)
				continue;
			deconstruct_array(items[i].pkg.preimage_array, TEXTOID, -1, false, TYPALIGN_INT,
							  &elems, NULL, &k);
			for (int j = 0; j < k; j++)
				if (!jam_preimage_referenced(TextDatumGetCString(elems[j])))
					raise_missing_in_batch(items, n, TextDatumGetCString(elems[j]));
		}
	}
	jam_quota_check_preimage_size(service_id, largest, quota);
}

/* Summaries and receipts of the batch's packages that were already stored. Needs SPI. */
static void
fetch_existing(BatchItem *items, int n, HTAB *ids)
{
	Datum	   *id_elems = palloc(sizeof(Datum) * n);
	char	  **id_strs = palloc(sizeof(char *) * n);
	Datum	   *receipts;
	int			k = 0;
	Datum		values[1];
	int			rows;

	for (int i = 0; i < n; i++)
		if (items[i].first == i && !items[i].created)
		{
			id_strs[k] = items[i].id_hex;
			id_elems[k++] = CStringGetTextDatum(items[i].id_hex);
		}
	if (k == 0)
		return;
	values[0] = PointerGetDatum(text_array(id_elems, k));
	rows = jam_spi_exec(&select_packages, values, NULL, false, 0);
	for (int r = 0; r < rows; r++)
	{
		bool		isnull;
		IdSlot	   *slot = hash_search(ids, SPI_getvalue(SPI_tuptable->vals[r],
														SPI_tuptable->tupdesc, 1),
									   HASH_FIND, NULL);

		items[slot->item].summary =
			SPI_datumTransfer(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2,
											&isnull), false, -1);
	}
	receipts = palloc0(sizeof(Datum) * k);
	jam_log_receipts_of(k, id_strs, JAM_LOG_PACKAGE, receipts);
	for (int j = 0; j < k; j++)
	{
		IdSlot	   *slot = hash_search(ids, id_strs[j], HASH_FIND, NULL);

		items[slot->item].receipt = receipts[j];
	}
}

/*
 * {service_id, count, created, packages: [summary + created + receipt, ...]},
 * assembled from the stored documents without printing and parsing them.
 */
static Datum
batch_document(const char *service_id, BatchItem *items, int n, int created, const char *token_id)
{
	JsonbParseState *state = NULL;
	JsonbValue	v;
	JsonbValue *doc;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	jam_jsonb_push_key(&state, "service_id");
	v.type = jbvString;
	v.val.string.val = (char *) service_id;
	v.val.string.len = strlen(service_id);
	pushJsonbValue(&state, WJB_VALUE, &v);
	jam_jsonb_push_key(&state, "count");
	v.type = jbvNumeric;
	v.val.numeric = int64_to_numeric(n);
	pushJsonbValue(&state, WJB_VALUE, &v);
	jam_jsonb_push_key(&state, "created");
	v.val.numeric = int64_to_numeric(created);
	pushJsonbValue(&state, WJB_VALUE, &v);
	jam_jsonb_push_key(&state, "packages");
	pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < n; i++)
	{
		BatchItem  *first = &items[items[i].first];

		if (first->created)
		{
			/* Inserted by this call: its summary comes from the item itself. */
			JamJsonbMember added[2];
			int			n_added = jam_created_and_receipt_members(items[i].created, first->receipt,
																  added);

			pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
			jam_jsonb_push_new_package(&state, &first->pkg, first->id_hex, token_id, added, n_added);
			pushJsonbValue(&state, WJB_END_OBJECT, NULL);
			continue;
		}
		if (first->summary == (Datum) 0)
			elog(ERROR, "jam lost package %s of the batch", first->id_hex);
		(void) jam_jsonb_push_submitted(&state, first->summary, items[i].created, first->receipt);
	}
	pushJsonbValue(&state, WJB_END_ARRAY, NULL);
	doc = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbPGetDatum(JsonbValueToJsonb(doc));
}

/* Writes a checked batch of n packages of service_id and returns its document. */
static Datum
submit_batch(const char *service_id, BatchItem *items, int n)
{
	JamSubmitQuota quota;
	int64		weight = 0;
	int64		wait;
	HTAB	   *ids = index_ids(items, n);
	int			created = 0;
	Datum		doc;

	jam_auth_require_service(JAM_SCOPE_SUBMIT, service_id);
	for (int i = 0; i < n; i++)
		weight += items[i].pkg.fields.weight_hint;

	/* Metered at ingress, as one request weighing all its packages. */
	wait = jam_quota_try_submit(service_id, (int32) Min(weight, PG_INT32_MAX), &quota);

	SPI_connect();
	if (wait == 0)
	{
		jam_claim_hint_submitting();
		created = insert_batch(service_id, items, n, ids);
	}
	if (created > 0)
	{
		JamService *svc;
		char	  **new_ids = palloc(sizeof(char *) * created);
		const char **pending = palloc(sizeof(char *) * created);
		Datum	   *receipts = palloc(sizeof(Datum) * created);
		uint8		meta[JAM_HASH_BYTES];
		int			k = 0;

		svc = jam_service_lock(service_id);
		jam_auth_check_claim(service_id, svc->tenant);
		svc->pending_count += created;
		jam_quota_check_pending(service_id, svc->pending_count, &quota);
		reference_batch_preimages(service_id, items, n, &quota);

		for (int i = 0; i < n; i++)
			if (items[i].created)
			{
				pending[k] = "pending";
				new_ids[k++] = items[i].id_hex;
			}
		jam_log_meta_hash(service_id, GetUserNameFromId(GetSessionUserId(), false), "", meta);
		jam_log_append_many(svc, JAM_LOG_PACKAGE, created, new_ids, meta, pending, NULL, receipts);
		jam_processor_wake_at_commit();
		k = 0;
		for (int i = 0; i < n; i++)
			if (items[i].created)
				items[i].receipt = receipts[k++];
	}
	else if (wait == 0)
		jam_quota_refund_submit(&quota);
	fetch_existing(items, n, ids);
	if (wait != 0)
	{
		/* Refused by the rate, unless every package is a retry of a stored one. */
		for (int i = 0; i < n; i++)
			if (!items[items[i].first].created && items[items[i].first].summary == (Datum) 0)
				jam_quota_refuse_submit(service_id, wait, &quota);
	}
	SPI_finish();

	doc = batch_document(service_id, items, n, created, jam_auth_token_id());
	return doc;
}

static int
check_batch_size(int n)
{
	if (n == 0)
		raise_batch("a batch needs at least one package");
	if (n > JAM_MAX_BATCH)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("a batch holds at most %d packages", JAM_MAX_BATCH),
				 errdetail("This batch has %d.", n),
				 errhint("Split it into several calls.")));
	return n;
}

PG_FUNCTION_INFO_V1(jam_submit_packages);

/*
 * jam_submit_packages(service_id, payloads, contract_version, weight_hint)
 * submits one package per payload, all with the same contract version and
 * weight and no preimages.
 */
Datum
jam_submit_packages(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_PACKAGE_SUBMIT_BATCH);
	char	   *service_id;
	ArrayType  *payloads;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	BatchItem  *items;
	ArrayType  *no_preimages = construct_empty_array(TEXTOID);
	Datum		doc;
	int			created = 0;

	jam_check_enabled();
	jam_require_arg(fcinfo, 0, "service_id");
	jam_require_arg(fcinfo, 1, "payloads");
	jam_require_arg(fcinfo, 2, "contract_version");
	jam_require_arg(fcinfo, 3, "weight_hint");
	service_id = jam_check_service_id(PG_GETARG_TEXT_PP(0));
	payloads = PG_GETARG_ARRAYTYPE_P(1);
	if (ARR_NDIM(payloads) > 1)
		raise_batch("payloads must be a one-dimensional array");
	deconstruct_array(payloads, BYTEAOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	check_batch_size(n);

	items = palloc0(sizeof(BatchItem) * n);
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
					 errmsg("packages[%d]: payload must not be null", i)));
		CHECK_ITEM(i, check_item(&items[i], service_id, DatumGetByteaPP(elems[i]),
								 PG_GETARG_INT32(2), PG_GETARG_INT32(3), no_preimages, NULL));
	}

	doc = submit_batch(service_id, items, n);
	for (int i = 0; i < n; i++)
		created += items[i].created;
	jam_metrics_end(metrics, created > 0 ? JAM_OUTCOME_CREATED : JAM_OUTCOME_EXISTING);
	PG_RETURN_DATUM(doc);
}

/* The value of key in a package object, or NULL when absent or JSON null. */
static JsonbValue *
member(JsonbContainer *object, const char *key, JsonbValue *out)
{
	JsonbValue	k;
	JsonbValue *v;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	v = findJsonbValueFromContainer(object, JB_FOBJECT, &k);
	if (v == NULL || v->type == jbvNull)
		return NULL;
	*out = *v;
	return out;
}

static text *
string_member(JsonbContainer *object, const char *key, bool required)
{
	JsonbValue	v;

	if (member(object, key, &v) == NULL)
	{
		if (required)
			raise_batch(psprintf("%s is required", key));
		return NULL;
	}
	if (v.type != jbvString)
		raise_batch(psprintf("%s must be a string", key));
	return cstring_to_text_with_len(v.val.string.val, v.val.string.len);
}

static int32
integer_member(JsonbContainer *object, const char *key, int32 absent)
{
	JsonbValue	v;
	Datum		n;

	if (member(object, key, &v) == NULL)
		return absent;
	if (v.type != jbvNumeric)
		raise_batch(psprintf("%s must be an integer", key));
	n = NumericGetDatum(v.val.numeric);
	if (!DatumGetBool(DirectFunctionCall2(numeric_eq, n,
										  DirectFunctionCall1(numeric_floor, n))) ||
		DatumGetBool(DirectFunctionCall2(numeric_gt, n,
										 DirectFunctionCall1(int4_numeric, Int32GetDatum(PG_INT32_MAX)))) ||
		DatumGetBool(DirectFunctionCall2(numeric_lt, n,
										 DirectFunctionCall1(int4_numeric, Int32GetDatum(PG_INT32_MIN)))))
		raise_batch(psprintf("%s must be an integer", key));
	return DatumGetInt32(DirectFunctionCall1(numeric_int4, n));
}

static bytea *
payload_member(JsonbContainer *object)
{
	text	   *b64 = string_member(object, "payload", true);
	int			len = VARSIZE_ANY_EXHDR(b64);
	bytea	   *out = palloc(VARHDRSZ + pg_b64_dec_len(len));
	int			decoded = pg_b64_decode(VARDATA_ANY(b64), len, VARDATA(out), pg_b64_dec_len(len));

	if (decoded < 0)
		raise_batch("payload is not valid base64");
	SET_VARSIZE(out, VARHDRSZ + decoded);
	return out;
}

static ArrayType *
hashes_member(JsonbContainer *object)
{
	JsonbValue	v;
	int			n;
	Datum	   *elems;

	if (member(object, "preimage_hashes", &v) == NULL)
		return construct_empty_array(TEXTOID);
	if (v.type != jbvBinary || !JsonContainerIsArray(v.val.binary.data))
		raise_batch("preimage_hashes must be an array of hashes");
	n = JsonContainerSize(v.val.binary.data);
	elems = palloc(sizeof(Datum) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		JsonbValue *e = getIthJsonbValueFromContainer(v.val.binary.data, i);

		if (e->type != jbvString)
			raise_batch("preimage_hashes must be an array of hashes");
		elems[i] = PointerGetDatum(cstring_to_text_with_len(e->val.string.val, e->val.string.len));
	}
	return text_array(elems, n);
}

/* Refuses a package object with a field jam does not know: a typo must not go unnoticed. */
static void
check_fields(JsonbContainer *object)
{
	static const char *const known[] = {"service_id", "payload", "declared_hash",
	"contract_version", "weight_hint", "preimage_hashes", NULL};
	JsonbIterator *it = JsonbIteratorInit(object);
	JsonbValue	v;
	JsonbIteratorToken token;

	while ((token = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		bool		ok = false;

		if (token != WJB_KEY)
			continue;
		for (int i = 0; known[i] && !ok; i++)
			ok = strlen(known[i]) == (size_t) v.val.string.len &&
				strncmp(known[i], v.val.string.val, v.val.string.len) == 0;
		if (!ok)
			raise_batch(psprintf("unknown field \"%.*s\"", v.val.string.len, v.val.string.val));
	}
}

/* Checks one package object of the JSON form into item. */
static void
check_json_item(BatchItem *item, JsonbValue *elem, char **service_id)
{
	JsonbContainer *object;
	text	   *named;

	if (elem->type != jbvBinary || !JsonContainerIsObject(elem->val.binary.data))
		raise_batch("a package must be a JSON object");
	object = elem->val.binary.data;
	check_fields(object);
	named = string_member(object, "service_id", false);
	if (named != NULL)
	{
		char	   *checked = jam_check_service_id(named);

		if (*service_id == NULL)
			*service_id = checked;
		else if (strcmp(checked, *service_id) != 0)
			ereport(ERROR,
					(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
					 errmsg("service_id \"%s\" differs from the batch's \"%s\"", checked, *service_id),
					 errhint("A batch holds packages of one service.")));
	}
	else if (*service_id == NULL)
		raise_batch("service_id is required (in the call or in every package)");

	check_item(item, *service_id, payload_member(object),
			   integer_member(object, "contract_version", 1),
			   integer_member(object, "weight_hint", 1),
			   hashes_member(object), string_member(object, "declared_hash", false));
}

PG_FUNCTION_INFO_V1(jam_submit_packages_json);

/*
 * jam_submit_packages(service_id, packages jsonb) submits a JSON array of
 * package objects {payload (base64), declared_hash, contract_version,
 * weight_hint, preimage_hashes, service_id}.  service_id may be NULL when
 * the packages name it; every package names the same service.
 */
Datum
jam_submit_packages_json(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_PACKAGE_SUBMIT_BATCH);
	char	   *service_id = NULL;
	Jsonb	   *packages;
	int			n;
	BatchItem  *items;
	Datum		doc;
	int			created = 0;

	jam_check_enabled();
	jam_require_arg(fcinfo, 1, "packages");
	if (!PG_ARGISNULL(0))
		service_id = jam_check_service_id(PG_GETARG_TEXT_PP(0));
	packages = PG_GETARG_JSONB_P(1);
	if (!JB_ROOT_IS_ARRAY(packages) || JB_ROOT_IS_SCALAR(packages))
		raise_batch("packages must be a JSON array of package objects");
	n = check_batch_size(JB_ROOT_COUNT(packages));

	items = palloc0(sizeof(BatchItem) * n);
	for (int i = 0; i < n; i++)
	{
		JsonbValue *elem = getIthJsonbValueFromContainer(&packages->root, i);

		CHECK_ITEM(i, check_json_item(&items[i], elem, &service_id));
	}

	doc = submit_batch(service_id, items, n);
	for (int i = 0; i < n; i++)
		created += items[i].created;
	jam_metrics_end(metrics, created > 0 ? JAM_OUTCOME_CREATED : JAM_OUTCOME_EXISTING);
	PG_RETURN_DATUM(doc);
}
