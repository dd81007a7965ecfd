/*
 * announcer.c: the NOTIFY of committed log entries, sent by a background
 * worker instead of by the transactions that append them.
 *
 * A transaction that sends NOTIFY holds a cluster-wide lock from just
 * before its commit record until its commit is over (Postgres serializes
 * notifying commits so that notifications arrive in commit order), so its
 * WAL flush cannot be shared with other commits: notifying from every
 * submit cost submits 25-40% and made their commits queue one behind the
 * other.  Instead, a committing transaction that appended to a log puts
 * one line per service it appended to, (service, first seq, last seq),
 * into its database's ring in shared memory and sets the latch of the
 * database's announcer, a background worker that takes the lines off,
 * reads those entries back from jam_log_entries and sends their NOTIFYs in
 * a transaction of its own (with synchronous_commit off: it writes nothing
 * else, and a notification is never durable anyway).  Many commits share
 * one announcing transaction; a follower sees an entry a few milliseconds
 * after its commit.
 *
 * The announcer of a database is registered (a dynamic background worker)
 * by the first commit there that puts lines while none runs; lines put
 * before it started are announced when it does.  It leaves after
 * ANNOUNCER_IDLE_MS without work, so that a database nobody writes to
 * holds no worker slot, and it leaves at once when its database is
 * dropped, renamed or copied as a template (a connected worker would make
 * those fail).  What cannot be announced live (the ring is full
 * because nothing drains it, no worker slot is free, more than
 * ANNOUNCER_DATABASES databases use jam) is counted and logged, never
 * blocks a commit, and is still in the log: followers read events back
 * from there (jam_log_events), as the shim does when it sees a gap in a
 * service's positions.  Per service, entries are announced in log order.
 */
#include "jam.h"
#include "announcer.h"
#include "commit_flush.h"
#include "events.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/utility.h"
#include "commands/dbcommands.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

PGDLLEXPORT void jam_announcer_main(Datum main_arg);

static void announcer_process_utility(PlannedStmt *pstmt, const char *query, bool read_only_tree,
									  ProcessUtilityContext context, ParamListInfo params,
									  QueryEnvironment *query_env, DestReceiver *dest,
									  QueryCompletion *qc);

/* Databases with live events at once, and lines each ring holds. */
#define ANNOUNCER_DATABASES 16
#define RING_LINES 2048

/* A worker registered this long ago that has not started is registered again. */
#define REGISTER_RETRY_MS 10000

/* An announcer leaves after this long without work. */
#define ANNOUNCER_IDLE_MS 10000

/* After its database is dropped or renamed, no announcer is started there for this long. */
#define STOPPED_MS 30000

/* Entries read back and announced per statement. */
#define ANNOUNCE_CHUNK 1000

/*
 * After a round with work, the announcer lets this long pass before the
 * next, so that under a steady stream of commits a round takes several
 * (each round is a transaction: one per commit cost the submits a tenth
 * of the machine), at this much added latency per event.
 */
#define ANNOUNCE_GATHER_US 2000

typedef struct RingLine
{
	char		service_id[JAM_SERVICE_ID_MAX + 1];
	int64		first;
	int64		last;
} RingLine;

typedef struct AnnouncerSlot
{
	Oid			database;		/* InvalidOid: free */
	Latch	   *latch;			/* the running announcer's, else NULL */
	pid_t		pid;			/* the running announcer's, else 0 */
	TimestampTz registered_at;	/* 0: no worker registered */
	TimestampTz stopped_until;	/* no announcer before then: its database is going */
	uint64		head;			/* lines ever put */
	uint64		tail;			/* lines ever taken */
	RingLine	lines[RING_LINES];
} AnnouncerSlot;

typedef struct AnnouncerShared
{
	LWLock	   *lock;
	uint64		dropped;		/* entries not announced live */
	uint64		announced;
	AnnouncerSlot slots[ANNOUNCER_DATABASES];
} AnnouncerShared;

