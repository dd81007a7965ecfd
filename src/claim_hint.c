/*
 * claim_hint.c: where a claim may start reading a queue's index, so that a
 * claim does not step over every package processed since the last VACUUM.
 *
 * A processed package leaves its entry in the pending index (and in the
 * 'pending' range of the status index) until VACUUM removes it, and a
 * claim reads its service's range from the start: each claim stepped over
 * every package processed since the last VACUUM.  After 50,000 processed,
 * claims ran 30% slower than after a VACUUM, and a backlog drained behind a
 * large history is not vacuumed while it drains (autovacuum waits for a
 * fifth of the table to be dead).
 *
 * So the database keeps, per index and key (a service, or "" for the
 * status index's 'pending' range), a hint: a seq below which no package is
 * pending.  A claim starts there, and when its transaction commits it moves
 * the hint up to the first pending package its scans met (the claim's own,
 * now processed, or one another transaction holds).  What makes this hard
 * is the package whose insert has not committed yet: the claim's snapshot
 * does not see it, so the scan passes its seq, and once it commits it is
 * pending below the hint.  Two rules prevent that:
 *
 *   - a transaction about to insert packages first publishes, in its own
 *     slot, a lower bound of the seqs it will take (the sequence's last
 *     value + 1, read before it inserts), and clears it only after its
 *     commit is visible to every new snapshot (or it aborted);
 *   - a claim reads, before taking its snapshot, first the sequence's last
 *     value Q, then every slot; its candidate is at most Q + 1 and at most
 *     every bound it read.  An insert its snapshot misses either published
 *     its bound before the slots were read (the candidate is not above it)
 *     or takes its seqs after Q was read (they are above Q).
 *
 * A candidate is published only when its transaction commits, so that the
 * packages it claimed are processed for good, and only under READ
 * COMMITTED, where the claim's snapshot is taken after those reads.  A hint
 * only moves up.  REPEATABLE READ reads it too: a package below it that an
 * older snapshot still sees as pending has been processed since, and its
 * lock would be refused anyway.  SERIALIZABLE does not, so that a claim
 * predicate-locks its whole range, as a query would.  A prepared transaction
 * keeps its bound until the server restarts (jam is not told when COMMIT
 * PREPARED runs).  jam is the only writer of a package's status, and it
 * never sets a package back to 'pending': a package is pending again only
 * when the transaction that processed it rolls back, wholly or to a
 * savepoint, and then it is at or above the candidate of every scan that
 * met it, and of every scan of that transaction after its claim.
 *
 * Without preloading, or with a sequence that caches values or steps by
 * anything but 1 (a value handed out could then be below one read before),
 * no hint is kept and claims start at the beginning, as before.
 */
#include "jam.h"
#include "claim_hint.h"

#include "access/twophase.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_sequence.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/fmgrprotos.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#define HINT_ENTRIES 8192

typedef struct HintEntry
{
	HintKey		key;
	int64		lowest;			/* no package below this seq is pending */
} HintEntry;

typedef struct HintShared
{
	pg_atomic_uint64 prepared_floor;	/* lowest bound a prepared transaction left; 0: none */
	int			nslots;
	pg_atomic_uint64 submitting[FLEXIBLE_ARRAY_MEMBER]; /* by pgprocno; 0: not inserting */
} HintShared;

/* A candidate of this transaction, published when it commits. */
typedef struct Candidate
{
	HintKey		key;
	int64		lowest;
} Candidate;

static HintShared *shared = NULL;
static LWLock *hints_lock = NULL;
static HTAB *hints = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static int64 my_bound = 0;		/* published in this backend's slot */
static HTAB *candidates = NULL; /* in TopTransactionContext */
static bool callbacks_registered = false;

static int
slot_count(void)
{
	return MaxBackends + NUM_AUXILIARY_PROCS + max_prepared_xacts;
}

static Size
shared_size(void)
{
	return add_size(offsetof(HintShared, submitting),
					mul_size(sizeof(pg_atomic_uint64), slot_count()));
}

static void
hints_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(add_size(shared_size(), hash_estimate_size(HINT_ENTRIES, sizeof(HintEntry))));
	RequestNamedLWLockTranche("jam_claim_hints", 1);
}

