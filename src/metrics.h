/*
 * metrics.h: jam's counters and timings in shared memory (metrics.c).
 *
 * Every API function counts and times itself: jam_metrics_begin() as the
 * first declaration of the function, jam_metrics_end() with the outcome
 * before each return.  A call that raises an error instead is counted with
 * the outcome "error" (and its time) when its (sub)transaction aborts, so
 * error paths need no code.  Errors are also counted by stable code in
 * jam_errcode(), refusals by reason and service through
 * jam_metrics_refusal(), and retention and refcounts through the functions
 * below.  jam_metrics() (SQL) reads it all.
 *
 * Without shared_preload_libraries = 'jam' there is no shared memory: every
 * function here is then a no-op, and jam_metrics() refuses.  With
 * jam.metrics = off they are no-ops as well.
 */
#ifndef JAM_METRICS_H
#define JAM_METRICS_H

#include "errors.h"

/*
 * The operations counted and timed: one per API function.  To add one, add
 * its value here and its row (label and outcomes) in metrics.c's op table.
 */
typedef enum JamOp
{
	JAM_OP_PREIMAGE_PUT,
	JAM_OP_PREIMAGE_GET,
	JAM_OP_PREIMAGE_META,
	JAM_OP_PACKAGE_SUBMIT,
	JAM_OP_PACKAGE_GET,
	JAM_OP_PACKAGE_LIST,
	JAM_OP_PROCESS,
	JAM_OP_REPORT_GET,
	JAM_OP_REPORT_LIST,
	JAM_OP_ATTESTATIONS,
	JAM_OP_RECEIPT,
	JAM_OP_INCLUSION_PROOF,
	JAM_OP_CONSISTENCY_PROOF,
	JAM_OP_ROOT,
	JAM_OP_ROOTS,
	JAM_OP_CHECKPOINT,
	JAM_OP_VERIFY_LOG,
	JAM_OP_STATUS,
	JAM_OP_REGISTER_SERVICE,
	JAM_OP_CLEANUP,
	JAM_OP_FSCK,
	JAM_OP_AUTHENTICATE,
	JAM_OP_TOKEN_CREATE,
	JAM_OP_TOKEN_REVOKE,
	JAM_OP_TOKEN_LIST,
	JAM_OP_QUOTA_SET,
	JAM_OP_QUOTA_USAGE,
	JAM_OP_PACKAGE_SUBMIT_BATCH,
	JAM_OP_PROCESS_BATCH,
	JAM_OP_REPLAY,
	JAM_OP_OFFLOAD,
	JAM_OP_LOG_EVENTS,
	JAM_OP_LOG_TILE,
	JAM_OP_LOG_ENTRY_BUNDLE,
	JAM_OP_WITNESS_ADD_CHECKPOINT,
	JAM_OP_WITNESS_CHECKPOINTS,
	JAM_OP__COUNT
} JamOp;

/* How a call ended: the label outcome of jam_operations_total. */
typedef enum JamOutcome
{
	JAM_OUTCOME_OK,
	JAM_OUTCOME_CREATED,		/* a put or submit that stored something new */
	JAM_OUTCOME_EXISTING,		/* a put or submit of what was already stored */
	JAM_OUTCOME_APPLIED,		/* a processed package whose refine succeeded */
	JAM_OUTCOME_FAILED,			/* a processed package whose refine failed */
	JAM_OUTCOME_EMPTY,			/* nothing pending to process; no token to authenticate */
	JAM_OUTCOME_ERROR,			/* the call raised an error */
	JAM_OUTCOME__COUNT
} JamOutcome;

/* An API call in progress, from jam_metrics_begin to jam_metrics_end. */
typedef int JamMetricsCall;

extern JamMetricsCall jam_metrics_begin(JamOp op);
extern void jam_metrics_end(JamMetricsCall call, JamOutcome outcome);

/*
 * A request refused for a reason (a stable error code such as
 * "quota_exceeded", "payload_too_large", "rate_limited") and a service
 * (NULL when the request names none).  Services beyond
 * jam.metrics_max_services are counted together as "_other".
 */
extern void jam_metrics_refusal(const char *reason, const char *service_id);

/* Called by jam_errcode() for every error jam raises. */
extern void jam_metrics_error(JamError err);

/* Refcounts raised (packages and reports referencing preimages). */
extern void jam_metrics_refcount_increments(int64 n);
extern void jam_metrics_refine_retry(bool abandoned);
extern void jam_metrics_attestation(const char *attester);

/* Retention: a completed cleanup, and each committed batch's deletions. */
typedef enum JamCleanupMode
{
	JAM_CLEANUP_DELETE,			/* deleted what had expired */
	JAM_CLEANUP_DRY_RUN,		/* only counted it */
	JAM_CLEANUP_DISABLED,		/* jam.retention_days <= 0: nothing to do */
	JAM_CLEANUP_MODE__COUNT
} JamCleanupMode;

struct JamCleanupCounts;
extern void jam_metrics_cleanup_run(JamCleanupMode mode, int64 duration_us);
extern void jam_metrics_cleanup_batch(const struct JamCleanupCounts *batch);

/* _PG_init: the GUCs (before jam_define_gucs) and the shared memory hooks. */
extern void jam_metrics_init(void);

#endif							/* JAM_METRICS_H */
