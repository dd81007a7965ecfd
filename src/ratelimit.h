/*
 * ratelimit.h: the shared-memory rate limiter (GCRA), per service and per
 * token; see ratelimit.c.
 */
#ifndef JAM_RATELIMIT_H
#define JAM_RATELIMIT_H

#include "postgres.h"

/* Longest id a bucket is kept under: a service id (64) or a token id (16). */
#define JAM_RATE_ID_MAX 64
/* Largest limit, in weight units per minute. */
#define JAM_RATE_MAX 100000000
/* jam_rate_admit: the weight exceeds a bucket's burst and can never pass. */
#define JAM_RATE_NEVER INT64_MAX

/* A bucket's (or a quota override's) key: kind 's' service or 't' token, and the id. */
typedef struct JamRateKey
{
	char		kind;
	char		id[JAM_RATE_ID_MAX + 1];
} JamRateKey;

extern void jam_rate_key(JamRateKey *key, char kind, const char *id);

typedef struct JamRateRequest
{
	const char *service_id;
	int32		service_rate;	/* per minute; 0: no limit */
	const char *token_id;		/* NULL: no token bucket */
	int32		token_rate;		/* per minute; 0: no limit */
	int32		weight;
} JamRateRequest;

extern int	jam_rate_limit_per_minute;
extern int	jam_rate_limit_burst;

extern void jam_rate_limit_init(void);
extern int64 jam_rate_burst(int32 rate);
extern int64 jam_rate_admit(const JamRateRequest *req);
extern void jam_rate_refund(const JamRateRequest *req);
extern void jam_rate_peek(char kind, const char *id, int32 rate, double *available, int64 *wait_us);

#endif							/* JAM_RATELIMIT_H */
