/*
 * claim.c: taking the next pending package off the queue.
 *
 * A claim walks an index of pending packages in arrival order and locks the
 * first row nobody else holds (what FOR UPDATE SKIP LOCKED does), reading
 * the index directly instead of planning a query: the planner, guessing
 * from statistics, once preferred the whole history's seq index to the
 * pending index and made each claim scan hundreds of thousands of rows.
 * Here the path is fixed, so a claim costs the same whatever the history:
 *
 *   of one service   jam_work_packages_service_pending_idx (service_id, seq)
 *                    WHERE status = 'pending': that service's queue only
 *   of any service   jam_work_packages_status_idx (status, seq), from the
 *                    first 'pending' key: every service's queue, merged
 *
 * Inside one transaction each claim starts after the last package that
 * transaction claimed from the same index (and service): the entries of
 * packages it has already processed cannot be pruned before it ends, and
 * stepping over them again would make the n-th claim cost O(n).  A package
 * skipped because another transaction held it is left for later calls.
 * Across transactions a claim starts at the hint claim_hint.c keeps, below
 * which no package is pending, rather than among the entries of every
 * package processed since the last VACUUM.
 */
#include "jam.h"
#include "claim.h"
#include "claim_hint.h"

#include "access/genam.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

/* Attribute numbers in jam_work_packages, the same in every version. */
#define ATT_ID 1
#define ATT_SEQ 2
#define ATT_SERVICE_ID 3
#define ATT_CONTRACT_VERSION 4
#define ATT_WEIGHT_HINT 5
#define ATT_PAYLOAD 6
#define ATT_PREIMAGE_HASHES 7
#define ATT_STATUS 8
#define ATT_SUBMITTED_AT 12

#define ANY_SERVICE_KEY ""

typedef struct ClaimCursor
{
	char		key[66];		/* service id, or ANY_SERVICE_KEY */
	int64		after;			/* seq of the last package claimed */
} ClaimCursor;

static HTAB *cursors = NULL;

/*
 * The packages this transaction has claimed, by seq, each with the
 * subtransaction that claimed it.  A batch writes its packages' outcomes
 * after claiming them all, so until then they are still pending, and
 * locked by this very transaction, which a lock taken again does not
 * refuse: without this, a claim through another index (a service's, then
 * any service's) or after a cursor restarted would take a package twice.
 * A subtransaction that rolls back gives its claims back (the package is
 * pending and unlocked again); one that commits hands them to its parent.
 * claiming_subxids lists the subtransactions that hold claims, so that the
 * many that hold none (every refine runs in one) cost nothing.
 */
typedef struct ClaimedEntry
{
	int64		seq;
	SubTransactionId subxid;
} ClaimedEntry;

static HTAB *claimed = NULL;
static List *claiming_subxids = NIL;	/* in TopTransactionContext */

/*
 * The lowest seq this transaction has claimed, -1 before any: its own
 * processed packages no longer read as pending to its scans, so none of
 * them may let claim_hint.c's hint pass them (a rollback to a savepoint
 * makes them pending again).  Never raised when a claim is given back.
 */
static int64 lowest_claimed = -1;
static bool callbacks_registered = false;

static void
forget_cursors_at_end(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE || event == XACT_EVENT_PARALLEL_ABORT)
	{
		cursors = NULL;
		claimed = NULL;
		claiming_subxids = NIL;
		lowest_claimed = -1;
	}
}

/* Gives back (abort) or hands to the parent (commit) the claims of subxid. */
static void
settle_claims(SubXactEvent event, SubTransactionId subxid, SubTransactionId parent)
{
	HASH_SEQ_STATUS seq;
	ClaimedEntry *e;
	MemoryContext old;

	if (claimed == NULL || !list_member_int(claiming_subxids, (int) subxid))
		return;
	claiming_subxids = list_delete_int(claiming_subxids, (int) subxid);
	hash_seq_init(&seq, claimed);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		if (e->subxid != subxid)
			continue;
		if (event == SUBXACT_EVENT_ABORT_SUB)
			hash_search(claimed, &e->seq, HASH_REMOVE, NULL);
		else
			e->subxid = parent;
	}
	if (event == SUBXACT_EVENT_COMMIT_SUB && !list_member_int(claiming_subxids, (int) parent))
	{
		old = MemoryContextSwitchTo(TopTransactionContext);
		claiming_subxids = lappend_int(claiming_subxids, (int) parent);
		MemoryContextSwitchTo(old);
	}
}

