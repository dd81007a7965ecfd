/*
 * replay.c: what refine a report came from, and running it again
 * (jam_replay).
 *
 * A report records the refine that ran by name (builtin:v1, or the
 * registered function's signature) and, since 1.1, by the hash of its
 * definition:
 *
 *   BLAKE2b-256("jam/refine-def/v1" || u32 len || name
 *               || u32 len || language || u32 len || source || u32 len || binary)
 *
 * with language, source (pg_proc.prosrc) and binary (probin, empty when
 * none) empty for a built-in refine.  Redefining the function changes the
 * hash, so a replay tells a changed contract apart from a changed result.
 */
#include "jam.h"
#include "auth.h"
#include "blob.h"
#include "errors.h"
#include "metrics.h"

#include <sodium.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/resowner.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

#define JAM_REFINE_DEF_TAG "jam/refine-def/v1"

static JamStatement select_for_replay = {
	"SELECT r.refine, @x(r.refine_hash), r.status, @x(r.output_hash), r.failure_reason, "
	"p.payload, @xa(p.preimage_hashes), p.contract_version, p.service_id, "
	"CASE WHEN r.refine NOT LIKE 'builtin:%' THEN to_regprocedure(r.refine) END "
	"FROM jam.jam_work_reports r JOIN jam.jam_work_packages p ON p.id = r.package_id "
	"WHERE r.package_id = @h($1)",
	1, {TEXTOID}
};

/* data is NULL for a preimage in the blob store, read through it (blob_tier.c). */
static JamStatement load_preimage = {
	"SELECT data, size FROM jam.jam_preimages WHERE hash = @h($1)",
	1, {TEXTOID}
};

static void
put_string(crypto_generichash_state *st, const char *s)
{
	uint32		len = strlen(s);
	uint8		b[4] = {len & 0xff, (len >> 8) & 0xff, (len >> 16) & 0xff, len >> 24};

	crypto_generichash_update(st, b, 4);
	crypto_generichash_update(st, (const uint8 *) s, len);
}

/*
 * The definition hash of the refine named name: fn, a registered function,
 * or InvalidOid for the built-in refine.  False when fn no longer exists.
 */
bool
jam_refine_definition_hash(Oid fn, const char *name, uint8 out[JAM_HASH_BYTES])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, JAM_HASH_BYTES);
	crypto_generichash_update(&st, (const uint8 *) JAM_REFINE_DEF_TAG, strlen(JAM_REFINE_DEF_TAG));
	put_string(&st, name);
	if (!OidIsValid(fn))
	{
		put_string(&st, "");
		put_string(&st, "");
		put_string(&st, "");
	}
	else
	{
		HeapTuple	proc = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
		bool		isnull;
		Datum		d;

		if (!HeapTupleIsValid(proc))
			return false;
		put_string(&st, get_language_name(((Form_pg_proc) GETSTRUCT(proc))->prolang, false));
		d = SysCacheGetAttr(PROCOID, proc, Anum_pg_proc_prosrc, &isnull);
		put_string(&st, isnull ? "" : TextDatumGetCString(d));
		d = SysCacheGetAttr(PROCOID, proc, Anum_pg_proc_probin, &isnull);
		put_string(&st, isnull ? "" : TextDatumGetCString(d));
		ReleaseSysCache(proc);
	}
	crypto_generichash_final(&st, out, JAM_HASH_BYTES);
	return true;
}

PG_FUNCTION_INFO_V1(jam_replay);

/*
 * jam_replay(package_id) runs the package's refine again, in a
 * subtransaction that is always rolled back, and compares the outcome with
 * the stored report: {result: match | mismatch | contract_changed, ...}
 * with the stored and replayed output hashes (or failure reasons) and the
 * stored and current definition hashes.
 */
