/*
 * auth_cache.c: each backend's cache of tokens, and the shared generation
 * number that invalidates it.
 *
 * Authenticating must not cost a query per call on the hot path, so a
 * backend keeps the tokens it has looked up.  Any change to jam_tokens or
 * jam_quotas (through the API or by hand) fires a statement trigger that
 * makes the transaction bump a generation counter in shared memory when it
 * commits; a backend whose cache is of an older generation drops it.  The
 * generation is read before a row is, so a row read from a snapshot older
 * than a commit is never kept past that commit's bump.  Expiry is checked
 * at every use, not cached.
 */
#include "jam.h"
#include "auth.h"

#include <sodium.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

/* A backend keeps at most this many tokens before starting over. */
#define TOKEN_CACHE_MAX 1024

typedef struct CachedToken
{
	char		id[JAM_TOKEN_ID_CHARS + 1];	/* hash key */
	bool		exists;
	uint8		secret_hash[32];
	bool		revoked;
	bool		has_expiry;
	TimestampTz expires_at;
	JamCapability cap;
} CachedToken;

static pg_atomic_uint64 *shared_generation = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static MemoryContext cache_context = NULL;
static HTAB *token_cache = NULL;
static uint64 cache_generation = 0;
static bool local_change = false;	/* this transaction changed tokens or quotas */

static JamStatement select_token = {
	"SELECT secret_hash, scopes, services, tenant, expires_at, revoked_at IS NOT NULL, name "
	"FROM jam.jam_tokens WHERE id = $1",
	1, {TEXTOID}
};

static void
auth_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(sizeof(pg_atomic_uint64));
}

static void
auth_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared_generation = ShmemInitStruct("jam auth generation", sizeof(pg_atomic_uint64), &found);
	if (!found)
		pg_atomic_init_u64(shared_generation, 1);
	LWLockRelease(AddinShmemInitLock);
}

/* Bumps the generation once a transaction that changed tokens or quotas commits. */
static void
auth_xact_callback(XactEvent event, void *arg)
{
	if (!local_change)
		return;
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
	{
		if (shared_generation != NULL && event != XACT_EVENT_ABORT &&
			event != XACT_EVENT_PARALLEL_ABORT)
			pg_atomic_fetch_add_u64(shared_generation, 1);
		/* What this backend cached may hold its own uncommitted rows. */
		cache_generation = 0;
		local_change = false;
	}
}

/* Installs the shared-memory hooks (when preloaded) and the commit callback. */
void
jam_auth_cache_init(void)
{
	if (process_shared_preload_libraries_in_progress)
	{
		prev_shmem_request_hook = shmem_request_hook;
		shmem_request_hook = auth_shmem_request;
		prev_shmem_startup_hook = shmem_startup_hook;
		shmem_startup_hook = auth_shmem_startup;
	}
	RegisterXactCallback(auth_xact_callback, NULL);
}

/* The current generation; 0 when shared memory is absent, which disables caching. */
uint64
jam_auth_generation(void)
{
	if (shared_generation == NULL || local_change)
		return 0;
	return pg_atomic_read_u64(shared_generation);
}

PG_FUNCTION_INFO_V1(jam_auth_changed);

/* Statement trigger on jam_tokens and jam_quotas: caches drop them at commit. */
Datum
jam_auth_changed(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "jam_auth_changed() must be called as a trigger");
	local_change = true;
	cache_generation = 0;
	return PointerGetDatum(NULL);
}