/* Services this transaction appended to, and the seqs it took in each. */
typedef struct Appended
{
	char		service_id[JAM_SERVICE_ID_MAX + 1];
	int64		first;
	int64		last;
} Appended;

static AnnouncerShared *shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static ProcessUtility_hook_type prev_process_utility = NULL;

static HTAB *appended = NULL;	/* in TopTransactionContext, NULL when empty */
static bool callback_registered = false;
static bool warned_no_worker = false;

/*
 * The entries of many lines, in the lines' order and each line's log
 * order: one statement for a round's lines (a round holds one line per
 * committed transaction), with a generic plan (unnest($), spi_util.c).
 * The LIMIT, which a range never reaches, keeps the subquery apart, so
 * each line is an index range scan: joined, the generic plan would hash
 * the lines and scan the whole log.  With each report entry's package
 * where the catalog keeps it (1.3), else NULL.
 */
#define SELECT_ENTRIES(package) \
	"SELECT u.svc, e.seq, e.kind, @x(e.hash), e.status, @x(e.package_id) " \
	"FROM unnest($1::text[], $2::int8[], $3::int8[]) WITH ORDINALITY AS u(svc, a, b, i) " \
	"CROSS JOIN LATERAL (SELECT seq, kind, hash, status, " package " AS package_id " \
	"FROM jam.jam_log_entries " \
	"WHERE service_id = u.svc AND seq BETWEEN u.a AND u.b ORDER BY seq LIMIT u.b - u.a + 1) AS e " \
	"ORDER BY u.i, e.seq"

static JamStatement select_entries = {
	SELECT_ENTRIES("NULL::bytea"), 3, {TEXTARRAYOID, INT8ARRAYOID, INT8ARRAYOID}
};

static JamStatement select_entries_naming_packages = {
	SELECT_ENTRIES("package_id"), 3, {TEXTARRAYOID, INT8ARRAYOID, INT8ARRAYOID}
};

static void
announcer_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(sizeof(AnnouncerShared));
	RequestNamedLWLockTranche("jam_announcer", 1);
}

static void
announcer_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("jam announcer", sizeof(AnnouncerShared), &found);
	if (!found)
	{
		memset(shared, 0, sizeof(AnnouncerShared));
		shared->lock = &(GetNamedLWLockTranche("jam_announcer"))->lock;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Claims the shared rings when preloading; without preloading nothing is announced live. */
void
jam_announcer_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = announcer_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = announcer_shmem_startup;
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = announcer_process_utility;
}

/* The database's slot, taken if need be; NULL when all are taken.  Lock held exclusively. */
static AnnouncerSlot *
slot_for(Oid database)
{
	AnnouncerSlot *free_slot = NULL;

	for (int i = 0; i < ANNOUNCER_DATABASES; i++)
	{
		if (shared->slots[i].database == database)
			return &shared->slots[i];
		if (shared->slots[i].database == InvalidOid && free_slot == NULL)
			free_slot = &shared->slots[i];
	}
	if (free_slot != NULL)
	{
		memset(free_slot, 0, offsetof(AnnouncerSlot, lines));
		free_slot->database = database;
	}
	return free_slot;
}

/*
 * Whether the slot needs an announcer registered: none runs, none was
 * registered lately, and its database is not going away.  Marks it
 * registered when so.  Lock held exclusively.
 */
static bool
announcer_wanted(AnnouncerSlot *slot, TimestampTz now)
{
	if (slot->latch != NULL || now < slot->stopped_until ||
		(slot->registered_at != 0 && !TimestampDifferenceExceeds(slot->registered_at, now, REGISTER_RETRY_MS)))
		return false;
	slot->registered_at = now;
	return true;
}

/*
 * Registers an announcer for this database.  Called after a commit: it
 * only fills a slot of the postmaster's worker list, and says so in the
 * server log, once, when that list is full.
 */
