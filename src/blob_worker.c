/*
 * blob_worker.c: the blob worker, one per database of
 * jam.blob_worker_databases, started with the server.
 *
 * It drains the queue of object deletes (blob_deletes.c) in transactions
 * of up to DRAIN_BATCH entries, woken when a transaction that queued one
 * commits, and once a minute in any case (entries wait
 * jam.blob_delete_delay, and failed ones a backoff); and every
 * jam.blob_offload_interval it offloads what is inline and over the
 * threshold (offload.c), batch by batch.  All it needs to remember is in
 * the tables, so a worker killed at any point (kill -9 included) leaves
 * the last transaction rolled back and carries on where the tables say
 * when it starts again, 10 s later.  It waits on a standby, and while the
 * extension, its 1.2 catalog or a store is missing.  SIGTERM stops it
 * between two requests to the store; SIGHUP rereads the settings.
 */
#include "jam.h"
#include "blob.h"
#include "wake_at_commit.h"
#include "worker_round.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

PGDLLEXPORT void jam_blob_worker_main(Datum main_arg);

#define DRAIN_BATCH 100
#define IDLE_WAKE_MS 60000
#define ERROR_PAUSE_MS 5000
#define RESTART_S 10

typedef struct BlobWorkerSlot
{
	Oid			database;		/* InvalidOid until the worker has connected */
	Latch	   *latch;
} BlobWorkerSlot;

typedef struct BlobWorkerShared
{
	int			n_slots;
	BlobWorkerSlot slots[FLEXIBLE_ARRAY_MEMBER];
} BlobWorkerShared;

static char *blob_worker_databases = NULL;
static int	n_workers = 0;
static BlobWorkerShared *shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size
shared_size(void)
{
	return add_size(offsetof(BlobWorkerShared, slots),
					mul_size(sizeof(BlobWorkerSlot), Max(n_workers, 1)));
}

static void
worker_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(shared_size());
}

static void
worker_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("jam blob workers", shared_size(), &found);
	if (!found)
	{
		memset(shared, 0, shared_size());
		shared->n_slots = n_workers;
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Defines jam.blob_worker_databases and, when preloading with databases
 * named, registers a worker for each and claims their shared memory.
 * Called by jam_define_blob_gucs().
 */
void
jam_blob_worker_init(void)
{
	char	   *copy;
	List	   *names = NIL;
	ListCell   *lc;

	jam_blob_metrics_init();
	if (!process_shared_preload_libraries_in_progress)
		return;
	DefineCustomStringVariable("jam.blob_worker_databases",
							   "Databases whose object deletes and offloads a blob worker carries out.",
							   "A comma-separated list of database names; one worker each.",
							   &blob_worker_databases, "",
							   PGC_POSTMASTER, 0, NULL, NULL, NULL);
	copy = pstrdup(blob_worker_databases ? blob_worker_databases : "");
	if (!SplitIdentifierString(copy, ',', &names))
		ereport(FATAL,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("jam.blob_worker_databases is not a comma-separated list of database names")));
	n_workers = list_length(names);
	if (n_workers == 0)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = worker_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = worker_shmem_startup;

	foreach(lc, names)
	{
		BackgroundWorker worker;

		memset(&worker, 0, sizeof(worker));
		worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		worker.bgw_start_time = BgWorkerStart_ConsistentState;
		worker.bgw_restart_time = RESTART_S;
		snprintf(worker.bgw_library_name, BGW_MAXLEN, "jam");
		snprintf(worker.bgw_function_name, BGW_MAXLEN, "jam_blob_worker_main");
		snprintf(worker.bgw_name, BGW_MAXLEN, "jam blob worker for database %s", (char *) lfirst(lc));
		snprintf(worker.bgw_type, BGW_MAXLEN, "jam blob worker");
		worker.bgw_main_arg = Int32GetDatum(foreach_current_index(lc));
		strlcpy(worker.bgw_extra, (char *) lfirst(lc), BGW_EXTRALEN);
		RegisterBackgroundWorker(&worker);
	}
}

/* Sets the latch of this database's blob worker. */
static void
wake_worker(void)
{
	for (int i = 0; i < shared->n_slots; i++)
		if (shared->slots[i].database == MyDatabaseId && shared->slots[i].latch != NULL)
			SetLatch(shared->slots[i].latch);
}

static JamCommitWake blob_worker_waker = {wake_worker, false};

/* Has this database's blob worker woken when the transaction commits (a delete was queued). */
void
jam_blob_wake_worker_at_commit(void)
{
	if (shared == NULL || shared->n_slots == 0)
		return;
	jam_wake_at_commit(&blob_worker_waker);
}

/* Why the worker is idle, so that it says so once. */
static const char *waiting_for = NULL;

static void
say_waiting(const char *why)
{
	if (waiting_for != why)
		ereport(LOG, (errmsg("jam blob worker for database \"%s\" waits: %s",
							 MyBgworkerEntry->bgw_extra, why)));
	waiting_for = why;
}

