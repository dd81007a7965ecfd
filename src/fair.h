/*
 * fair.h: weighted fair choice of the next package across services (fair.c).
 */
#ifndef JAM_FAIR_H
#define JAM_FAIR_H

#include "claim.h"

typedef enum JamScheduling
{
	JAM_SCHEDULING_FAIR,
	JAM_SCHEDULING_FIFO
} JamScheduling;

extern int	jam_scheduling;

extern void jam_fair_init(void);
extern bool jam_fair_claim(ArrayType *visible, ClaimedPackage *pkg);
extern bool jam_services_have_share(void);
extern void jam_fair_backlog_changed(void);

/* The shares jam_register_service accepts. */
#define JAM_SHARE_MAX 1000000

#endif							/* JAM_FAIR_H */
