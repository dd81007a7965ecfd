/*
 * commit_flush.c: a transaction that appended to a service's log lets go
 * of the service's row lock before its commit's WAL flush, and waits for
 * the flush after.
 *
 * The service row's lock serializes the service's log, and Postgres holds
 * a row lock until the transaction is over: after its commit record has
 * been flushed.  So every append to a service waited for the flush of the
 * append before it, one flush after the other, none shared: with 2
 * processor workers and submits to 4 services at 1,789 a second, p99 from
 * a submit to its report was 1.9 s, against 4.7 ms when nothing waited for
 * a flush (synchronous_commit = off, CPU 28% idle in both).
 *
 * Such a transaction therefore commits asynchronously (synchronous_commit
 * set to off, locally, just before its commit): its commit record is
 * written to the WAL buffers, it becomes visible and its locks are
 * released, and the next append to the service may go ahead.  Then, still
 * inside the commit, after the locks are gone, it flushes the WAL up to
 * its commit record (and waits for synchronous standbys, as its own
 * setting asked), before its caller hears that it committed.  What a
 * client is told is committed is durable, as before, and the flushes of
 * concurrent appends are shared.  A crash before the flush loses the
 * commit with everything after it in the WAL: an append that went ahead on
 * top of it commits after it in the WAL too, so a log never loses an entry
 * below one it keeps.  Nothing changes for a transaction whose own
 * setting is already off, for PREPARE TRANSACTION, or without
 * shared_preload_libraries (the readers below need shared memory).
 *
 * What changes is that for the length of that flush other sessions can
 * see the commit before it is durable.  jam's readers wait for it where
 * they hand out what they read: a call of one of jam's functions in a
 * transaction that has written nothing ends, while such commits are in
 * flight, with a flush of the WAL inserted so far (and a wait for the
 * synchronous standbys the reader's own setting names: jam_wait_durable),
 * which covers every commit its snapshots saw; the announcer does the same
 * before it sends its NOTIFYs.  So no receipt, proof, checkpoint, tile,
 * event or page jam returns names an entry that a crash could take back.
 * A plain SELECT on jam's tables is not jam's reader, and may see one for
 * that instant.
 *
 * A processor worker goes one step further: nobody waits for its commit,
 * so it does not flush at all, and stays counted until its last commit is
 * flushed by others (and confirmed by the synchronous standbys its setting
 * names), or flushes it itself before it sleeps (jam_commit_flush_settle).
 */
#include "jam.h"
#include "auth.h"
#include "commit_flush.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "catalog/namespace.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "replication/syncrep.h"
#include "replication/walsender.h"
#include "replication/walsender_private.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/resowner.h"

typedef struct CommitFlushShared
{
	pg_atomic_uint32 in_flight; /* commits between their record and their flush */
} CommitFlushShared;

static CommitFlushShared *shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static fmgr_hook_type prev_fmgr_hook = NULL;

/* The synchronous_commit the armed commit would have used; -1: not armed. */
static int	armed_level = -1;
static char armed_setting[32];	/* the same, as the setting's text */
static bool callbacks_registered = false;

/* Whether this backend holds one of in_flight's count. */
static bool counted = false;

/*
 * A processor worker's own commits: nobody waits for them to be told, so
 * the worker leaves their flush to the WAL writer and to jam's readers
 * (jam_commit_flush_defer_own).  The end of the last such commit, while it
 * may not be flushed yet; it keeps this backend counted in in_flight until
 * it is.
 */
static bool defer_own_flush = false;
static XLogRecPtr unflushed_end = InvalidXLogRecPtr;
static int	unflushed_level;	/* the synchronous_commit it would have used */

/* Whether some commit is between its record and its flush, read after what the caller read. */
static bool
commits_in_flight(void)
{
	if (shared == NULL)
		return false;
	pg_memory_barrier();
	return pg_atomic_read_u32(&shared->in_flight) > 0;
}

static void
commit_flush_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(sizeof(CommitFlushShared));
}

static void
commit_flush_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("jam commit flush", sizeof(CommitFlushShared), &found);
	if (!found)
		pg_atomic_init_u32(&shared->in_flight, 0);
	LWLockRelease(AddinShmemInitLock);
}

/*
 * The end of a call of a SECURITY DEFINER function (every function of
 * jam's API is one): a call of jam's in a transaction that has written
 * nothing hands out what it read only once that is durable.
 * jam_authenticate, which the shim puts in front of every call, reads
 * tokens and which services a tenant has, and returns neither log nor
 * package: it need not wait.
 */
