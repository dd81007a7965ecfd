/*
 * retention.h: what the retention files share (retention.c, the batch
 * engine and jam_cleanup; retention_worker.c, the background workers;
 * schedule.c, pg_cron; fsck.c only needs jam.h).
 */
#ifndef JAM_RETENTION_H
#define JAM_RETENTION_H

#include "jam.h"
#include "blob.h"

#include "datatype/timestamp.h"

/* retention.c: the jam.retention_* and jam.preimage_retention_days GUCs. */
extern int	jam_retention_days;
extern int	jam_preimage_retention_days;
extern int	jam_retention_batch_size;
extern bool jam_retention_dry_run;
extern int	jam_retention_interval;
extern bool jam_retention_worker_enabled;
extern char *jam_retention_database;

/* What one cleanup deletes: everything older than its cutoffs. */
typedef struct JamCleanupParams
{
	TimestampTz cutoff;			/* reports and packages */
	bool		preimages;		/* whether unreferenced preimages go too */
	TimestampTz preimage_cutoff;	/* valid when preimages */
	int			batch_size;
} JamCleanupParams;

/* What a cleanup deleted (or, in a dry run, would delete). */
typedef struct JamCleanupCounts
{
	int64		reports_deleted;
	int64		attestations_deleted;
	int64		packages_deleted;
	int64		preimages_deleted;
	int64		refcount_decrements;
	int64		batches;
} JamCleanupCounts;

extern bool jam_cleanup_params(TimestampTz now, JamCleanupParams *params);
extern void jam_cleanup_batches(const JamCleanupParams *params, JamCleanupCounts *counts);
extern void jam_cleanup_count(const JamCleanupParams *params, JamCleanupCounts *counts);
extern char *jam_cleanup_document(bool disabled, bool dry_run, const JamCleanupParams *params,
								  const JamCleanupCounts *counts, int64 duration_ms);

/*
 * retention_worker.c: a task run in a dynamic background worker, connected
 * to a database as the calling role, so that it can commit as it goes.  The
 * caller fills in the inputs; the worker fills in the outputs, counts as it
 * commits, and the error it stopped with, if any.
 */
typedef enum JamTaskKind
{
	JAM_TASK_CLEANUP = 1,		/* jam_cleanup_batches */
	JAM_TASK_CRON,				/* jam_cron_task */
	JAM_TASK_OFFLOAD			/* jam_offload_run (offload.c) */
} JamTaskKind;

#define JAM_TASK_TEXT_MAX 1024

typedef struct JamTask
{
	/* inputs */
	JamTaskKind kind;
	Oid			database_id;
	JamCleanupParams cleanup;
	bool		cron_unschedule;	/* else schedule */
	char		cron_schedule[JAM_TASK_TEXT_MAX];
	char		cron_target_database[NAMEDATALEN];

	/* outputs */
	JamCleanupCounts counts;
	JamOffloadRun offload;
	int64		cron_result;
	bool		done;
	bool		failed;
	int			sqlerrcode;
	char		message[JAM_TASK_TEXT_MAX];
	char		detail[JAM_TASK_TEXT_MAX];
	char		hint[JAM_TASK_TEXT_MAX];
} JamTask;

extern bool jam_task_run(JamTask *task, const char *what);

/* schedule.c: the part of a pg_cron task that runs in the cron database. */
extern void jam_cron_task(JamTask *task);

#endif							/* JAM_RETENTION_H */
