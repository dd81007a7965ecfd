/*
 * refine.c: the versioned execution contracts that turn a package into a
 * report's output.
 *
 * Contract version 1 runs, in order over the payload and then the
 * referenced preimages:
 *   - the service's registered refine function, when it has one: an
 *     IMMUTABLE SQL-callable function (payload bytea, preimages bytea[])
 *     returning bytea, so that any node replaying the package gets the same
 *     output; or else
 *   - the built-in refine: BLAKE2b-256 over
 *       "jam/refine/v1" || u32 n_inputs || for each input: u64 len || bytes
 *     (integers little-endian), a 32-byte commitment to every input.
 *
 * An error raised by a registered function fails the package with the
 * error's message as the reason.  Errors that say nothing about the package
 * (a cancel, a shutdown, running out of memory or disk) are re-thrown
 * instead, so that the package stays pending and is processed again later.
 */
#include "jam.h"

#include <sodium.h>

#include "access/xact.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
#include "utils/resowner.h"

#define JAM_REFINE_TAG "jam/refine/v1"

/* Whether a registered refine function is running in this backend. */
static bool refine_running = false;

bool
jam_refine_running(void)
{
	return refine_running;
}

static void
update_le(crypto_generichash_state *st, uint64 v, int bytes)
{
	uint8		b[8];

	for (int i = 0; i < bytes; i++)
		b[i] = (uint8) (v >> (8 * i));
	crypto_generichash_update(st, b, bytes);
}

static void
update_input(crypto_generichash_state *st, bytea *input)
{
	update_le(st, VARSIZE_ANY_EXHDR(input), 8);
	crypto_generichash_update(st, (const uint8 *) VARDATA_ANY(input), VARSIZE_ANY_EXHDR(input));
}

static bytea *
builtin_refine_v1(bytea *payload, int n_inputs, bytea **inputs)
{
	crypto_generichash_state st;
	bytea	   *out = palloc(VARHDRSZ + JAM_HASH_BYTES);

	crypto_generichash_init(&st, NULL, 0, JAM_HASH_BYTES);
	crypto_generichash_update(&st, (const uint8 *) JAM_REFINE_TAG, strlen(JAM_REFINE_TAG));
	update_le(&st, (uint64) n_inputs + 1, 4);
	update_input(&st, payload);
	for (int i = 0; i < n_inputs; i++)
		update_input(&st, inputs[i]);
	crypto_generichash_final(&st, (uint8 *) VARDATA(out), JAM_HASH_BYTES);
	SET_VARSIZE(out, VARHDRSZ + JAM_HASH_BYTES);
	return out;
}

/* Errors of these classes are about the server, not the package. */
static bool
is_transient(int sqlerrcode)
{
	char	   *state = unpack_sql_state(sqlerrcode);

	return strncmp(state, "53", 2) == 0 ||	/* insufficient resources */
		strncmp(state, "57", 2) == 0 ||		/* operator intervention: cancel, shutdown */
		strncmp(state, "58", 2) == 0 ||		/* system error */
		strncmp(state, "40", 2) == 0;		/* serialization failure, deadlock */
}

static JamRefineResult
registered_refine(Oid refine_fn, bytea *payload, int n_inputs, bytea **inputs)
{
	JamRefineResult result = {false, NULL, NULL};
	MemoryContext caller_context = CurrentMemoryContext;
	ResourceOwner caller_owner = CurrentResourceOwner;
	ArrayType  *input_array;
	char	   *name;
	HeapTuple	proc;
	Oid			owner;
	Oid			saved_user;
	int			saved_context;

	/*
	 * A failure reason goes into the report's hash, so it must read the same
	 * on every node: name the function schema-qualified, never by OID.
	 */
	proc = SearchSysCache1(PROCOID, ObjectIdGetDatum(refine_fn));
	if (!HeapTupleIsValid(proc))
	{
		result.failure_reason = pstrdup("the service's registered refine function no longer exists");
		return result;
	}
	owner = ((Form_pg_proc) GETSTRUCT(proc))->proowner;
	ReleaseSysCache(proc);
	name = format_procedure_qualified(refine_fn);

	input_array = construct_array((Datum *) inputs, n_inputs, BYTEAOID, -1, false, TYPALIGN_INT);

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(caller_context);
	PG_TRY();
	{
		LOCAL_FCINFO(call, 2);
		FmgrInfo	flinfo;
		Datum		out;

		fmgr_info(refine_fn, &flinfo);
		InitFunctionCallInfoData(*call, &flinfo, 2, InvalidOid, NULL, NULL);
		call->args[0].value = PointerGetDatum(payload);
		call->args[0].isnull = false;
		call->args[1].value = PointerGetDatum(input_array);
		call->args[1].isnull = false;

		/*
		 * jam_process_next runs as the extension's owner, so the refine
		 * function would too: run it as its own owner instead, restricted
		 * like an index expression, so that registering a function never
		 * lends it more rights than its owner has.  Aborting the
		 * subtransaction restores the caller's identity on error.
		 */
		GetUserIdAndSecContext(&saved_user, &saved_context);
		SetUserIdAndSecContext(owner, saved_context | SECURITY_RESTRICTED_OPERATION);
		refine_running = true;
		out = FunctionCallInvoke(call);
		refine_running = false;
		SetUserIdAndSecContext(saved_user, saved_context);

		/* Copy the output into the caller's memory before the subtransaction ends. */
		MemoryContextSwitchTo(caller_context);
		if (call->isnull)
			result.failure_reason = psprintf("refine function %s returned NULL", name);
		else
		{
			result.output = DatumGetByteaPCopy(out);
			result.ok = true;
		}
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller_context);
		CurrentResourceOwner = caller_owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		refine_running = false;
		MemoryContextSwitchTo(caller_context);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller_context);
		CurrentResourceOwner = caller_owner;

		if (is_transient(edata->sqlerrcode))
			ReThrowError(edata);
		result.failure_reason = psprintf("refine function %s failed: %s", name, edata->message);
	}
	PG_END_TRY();
	return result;
}

/*
 * Runs contract_version over the payload and inputs (the referenced
 * preimages' bytes, in order) with the service's refine function, or the
 * built-in one when refine_fn is InvalidOid.
 */
JamRefineResult
jam_refine(int32 contract_version, Oid refine_fn, bytea *payload, int n_inputs, bytea **inputs)
{
	JamRefineResult result;

	/* Submission admits only versions this node runs; v1 is the only one so far. */
	Assert(contract_version == 1);

	if (OidIsValid(refine_fn))
		result = registered_refine(refine_fn, payload, n_inputs, inputs);
	else
	{
		result.ok = true;
		result.output = builtin_refine_v1(payload, n_inputs, inputs);
		result.failure_reason = NULL;
	}

	if (result.ok && VARSIZE_ANY_EXHDR(result.output) > (Size) jam_max_payload_bytes)
	{
		result.failure_reason = psprintf("refine output has %zu bytes; jam.max_payload_bytes allows %d",
										 VARSIZE_ANY_EXHDR(result.output), jam_max_payload_bytes);
		result.ok = false;
		result.output = NULL;
	}
	return result;
}
