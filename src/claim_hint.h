/*
 * claim_hint.h: where a claim may start reading a queue's index
 * (claim_hint.c).
 */
#ifndef JAM_CLAIM_HINT_H
#define JAM_CLAIM_HINT_H

#include "jam.h"

/* What a hint is kept under. */
typedef struct HintKey
{
	Oid			database;
	Oid			index;			/* relfilenode: a new one (TRUNCATE, REINDEX) starts afresh */
	char		key[66];		/* the service, or "" for every service */
} HintKey;

/* One claim's use of the hints: what claim_hint.c needs between its calls. */
typedef struct ClaimHintScan
{
	bool		usable;			/* a candidate may be kept from this scan */
	HintKey		key;
	int64		lowest;			/* the published hint: no pending package below it */
	int64		bound;			/* no candidate may pass this */
} ClaimHintScan;

extern void jam_claim_hint_init(void);
extern void jam_claim_hint_submitting(void);
extern void jam_claim_hint_begin(Relation index, const char *key, ClaimHintScan *scan);
extern void jam_claim_hint_found(ClaimHintScan *scan, int64 first_pending, int64 own_lowest);

#endif							/* JAM_CLAIM_HINT_H */
