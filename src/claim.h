/*
 * claim.h: taking the next pending package off the queue (claim.c).
 */
#ifndef JAM_CLAIM_H
#define JAM_CLAIM_H

#include "jam.h"

#include "datatype/timestamp.h"

typedef struct ClaimedPackage
{
	char	   *id;				/* hex */
	int64		seq;
	char	   *service_id;
	bytea	   *payload;
	int32		contract_version;
	int32		weight_hint;	/* the package's cost to fair scheduling */
	ArrayType  *preimage_hashes;	/* text[] of hex hashes */
	TimestampTz submitted_at;
} ClaimedPackage;

/* What a worker needs to know of a package it processed. */
typedef struct JamProcessed
{
	bool		applied;
	TimestampTz submitted_at;
} JamProcessed;

extern bool jam_claim_next(const char *service_id, ClaimedPackage *pkg);
extern int64 jam_claim_peek(const char *service_id);
extern bool jam_process_one(bool *applied, TimestampTz *submitted_at);
extern int	jam_process_some(int max_packages, JamProcessed *out);

#endif							/* JAM_CLAIM_H */