static void
wait_after_call(FmgrHookEventType event, FmgrInfo *flinfo, Datum *arg)
{
	if (prev_fmgr_hook)
		(*prev_fmgr_hook) (event, flinfo, arg);
	if (event == FHET_END && flinfo->fn_addr != jam_authenticate && commits_in_flight() &&
		!TransactionIdIsValid(GetTopTransactionIdIfAny()) &&
		get_func_namespace(flinfo->fn_oid) == get_namespace_oid("jam", true))
		jam_wait_durable();
}

void
jam_commit_flush_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = commit_flush_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = commit_flush_shmem_startup;
	prev_fmgr_hook = fmgr_hook;
	fmgr_hook = wait_after_call;
}

/* Counted in flight from before an armed commit can be seen. */
static void
count_in_flight(void)
{
	if (counted)
		return;
	pg_atomic_fetch_add_u32(&shared->in_flight, 1);
	counted = true;
}

/* No longer in flight: after the flush, or after an abort with nothing of ours left unflushed. */
static void
uncount_in_flight(void)
{
	if (!counted)
		return;
	counted = false;
	pg_atomic_fetch_sub_u32(&shared->in_flight, 1);
}

static bool standbys_confirmed(XLogRecPtr upto, int level);

/*
 * A backend that exits flushes what it left unflushed, then is no longer
 * counted; unless synchronous standbys have yet to confirm it: then its
 * count stays, and jam's readers go on waiting for the standbys as if it
 * were in flight (a worker exits when the server stops).
 */
static void
uncount_at_exit(int code, Datum arg)
{
	armed_level = -1;
	if (!XLogRecPtrIsInvalid(unflushed_end))
	{
		XLogFlush(unflushed_end);
		if (!standbys_confirmed(unflushed_end, unflushed_level))
			return;
	}
	unflushed_end = InvalidXLogRecPtr;
	uncount_in_flight();
}

/*
 * Called by the resource owners of the transaction as they are released:
 * in the last phase of a top-level commit every lock is gone, and the
 * commit's flush is made there.  Interrupts are held; a failed flush is a
 * PANIC, as in the commit itself.
 */
static void
flush_after_release(ResourceReleasePhase phase, bool isCommit, bool isTopLevel, void *arg)
{
	int			level = armed_level;

	if (phase != RESOURCE_RELEASE_AFTER_LOCKS || !isTopLevel || level < 0)
		return;
	armed_level = -1;
	if (isCommit && XactLastCommitEnd != InvalidXLogRecPtr)
	{
		if (defer_own_flush)
		{
			/* Left to others; still counted (jam_commit_flush_settle). */
			unflushed_end = XactLastCommitEnd;
			unflushed_level = level;
			return;
		}
		XLogFlush(XactLastCommitEnd);
		/* Which covers every earlier commit of ours. */
		unflushed_end = InvalidXLogRecPtr;

		/*
		 * Synchronous standbys, as the commit would have waited for them.
		 * SyncRepWaitForLSN reads the setting, off here: it is set back
		 * for the wait (locally again; the transaction's end then restores
		 * the session's value), only where standbys are named: without,
		 * there is nothing to wait for, and every commit would pay for it.
		 */
		if (level > SYNCHRONOUS_COMMIT_LOCAL_FLUSH && max_wal_senders > 0 &&
			SyncRepStandbyNames != NULL && SyncRepStandbyNames[0] != '\0')
		{
			(void) set_config_option("synchronous_commit", armed_setting, PGC_USERSET,
									 PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0, false);
			SyncRepWaitForLSN(XactLastCommitEnd, true);
		}
	}
	if (XLogRecPtrIsInvalid(unflushed_end))
		uncount_in_flight();
}

/*
 * Makes the commit that is about to happen asynchronous, with its flush
 * after its locks are released.  Called just before the commit of a
 * transaction that holds a service's row lock.
 */