static void
register_announcer(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "jam");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "jam_announcer_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "jam announcer for database %u", MyDatabaseId);
	snprintf(worker.bgw_type, BGW_MAXLEN, "jam announcer");
	worker.bgw_main_arg = ObjectIdGetDatum(MyDatabaseId);
	if (!RegisterDynamicBackgroundWorker(&worker, NULL) && !warned_no_worker)
	{
		warned_no_worker = true;
		ereport(LOG,
				(errmsg("jam could not start the announcer of this database's events"),
				 errhint("Raise max_worker_processes. Events stay readable with jam_log_events().")));
	}
}

/* Puts the transaction's lines into the ring and wakes the announcer.  Never raises. */
static void
publish(void)
{
	HASH_SEQ_STATUS seq;
	Appended   *a;
	AnnouncerSlot *slot;
	Latch	   *latch = NULL;
	bool		start = false;

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	slot = slot_for(MyDatabaseId);
	hash_seq_init(&seq, appended);
	while ((a = hash_seq_search(&seq)) != NULL)
	{
		if (slot == NULL || slot->head - slot->tail >= RING_LINES)
		{
			shared->dropped += (uint64) (a->last - a->first + 1);
			continue;
		}
		slot->lines[slot->head % RING_LINES].first = a->first;
		slot->lines[slot->head % RING_LINES].last = a->last;
		strlcpy(slot->lines[slot->head % RING_LINES].service_id, a->service_id, JAM_SERVICE_ID_MAX + 1);
		slot->head++;
	}
	if (slot != NULL)
	{
		latch = slot->latch;
		start = announcer_wanted(slot, GetCurrentTimestamp());
	}
	LWLockRelease(shared->lock);
	if (latch != NULL)
		SetLatch(latch);
	if (start)
		register_announcer();
}

static void
at_transaction_end(XactEvent event, void *arg)
{
	if (appended == NULL)
		return;
	if (event == XACT_EVENT_COMMIT)
		publish();
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE)
		appended = NULL;		/* its memory went with the transaction */
}

/*
 * Notes that the transaction appended seq to service_id's log, to be
 * announced once it commits.  An entry of a subtransaction that rolls back
 * may be noted too: the announcer reads what the log holds, and a range
 * whose end was rolled back announces only what is there.
 */
void
jam_announce_at_commit(const char *service_id, int64 seq)
{
	Appended   *a;
	char		key[JAM_SERVICE_ID_MAX + 1];
	bool		found;

	if (shared == NULL || !jam_events)
		return;
	if (!callback_registered)
	{
		RegisterXactCallback(at_transaction_end, NULL);
		callback_registered = true;
	}
	if (appended == NULL)
		appended = jam_transaction_hash("jam entries to announce", 16, JAM_SERVICE_ID_MAX + 1,
										sizeof(Appended), HASH_STRINGS);
	memset(key, 0, sizeof(key));
	strlcpy(key, service_id, sizeof(key));
	a = hash_search(appended, key, HASH_ENTER, &found);
	if (!found)
		a->first = a->last = seq;
	a->first = Min(a->first, seq);
	a->last = Max(a->last, seq);
}

/* Entries not announced live, and entries announced, since the server started. */
void
jam_announcer_counts(uint64 *dropped, uint64 *announced)
{
	*dropped = *announced = 0;
	if (shared == NULL)
		return;
	LWLockAcquire(shared->lock, LW_SHARED);
	*dropped = shared->dropped;
	*announced = shared->announced;
	LWLockRelease(shared->lock);
}

/* Part of jam_metrics_reset(). */
void
jam_announcer_reset_counts(void)
{
	if (shared == NULL)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	shared->dropped = shared->announced = 0;
	LWLockRelease(shared->lock);
}

static AnnouncerSlot *my_slot = NULL;

static void
forget_latch(int code, Datum arg)
{
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	if (my_slot->latch == MyLatch)
	{
		my_slot->latch = NULL;
		my_slot->pid = 0;
		my_slot->registered_at = 0;
	}
	LWLockRelease(shared->lock);
}

