/*
 * metrics.c: jam's counters and timings in shared memory, and jam_metrics().
 *
 * The layout follows pg_stat_statements: shmem_request_hook asks for the
 * memory and a named LWLock tranche, shmem_startup_hook attaches it, and
 * both chain the hooks installed before them.  Counters are
 * pg_atomic_uint64, added to without any lock, so that counting costs a
 * submit two atomic additions and two clock readings; each operation's
 * counters fill a cache line of their own.  Refusals, counted per reason
 * and per service, live in a fixed-size hash table (jam.metrics_max_services
 * services) under the LWLock: shared to find an entry and add to it,
 * exclusive only to create one.
 *
 * An API call is timed from jam_metrics_begin() to jam_metrics_end().  A
 * call that raises an error never reaches its end: the calls in progress
 * are kept on a small per-backend stack, with the (sub)transaction nesting
 * level they started at, and transaction callbacks count those the abort
 * of their (sub)transaction cuts short, with the outcome "error".  A
 * subtransaction the call opens and rolls back itself (the refine of a
 * registered function) is deeper than the call and does not end it.
 *
 * Counters count work as it is done: a call whose transaction later rolls
 * back stays counted, as in pg_stat_statements.  Cleanup deletions are
 * counted per committed batch.
 */
#include "jam.h"
#include "blob.h"
#include "errors.h"
#include "metrics.h"
#include "processor.h"
#include "announcer.h"
#include "retention.h"

#include "access/xact.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

/* A service id has at most 64 characters (checks.c). */
#define SERVICE_LABEL_LEN 65
/* Reasons kept per service; the last slot is "_other", for any further reason. */
#define REASONS_PER_SERVICE 8
#define REASON_LABEL_LEN 32
/* API calls nested deeper than this (refines calling the API) count without their time. */
#define CALL_STACK_DEPTH 16

/* The service labels that are not service ids (which start with a letter or digit). */
#define SERVICE_OTHER "_other"		/* beyond jam.metrics_max_services */
#define SERVICE_NONE "_none"		/* the request named no service */
#define SERVICE_INVALID "_invalid"	/* the request named something that is no service id */

static bool jam_metrics_enabled = true;
static int	jam_metrics_max_services = 1000;

/* One operation's counters, a cache line to themselves. */
typedef union OpCounters
{
	struct
	{
		pg_atomic_uint64 calls[JAM_OUTCOME__COUNT];
		pg_atomic_uint64 usecs;
	}			c;
	char		pad[PG_CACHE_LINE_SIZE];
} OpCounters;

StaticAssertDecl(sizeof(pg_atomic_uint64) * (JAM_OUTCOME__COUNT + 1) <= PG_CACHE_LINE_SIZE,
				 "an operation's counters must fit in one cache line");

typedef enum CleanupKind
{
	CLEANUP_REPORTS,
	CLEANUP_ATTESTATIONS,
	CLEANUP_PACKAGES,
	CLEANUP_PREIMAGES,
	CLEANUP_KIND__COUNT
} CleanupKind;

typedef enum RefcountDirection
{
	REFCOUNT_INCREMENT,
	REFCOUNT_DECREMENT,
	REFCOUNT_DIRECTION__COUNT
} RefcountDirection;

/* What became of a refine that had been interrupted before (attempts.c). */
typedef enum RefineRetry
{
	REFINE_RETRIED,
	REFINE_ABANDONED,
	REFINE_RETRY__COUNT
} RefineRetry;

typedef struct MetricsShared
{
	OpCounters	ops[JAM_OP__COUNT]; /* first: the struct starts on a cache line */
	pg_atomic_uint64 errors[JAM_ERR__COUNT];
	pg_atomic_uint64 cleanup_runs[JAM_CLEANUP_MODE__COUNT];
	pg_atomic_uint64 cleanup_usecs[JAM_CLEANUP_MODE__COUNT];
	pg_atomic_uint64 cleanup_deleted[CLEANUP_KIND__COUNT];
	pg_atomic_uint64 refcounts[REFCOUNT_DIRECTION__COUNT];
	pg_atomic_uint64 refine_retries[REFINE_RETRY__COUNT];
	pg_atomic_uint64 attestations[2];	/* by this node, by external attesters */
	pg_atomic_uint64 reset_time;	/* TimestampTz of the last reset or of startup */
	LWLock	   *lock;			/* the refusal table and n_services */
	int			n_services;		/* entries of real services in the refusal table */
} MetricsShared;

