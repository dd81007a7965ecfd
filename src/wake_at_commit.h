/*
 * wake_at_commit.h: waking background workers when the transaction that
 * gave them work commits (wake_at_commit.c).
 */
#ifndef JAM_WAKE_AT_COMMIT_H
#define JAM_WAKE_AT_COMMIT_H

#include "jam.h"

/* A kind of worker to wake: wake() sets the latches of this database's. */
typedef struct JamCommitWake
{
	void		(*wake) (void);
	bool		armed;			/* wake at this transaction's commit */
} JamCommitWake;

extern void jam_wake_at_commit(JamCommitWake *waker);

#endif							/* JAM_WAKE_AT_COMMIT_H */