void
jam_commit_flush_after_unlock(void)
{
	if (shared == NULL || armed_level >= 0 || synchronous_commit <= SYNCHRONOUS_COMMIT_OFF ||
		IsInParallelMode())
		return;
	if (!callbacks_registered)
	{
		RegisterResourceReleaseCallback(flush_after_release, NULL);
		before_shmem_exit(uncount_at_exit, (Datum) 0);
		callbacks_registered = true;
	}
	/* Counted before the commit can be seen, so that a reader who sees it sees the count. */
	count_in_flight();
	armed_level = synchronous_commit;
	strlcpy(armed_setting, GetConfigOption("synchronous_commit", false, false), sizeof(armed_setting));
	(void) set_config_option("synchronous_commit", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
}

/*
 * The end of the WAL inserted so far, as a position XLogFlush can reach.
 * The insert position of an empty page is just past the page's header,
 * where no record ends and which a flush of everything written does not
 * reach (XLogFlush then fails: "flush request ... is not satisfied"): it
 * is taken back to the page's start.
 */
static XLogRecPtr
inserted_so_far(void)
{
	XLogRecPtr	upto = GetXLogInsertRecPtr();
	uint32		header = XLogSegmentOffset(upto, wal_segment_size) < XLOG_BLCKSZ ?
		SizeOfXLogLongPHD : SizeOfXLogShortPHD;

	if (upto % XLOG_BLCKSZ == header)
		upto -= header;
	return upto;
}

/*
 * Makes durable every commit the caller's snapshots may have seen before
 * it hands out what it read: while commits are between their record and
 * their flush, flushes the WAL inserted so far (a flush another backend is
 * making may serve).  Costs an atomic read otherwise.  For readers only: a
 * transaction that writes flushes at its own commit.
 */
void
jam_wait_durable(void)
{
	XLogRecPtr	upto;

	if (!commits_in_flight() || RecoveryInProgress())
		return;
	upto = inserted_so_far();
	XLogFlush(upto);

	/*
	 * And on the synchronous standbys, as far as the reader's own setting
	 * asks.  SyncRepWaitForLSN expects interrupts held, as in a commit: a
	 * cancel ends the wait with a warning, and the reader answers.
	 */
	HOLD_INTERRUPTS();
	SyncRepWaitForLSN(upto, false);
	RESUME_INTERRUPTS();
}

/*
 * For a processor worker: its own commits are not flushed by it.  A
 * worker's commit has no caller to tell, and the drain is what it is for:
 * waiting for each flush left the worker idle for the flush's length,
 * every package, which made the workers drain at 0.69 of a plain queue's
 * consumers (1.58 without the wait).  Its commits are still counted in flight until they are
 * flushed, so that jam's readers flush before they hand them out; a crash
 * before the flush loses the package's processing with everything after
 * it in the WAL, and the package is pending again.
 */
void
jam_commit_flush_defer_own(void)
{
	defer_own_flush = true;
}

/*
 * Whether the synchronous standbys a commit of the given synchronous_commit
 * would have waited for have confirmed upto (or none is waited for).
 */
static bool
standbys_confirmed(XLogRecPtr upto, int level)
{
	int			mode;
	bool		confirmed;

	/*
	 * Named standbys, as the setting says (the flags the checkpointer keeps
	 * for them changed their layout in a minor release): until they are in
	 * effect the confirmed positions stay behind, and the worker counted.
	 */
	if (level <= SYNCHRONOUS_COMMIT_LOCAL_FLUSH || max_wal_senders == 0 ||
		SyncRepStandbyNames == NULL || SyncRepStandbyNames[0] == '\0')
		return true;
	mode = level == SYNCHRONOUS_COMMIT_REMOTE_WRITE ? SYNC_REP_WAIT_WRITE :
		level == SYNCHRONOUS_COMMIT_REMOTE_APPLY ? SYNC_REP_WAIT_APPLY : SYNC_REP_WAIT_FLUSH;
	LWLockAcquire(SyncRepLock, LW_SHARED);
	confirmed = WalSndCtl->lsn[mode] >= upto;
	LWLockRelease(SyncRepLock);
	return confirmed;
}

/*
 * For a worker that defers its flushes, between its transactions: no
 * longer counted in flight once its last commit is flushed (by the WAL
 * writer or anybody else) and confirmed by the synchronous standbys its
 * setting names; with flush, after flushing it itself, as a worker does
 * before it sleeps.  A worker never waits for a standby: while one has not
 * confirmed, the worker stays counted, and jam's readers wait for it.
 */
void
jam_commit_flush_settle(bool flush)
{
	if (!counted || armed_level >= 0 || XLogRecPtrIsInvalid(unflushed_end))
		return;
	if (flush)
		XLogFlush(unflushed_end);
	else if (GetFlushRecPtr(NULL) < unflushed_end)
		return;
	if (!standbys_confirmed(unflushed_end, unflushed_level))
		return;
	unflushed_end = InvalidXLogRecPtr;
	uncount_in_flight();
}