/* Refusals of one service (or of one of the SERVICE_* labels). */
typedef struct RefusalEntry
{
	char		service_id[SERVICE_LABEL_LEN];	/* the key */
	int			n_reasons;		/* slots in use; set under the exclusive lock */
	char		reasons[REASONS_PER_SERVICE][REASON_LABEL_LEN];
	pg_atomic_uint64 counts[REASONS_PER_SERVICE];
} RefusalEntry;

typedef struct OpInfo
{
	const char *label;
	bits32		outcomes;		/* the JamOutcome values it can end with, as bits */
} OpInfo;

#define OUT(o) (1u << (o))
#define OUT_READ (OUT(JAM_OUTCOME_OK) | OUT(JAM_OUTCOME_ERROR))
#define OUT_STORE (OUT(JAM_OUTCOME_CREATED) | OUT(JAM_OUTCOME_EXISTING) | OUT(JAM_OUTCOME_ERROR))

/* Indexed by JamOp; the order must follow the enum in metrics.h. */
static const OpInfo op_info[JAM_OP__COUNT] = {
	{"preimage_put", OUT_STORE},
	{"preimage_get", OUT_READ},
	{"preimage_meta", OUT_READ},
	{"package_submit", OUT_STORE},
	{"package_get", OUT_READ},
	{"package_list", OUT_READ},
	{"process", OUT(JAM_OUTCOME_APPLIED) | OUT(JAM_OUTCOME_FAILED) | OUT(JAM_OUTCOME_EMPTY) |
	OUT(JAM_OUTCOME_ERROR)},
	{"report_get", OUT_READ},
	{"report_list", OUT_READ},
	{"attestations", OUT_READ},
	{"receipt", OUT_READ},
	{"inclusion_proof", OUT_READ},
	{"consistency_proof", OUT_READ},
	{"root", OUT_READ},
	{"roots", OUT_READ},
	{"checkpoint", OUT_READ},
	{"verify_log", OUT_READ},
	{"status", OUT_READ},
	{"register_service", OUT_READ},
	{"cleanup", OUT_READ},
	{"fsck", OUT_READ},
	{"authenticate", OUT(JAM_OUTCOME_OK) | OUT(JAM_OUTCOME_EMPTY) | OUT(JAM_OUTCOME_ERROR)},
	{"token_create", OUT_READ},
	{"token_revoke", OUT_READ},
	{"token_list", OUT_READ},
	{"quota_set", OUT_READ},
	{"quota_usage", OUT_READ},
	{"package_submit_batch", OUT_STORE},
	{"process_batch", OUT(JAM_OUTCOME_OK) | OUT(JAM_OUTCOME_EMPTY) | OUT(JAM_OUTCOME_ERROR)},
	{"replay", OUT(JAM_OUTCOME_OK) | OUT(JAM_OUTCOME_FAILED) | OUT(JAM_OUTCOME_ERROR)},
	{"offload", OUT_READ},
	{"log_events", OUT_READ},
	{"log_tile", OUT_READ},
	{"log_entry_bundle", OUT_READ},
	{"witness_add_checkpoint", OUT(JAM_OUTCOME_OK) | OUT(JAM_OUTCOME_FAILED) | OUT(JAM_OUTCOME_ERROR)},
	{"witness_checkpoints", OUT_READ},
};

static const char *const outcome_label[JAM_OUTCOME__COUNT] = {
	"ok", "created", "existing", "applied", "failed", "empty", "error"
};

static const char *const cleanup_mode_label[JAM_CLEANUP_MODE__COUNT] = {
	"delete", "dry_run", "disabled"
};

static const char *const cleanup_kind_label[CLEANUP_KIND__COUNT] = {
	"reports", "attestations", "packages", "preimages"
};

static const char *const refcount_direction_label[REFCOUNT_DIRECTION__COUNT] = {
	"increment", "decrement"
};

static const char *const refine_retry_label[REFINE_RETRY__COUNT] = {
	"retried", "abandoned"
};

/* Attached at startup; NULL when jam was not preloaded. */
static MetricsShared *shared = NULL;
static HTAB *refusals = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* This backend's API calls in progress, innermost last. */
typedef struct CallInProgress
{
	JamOp		op;
	int			nest_level;		/* of the (sub)transaction it started in */
	instr_time	started;
} CallInProgress;

static CallInProgress calls[CALL_STACK_DEPTH];
static int	n_calls = 0;
static bool callbacks_registered = false;

/*
 * A JamMetricsCall is the call's slot on the stack (0 and up), CALL_OFF
 * when it is not counted at all, or CALL_UNTIMED_BASE - op when the stack
 * was full: counted when it ends, without its time.
 */