/* Leaves when idle: true, with the slot given back, when the ring is still empty.  */
static bool
leave_if_idle(void)
{
	bool		idle;

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	idle = my_slot->tail == my_slot->head;
	if (idle)
	{
		my_slot->latch = NULL;
		my_slot->pid = 0;
		my_slot->registered_at = 0;
	}
	LWLockRelease(shared->lock);
	return idle;
}

static int
by_service_then_seq(const void *a, const void *b)
{
	const RingLine *x = a;
	const RingLine *y = b;
	int			c = strcmp(x->service_id, y->service_id);

	if (c != 0)
		return c;
	return x->first < y->first ? -1 : x->first > y->first;
}

/*
 * Announces the entries of n pieces of lines (services[i], from first[i]
 * to last[i]) as they are in the log.  Needs SPI.
 */
static uint64
announce_pieces(Datum *services, Datum *first, Datum *last, int n)
{
	Datum		values[3];
	int			rows;

	values[0] = PointerGetDatum(construct_array(services, n, TEXTOID, -1, false, TYPALIGN_INT));
	values[1] = PointerGetDatum(construct_array(first, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[2] = PointerGetDatum(construct_array(last, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	rows = jam_spi_exec(jam_log_has_package_id() ? &select_entries_naming_packages : &select_entries,
						values, NULL, true, 0);
	for (int r = 0; r < rows; r++)
	{
		HeapTuple	row = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		jam_event_notify(SPI_getvalue(row, desc, 1),
						 DatumGetInt64(SPI_getbinval(row, desc, 2, &isnull)),
						 SPI_getvalue(row, desc, 3), SPI_getvalue(row, desc, 4),
						 SPI_getvalue(row, desc, 5), SPI_getvalue(row, desc, 6));
	}
	return rows;
}

/*
 * Announces the entries of lines[0..n), in order, at most ANNOUNCE_CHUNK
 * entries a statement (a line of a large batch is cut into pieces).
 * Needs SPI.
 */
static uint64
announce_lines(const RingLine *lines, int n)
{
	Datum	   *services = palloc(sizeof(Datum) * ANNOUNCE_CHUNK);
	Datum	   *first = palloc(sizeof(Datum) * ANNOUNCE_CHUNK);
	Datum	   *last = palloc(sizeof(Datum) * ANNOUNCE_CHUNK);
	int			pieces = 0;
	int64		entries = 0;
	uint64		announced = 0;

	for (int i = 0; i < n; i++)
	{
		Datum		service = CStringGetTextDatum(lines[i].service_id);

		for (int64 from = lines[i].first; from <= lines[i].last;)
		{
			int64		to = Min(lines[i].last, from + (ANNOUNCE_CHUNK - entries) - 1);

			services[pieces] = service;
			first[pieces] = Int64GetDatum(from);
			last[pieces] = Int64GetDatum(to);
			pieces++;
			entries += to - from + 1;
			from = to + 1;
			if (entries == ANNOUNCE_CHUNK || pieces == ANNOUNCE_CHUNK)
			{
				announced += announce_pieces(services, first, last, pieces);
				pieces = 0;
				entries = 0;
			}
		}
	}
	if (pieces > 0)
		announced += announce_pieces(services, first, last, pieces);
	return announced;
}

/* Takes every line off the ring and announces them in one transaction; false when there were none. */
static bool
announce_round(MemoryContext round_context)
{
	RingLine   *lines;
	int			n = 0;
	uint64		announced = 0;

	lines = MemoryContextAlloc(round_context, sizeof(RingLine) * RING_LINES);
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	while (my_slot->tail < my_slot->head)
		lines[n++] = my_slot->lines[my_slot->tail++ % RING_LINES];
	LWLockRelease(shared->lock);
	if (n == 0)
		return false;
	qsort(lines, n, sizeof(RingLine), by_service_then_seq);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_SESSION);
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "jam announcer: announcing");
	if (OidIsValid(get_extension_oid("jam", true)))
	{
		SPI_connect();
		announced = announce_lines(lines, n);
		SPI_finish();
		/* Their commits may still be on their way to disk (commit_flush.c). */
		jam_wait_durable();
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	shared->announced += announced;
	LWLockRelease(shared->lock);
	return true;
}

/* Entry point of a database's announcer: announce what is in the ring, sleep until woken. */
void
jam_announcer_main(Datum main_arg)
{
	Oid			database = DatumGetObjectId(main_arg);
	MemoryContext round_context;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(database, InvalidOid, 0);

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	my_slot = slot_for(database);
	if (my_slot != NULL && my_slot->latch == NULL && GetCurrentTimestamp() >= my_slot->stopped_until)
	{
		my_slot->latch = MyLatch;
		my_slot->pid = MyProcPid;
	}
	else
		my_slot = NULL;
	LWLockRelease(shared->lock);
	if (my_slot == NULL)
		proc_exit(0);			/* another runs, or no room: nothing to do */
	before_shmem_exit(forget_latch, (Datum) 0);

	round_context = AllocSetContextCreate(TopMemoryContext, "jam announcer", ALLOCSET_DEFAULT_SIZES);
	while (!ShutdownRequestPending)
	{
		bool		busy;

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		ResetLatch(MyLatch);
		busy = announce_round(round_context);
		MemoryContextReset(round_context);
		if (busy)
		{
			pg_usleep(ANNOUNCE_GATHER_US);
			continue;
		}
		if (WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					  ANNOUNCER_IDLE_MS, PG_WAIT_EXTENSION) & WL_TIMEOUT &&
			leave_if_idle())
			break;
		CHECK_FOR_INTERRUPTS();
	}
	proc_exit(0);
}

/*
 * Stops the announcer of the database named (a DROP, a RENAME, a CREATE
 * DATABASE copying it is about to run, and each refuses while another
 * session is connected) and keeps a new one from starting there for a
 * while; waits up to 5 s for it to leave.
 */
static void
stop_announcer_of(const char *name)
{
	Oid			database = name ? get_database_oid(name, true) : InvalidOid;
	pid_t		pid = 0;

	if (shared == NULL || !OidIsValid(database))
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < ANNOUNCER_DATABASES; i++)
		if (shared->slots[i].database == database)
		{
			shared->slots[i].stopped_until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), STOPPED_MS);
			pid = shared->slots[i].pid;
		}
	LWLockRelease(shared->lock);
	if (pid == 0)
		return;
	(void) kill(pid, SIGTERM);
	for (int waited = 0; waited < 500; waited++)
	{
		bool		gone = true;

		LWLockAcquire(shared->lock, LW_SHARED);
		for (int i = 0; i < ANNOUNCER_DATABASES; i++)
			if (shared->slots[i].database == database && shared->slots[i].pid == pid)
				gone = false;
		LWLockRelease(shared->lock);
		if (gone)
			return;
		CHECK_FOR_INTERRUPTS();
		pg_usleep(10000L);
	}
}

/* The database a CREATE DATABASE copies, when it names one. */
static const char *
template_of(CreatedbStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->options)
	{
		DefElem    *opt = lfirst(lc);

		if (strcmp(opt->defname, "template") == 0 && opt->arg != NULL)
			return defGetString(opt);
	}
	return NULL;
}

static void
announcer_process_utility(PlannedStmt *pstmt, const char *query, bool read_only_tree,
						  ProcessUtilityContext context, ParamListInfo params,
						  QueryEnvironment *query_env, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;

	if (IsA(stmt, DropdbStmt))
		stop_announcer_of(((DropdbStmt *) stmt)->dbname);
	else if (IsA(stmt, RenameStmt) && ((RenameStmt *) stmt)->renameType == OBJECT_DATABASE)
		stop_announcer_of(((RenameStmt *) stmt)->subname);
	else if (IsA(stmt, CreatedbStmt))
		stop_announcer_of(template_of((CreatedbStmt *) stmt));
	if (prev_process_utility)
		prev_process_utility(pstmt, query, read_only_tree, context, params, query_env, dest, qc);
	else
		standard_ProcessUtility(pstmt, query, read_only_tree, context, params, query_env, dest, qc);
}