/* A rolled-back claim makes its package pending again: look from the start. */
static void
forget_cursors_on_rollback(SubXactEvent event, SubTransactionId subxid,
						   SubTransactionId parent, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB || event == SUBXACT_EVENT_COMMIT_SUB)
		settle_claims(event, subxid, parent);
	if (event == SUBXACT_EVENT_ABORT_SUB && cursors != NULL)
	{
		HASH_SEQ_STATUS seq;
		ClaimCursor *c;

		hash_seq_init(&seq, cursors);
		while ((c = hash_seq_search(&seq)) != NULL)
			c->after = -1;
	}
}

static ClaimCursor *
cursor_for(const char *service_id)
{
	bool		found;
	ClaimCursor *c;

	if (!callbacks_registered)
	{
		RegisterXactCallback(forget_cursors_at_end, NULL);
		RegisterSubXactCallback(forget_cursors_on_rollback, NULL);
		callbacks_registered = true;
	}
	if (cursors == NULL)
		cursors = jam_transaction_hash("jam claim cursors", 8, sizeof(((ClaimCursor *) 0)->key),
									   sizeof(ClaimCursor), HASH_STRINGS);
	if (claimed == NULL)
		claimed = jam_transaction_hash("jam claimed packages", 64, sizeof(int64),
									   sizeof(ClaimedEntry), HASH_BLOBS);
	c = hash_search(cursors, service_id ? service_id : ANY_SERVICE_KEY, HASH_ENTER, &found);
	if (!found)
		c->after = -1;
	return c;
}

/* Notes that the current subtransaction claimed the package at seq. */
static void
remember_claim(int64 seq)
{
	ClaimedEntry *e = hash_search(claimed, &seq, HASH_ENTER, NULL);
	SubTransactionId subxid = GetCurrentSubTransactionId();

	if (lowest_claimed < 0 || seq < lowest_claimed)
		lowest_claimed = seq;

	e->subxid = subxid;
	if (!list_member_int(claiming_subxids, (int) subxid))
	{
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

		claiming_subxids = lappend_int(claiming_subxids, (int) subxid);
		MemoryContextSwitchTo(old);
	}
}

static Oid
jam_relation(const char *name)
{
	Oid			ns = get_namespace_oid("jam", false);
	Oid			rel = get_relname_relid(name, ns);

	if (!OidIsValid(rel))
		elog(ERROR, "jam relation \"jam.%s\" is missing", name);
	return rel;
}

/* Copies the claimed row's columns into pkg, as hex text where the API speaks hex. */
static void
read_claimed(TupleTableSlot *slot, ClaimedPackage *pkg)
{
	bool		isnull;
	Datum		id = slot_getattr(slot, ATT_ID, &isnull);
	Datum		hashes = slot_getattr(slot, ATT_PREIMAGE_HASHES, &isnull);

	if (jam_catalog() == JAM_CATALOG_COMPACT)
	{
		bytea	   *raw = DatumGetByteaPP(id);

		pkg->id = palloc(JAM_HASH_HEX_CHARS + 1);
		jam_hex_encode((const uint8 *) VARDATA_ANY(raw), VARSIZE_ANY_EXHDR(raw), pkg->id);
		pkg->preimage_hashes = DatumGetArrayTypeP(DirectFunctionCall1(jam_hex_array, hashes));
	}
	else
	{
		pkg->id = TextDatumGetCString(id);
		pkg->preimage_hashes = DatumGetArrayTypePCopy(hashes);
	}
	pkg->seq = DatumGetInt64(slot_getattr(slot, ATT_SEQ, &isnull));
	pkg->service_id = TextDatumGetCString(slot_getattr(slot, ATT_SERVICE_ID, &isnull));
	pkg->contract_version = DatumGetInt32(slot_getattr(slot, ATT_CONTRACT_VERSION, &isnull));
	pkg->weight_hint = DatumGetInt32(slot_getattr(slot, ATT_WEIGHT_HINT, &isnull));
	pkg->payload = DatumGetByteaPCopy(slot_getattr(slot, ATT_PAYLOAD, &isnull));
	pkg->submitted_at = DatumGetTimestampTz(slot_getattr(slot, ATT_SUBMITTED_AT, &isnull));
}