#define CALL_OFF (-1)
#define CALL_UNTIMED_BASE (-2)

static Size
refusal_table_size(void)
{
	/* Room for every service allowed, plus the three labels that are not services. */
	return (Size) jam_metrics_max_services + 3;
}

static Size
metrics_shmem_size(void)
{
	return add_size(MAXALIGN(sizeof(MetricsShared)),
					hash_estimate_size(refusal_table_size(), sizeof(RefusalEntry)));
}

static void
metrics_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(metrics_shmem_size());
	RequestNamedLWLockTranche("jam_metrics", 1);
}

/* Finds or creates the refusal entry of a label; NULL when the table is full. */
static RefusalEntry *
refusal_entry(const char *label, HASHACTION action)
{
	bool		found;
	RefusalEntry *entry = hash_search(refusals, label, action, &found);

	if (entry != NULL && !found)
		entry->n_reasons = 0;
	return entry;
}

static void
metrics_shmem_startup(void)
{
	bool		found;
	HASHCTL		info;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("jam metrics", sizeof(MetricsShared), &found);
	if (!found)
	{
		for (int op = 0; op < JAM_OP__COUNT; op++)
		{
			for (int o = 0; o < JAM_OUTCOME__COUNT; o++)
				pg_atomic_init_u64(&shared->ops[op].c.calls[o], 0);
			pg_atomic_init_u64(&shared->ops[op].c.usecs, 0);
		}
		for (int i = 0; i < JAM_ERR__COUNT; i++)
			pg_atomic_init_u64(&shared->errors[i], 0);
		for (int i = 0; i < JAM_CLEANUP_MODE__COUNT; i++)
		{
			pg_atomic_init_u64(&shared->cleanup_runs[i], 0);
			pg_atomic_init_u64(&shared->cleanup_usecs[i], 0);
		}
		for (int i = 0; i < CLEANUP_KIND__COUNT; i++)
			pg_atomic_init_u64(&shared->cleanup_deleted[i], 0);
		for (int i = 0; i < REFCOUNT_DIRECTION__COUNT; i++)
			pg_atomic_init_u64(&shared->refcounts[i], 0);
		for (int i = 0; i < REFINE_RETRY__COUNT; i++)
			pg_atomic_init_u64(&shared->refine_retries[i], 0);
		for (int i = 0; i < 2; i++)
			pg_atomic_init_u64(&shared->attestations[i], 0);
		pg_atomic_init_u64(&shared->reset_time, (uint64) GetCurrentTimestamp());
		shared->lock = &(GetNamedLWLockTranche("jam_metrics"))->lock;
		shared->n_services = 0;
	}

	memset(&info, 0, sizeof(info));
	info.keysize = SERVICE_LABEL_LEN;
	info.entrysize = sizeof(RefusalEntry);
	refusals = ShmemInitHash("jam metrics refusals", refusal_table_size(), refusal_table_size(),
							 &info, HASH_ELEM | HASH_STRINGS);
	/* The labels that are not services always have their entry. */
	if (!found)
	{
		refusal_entry(SERVICE_OTHER, HASH_ENTER);
		refusal_entry(SERVICE_NONE, HASH_ENTER);
		refusal_entry(SERVICE_INVALID, HASH_ENTER);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Defines jam.metrics (before jam_define_gucs() reserves the jam prefix)
 * and, when jam is being preloaded, jam.metrics_max_services and the
 * shared memory hooks.
 */
void
jam_metrics_init(void)
{
	DefineCustomBoolVariable("jam.metrics",
							 "Whether jam counts and times its operations in shared memory.",
							 "Off: nothing is counted (jam_metrics() shows the counts as they were).",
							 &jam_metrics_enabled, true,
							 PGC_SUSET, 0, NULL, NULL, NULL);

	/* Without preloading there is no shared memory, and a PGC_POSTMASTER parameter would be FATAL. */
	if (!process_shared_preload_libraries_in_progress)
		return;

	DefineCustomIntVariable("jam.metrics_max_services",
							"Most services whose refusals jam_metrics() counts one by one.",
							"Refusals of further services are counted under the service \"_other\".",
							&jam_metrics_max_services, 1000,
							1, 1000000,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = metrics_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = metrics_shmem_startup;
}

static inline bool
counting(void)
{
	return shared != NULL && jam_metrics_enabled;
}

static inline void
add(pg_atomic_uint64 *counter, uint64 n)
{
	pg_atomic_fetch_add_u64(counter, n);
}

/* Counts the call in slot with its outcome and its time so far. */
static void
count_call(CallInProgress *call, JamOutcome outcome)
{
	instr_time	elapsed;

	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, call->started);
	add(&shared->ops[call->op].c.calls[outcome], 1);
	add(&shared->ops[call->op].c.usecs, INSTR_TIME_GET_MICROSEC(elapsed));
}

/* Ends, as errors, the calls in progress at nest_level or deeper. */
static void
abort_calls(int nest_level)
{
	while (n_calls > 0 && calls[n_calls - 1].nest_level >= nest_level)
	{
		n_calls--;
		if (shared != NULL)
			count_call(&calls[n_calls], JAM_OUTCOME_ERROR);
	}
}

static void
metrics_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			abort_calls(0);
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			/* No API call spans a commit; nothing may be left over. */
			n_calls = 0;
			break;
		default:
			break;
	}
}

