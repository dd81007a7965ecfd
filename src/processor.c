/*
 * processor.c: background workers that process packages by themselves.
 *
 * With jam.processor_workers = N and jam.processor_databases = 'a, b',
 * the postmaster starts N workers for each of those databases at server
 * start and restarts one that dies.  A worker processes one package per
 * transaction, exactly as jam_process_next() does (the claim, the refine,
 * the report, the log), and sleeps on its latch when nothing is pending.
 * With jam.processor_batch_size = n > 1 it takes up to n per transaction,
 * claimed in fair order and written together as jam_process_packages()
 * writes them: fewer commits and statements per package for a backlog,
 * while a lone package is still taken alone at once.
 * A transaction that submitted packages sets the latches of its database's
 * workers when it commits, so a package is picked up at once; an idle
 * worker wakes only for that (and once a minute, in case a package arrived
 * by a path that wakes nobody, such as a hand-written INSERT).
 *
 * SIGTERM lets a worker finish the package (or batch) in hand, then exit.  A worker
 * killed in the middle of a refine leaves its package pending: its
 * transaction never commits, and the claim's row lock dies with it.  On a
 * hot standby the workers wait, and start processing once it is promoted.
 *
 * Shared memory holds one slot per worker: its latch (to be woken), and its
 * counters (processed, failed, busy time, queue wait), which jam_metrics()
 * shows per worker.
 */
#include "jam.h"
#include "claim.h"
#include "commit_flush.h"
#include "metrics.h"
#include "processor.h"
#include "wake_at_commit.h"
#include "worker_round.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

PGDLLEXPORT void jam_processor_main(Datum main_arg);

#define IDLE_WAKE_MS 60000
#define ERROR_PAUSE_MS 1000

typedef struct ProcessorSlot
{
	Oid			database;		/* InvalidOid until the worker has connected */
	char		database_name[NAMEDATALEN];
	int			index;			/* within its database */
	Latch	   *latch;
	pg_atomic_uint64 processed;
	pg_atomic_uint64 failed;
	pg_atomic_uint64 busy_us;
	pg_atomic_uint64 wait_us;
} ProcessorSlot;

typedef struct ProcessorShared
{
	int			n_slots;
	ProcessorSlot slots[FLEXIBLE_ARRAY_MEMBER];
} ProcessorShared;

int			jam_processor_workers = 0;
static int	processor_batch_size = 1;
static char *processor_databases = NULL;
static int	n_databases = 0;
static ProcessorShared *shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size
shared_size(void)
{
	return add_size(offsetof(ProcessorShared, slots),
					mul_size(sizeof(ProcessorSlot), Max(jam_processor_workers * n_databases, 1)));
}

static void
processor_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(shared_size());
}

