/*
 * blob_metrics.c: the blob store's counters in shared memory.
 *
 * Every request to the store counts by operation and outcome, with its
 * time and bytes; reads of preimages through the store count as hits,
 * misses (the object is gone) or errors; integrity failures, retries,
 * offloads and queued deletes count too.  jam_metrics() (metrics.c) shows
 * them with the label store = "s3".  As in metrics.c, the counters are
 * atomics added to without a lock, and without preloading they count
 * nothing.
 */
#include "jam.h"
#include "blob.h"

#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

const char *const jam_blob_op_label[JAM_BLOB_OP__COUNT] = {
	"put", "get", "head", "delete", "list"
};
const char *const jam_blob_outcome_label[JAM_BLOB_OUTCOME__COUNT] = {
	"ok", "not_found", "error"
};
const char *const jam_blob_read_label[JAM_BLOB_READ__COUNT] = {
	"hit", "miss", "error"
};
const char *const jam_blob_delete_label[JAM_BLOB_DELETE__COUNT] = {
	"deleted", "kept", "failed"
};

typedef struct BlobShared
{
	pg_atomic_uint64 requests[JAM_BLOB_OP__COUNT][JAM_BLOB_OUTCOME__COUNT];
	pg_atomic_uint64 usecs[JAM_BLOB_OP__COUNT];
	pg_atomic_uint64 bytes_sent;
	pg_atomic_uint64 bytes_received;
	pg_atomic_uint64 retries;
	pg_atomic_uint64 reads[JAM_BLOB_READ__COUNT];
	pg_atomic_uint64 integrity_errors;
	pg_atomic_uint64 offloaded;
	pg_atomic_uint64 offloaded_bytes;
	pg_atomic_uint64 deletes[JAM_BLOB_DELETE__COUNT];
} BlobShared;

#define N_COUNTERS (sizeof(BlobShared) / sizeof(pg_atomic_uint64))

static BlobShared *shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* The counters as one array, to initialise and reset them all alike. */
static pg_atomic_uint64 *
counters(void)
{
	return (pg_atomic_uint64 *) shared;
}

static void
blob_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(BlobShared)));
}

static void
blob_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("jam blob store metrics", sizeof(BlobShared), &found);
	if (!found)
		for (int i = 0; i < N_COUNTERS; i++)
			pg_atomic_init_u64(&counters()[i], 0);
	LWLockRelease(AddinShmemInitLock);
}

/* _PG_init, while preloading: claims the shared memory. */
void
jam_blob_metrics_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = blob_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = blob_shmem_startup;
}

static void
add(pg_atomic_uint64 *c, uint64 n)
{
	if (shared != NULL)
		pg_atomic_fetch_add_u64(c, n);
}

void
jam_blob_metrics_request(JamBlobOp op, JamBlobOutcome outcome, int64 usecs,
						 uint64 sent, uint64 received)
{
	if (shared == NULL)
		return;
	add(&shared->requests[op][outcome], 1);
	add(&shared->usecs[op], (uint64) Max(usecs, 0));
	add(&shared->bytes_sent, sent);
	add(&shared->bytes_received, received);
}

void
jam_blob_metrics_retry(void)
{
	if (shared != NULL)
		add(&shared->retries, 1);
}

void
jam_blob_metrics_read(JamBlobRead outcome)
{
	if (shared != NULL)
		add(&shared->reads[outcome], 1);
}

void
jam_blob_metrics_integrity_error(void)
{
	if (shared != NULL)
		add(&shared->integrity_errors, 1);
}

void
jam_blob_metrics_offloaded(uint64 n, uint64 bytes)
{
	if (shared == NULL)
		return;
	add(&shared->offloaded, n);
	add(&shared->offloaded_bytes, bytes);
}

void
jam_blob_metrics_delete(JamBlobDelete outcome)
{
	if (shared != NULL)
		add(&shared->deletes[outcome], 1);
}

/* A copy of every counter, for jam_metrics(); false without shared memory. */
bool
jam_blob_stats(JamBlobStats *out)
{
	if (shared == NULL)
		return false;
	for (int op = 0; op < JAM_BLOB_OP__COUNT; op++)
	{
		for (int o = 0; o < JAM_BLOB_OUTCOME__COUNT; o++)
			out->requests[op][o] = pg_atomic_read_u64(&shared->requests[op][o]);
		out->seconds[op] = (double) pg_atomic_read_u64(&shared->usecs[op]) / 1e6;
	}
	out->bytes_sent = pg_atomic_read_u64(&shared->bytes_sent);
	out->bytes_received = pg_atomic_read_u64(&shared->bytes_received);
	out->retries = pg_atomic_read_u64(&shared->retries);
	for (int r = 0; r < JAM_BLOB_READ__COUNT; r++)
		out->reads[r] = pg_atomic_read_u64(&shared->reads[r]);
	out->integrity_errors = pg_atomic_read_u64(&shared->integrity_errors);
	out->offloaded = pg_atomic_read_u64(&shared->offloaded);
	out->offloaded_bytes = pg_atomic_read_u64(&shared->offloaded_bytes);
	for (int d = 0; d < JAM_BLOB_DELETE__COUNT; d++)
		out->deletes[d] = pg_atomic_read_u64(&shared->deletes[d]);
	return true;
}

/* jam_metrics_reset(): every counter back to zero. */
void
jam_blob_metrics_reset(void)
{
	if (shared == NULL)
		return;
	for (int i = 0; i < N_COUNTERS; i++)
		pg_atomic_write_u64(&counters()[i], 0);
}