static void
metrics_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	/* The subtransaction being aborted is still the current one here. */
	if (event == SUBXACT_EVENT_ABORT_SUB)
		abort_calls(GetCurrentTransactionNestLevel());
}

/* Starts counting and timing an API call; see metrics.h. */
JamMetricsCall
jam_metrics_begin(JamOp op)
{
	CallInProgress *call;

	if (!counting())
		return CALL_OFF;
	if (!callbacks_registered)
	{
		RegisterXactCallback(metrics_xact_callback, NULL);
		RegisterSubXactCallback(metrics_subxact_callback, NULL);
		callbacks_registered = true;
	}
	if (n_calls >= CALL_STACK_DEPTH)
		return CALL_UNTIMED_BASE - (int) op;

	call = &calls[n_calls];
	call->op = op;
	call->nest_level = GetCurrentTransactionNestLevel();
	INSTR_TIME_SET_CURRENT(call->started);
	return n_calls++;
}

/* Counts an API call that returns, with its outcome and its time. */
void
jam_metrics_end(JamMetricsCall call, JamOutcome outcome)
{
	if (call == CALL_OFF || shared == NULL)
		return;
	if (call <= CALL_UNTIMED_BASE)
	{
		add(&shared->ops[CALL_UNTIMED_BASE - call].c.calls[outcome], 1);
		return;
	}
	count_call(&calls[call], outcome);
	/* Calls above it on the stack, if any, can only be leftovers. */
	n_calls = call;
}

void
jam_metrics_error(JamError err)
{
	if (counting() && err >= 0 && err < JAM_ERR__COUNT)
		add(&shared->errors[err], 1);
}

void
jam_metrics_refcount_increments(int64 n)
{
	if (counting() && n > 0)
		add(&shared->refcounts[REFCOUNT_INCREMENT], (uint64) n);
}

/* A signed attestation written: "node" (this node's, of a report it wrote) or "external". */
void
jam_metrics_attestation(const char *attester)
{
	if (counting())
		add(&shared->attestations[strcmp(attester, "node") == 0 ? 0 : 1], 1);
}

/* A refine started again after an interruption; abandoned: its package failed for it. */
void
jam_metrics_refine_retry(bool abandoned)
{
	if (counting())
		add(&shared->refine_retries[abandoned ? REFINE_ABANDONED : REFINE_RETRIED], 1);
}

void
jam_metrics_cleanup_run(JamCleanupMode mode, int64 duration_us)
{
	if (!counting())
		return;
	add(&shared->cleanup_runs[mode], 1);
	add(&shared->cleanup_usecs[mode], (uint64) Max(duration_us, 0));
}

void
jam_metrics_cleanup_batch(const JamCleanupCounts *batch)
{
	if (!counting())
		return;
	add(&shared->cleanup_deleted[CLEANUP_REPORTS], (uint64) batch->reports_deleted);
	add(&shared->cleanup_deleted[CLEANUP_ATTESTATIONS], (uint64) batch->attestations_deleted);
	add(&shared->cleanup_deleted[CLEANUP_PACKAGES], (uint64) batch->packages_deleted);
	add(&shared->cleanup_deleted[CLEANUP_PREIMAGES], (uint64) batch->preimages_deleted);
	add(&shared->refcounts[REFCOUNT_DECREMENT], (uint64) batch->refcount_decrements);
}

/* The slot of a reason in an entry, -1 when it has none. */
static int
reason_slot(RefusalEntry *entry, const char *reason)
{
	for (int i = 0; i < entry->n_reasons; i++)
		if (strcmp(entry->reasons[i], reason) == 0)
			return i;
	return -1;
}

/*
 * The slot of a reason in an entry, taken if needed (with the exclusive
 * lock held); once all but the last are taken, further reasons share the
 * last, "_other".
 */
