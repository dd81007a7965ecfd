/*
 * retention_worker.c: the background workers of retention.
 *
 * - A task worker, started on demand (jam_task_run): it runs work that must
 *   commit as it goes (jam_cleanup's and jam_offload's batches) or that
 *   must run in another database (pg_cron's functions live in
 *   cron.database_name), connected as the calling role, while the caller
 *   waits.  The caller and the worker
 *   share a JamTask in a dynamic shared memory segment: the inputs, then
 *   the counts and any error the worker stopped with.  If the caller stops
 *   waiting (cancel, error, exit), it terminates the worker; whatever the
 *   worker committed stays.
 *
 * - The retention worker, started with the server when jam.retention_worker
 *   is on: it runs the cleanup every jam.retention_interval in
 *   jam.retention_database, for clusters without pg_cron.
 */
#include "jam.h"
#include "errors.h"
#include "metrics.h"
#include "retention.h"
#include "worker_round.h"

#include "access/xact.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

PGDLLEXPORT void jam_task_main(Datum main_arg);
PGDLLEXPORT void jam_retention_worker_main(Datum main_arg);

/* How long the postmaster waits before restarting a retention worker that failed. */
#define JAM_RETENTION_WORKER_RESTART_S 60

/* on_dsm_detach callback: the caller stopped waiting, so the worker must stop too. */
static void
stop_task_worker(dsm_segment *seg, Datum arg)
{
	BackgroundWorkerHandle *handle = (BackgroundWorkerHandle *) DatumGetPointer(arg);

	TerminateBackgroundWorker(handle);
}

/*
 * Runs task in a dynamic background worker connected to task->database_id
 * as the current role, waits for it, and copies its outputs back into
 * *task.  An error the worker raised is raised again here.  Returns false
 * when the worker stopped without finishing (it was terminated).  what
 * names the task in the worker's process title ("jam <what>").
 */
bool
jam_task_run(JamTask *task, const char *what)
{
	dsm_segment *seg;
	JamTask    *shared;
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	MemoryContext old;
	BgwHandleStatus status;

	seg = dsm_create(sizeof(JamTask), 0);
	shared = dsm_segment_address(seg);
	memcpy(shared, task, sizeof(JamTask));
	shared->done = false;
	shared->failed = false;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "jam");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "jam_task_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "jam %s for PID %d", what, MyProcPid);
	snprintf(worker.bgw_type, BGW_MAXLEN, "jam %s", what);
	worker.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(seg));
	worker.bgw_notify_pid = MyProcPid;
	/* Who the worker is: the session's login role, acting as the current role. */
	{
		Oid			ids[3];
		int			sec_context;

		GetUserIdAndSecContext(&ids[1], &sec_context);
		ids[0] = GetAuthenticatedUserId();
		ids[2] = (Oid) sec_context;
		memcpy(worker.bgw_extra, ids, sizeof(ids));
	}

	/*
	 * The handle must outlive this call's memory: the detach callback uses
	 * it when the transaction aborts, after executor memory is gone.
	 */
	old = MemoryContextSwitchTo(TopMemoryContext);
	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
		ereport(ERROR,
				(jam_errcode(JAM_ERR_WORKER_UNAVAILABLE),
				 errmsg("could not start a background worker for jam %s", what),
				 errhint("Every background worker slot is taken; raise max_worker_processes.")));
	MemoryContextSwitchTo(old);
	on_dsm_detach(seg, stop_task_worker, PointerGetDatum(handle));

	status = WaitForBackgroundWorkerShutdown(handle);
	if (status == BGWH_POSTMASTER_DIED)
		ereport(FATAL,
				(errcode(ERRCODE_ADMIN_SHUTDOWN),
				 errmsg("postmaster exited during jam %s", what)));

	cancel_on_dsm_detach(seg, stop_task_worker, PointerGetDatum(handle));
	pfree(handle);
	pg_read_barrier();
	memcpy(task, shared, sizeof(JamTask));
	dsm_detach(seg);

	if (task->failed)
		ereport(ERROR,
				(errcode(task->sqlerrcode),
				 errmsg_internal("%s", task->message),
				 task->detail[0] ? errdetail_internal("%s", task->detail) : 0,
				 task->hint[0] ? errhint("%s", task->hint) : 0,
				 errcontext("background worker \"jam %s\"", what)));
	return task->done;
}

/* Records the error being handled in the task, for the caller to raise. */
static void
record_task_error(JamTask *task, MemoryContext ctx)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(ctx);
	edata = CopyErrorData();
	task->sqlerrcode = edata->sqlerrcode;
	strlcpy(task->message, edata->message ? edata->message : "unknown error", JAM_TASK_TEXT_MAX);
	strlcpy(task->detail, edata->detail ? edata->detail : "", JAM_TASK_TEXT_MAX);
	strlcpy(task->hint, edata->hint ? edata->hint : "", JAM_TASK_TEXT_MAX);
	pg_write_barrier();
	task->failed = true;
}

/*
 * Entry point of a task worker: attaches the caller's segment, connects as
 * the caller, runs the task and records how it ended.  SIGTERM (the caller
 * giving up, or pg_terminate_backend) ends it at once through die(); the
 * open batch, if any, rolls back.
 */
