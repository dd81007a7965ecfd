/*
 * announcer.h: committed log entries announced by a background worker
 * (announcer.c).
 */
#ifndef JAM_ANNOUNCER_H
#define JAM_ANNOUNCER_H

#include "jam.h"

extern void jam_announcer_init(void);
extern void jam_announce_at_commit(const char *service_id, int64 seq);
extern void jam_announcer_counts(uint64 *dropped, uint64 *announced);
extern void jam_announcer_reset_counts(void);

#endif							/* JAM_ANNOUNCER_H */