static int
reason_slot_enter(RefusalEntry *entry, const char *reason)
{
	int			slot;

	if (entry->n_reasons >= REASONS_PER_SERVICE - 1)
		reason = "_other";
	slot = reason_slot(entry, reason);
	if (slot >= 0)
		return slot;
	slot = entry->n_reasons;
	strlcpy(entry->reasons[slot], reason, REASON_LABEL_LEN);
	pg_atomic_init_u64(&entry->counts[slot], 0);
	entry->n_reasons++;
	return slot;
}

/* Counts a refused request; see metrics.h. */
void
jam_metrics_refusal(const char *reason, const char *service_id)
{
	char		label[SERVICE_LABEL_LEN];
	char		why[REASON_LABEL_LEN];
	RefusalEntry *entry;
	int			slot;

	if (!counting())
		return;
	if (service_id == NULL || service_id[0] == '\0')
		strlcpy(label, SERVICE_NONE, sizeof(label));
	else if (!jam_is_valid_service_id(service_id, strlen(service_id)))
		strlcpy(label, SERVICE_INVALID, sizeof(label));
	else
		strlcpy(label, service_id, sizeof(label));
	strlcpy(why, reason != NULL && reason[0] != '\0' ? reason : "unknown", sizeof(why));

	LWLockAcquire(shared->lock, LW_SHARED);
	entry = hash_search(refusals, label, HASH_FIND, NULL);
	slot = entry != NULL ? reason_slot(entry, why) : -1;
	if (slot >= 0)
	{
		add(&entry->counts[slot], 1);
		LWLockRelease(shared->lock);
		return;
	}
	LWLockRelease(shared->lock);

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	entry = hash_search(refusals, label, HASH_FIND, NULL);
	if (entry == NULL && shared->n_services < jam_metrics_max_services)
	{
		entry = refusal_entry(label, HASH_ENTER_NULL);
		if (entry != NULL)
			shared->n_services++;
	}
	if (entry == NULL)
		entry = hash_search(refusals, SERVICE_OTHER, HASH_FIND, NULL);
	add(&entry->counts[reason_slot_enter(entry, why)], 1);
	LWLockRelease(shared->lock);
}

static void
require_shared_memory(void)
{
	if (shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("jam metrics are not available"),
				 errdetail("jam was not loaded through shared_preload_libraries, "
						   "so it has no shared memory."),
				 errhint("Add jam to shared_preload_libraries and restart the server.")));
}

/* Emits one series: labels are n key/value pairs, all strings. */
static void
emit(ReturnSetInfo *out, const char *name, const char *kind, const char *help,
	 int n, const char *const *keys, const char *const *values, double value)
{
	StringInfoData labels;
	Datum		row[5];
	bool		nulls[5] = {false, false, false, false, false};

	initStringInfo(&labels);
	appendStringInfoChar(&labels, '{');
	for (int i = 0; i < n; i++)
	{
		if (i > 0)
			appendStringInfoString(&labels, ", ");
		escape_json(&labels, keys[i]);
		appendStringInfoString(&labels, ": ");
		escape_json(&labels, values[i]);
	}
	appendStringInfoChar(&labels, '}');

	row[0] = CStringGetTextDatum(name);
	row[1] = CStringGetTextDatum(kind);
	row[2] = CStringGetTextDatum(help);
	row[3] = DirectFunctionCall1(jsonb_in, CStringGetDatum(labels.data));
	row[4] = Float8GetDatum(value);
	tuplestore_putvalues(out->setResult, out->setDesc, row, nulls);
	pfree(labels.data);
}

/* Emits a series with one label. */
static void
emit1(ReturnSetInfo *out, const char *name, const char *kind, const char *help,
	  const char *key, const char *value, double v)
{
	emit(out, name, kind, help, 1, &key, &value, v);
}

/*
 * Each processor worker's counters (processor.c), labelled by database/n;
 * each name's rows together, as jam_metrics() promises.
 */
static void
emit_processors(ReturnSetInfo *out)
{
	static const struct
	{
		const char *name;
		const char *help;
	}			series[] = {
		{"jam_processor_applied_total", "Packages a processor worker processed whose refine succeeded."},
		{"jam_processor_failed_total", "Packages a processor worker processed whose refine failed."},
		{"jam_processor_busy_seconds_total", "Time a processor worker spent processing packages."},
		{"jam_processor_queue_wait_seconds_total",
		"Time the packages a processor worker processed had waited since their submit."},
	};
	JamProcessorStats st;

	for (int m = 0; m < lengthof(series); m++)
		for (int i = 0; jam_processor_stats(i, &st); i++)
			emit1(out, series[m].name, "counter", series[m].help, "worker", st.worker,
				  m == 0 ? (double) st.processed : m == 1 ? (double) st.failed :
				  m == 2 ? st.busy_seconds : st.wait_seconds);
}