void
jam_task_main(Datum main_arg)
{
	dsm_segment *seg;
	JamTask    *task;
	Oid			ids[3];
	MemoryContext ctx;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	seg = dsm_attach(DatumGetUInt32(main_arg));
	if (seg == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("jam task worker could not map its shared memory segment")));
	task = dsm_segment_address(seg);
	memcpy(ids, MyBgworkerEntry->bgw_extra, sizeof(ids));

	BackgroundWorkerInitializeConnectionByOid(task->database_id, ids[0], 0);
	SetUserIdAndSecContext(ids[1], (int) ids[2]);

	ctx = CurrentMemoryContext;
	PG_TRY();
	{
		switch (task->kind)
		{
			case JAM_TASK_CLEANUP:
				jam_cleanup_batches(&task->cleanup, &task->counts);
				break;
			case JAM_TASK_CRON:
				jam_cron_task(task);
				break;
			case JAM_TASK_OFFLOAD:
				jam_offload_run(&task->offload, 0);
				break;
			default:
				elog(ERROR, "unknown jam task kind %d", (int) task->kind);
		}
		pg_write_barrier();
		task->done = true;
	}
	PG_CATCH();
	{
		record_task_error(task, ctx);
		PG_RE_THROW();
	}
	PG_END_TRY();

	dsm_detach(seg);
	proc_exit(0);
}

/*
 * Registers the retention worker when jam is preloaded with
 * jam.retention_worker on.  Called from _PG_init.
 */
void
jam_retention_worker_register(void)
{
	BackgroundWorker worker;

	if (!process_shared_preload_libraries_in_progress || !jam_retention_worker_enabled)
		return;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = JAM_RETENTION_WORKER_RESTART_S;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "jam");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "jam_retention_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "jam retention worker");
	snprintf(worker.bgw_type, BGW_MAXLEN, "jam retention worker");
	RegisterBackgroundWorker(&worker);
}

/* Whether the extension is installed in the worker's database. */
static bool
jam_installed(void)
{
	bool		installed;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	installed = OidIsValid(get_extension_oid("jam", true));
	CommitTransactionCommand();
	return installed;
}

/* The dry run of the retention worker, in a transaction of its own. */
static void
count_in_transaction(const JamCleanupParams *params, JamCleanupCounts *counts)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "jam cleanup: dry run");
	jam_cleanup_count(params, counts);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}

/* Why the worker skipped its last round, so that it says so only once. */
static const char *skipping = NULL;

/*
 * One round of the retention worker: a cleanup as jam_cleanup() would do
 * it, logged the same way.  Skips quietly, saying so once in the log,
 * while the extension is not installed, jam is disabled or retention is
 * off.
 */
static void
retention_round(void *arg)
{
	const char *skip = NULL;
	TimestampTz started;
	JamCleanupParams params;
	JamCleanupCounts counts;

	if (!jam_installed())
		skip = "the extension jam is not installed in this database";
	else if (!jam_enabled)
		skip = "jam.enabled is off";
	else if (jam_retention_days <= 0)
		skip = "jam.retention_days is 0 or less";
	if (skip != NULL)
	{
		if (skipping != skip)
			ereport(LOG,
					(errmsg("jam retention worker: skipping cleanup in database \"%s\": %s",
							jam_retention_database, skip)));
		skipping = skip;
		return;
	}
	skipping = NULL;

	started = GetCurrentTimestamp();
	memset(&counts, 0, sizeof(counts));
	jam_cleanup_params(started, &params);
	if (jam_retention_dry_run)
		count_in_transaction(&params, &counts);
	else
		jam_cleanup_batches(&params, &counts);
	jam_metrics_cleanup_run(jam_retention_dry_run ? JAM_CLEANUP_DRY_RUN : JAM_CLEANUP_DELETE,
							GetCurrentTimestamp() - started);
	ereport(LOG,
			(errmsg("jam cleanup: %s",
					jam_cleanup_document(false, jam_retention_dry_run, &params, &counts,
										 TimestampDifferenceMilliseconds(started,
																		 GetCurrentTimestamp())))));
}

/*
 * Entry point of the retention worker: a round at start, then one every
 * jam.retention_interval (start to start), sleeping on its latch between.
 * SIGHUP reloads the configuration (a new interval counts from the last
 * round's start); SIGTERM ends the worker, rolling back an open batch.  A
 * round that fails is logged and retried at the next interval.
 */
void
jam_retention_worker_main(Datum main_arg)
{
	MemoryContext round_context;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(jam_retention_database, NULL, 0);
	ereport(LOG,
			(errmsg("jam retention worker started for database \"%s\", every %d s",
					jam_retention_database, jam_retention_interval)));

	round_context = AllocSetContextCreate(TopMemoryContext, "jam retention round",
										  ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		TimestampTz started = GetCurrentTimestamp();

		/* A round that fails is retried at the next interval. */
		(void) jam_worker_round(round_context, retention_round, NULL);

		for (;;)
		{
			long		left;

			CHECK_FOR_INTERRUPTS();
			if (ConfigReloadPending)
			{
				ConfigReloadPending = false;
				ProcessConfigFile(PGC_SIGHUP);
			}
			left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
												   TimestampTzPlusMilliseconds(started,
																			   (int64) jam_retention_interval * 1000));
			if (left <= 0)
				break;
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 left, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
	}
}