static void
processor_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("jam processors", shared_size(), &found);
	if (!found)
	{
		memset(shared, 0, shared_size());
		shared->n_slots = jam_processor_workers * n_databases;
		for (int i = 0; i < shared->n_slots; i++)
		{
			pg_atomic_init_u64(&shared->slots[i].processed, 0);
			pg_atomic_init_u64(&shared->slots[i].failed, 0);
			pg_atomic_init_u64(&shared->slots[i].busy_us, 0);
			pg_atomic_init_u64(&shared->slots[i].wait_us, 0);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

/* The databases of jam.processor_databases, as a list of names. */
static List *
database_names(void)
{
	char	   *copy = pstrdup(processor_databases ? processor_databases : "");
	List	   *names = NIL;

	if (!SplitIdentifierString(copy, ',', &names))
		ereport(FATAL,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("jam.processor_databases is not a comma-separated list of database names")));
	return names;
}

/*
 * Defines the processor settings and, when preloading with workers asked
 * for, registers them and claims their shared memory.
 */
void
jam_processor_init(void)
{
	List	   *names;
	ListCell   *lc;
	int			d = 0;

	if (!process_shared_preload_libraries_in_progress)
		return;
	DefineCustomIntVariable("jam.processor_workers",
							"Background workers that process packages, per database of jam.processor_databases.",
							"0 starts none; packages then wait for jam_process_next() calls.",
							&jam_processor_workers, 0, 0, 32,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("jam.processor_batch_size",
							"Packages a processor worker processes per transaction at most.",
							"1 commits each package on its own; more write the outcomes of a "
							"backlog's packages together, as jam_process_packages() does.",
							&processor_batch_size, 1, 1, 1000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("jam.processor_databases",
							   "Databases whose packages the processor workers process.",
							   "A comma-separated list of database names.",
							   &processor_databases, "",
							   PGC_POSTMASTER, 0, NULL, NULL, NULL);
	names = database_names();
	n_databases = list_length(names);
	if (jam_processor_workers == 0 || n_databases == 0)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = processor_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = processor_shmem_startup;

	foreach(lc, names)
	{
		for (int w = 0; w < jam_processor_workers; w++)
		{
			BackgroundWorker worker;
			int			slot = d * jam_processor_workers + w;

			memset(&worker, 0, sizeof(worker));
			worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
			/* Started on a standby too, where it waits for promotion. */
			worker.bgw_start_time = BgWorkerStart_ConsistentState;
			worker.bgw_restart_time = 5;
			snprintf(worker.bgw_library_name, BGW_MAXLEN, "jam");
			snprintf(worker.bgw_function_name, BGW_MAXLEN, "jam_processor_main");
			snprintf(worker.bgw_name, BGW_MAXLEN, "jam processor %d for database %s",
					 w + 1, (char *) lfirst(lc));
			snprintf(worker.bgw_type, BGW_MAXLEN, "jam processor");
			worker.bgw_main_arg = Int32GetDatum(slot);
			strlcpy(worker.bgw_extra, (char *) lfirst(lc), BGW_EXTRALEN);
			RegisterBackgroundWorker(&worker);
		}
		d++;
	}
}

/* Sets the latches of this database's processors. */
static void
wake_processors(void)
{
	for (int i = 0; i < shared->n_slots; i++)
		if (shared->slots[i].database == MyDatabaseId && shared->slots[i].latch != NULL)
			SetLatch(shared->slots[i].latch);
}

static JamCommitWake processors_waker = {wake_processors, false};

/* Asks for this database's processors to be woken when the transaction commits. */
void
jam_processor_wake_at_commit(void)
{
	if (shared == NULL || shared->n_slots == 0)
		return;
	jam_wake_at_commit(&processors_waker);
}

/* Whether jam is installed in this worker's database, in the 1.1 catalog or the 1.0 one. */
static bool
jam_installed(void)
{
	bool		installed;

	StartTransactionCommand();
	installed = OidIsValid(get_extension_oid("jam", true));
	CommitTransactionCommand();
	return installed;
}

/*
 * Processes one package, or up to jam.processor_batch_size, in a
 * transaction of its own; false when none was pending.
 */
static bool
process_in_transaction(ProcessorSlot *slot)
{
	TimestampTz started = GetCurrentTimestamp();
	int			batch = processor_batch_size;
	JamProcessed *done = palloc(sizeof(JamProcessed) * batch);
	int			processed = 0;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "jam processor: processing");
	if (!jam_enabled)
		processed = 0;
	else if (batch > 1)
		processed = jam_process_some(batch, done);
	else
		processed = jam_process_one(&done[0].applied, &done[0].submitted_at) ? 1 : 0;
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);

	if (processed > 0)
	{
		TimestampTz now = GetCurrentTimestamp();

		pg_atomic_fetch_add_u64(&slot->busy_us, (uint64) Max(now - started, 0));
		for (int i = 0; i < processed; i++)
		{
			pg_atomic_fetch_add_u64(done[i].applied ? &slot->processed : &slot->failed, 1);
			pg_atomic_fetch_add_u64(&slot->wait_us, (uint64) Max(started - done[i].submitted_at, 0));
		}
	}
	return processed > 0;
}

/* A processor's round: a package, or a batch, in a transaction of its own. */
typedef struct ProcessRound
{
	ProcessorSlot *slot;
	bool		processed;		/* out: whether one was pending */
} ProcessRound;

static void
process_round(void *arg)
{
	ProcessRound *round = arg;

	round->processed = process_in_transaction(round->slot);
}

/*
 * Entry point of a processor worker: a package (or a batch) per
 * transaction while any is pending, then sleep until woken.
 */
void
jam_processor_main(Datum main_arg)
{
	int			index = DatumGetInt32(main_arg);
	ProcessorSlot *slot = &shared->slots[index];
	MemoryContext round_context;
	bool		said_waiting = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(MyBgworkerEntry->bgw_extra, NULL, 0);

	strlcpy(slot->database_name, MyBgworkerEntry->bgw_extra, NAMEDATALEN);
	slot->index = index % Max(jam_processor_workers, 1) + 1;
	slot->latch = MyLatch;
	slot->database = MyDatabaseId;
	ereport(LOG,
			(errmsg("jam processor %d started for database \"%s\"", slot->index, slot->database_name)));

	round_context = AllocSetContextCreate(TopMemoryContext, "jam processor", ALLOCSET_DEFAULT_SIZES);
	jam_commit_flush_defer_own();
	while (!ShutdownRequestPending)
	{
		bool		processed = false;
		long		sleep_ms = IDLE_WAKE_MS;

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		if (RecoveryInProgress())
		{
			if (!said_waiting)
				ereport(LOG, (errmsg("jam processor %d waits: this server is a standby", slot->index)));
			said_waiting = true;
			sleep_ms = ERROR_PAUSE_MS;
		}
		else if (!jam_installed())
			sleep_ms = IDLE_WAKE_MS;
		else
		{
			ProcessRound round = {slot, false};

			if (!jam_worker_round(round_context, process_round, &round))
				sleep_ms = ERROR_PAUSE_MS;
			processed = round.processed;
		}
		/* Its commits' flushes were left to others; before it sleeps, its own. */
		jam_commit_flush_settle(!processed);
		if (processed)
			continue;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 sleep_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	slot->latch = NULL;
	ereport(LOG, (errmsg("jam processor %d for database \"%s\" stops", slot->index, slot->database_name)));
	/* Exit code 1: the postmaster starts it again, unless the server is stopping. */
	proc_exit(1);
}

/*
 * The counters of processor slot i for jam_metrics(); false past the last
 * slot.  A slot whose worker has not connected yet counts nothing.
 */
bool
jam_processor_stats(int i, JamProcessorStats *out)
{
	ProcessorSlot *slot;

	if (shared == NULL || i >= shared->n_slots)
		return false;
	slot = &shared->slots[i];
	snprintf(out->worker, sizeof(out->worker), "%s/%d",
			 slot->database_name[0] ? slot->database_name : "-", i % Max(jam_processor_workers, 1) + 1);
	out->processed = pg_atomic_read_u64(&slot->processed);
	out->failed = pg_atomic_read_u64(&slot->failed);
	out->busy_seconds = (double) pg_atomic_read_u64(&slot->busy_us) / 1e6;
	out->wait_seconds = (double) pg_atomic_read_u64(&slot->wait_us) / 1e6;
	return true;
}