static void
hints_shmem_startup(void)
{
	HASHCTL		ctl;
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	hints_lock = &(GetNamedLWLockTranche("jam_claim_hints"))->lock;
	shared = ShmemInitStruct("jam claim hint slots", shared_size(), &found);
	if (!found)
	{
		pg_atomic_init_u64(&shared->prepared_floor, 0);
		shared->nslots = slot_count();
		for (int i = 0; i < shared->nslots; i++)
			pg_atomic_init_u64(&shared->submitting[i], 0);
	}
	ctl.keysize = sizeof(HintKey);
	ctl.entrysize = sizeof(HintEntry);
	hints = ShmemInitHash("jam claim hints", HINT_ENTRIES, HINT_ENTRIES, &ctl, HASH_ELEM | HASH_BLOBS);
	LWLockRelease(AddinShmemInitLock);
}

/* When preloading, claims the shared hints and slots. */
void
jam_claim_hint_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = hints_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = hints_shmem_startup;
}

static pg_atomic_uint64 *
my_slot(void)
{
	if (MyProc == NULL || MyProc->pgprocno < 0 || MyProc->pgprocno >= shared->nslots)
		return NULL;
	return &shared->submitting[MyProc->pgprocno];
}

static void
clear_my_bound(void)
{
	pg_atomic_uint64 *slot;

	if (my_bound == 0 || shared == NULL)
		return;
	slot = my_slot();
	if (slot != NULL)
		pg_atomic_write_u64(slot, 0);
	my_bound = 0;
}

/* Lowers the prepared transactions' floor to bound. */
static void
lower_prepared_floor(int64 bound)
{
	uint64		old = pg_atomic_read_u64(&shared->prepared_floor);

	while (old == 0 || (int64) old > bound)
		if (pg_atomic_compare_exchange_u64(&shared->prepared_floor, &old, (uint64) bound))
			break;
}

static void
publish_candidates(void)
{
	HASH_SEQ_STATUS seq;
	Candidate  *c;

	LWLockAcquire(hints_lock, LW_EXCLUSIVE);
	hash_seq_init(&seq, candidates);
	while ((c = hash_seq_search(&seq)) != NULL)
	{
		bool		found;
		HintEntry  *e = hash_search(hints, &c->key, HASH_ENTER_NULL, &found);

		if (e == NULL)
		{
			/* Full: forgetting every hint is always safe (claims start at the beginning). */
			HASH_SEQ_STATUS all;
			HintEntry  *old;

			hash_seq_init(&all, hints);
			while ((old = hash_seq_search(&all)) != NULL)
				hash_search(hints, &old->key, HASH_REMOVE, NULL);
			e = hash_search(hints, &c->key, HASH_ENTER_NULL, &found);
			if (e == NULL)
				continue;
		}
		if (!found || c->lowest > e->lowest)
			e->lowest = c->lowest;
	}
	LWLockRelease(hints_lock);
}

/*
 * At commit the candidates go public (the claimed packages are processed
 * for good) and the bound is cleared (the inserted packages are visible);
 * at abort both are dropped; at PREPARE the bound stays, as a floor.
 */
static void
at_xact_end(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			if (candidates != NULL && shared != NULL)
				publish_candidates();
			clear_my_bound();
			candidates = NULL;
			break;
		case XACT_EVENT_PREPARE:
			if (my_bound != 0 && shared != NULL)
				lower_prepared_floor(my_bound);
			clear_my_bound();
			candidates = NULL;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PARALLEL_COMMIT:
			clear_my_bound();
			candidates = NULL;
			break;
		default:
			break;
	}
}

static void
clear_at_exit(int code, Datum arg)
{
	clear_my_bound();
}

static void
register_callbacks(void)
{
	if (callbacks_registered)
		return;
	RegisterXactCallback(at_xact_end, NULL);
	before_shmem_exit(clear_at_exit, (Datum) 0);
	callbacks_registered = true;
}

/*
 * jam_work_packages' sequence, when hints can rely on it: it steps by 1
 * from at least 1, hands out no cached values, and the current user may
 * read it.  InvalidOid otherwise.
 */
static Oid
usable_sequence(void)
{
	Oid			ns = get_namespace_oid("jam", true);
	Oid			seq = OidIsValid(ns) ? get_relname_relid("jam_work_packages_seq", ns) : InvalidOid;
	HeapTuple	tuple;
	bool		usable;

	if (!OidIsValid(seq))
		return InvalidOid;
	tuple = SearchSysCache1(SEQRELID, ObjectIdGetDatum(seq));
	if (!HeapTupleIsValid(tuple))
		return InvalidOid;
	usable = ((Form_pg_sequence) GETSTRUCT(tuple))->seqincrement == 1 &&
		((Form_pg_sequence) GETSTRUCT(tuple))->seqcache == 1 &&
		((Form_pg_sequence) GETSTRUCT(tuple))->seqmin >= 1;
	ReleaseSysCache(tuple);
	if (!usable || pg_class_aclcheck(seq, GetUserId(), ACL_SELECT | ACL_USAGE) != ACLCHECK_OK)
		return InvalidOid;
	return seq;
}

