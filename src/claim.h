/*
 * claim.h: taking the next pending package off the queue (claim.c).
 */
#ifndef JAM_CLAIM_H
#define JAM_CLAIM_H

#include "jam.h"

typedef struct ClaimedPackage
{
	char	   *id;				/* hex */
	int64		seq;
	char	   *service_id;
	bytea	   *payload;
	int32		contract_version;
	ArrayType  *preimage_hashes;	/* text[] of hex hashes */
} ClaimedPackage;

extern bool jam_claim_next(const char *service_id, ArrayType *visible, ClaimedPackage *pkg);

#endif							/* JAM_CLAIM_H */
