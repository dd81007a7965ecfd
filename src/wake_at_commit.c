/*
 * wake_at_commit.c: waking background workers when the transaction that
 * gave them work commits.
 *
 * A submit has the processors woken, a queued blob delete the blob worker:
 * at the commit, when the work is visible to them, and not at all when the
 * transaction aborts.  One transaction callback, registered on first use,
 * serves every kind of worker; each kind says how to wake its own.
 */
#include "jam.h"
#include "wake_at_commit.h"

#include "access/xact.h"

/* The kinds of worker there are: processors, the blob worker. */
#define WAKERS_MAX 4

static JamCommitWake *wakers[WAKERS_MAX];
static int	n_wakers = 0;

static void
wake_armed(XactEvent event, void *arg)
{
	for (int i = 0; i < n_wakers; i++)
	{
		if (event == XACT_EVENT_COMMIT && wakers[i]->armed)
			wakers[i]->wake();
		if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE)
			wakers[i]->armed = false;
	}
}

/* Has waker's workers woken when the current transaction commits. */
void
jam_wake_at_commit(JamCommitWake *waker)
{
	bool		known = false;

	for (int i = 0; i < n_wakers && !known; i++)
		known = wakers[i] == waker;
	if (!known)
	{
		if (n_wakers == WAKERS_MAX)
			elog(ERROR, "jam has more kinds of worker to wake than it has room for");
		if (n_wakers == 0)
			RegisterXactCallback(wake_armed, NULL);
		wakers[n_wakers++] = waker;
	}
	waker->armed = true;
}
