/*
 * worker_round.h: one round of a background worker's loop (worker_round.c).
 */
#ifndef JAM_WORKER_ROUND_H
#define JAM_WORKER_ROUND_H

#include "jam.h"

extern bool jam_worker_round(MemoryContext round_context, void (*round) (void *arg), void *arg);

#endif							/* JAM_WORKER_ROUND_H */