/* Whether the tier can work here now; says why not, once. */
static bool
ready(void)
{
	bool		installed;
	bool		catalog;

	if (RecoveryInProgress())
	{
		say_waiting("this server is a standby");
		return false;
	}
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	installed = OidIsValid(get_extension_oid("jam", true));
	catalog = installed && jam_blob_catalog();
	CommitTransactionCommand();
	if (!installed)
		say_waiting("the extension jam is not installed");
	else if (!catalog)
		say_waiting("the blob tier needs ALTER EXTENSION jam UPDATE to 1.2");
	else if (!jam_blob_store_configured())
		say_waiting("no blob store is configured");
	else if (!jam_enabled)
		say_waiting("jam.enabled is off");
	else
	{
		if (waiting_for != NULL)
			ereport(LOG, (errmsg("jam blob worker for database \"%s\" resumes",
								 MyBgworkerEntry->bgw_extra)));
		waiting_for = NULL;
		return true;
	}
	return false;
}

/* Drains due deletes, a transaction per batch, until none is due or one failed. */
static void
drain(void)
{
	for (;;)
	{
		JamBlobDrainCounts counts;
		int			n;

		memset(&counts, 0, sizeof(counts));
		CHECK_FOR_INTERRUPTS();
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, "jam blob worker: deleting objects");
		n = jam_blob_drain_batch(DRAIN_BATCH, &counts);
		PopActiveSnapshot();
		CommitTransactionCommand();
		pgstat_report_activity(STATE_IDLE, NULL);
		if (counts.deleted + counts.kept > 0 || counts.failed > 0)
			ereport(DEBUG1,
					(errmsg("jam blob worker: " INT64_FORMAT " objects deleted, " INT64_FORMAT
							" kept, " INT64_FORMAT " failed, " INT64_FORMAT " in use",
							counts.deleted, counts.kept, counts.failed, counts.skipped)));
		if (n < DRAIN_BATCH || counts.failed > 0 || ShutdownRequestPending)
			return;
	}
}

/* One offload, batch after batch; logged like jam_offload() would answer. */
static void
offload(void)
{
	JamOffloadRun run;

	memset(&run, 0, sizeof(run));
	jam_offload_run(&run, 0);
	if (run.counts.offloaded > 0 || run.counts.skipped > 0)
		ereport(LOG,
				(errmsg("jam blob worker: offloaded " INT64_FORMAT " preimages (" INT64_FORMAT
						" bytes) in " INT64_FORMAT " batches, skipped " INT64_FORMAT,
						run.counts.offloaded, run.counts.bytes, run.counts.batches,
						run.counts.skipped)));
}

/* What a blob worker's rounds share: when to offload next, how long to sleep after. */
typedef struct BlobRound
{
	TimestampTz next_offload;
	long		sleep_ms;
} BlobRound;

/* A blob worker's round: drain the deletes, offload when due. */
static void
blob_round(void *arg)
{
	BlobRound  *round = arg;

	if (!ready())
		return;
	drain();
	if (jam_blob_offload_interval > 0 && !ShutdownRequestPending &&
		GetCurrentTimestamp() >= round->next_offload)
	{
		/* An offload that fails is tried again within a minute. */
		round->next_offload = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														  (int64) Min(jam_blob_offload_interval, 60) * 1000);
		offload();
		round->next_offload = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														  (int64) jam_blob_offload_interval * 1000);
	}
	if (jam_blob_offload_interval > 0)
		round->sleep_ms = Min(round->sleep_ms,
							  Max(TimestampDifferenceMilliseconds(GetCurrentTimestamp(), round->next_offload), 1));
}

/*
 * Entry point of a blob worker: drains, offloads when due, sleeps on its
 * latch until a delete is queued, a minute passes or the next offload is
 * due.
 */
void
jam_blob_worker_main(Datum main_arg)
{
	BlobWorkerSlot *slot = &shared->slots[DatumGetInt32(main_arg)];
	MemoryContext round_context;
	BlobRound	round = {0, IDLE_WAKE_MS};

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(MyBgworkerEntry->bgw_extra, NULL, 0);
	slot->latch = MyLatch;
	slot->database = MyDatabaseId;
	ereport(LOG, (errmsg("jam blob worker started for database \"%s\"", MyBgworkerEntry->bgw_extra)));

	round_context = AllocSetContextCreate(TopMemoryContext, "jam blob worker", ALLOCSET_DEFAULT_SIZES);
	while (!ShutdownRequestPending)
	{
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		round.sleep_ms = IDLE_WAKE_MS;
		if (!jam_worker_round(round_context, blob_round, &round))
			round.sleep_ms = ERROR_PAUSE_MS;
		if (ShutdownRequestPending)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 round.sleep_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	slot->latch = NULL;
	ereport(LOG, (errmsg("jam blob worker for database \"%s\" stops", MyBgworkerEntry->bgw_extra)));
	proc_exit(1);
}