/*
 * The blob store's counters (blob_metrics.c), labelled store = "s3"; each
 * name's rows together.
 */
static void
emit_blob_store(ReturnSetInfo *out)
{
	static const char *const op_keys[3] = {"store", "op", "outcome"};
	static const char *const two_keys[2] = {"store", "op"};
	JamBlobStats st;

	if (!jam_blob_stats(&st))
		return;
	for (int op = 0; op < JAM_BLOB_OP__COUNT; op++)
		for (int o = 0; o < JAM_BLOB_OUTCOME__COUNT; o++)
		{
			const char *values[3] = {JAM_BLOB_STORE_TYPE, jam_blob_op_label[op], jam_blob_outcome_label[o]};

			emit(out, "jam_blob_store_requests_total", "counter",
				 "Requests to the blob store, by operation and outcome (not_found: no such object).",
				 3, op_keys, values, (double) st.requests[op][o]);
		}
	for (int op = 0; op < JAM_BLOB_OP__COUNT; op++)
	{
		const char *values[2] = {JAM_BLOB_STORE_TYPE, jam_blob_op_label[op]};

		emit(out, "jam_blob_store_request_seconds_total", "counter",
			 "Time spent in requests to the blob store, retries and failures included, by operation.",
			 2, two_keys, values, st.seconds[op]);
	}
	{
		static const char *const dir_keys[2] = {"store", "direction"};
		const char *sent[2] = {JAM_BLOB_STORE_TYPE, "sent"};
		const char *received[2] = {JAM_BLOB_STORE_TYPE, "received"};

		emit(out, "jam_blob_store_bytes_total", "counter",
			 "Bytes sent to and received from the blob store.", 2, dir_keys, sent, (double) st.bytes_sent);
		emit(out, "jam_blob_store_bytes_total", "counter",
			 "Bytes sent to and received from the blob store.", 2, dir_keys, received,
			 (double) st.bytes_received);
	}
	emit1(out, "jam_blob_store_retries_total", "counter",
		  "Requests to the blob store retried after a failure that may pass (down, 5xx, 429).",
		  "store", JAM_BLOB_STORE_TYPE, (double) st.retries);
	for (int r = 0; r < JAM_BLOB_READ__COUNT; r++)
	{
		static const char *const read_keys[2] = {"store", "outcome"};
		const char *values[2] = {JAM_BLOB_STORE_TYPE, jam_blob_read_label[r]};

		emit(out, "jam_blob_store_reads_total", "counter",
			 "Preimages read through the blob store: hit (verified bytes), miss (object gone), error.",
			 2, read_keys, values, (double) st.reads[r]);
	}
	emit1(out, "jam_blob_store_integrity_errors_total", "counter",
		  "Objects that were missing or did not hash to their preimage's address when read.",
		  "store", JAM_BLOB_STORE_TYPE, (double) st.integrity_errors);
	emit1(out, "jam_blob_offloaded_total", "counter",
		  "Inline preimages moved to the blob store by jam_offload() or the blob worker.",
		  "store", JAM_BLOB_STORE_TYPE, (double) st.offloaded);
	emit1(out, "jam_blob_offloaded_bytes_total", "counter",
		  "Bytes of the inline preimages moved to the blob store.",
		  "store", JAM_BLOB_STORE_TYPE, (double) st.offloaded_bytes);
	for (int d = 0; d < JAM_BLOB_DELETE__COUNT; d++)
	{
		static const char *const delete_keys[2] = {"store", "outcome"};
		const char *values[2] = {JAM_BLOB_STORE_TYPE, jam_blob_delete_label[d]};

		emit(out, "jam_blob_deletes_total", "counter",
			 "Queued object deletes carried out: deleted, kept (a row names the object again), "
			 "failed (retried later).",
			 2, delete_keys, values, (double) st.deletes[d]);
	}
}

static double
read_counter(pg_atomic_uint64 *counter)
{
	return (double) pg_atomic_read_u64(counter);
}

static double
read_seconds(pg_atomic_uint64 *usecs)
{
	return (double) pg_atomic_read_u64(usecs) / 1000000.0;
}

/* A refusal series, copied out of the table to be sorted and emitted without the lock. */
typedef struct RefusalRow
{
	char		reason[REASON_LABEL_LEN];
	char		service_id[SERVICE_LABEL_LEN];
	uint64		count;
} RefusalRow;