/*
 * Walks the pending queue of service_id (NULL: of any service) from its
 * oldest package.  With take, it
 * locks the first row no other transaction holds and copies it into pkg;
 * without, it only sets pkg->seq to the first pending package this
 * transaction has not claimed, held by others or not.  False when there is
 * none.
 */
static bool
walk_queue(const char *service_id, bool take, ClaimedPackage *pkg)
{
	Relation	heap;
	Relation	index;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	TupleTableSlot *locked;
	ScanKeyData keys[2];
	Snapshot	snapshot;
	ClaimCursor *cursor = cursor_for(service_id);
	bool		taken = false;
	ClaimHintScan hint;
	int64		first_pending = -1;

	heap = table_open(jam_relation("jam_work_packages"), RowShareLock);
	index = index_open(jam_relation(service_id ? "jam_work_packages_service_pending_idx"
									: "jam_work_packages_status_idx"), AccessShareLock);
	/* Before the snapshot: claim_hint.c's rules need it taken after. */
	jam_claim_hint_begin(index, service_id ? service_id : ANY_SERVICE_KEY, &hint);

	/* See what this transaction has done so far, as a statement of its own would. */
	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());
	UpdateActiveSnapshotCommandId();
	snapshot = GetActiveSnapshot();

	ScanKeyEntryInitialize(&keys[0], 0, 1, BTEqualStrategyNumber, InvalidOid,
						   index->rd_indcollation[0], F_TEXTEQ,
						   CStringGetTextDatum(service_id ? service_id : "pending"));
	ScanKeyEntryInitialize(&keys[1], 0, 2, BTGreaterStrategyNumber, InvalidOid,
						   InvalidOid, F_INT8GT, Int64GetDatum(Max(cursor->after, hint.lowest - 1)));

	slot = table_slot_create(heap, NULL);
	locked = table_slot_create(heap, NULL);
	scan = index_beginscan(heap, index, snapshot, 2, 0);
	index_rescan(scan, keys, 2, NULL, 0);
	while (!taken && index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		TM_FailureData tmfd;
		TM_Result	result;
		int64		seq;
		char	   *status = TextDatumGetCString(slot_getattr(slot, ATT_STATUS, &isnull));

		CHECK_FOR_INTERRUPTS();
		if (strcmp(status, "pending") != 0)
			continue;
		seq = DatumGetInt64(slot_getattr(slot, ATT_SEQ, &isnull));
		if (first_pending < 0)
			first_pending = seq;
		if (hash_search(claimed, &seq, HASH_FIND, NULL) != NULL)
			continue;
		if (!take)
		{
			pkg->seq = seq;
			break;
		}

		/*
		 * Held by another transaction: skip it.  Changed since our snapshot
		 * (processed, or deleted by retention): it is no longer pending.
		 */
		result = table_tuple_lock(heap, &slot->tts_tid, snapshot, locked,
								  GetCurrentCommandId(false), LockTupleExclusive,
								  LockWaitSkip, 0, &tmfd);
		if (result != TM_Ok)
			continue;
		read_claimed(locked, pkg);
		remember_claim(pkg->seq);
		taken = true;
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	ExecDropSingleTupleTableSlot(locked);
	index_close(index, AccessShareLock);
	table_close(heap, NoLock);
	PopActiveSnapshot();

	jam_claim_hint_found(&hint, first_pending, lowest_claimed);
	if (taken)
		cursor->after = pkg->seq;
	return take ? taken : pkg->seq >= 0;
}

/*
 * Claims the oldest pending package of service_id (NULL: of any service)
 * that no other transaction holds, locking its row until the transaction
 * ends.  Returns false when there is none.  A caller limited to some
 * services names them one by one (fair.c), never walks every queue.
 */
bool
jam_claim_next(const char *service_id, ClaimedPackage *pkg)
{
	return walk_queue(service_id, true, pkg);
}

/*
 * The seq of the oldest pending package of service_id that this
 * transaction has not claimed (another may hold it), or -1: where the
 * service stands in arrival order.  Locks nothing.
 */
int64
jam_claim_peek(const char *service_id)
{
	ClaimedPackage head;

	head.seq = -1;
	return walk_queue(service_id, false, &head) ? head.seq : -1;
}