static char **
copy_text_array(Datum array, int *n)
{
	Datum	   *elems;
	bool	   *nulls;
	char	  **out;

	deconstruct_array(DatumGetArrayTypeP(array), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, n);
	out = palloc(sizeof(char *) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
		out[i] = nulls[i] ? pstrdup("") : TextDatumGetCString(elems[i]);
	return out;
}

/* Reads the token's row into entry, in the cache's memory context. */
static void
load_token(CachedToken *entry)
{
	Datum		values[1] = {CStringGetTextDatum(entry->id)};
	HeapTuple	row;
	TupleDesc	desc;
	bool		isnull;
	Datum		d;
	MemoryContext old;

	entry->exists = false;
	SPI_connect();
	if (jam_spi_exec(&select_token, values, NULL, true, 1) == 1)
	{
		row = SPI_tuptable->vals[0];
		desc = SPI_tuptable->tupdesc;
		old = MemoryContextSwitchTo(cache_context);

		d = SPI_getbinval(row, desc, 1, &isnull);
		memcpy(entry->secret_hash, VARDATA_ANY(DatumGetByteaPP(d)), 32);
		entry->cap.scopes = jam_scopes_from_array(DatumGetArrayTypeP(SPI_getbinval(row, desc, 2, &isnull)));
		d = SPI_getbinval(row, desc, 3, &isnull);
		entry->cap.n_services = -1;
		entry->cap.services = NULL;
		if (!isnull)
			entry->cap.services = copy_text_array(d, &entry->cap.n_services);
		d = SPI_getbinval(row, desc, 4, &isnull);
		entry->cap.tenant = isnull ? NULL : TextDatumGetCString(d);
		d = SPI_getbinval(row, desc, 5, &isnull);
		entry->has_expiry = !isnull;
		entry->expires_at = isnull ? 0 : DatumGetTimestampTz(d);
		entry->revoked = DatumGetBool(SPI_getbinval(row, desc, 6, &isnull));
		entry->cap.name = TextDatumGetCString(SPI_getbinval(row, desc, 7, &isnull));
		strlcpy(entry->cap.token_id, entry->id, sizeof(entry->cap.token_id));
		entry->exists = true;

		MemoryContextSwitchTo(old);
	}
	SPI_finish();
}

/*
 * Looks the token up (in the cache, or its row) and compares the hash of
 * its secret in constant time.  Returns true and fills *cap (pointing into
 * the cache: copy what must outlive the next lookup) when the token exists
 * and the secret matches; *revoked and *expired then say whether it may be
 * used.
 */
bool
jam_auth_lookup_token(const char *token_id, const uint8 secret_hash[32],
					  JamCapability *cap, bool *revoked, bool *expired)
{
	uint64		generation = jam_auth_generation();
	CachedToken *entry;
	bool		found;

	if (cache_context == NULL)
		cache_context = AllocSetContextCreate(TopMemoryContext, "jam token cache",
											  ALLOCSET_SMALL_SIZES);
	if (token_cache == NULL || generation == 0 || generation != cache_generation ||
		hash_get_num_entries(token_cache) >= TOKEN_CACHE_MAX)
	{
		HASHCTL		ctl;

		MemoryContextReset(cache_context);
		ctl.keysize = JAM_TOKEN_ID_CHARS + 1;
		ctl.entrysize = sizeof(CachedToken);
		ctl.hcxt = cache_context;
		token_cache = hash_create("jam tokens", 64, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
		cache_generation = generation;
	}

	entry = hash_search(token_cache, token_id, HASH_ENTER, &found);
	if (!found)
	{
		PG_TRY();
		{
			load_token(entry);
		}
		PG_CATCH();
		{
			hash_search(token_cache, token_id, HASH_REMOVE, NULL);
			PG_RE_THROW();
		}
		PG_END_TRY();
	}

	/* Unknown ids compare against zeros, so both paths do the same work. */
	if (!entry->exists)
	{
		uint8		zeros[32] = {0};
		volatile int same = sodium_memcmp(zeros, secret_hash, 32);

		(void) same;
		return false;
	}
	if (sodium_memcmp(entry->secret_hash, secret_hash, 32) != 0)
		return false;

	*cap = entry->cap;
	*revoked = entry->revoked;
	*expired = entry->has_expiry && entry->expires_at <= GetCurrentTimestamp();
	return true;
}
