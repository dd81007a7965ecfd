/*
 * worker_round.c: one round of a background worker's loop, whatever its
 * work (processing, blob deletes and offloads, retention).
 *
 * The round runs in a memory context emptied after it.  An error it
 * raises is logged and its transaction aborted, and the worker goes on:
 * a worker that let the error end it would be restarted only after its
 * restart interval, and would lose its place.  The caller decides how
 * long to pause after a failed round.
 */
#include "jam.h"
#include "worker_round.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/memutils.h"

/* Runs round(arg) as one round; false when it raised an error (logged). */
bool
jam_worker_round(MemoryContext round_context, void (*round) (void *arg), void *arg)
{
	volatile bool ok = true;

	MemoryContextSwitchTo(round_context);
	PG_TRY();
	{
		round(arg);
	}
	PG_CATCH();
	{
		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(round_context);
		EmitErrorReport();
		AbortOutOfAnyTransaction();
		FlushErrorState();
		pgstat_report_activity(STATE_IDLE, NULL);
		RESUME_INTERRUPTS();
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(TopMemoryContext);
	MemoryContextReset(round_context);
	return ok;
}
