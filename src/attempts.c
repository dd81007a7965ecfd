/*
 * attempts.c: how many times a package's refine has started without
 * returning.
 *
 * When the server interrupts a refine (statement_timeout, a cancel, the end
 * of its backend, running out of memory), the package is not at fault and
 * stays pending; but a package whose refine never returns would then come
 * back to the head of its queue forever, taking a worker each time.  So a
 * claim counts the start of the refine, and a refine that returns forgets
 * its count; a package whose count has reached jam.max_refine_attempts is
 * failed without running its refine again, the count in its reason.
 *
 * The counts live in shared memory because the transaction that an
 * interruption aborts takes every row it wrote with it; they are lost when
 * the server restarts, so a package gets jam.max_refine_attempts tries per
 * server lifetime.  Only packages whose refine is running or was
 * interrupted have an entry; when the table is full, starts are not counted.
 */
#include "jam.h"
#include "metrics.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"

#define ATTEMPT_ENTRIES 4096

typedef struct AttemptKey
{
	Oid			database;
	uint8		package_id[JAM_HASH_BYTES];
} AttemptKey;

typedef struct AttemptEntry
{
	AttemptKey	key;
	int32		starts;
} AttemptEntry;

int			jam_max_refine_attempts = 3;

static LWLock *attempts_lock = NULL;
static HTAB *attempts = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
attempts_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(hash_estimate_size(ATTEMPT_ENTRIES, sizeof(AttemptEntry)));
	RequestNamedLWLockTranche("jam_refine_attempts", 1);
}

static void
attempts_shmem_startup(void)
{
	HASHCTL		ctl;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	attempts_lock = &(GetNamedLWLockTranche("jam_refine_attempts"))->lock;
	ctl.keysize = sizeof(AttemptKey);
	ctl.entrysize = sizeof(AttemptEntry);
	attempts = ShmemInitHash("jam refine attempts", ATTEMPT_ENTRIES, ATTEMPT_ENTRIES,
							 &ctl, HASH_ELEM | HASH_BLOBS);
	LWLockRelease(AddinShmemInitLock);
}

/* Defines jam.max_refine_attempts and, when preloading, claims the shared table. */
void
jam_attempts_init(void)
{
	DefineCustomIntVariable("jam.max_refine_attempts",
							"Times a package's refine may be interrupted before the package fails.",
							"An interrupted refine (statement_timeout, a cancel, a crash) leaves "
							"its package pending; this bounds how often it comes back.",
							&jam_max_refine_attempts, 3,
							1, 1000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = attempts_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = attempts_shmem_startup;
}

static void
make_key(const char *package_hex, AttemptKey *key)
{
	memset(key, 0, sizeof(*key));
	key->database = MyDatabaseId;
	jam_parse_hash(cstring_to_text(package_hex), "package id", key->package_id);
}

/*
 * Counts the start of the package's refine and returns how many starts
 * there have been, this one included (1 without preloading).
 */
int
jam_attempts_start(const char *package_hex)
{
	AttemptKey	key;
	AttemptEntry *entry;
	bool		found;
	int			starts;

	if (attempts == NULL)
		return 1;
	make_key(package_hex, &key);
	LWLockAcquire(attempts_lock, LW_EXCLUSIVE);
	entry = hash_search(attempts, &key, HASH_ENTER_NULL, &found);
	if (entry == NULL)
		starts = 1;
	else
	{
		entry->starts = found ? entry->starts + 1 : 1;
		starts = entry->starts;
	}
	LWLockRelease(attempts_lock);
	if (starts > 1)
		jam_metrics_refine_retry(starts > jam_max_refine_attempts);
	return starts;
}

/* Forgets the package's starts: its refine returned, with an output or a failure. */
void
jam_attempts_done(const char *package_hex)
{
	AttemptKey	key;

	if (attempts == NULL)
		return;
	make_key(package_hex, &key);
	LWLockAcquire(attempts_lock, LW_EXCLUSIVE);
	hash_search(attempts, &key, HASH_REMOVE, NULL);
	LWLockRelease(attempts_lock);
}
