/*
 * processor.h: the background workers that process packages (processor.c).
 */
#ifndef JAM_PROCESSOR_H
#define JAM_PROCESSOR_H

#include "jam.h"

typedef struct JamProcessorStats
{
	char		worker[NAMEDATALEN + 16];	/* database/n */
	uint64		processed;		/* applied */
	uint64		failed;
	double		busy_seconds;
	double		wait_seconds;	/* from submit to claim, summed */
} JamProcessorStats;

extern int	jam_processor_workers;
extern void jam_processor_init(void);
extern void jam_processor_wake_at_commit(void);
extern bool jam_processor_stats(int i, JamProcessorStats *out);

#endif							/* JAM_PROCESSOR_H */