static int
refusal_row_cmp(const void *a, const void *b)
{
	const RefusalRow *x = a;
	const RefusalRow *y = b;
	int			c = strcmp(x->reason, y->reason);

	return c != 0 ? c : strcmp(x->service_id, y->service_id);
}

static void
emit_refusals(ReturnSetInfo *out)
{
	static const char *const keys[2] = {"reason", "service_id"};
	HASH_SEQ_STATUS scan;
	RefusalEntry *entry;
	RefusalRow *rows;
	int			n = 0;
	int			max;

	LWLockAcquire(shared->lock, LW_SHARED);
	max = (int) hash_get_num_entries(refusals) * REASONS_PER_SERVICE;
	rows = palloc(sizeof(RefusalRow) * Max(max, 1));
	hash_seq_init(&scan, refusals);
	while ((entry = hash_seq_search(&scan)) != NULL)
		for (int i = 0; i < entry->n_reasons && n < max; i++)
		{
			strlcpy(rows[n].reason, entry->reasons[i], REASON_LABEL_LEN);
			strlcpy(rows[n].service_id, entry->service_id, SERVICE_LABEL_LEN);
			rows[n].count = pg_atomic_read_u64(&entry->counts[i]);
			n++;
		}
	LWLockRelease(shared->lock);

	qsort(rows, n, sizeof(RefusalRow), refusal_row_cmp);
	for (int i = 0; i < n; i++)
	{
		const char *values[2] = {rows[i].reason, rows[i].service_id};

		emit(out, "jam_refusals_total", "counter",
			 "Requests refused by a quota, a limit or authorization, by reason and service.",
			 2, keys, values, (double) rows[i].count);
	}
	pfree(rows);
}

PG_FUNCTION_INFO_V1(jam_metrics);

/*
 * jam_metrics() returns every counter and gauge as (name, kind, help,
 * labels, value) rows, one per series, each metric's series together; the
 * HTTP shim renders them in the Prometheus text format.
 */