/* The seq the sequence handed out last, 0 when none yet. */
static int64
last_handed_out(Oid seq)
{
	LOCAL_FCINFO(fcinfo, 1);
	Datum		value;

	InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = ObjectIdGetDatum(seq);
	fcinfo->args[0].isnull = false;
	value = pg_sequence_last_value(fcinfo);
	return fcinfo->isnull ? 0 : DatumGetInt64(value);
}

/*
 * A transaction is about to insert packages: publishes a lower bound of
 * the seqs it will take, unless it already has (an earlier bound is lower).
 */
void
jam_claim_hint_submitting(void)
{
	pg_atomic_uint64 *slot;
	Oid			seq;

	if (shared == NULL || my_bound != 0 || (slot = my_slot()) == NULL)
		return;
	seq = usable_sequence();
	if (!OidIsValid(seq))
		return;
	register_callbacks();
	my_bound = last_handed_out(seq) + 1;
	pg_atomic_write_u64(slot, (uint64) my_bound);
	/* Published before this transaction's nextval can hand out anything. */
	pg_memory_barrier();
}


/*
 * Before a claim takes its snapshot: scan->lowest is where it may start
 * reading index under key, and scan->bound the most its candidate may be.
 */
void
jam_claim_hint_begin(Relation index, const char *key, ClaimHintScan *scan)
{
	HintEntry  *e;
	Oid			seq;
	int64		bound;
	uint64		floor;

	memset(scan, 0, sizeof(*scan));
	/* Under SERIALIZABLE a claim reads, and so predicate-locks, its whole range. */
	if (shared == NULL || IsolationIsSerializable())
		return;
	scan->key.database = MyDatabaseId;
	scan->key.index = index->rd_node.relNode;
	strlcpy(scan->key.key, key, sizeof(scan->key.key));
	LWLockAcquire(hints_lock, LW_SHARED);
	e = hash_search(hints, &scan->key, HASH_FIND, NULL);
	scan->lowest = e ? e->lowest : 0;
	LWLockRelease(hints_lock);

	seq = usable_sequence();
	if (!OidIsValid(seq) || IsolationUsesXactSnapshot())
		return;
	/* The sequence first, then the slots: see the rules above. */
	bound = last_handed_out(seq) + 1;
	pg_memory_barrier();
	for (int i = 0; i < shared->nslots; i++)
	{
		uint64		b = pg_atomic_read_u64(&shared->submitting[i]);

		if (b != 0 && (int64) b < bound)
			bound = (int64) b;
	}
	floor = pg_atomic_read_u64(&shared->prepared_floor);
	if (floor != 0 && (int64) floor < bound)
		bound = (int64) floor;
	scan->usable = true;
	scan->bound = bound;
}

/*
 * After the scan: first_pending is the seq of the first package it met
 * that its snapshot sees pending, or -1 when it met none; own_lowest, the
 * lowest seq the transaction claimed before it, or -1.  The scan did not
 * see the packages this transaction has processed (they are no longer
 * pending to it), yet a rollback to a savepoint can make them pending
 * again: the candidate stays at or below them.  It is kept, the lowest of
 * the transaction's for the same index and key, until the transaction
 * commits.
 */
void
jam_claim_hint_found(ClaimHintScan *scan, int64 first_pending, int64 own_lowest)
{
	Candidate  *c;
	bool		found;
	int64		candidate;

	if (!scan->usable)
		return;
	candidate = first_pending >= 0 ? Min(first_pending, scan->bound) : scan->bound;
	if (own_lowest >= 0)
		candidate = Min(candidate, own_lowest);
	register_callbacks();
	if (candidates == NULL)
		candidates = jam_transaction_hash("jam claim hint candidates", 8, sizeof(HintKey),
										  sizeof(Candidate), HASH_BLOBS);
	c = hash_search(candidates, &scan->key, HASH_ENTER, &found);
	if (!found || candidate < c->lowest)
		c->lowest = candidate;
}