Datum
jam_replay(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_REPLAY);
	char	   *package;
	Datum		values[1];
	HeapTuple	row;
	TupleDesc	desc;
	bool		isnull;
	char	   *refine;
	char	   *stored_def;
	char	   *stored_status;
	char	   *stored_output;
	char	   *stored_reason;
	bytea	   *payload;
	ArrayType  *hashes;
	Oid			fn = InvalidOid;
	uint8		current_def[JAM_HASH_BYTES];
	char		current_def_hex[JAM_HASH_HEX_CHARS + 1] = "";
	bool		defined;
	const char *result;
	JamRefineResult replay = {false, NULL, NULL};
	char		replay_output[JAM_HASH_HEX_CHARS + 1] = "";
	StringInfoData doc;
	Datum	   *elems;
	int			n;
	bytea	  **inputs;
	Datum		out;
	MemoryContext caller_context;
	ResourceOwner caller_owner = CurrentResourceOwner;

	jam_check_enabled();
	jam_auth_require(JAM_SCOPE_READ, "jam_replay");
	jam_require_arg(fcinfo, 0, "package_id");
	package = jam_normalize_hash(PG_GETARG_TEXT_PP(0), "package_id");
	if (jam_catalog() != JAM_CATALOG_COMPACT)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("jam_replay needs the 1.1 catalog"),
				 errhint("Run ALTER EXTENSION jam UPDATE.")));
	values[0] = CStringGetTextDatum(package);

	SPI_connect();
	if (jam_spi_exec(&select_for_replay, values, NULL, true, 1) == 0 ||
		!jam_auth_sees_service(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 9)))
		ereport(ERROR,
				(jam_errcode(JAM_ERR_REPORT_NOT_FOUND),
				 errmsg("package %s has no report to replay", package)));
	row = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	refine = SPI_getvalue(row, desc, 1);
	stored_def = SPI_getvalue(row, desc, 2);
	stored_status = SPI_getvalue(row, desc, 3);
	stored_output = SPI_getvalue(row, desc, 4);
	stored_reason = SPI_getvalue(row, desc, 5);
	caller_context = CurrentMemoryContext;
	payload = DatumGetByteaPCopy(SPI_getbinval(row, desc, 6, &isnull));
	hashes = DatumGetArrayTypePCopy(SPI_getbinval(row, desc, 7, &isnull));
	if (strncmp(refine, "builtin:", 8) != 0)
	{
		Datum		d = SPI_getbinval(row, desc, 10, &isnull);

		fn = isnull ? InvalidOid : DatumGetObjectId(d);
	}

	defined = (strncmp(refine, "builtin:", 8) == 0 || OidIsValid(fn)) &&
		jam_refine_definition_hash(fn, refine, current_def);
	if (defined)
		jam_hex_encode(current_def, JAM_HASH_BYTES, current_def_hex);

	/* Reports written before 1.1 recorded no definition: replayed by name. */
	if (!defined || (stored_def != NULL && strcmp(stored_def, current_def_hex) != 0))
		result = "contract_changed";
	else
	{
		/* The inputs as processing gave them: the package's preimages, in its order. */
		deconstruct_array(hashes, TEXTOID, -1, false, TYPALIGN_INT, &elems, NULL, &n);
		inputs = palloc(sizeof(bytea *) * Max(n, 1));
		for (int i = 0; i < n; i++)
		{
			if (jam_spi_exec(&load_preimage, &elems[i], NULL, true, 1) == 0)
				ereport(ERROR,
						(jam_errcode(JAM_ERR_MISSING_PREIMAGE),
						 errmsg("preimage %s of package %s is no longer stored", TextDatumGetCString(elems[i]), package),
						 errhint("A replay needs every input the package referenced.")));
			{
				Datum		data = jam_spi_result_datum(1, &isnull);

				inputs[i] = !isnull ? DatumGetByteaPCopy(data)
					: jam_blob_fetch(TextDatumGetCString(elems[i]),
									 DatumGetInt64(jam_spi_result_datum(2, &isnull)));
			}
		}

		/* Whatever the refine does, none of it stays; its result does. */
		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(caller_context);
		replay = jam_refine(DatumGetInt32(SPI_getbinval(row, desc, 8, &isnull)), fn, payload, n, inputs);
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller_context);
		CurrentResourceOwner = caller_owner;

		if (replay.ok)
		{
			uint8		h[JAM_HASH_BYTES];

			jam_blake2b256(VARDATA_ANY(replay.output), VARSIZE_ANY_EXHDR(replay.output), h);
			jam_hex_encode(h, JAM_HASH_BYTES, replay_output);
			result = strcmp(stored_status, "applied") == 0 && stored_output &&
				strcmp(stored_output, replay_output) == 0 ? "match" : "mismatch";
		}
		else
			result = strcmp(stored_status, "failed") == 0 && stored_reason &&
				strcmp(stored_reason, replay.failure_reason) == 0 ? "match" : "mismatch";
	}

	initStringInfo(&doc);
	appendStringInfoString(&doc, "{\"package_id\": ");
	escape_json(&doc, package);
	appendStringInfoString(&doc, ", \"result\": ");
	escape_json(&doc, result);
	appendStringInfoString(&doc, ", \"refine\": ");
	escape_json(&doc, refine);
	appendStringInfo(&doc, ", \"stored\": {\"status\": \"%s\", \"output_hash\": ", stored_status);
	if (stored_output)
		escape_json(&doc, stored_output);
	else
		appendStringInfoString(&doc, "null");
	appendStringInfoString(&doc, ", \"failure_reason\": ");
	if (stored_reason)
		escape_json(&doc, stored_reason);
	else
		appendStringInfoString(&doc, "null");
	appendStringInfoString(&doc, ", \"refine_hash\": ");
	if (stored_def)
		escape_json(&doc, stored_def);
	else
		appendStringInfoString(&doc, "null");
	appendStringInfoString(&doc, "}, \"current_refine_hash\": ");
	if (defined)
		escape_json(&doc, current_def_hex);
	else
		appendStringInfoString(&doc, "null");
	if (strcmp(result, "contract_changed") != 0)
	{
		appendStringInfo(&doc, ", \"replayed\": {\"status\": \"%s\", \"output_hash\": ",
						 replay.ok ? "applied" : "failed");
		if (replay.ok)
			escape_json(&doc, replay_output);
		else
			appendStringInfoString(&doc, "null");
		appendStringInfoString(&doc, ", \"failure_reason\": ");
		if (replay.ok)
			appendStringInfoString(&doc, "null");
		else
			escape_json(&doc, replay.failure_reason);
		appendStringInfoString(&doc, "}");
	}
	appendStringInfoString(&doc, "}");
	out = DirectFunctionCall1(jsonb_in, CStringGetDatum(doc.data));
	out = SPI_datumTransfer(out, false, -1);
	SPI_finish();

	jam_metrics_end(metrics, strcmp(result, "match") == 0 ? JAM_OUTCOME_OK : JAM_OUTCOME_FAILED);
	PG_RETURN_DATUM(out);
}