Datum
jam_metrics(PG_FUNCTION_ARGS)
{
	static const char *const op_keys[2] = {"op", "outcome"};
	ReturnSetInfo *out;
	int			n_services;

	require_shared_memory();
	InitMaterializedSRF(fcinfo, 0);
	out = (ReturnSetInfo *) fcinfo->resultinfo;

	for (int op = 0; op < JAM_OP__COUNT; op++)
		for (int o = 0; o < JAM_OUTCOME__COUNT; o++)
		{
			const char *values[2] = {op_info[op].label, outcome_label[o]};

			if ((op_info[op].outcomes & OUT(o)) == 0)
				continue;
			emit(out, "jam_operations_total", "counter",
				 "API calls, by operation and outcome.",
				 2, op_keys, values, read_counter(&shared->ops[op].c.calls[o]));
		}
	for (int op = 0; op < JAM_OP__COUNT; op++)
		emit1(out, "jam_operation_seconds_total", "counter",
			  "Time spent in API calls (errors included), by operation.",
			  "op", op_info[op].label, read_seconds(&shared->ops[op].c.usecs));
	for (int e = 0; e < JAM_ERR__COUNT; e++)
		emit1(out, "jam_errors_total", "counter",
			  "Errors jam raised, by stable error code.",
			  "code", jam_error_code_name((JamError) e), read_counter(&shared->errors[e]));
	emit_refusals(out);
	for (int m = 0; m < JAM_CLEANUP_MODE__COUNT; m++)
		emit1(out, "jam_cleanup_runs_total", "counter",
			  "Completed retention cleanups, by mode.",
			  "mode", cleanup_mode_label[m], read_counter(&shared->cleanup_runs[m]));
	for (int m = 0; m < JAM_CLEANUP_MODE__COUNT; m++)
		emit1(out, "jam_cleanup_seconds_total", "counter",
			  "Time spent in completed retention cleanups, by mode.",
			  "mode", cleanup_mode_label[m], read_seconds(&shared->cleanup_usecs[m]));
	for (int k = 0; k < CLEANUP_KIND__COUNT; k++)
		emit1(out, "jam_cleanup_deleted_total", "counter",
			  "Rows retention deleted, by kind, counted as each batch commits.",
			  "kind", cleanup_kind_label[k], read_counter(&shared->cleanup_deleted[k]));
	for (int d = 0; d < REFCOUNT_DIRECTION__COUNT; d++)
		emit1(out, "jam_refcount_adjustments_total", "counter",
			  "Preimage refcount changes: raised by submits and processing, lowered by retention.",
			  "direction", refcount_direction_label[d], read_counter(&shared->refcounts[d]));
	emit_processors(out);
	emit_blob_store(out);
	for (int a = 0; a < 2; a++)
		emit1(out, "jam_attestations_total", "counter",
			  "Signed attestations written: by this node of its reports, or by external attesters.",
			  "attester", a == 0 ? "node" : "external", read_counter(&shared->attestations[a]));
	{
		uint64		dropped;
		uint64		announced;

		jam_announcer_counts(&dropped, &announced);
		emit1(out, "jam_events_total", "counter",
			  "Committed log entries announced on jam_events, or not announced live (dropped: "
			  "still readable with jam_log_events).",
			  "outcome", "announced", (double) announced);
		emit1(out, "jam_events_total", "counter",
			  "Committed log entries announced on jam_events, or not announced live (dropped: "
			  "still readable with jam_log_events).",
			  "outcome", "dropped", (double) dropped);
	}
	for (int r = 0; r < REFINE_RETRY__COUNT; r++)
		emit1(out, "jam_refine_retries_total", "counter",
			  "Claims of a package whose refine had been interrupted before: retried, or "
			  "abandoned (the package failed) after jam.max_refine_attempts.",
			  "outcome", refine_retry_label[r], read_counter(&shared->refine_retries[r]));

	LWLockAcquire(shared->lock, LW_SHARED);
	n_services = shared->n_services;
	LWLockRelease(shared->lock);
	emit(out, "jam_metrics_refusal_services", "gauge",
		 "Services whose refusals are counted one by one (at most jam.metrics_max_services).",
		 0, NULL, NULL, (double) n_services);
	emit(out, "jam_metrics_max_services", "gauge",
		 "jam.metrics_max_services: beyond it, refusals count under service_id \"_other\".",
		 0, NULL, NULL, (double) jam_metrics_max_services);
	emit(out, "jam_metrics_reset_time_seconds", "gauge",
		 "Unix time of the last jam_metrics_reset(), or of server start.",
		 0, NULL, NULL,
		 (double) (TimestampTz) pg_atomic_read_u64(&shared->reset_time) / USECS_PER_SEC +
		 (double) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY);

	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(jam_metrics_reset);

/*
 * jam_metrics_reset() sets every counter back to zero and forgets the
 * services the refusal table holds.  Counters may move while it runs:
 * a reset is not a snapshot.
 */
Datum
jam_metrics_reset(PG_FUNCTION_ARGS)
{
	HASH_SEQ_STATUS scan;
	RefusalEntry *entry;

	require_shared_memory();
	for (int op = 0; op < JAM_OP__COUNT; op++)
	{
		for (int o = 0; o < JAM_OUTCOME__COUNT; o++)
			pg_atomic_write_u64(&shared->ops[op].c.calls[o], 0);
		pg_atomic_write_u64(&shared->ops[op].c.usecs, 0);
	}
	for (int i = 0; i < JAM_ERR__COUNT; i++)
		pg_atomic_write_u64(&shared->errors[i], 0);
	for (int i = 0; i < JAM_CLEANUP_MODE__COUNT; i++)
	{
		pg_atomic_write_u64(&shared->cleanup_runs[i], 0);
		pg_atomic_write_u64(&shared->cleanup_usecs[i], 0);
	}
	for (int i = 0; i < CLEANUP_KIND__COUNT; i++)
		pg_atomic_write_u64(&shared->cleanup_deleted[i], 0);
	for (int i = 0; i < REFCOUNT_DIRECTION__COUNT; i++)
		pg_atomic_write_u64(&shared->refcounts[i], 0);
	for (int i = 0; i < REFINE_RETRY__COUNT; i++)
		pg_atomic_write_u64(&shared->refine_retries[i], 0);
	for (int i = 0; i < 2; i++)
		pg_atomic_write_u64(&shared->attestations[i], 0);
	jam_announcer_reset_counts();
	jam_blob_metrics_reset();

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	hash_seq_init(&scan, refusals);
	while ((entry = hash_seq_search(&scan)) != NULL)
	{
		/* The labels that are not services keep their entry, empty. */
		if (entry->service_id[0] == '_')
			entry->n_reasons = 0;
		else
			hash_search(refusals, entry->service_id, HASH_REMOVE, NULL);
	}
	shared->n_services = 0;
	pg_atomic_write_u64(&shared->reset_time, (uint64) GetCurrentTimestamp());
	LWLockRelease(shared->lock);

	PG_RETURN_VOID();
}
