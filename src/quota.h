/*
 * quota.h: quota overrides and their checks at ingress; see quota.c.
 */
#ifndef JAM_QUOTA_H
#define JAM_QUOTA_H

#include "postgres.h"
#include "ratelimit.h"

/* One override row; -1 where it sets nothing. */
typedef struct JamQuota
{
	int32		rate_limit_per_minute;
	int64		max_preimage_bytes;
	int32		max_pending_packages;
} JamQuota;

/* The limits one submit is held to. */
typedef struct JamSubmitQuota
{
	JamRateRequest rate;
	int32		service_max_pending;	/* 0: none */
	int32		token_max_pending;	/* 0 or -1: none */
	int64		service_max_preimage_bytes;	/* -1: none */
	int64		token_max_preimage_bytes;	/* -1: none */
} JamSubmitQuota;

extern void jam_quota_lookup(char kind, const char *id, JamQuota *out);
extern int64 jam_quota_try_submit(const char *service_id, int32 weight, JamSubmitQuota *q);
extern void jam_quota_refuse_submit(const char *service_id, int64 wait, const JamSubmitQuota *q);
extern void jam_quota_refund_submit(const JamSubmitQuota *q);
extern void jam_quota_check_pending(const char *service_id, int64 pending_after,
									const JamSubmitQuota *q);
extern void jam_quota_check_preimage_size(const char *service_id, int64 largest,
										  const JamSubmitQuota *q);
extern int64 jam_quota_max_put_bytes(bool *from_token);

#endif							/* JAM_QUOTA_H */
