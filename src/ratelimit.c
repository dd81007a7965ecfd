/*
 * ratelimit.c: packages per minute, per service and per token, as GCRA in
 * shared memory.
 *
 * The generic cell rate algorithm keeps one timestamp per bucket, its
 * theoretical arrival time (TAT).  With a limit of r units per minute the
 * emission interval is T = 60 s / r, and a bucket admits a package of
 * weight w at time now when max(TAT, now) + w*T - now <= B*T, B being the
 * burst (jam.rate_limit_burst, by default a minute's worth, r); it then
 * sets TAT to max(TAT, now) + w*T.  Refused, the package could be admitted
 * after max(TAT, now) + w*T - B*T - now.  This is a token bucket of
 * capacity B refilled at r per minute, in one word and without a timer.
 *
 * A submit is charged to its service's bucket and, when its token has a
 * rate override, to the token's, both or neither, under one lock: no table
 * is written on this path.  A bucket whose TAT has passed holds nothing
 * worth keeping, so a full table makes room by dropping those.
 */
#include "jam.h"
#include "ratelimit.h"

#include <math.h>

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"


typedef struct RateBucket
{
	JamRateKey		key;
	TimestampTz tat;
} RateBucket;

typedef struct RateShared
{
	LWLock	   *lock;
} RateShared;

int			jam_rate_limit_per_minute = 0;
int			jam_rate_limit_burst = 0;
static int	rate_limit_buckets = 10000;

static RateShared *rate_shared = NULL;
static HTAB *rate_table = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
rate_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(RateShared)) +
						   hash_estimate_size(rate_limit_buckets, sizeof(RateBucket)));
	RequestNamedLWLockTranche("jam_rate_limit", 1);
}

static void
rate_shmem_startup(void)
{
	bool		found;
	HASHCTL		ctl;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	rate_shared = ShmemInitStruct("jam rate limit", sizeof(RateShared), &found);
	if (!found)
		rate_shared->lock = &(GetNamedLWLockTranche("jam_rate_limit"))->lock;
	ctl.keysize = sizeof(JamRateKey);
	ctl.entrysize = sizeof(RateBucket);
	rate_table = ShmemInitHash("jam rate limit buckets", rate_limit_buckets, rate_limit_buckets,
							   &ctl, HASH_ELEM | HASH_BLOBS);
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Defines the rate-limit parameters and, when preloaded, asks for the
 * shared memory; called before jam_define_gucs() reserves the prefix.
 */
void
jam_rate_limit_init(void)
{
	DefineCustomIntVariable("jam.rate_limit_per_minute",
							"Default packages (weighted by weight_hint) a service may submit per minute; 0 means no limit.",
							"jam_set_quota overrides it per service, and sets per-token limits.",
							&jam_rate_limit_per_minute, 0,
							0, JAM_RATE_MAX,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("jam.rate_limit_burst",
							"Weight a bucket may spend at once; 0 means a minute's worth of its limit.",
							NULL,
							&jam_rate_limit_burst, 0,
							0, JAM_RATE_MAX,
							PGC_SUSET, 0, NULL, NULL, NULL);
	/*
	 * The table's size is fixed at server start; without preloading there
	 * is no table, and defining a PGC_POSTMASTER parameter would be FATAL.
	 */
	if (!process_shared_preload_libraries_in_progress)
		return;

	DefineCustomIntVariable("jam.rate_limit_buckets",
							"Most services and tokens the rate limiter tracks at once.",
							"Buckets that are full again are reused; set it above the number of "
							"services and tokens that submit within a minute.",
							&rate_limit_buckets, 10000,
							100, 10000000,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = rate_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = rate_shmem_startup;
}

/* The burst of a bucket whose limit is rate. */
int64
jam_rate_burst(int32 rate)
{
	return jam_rate_limit_burst > 0 ? jam_rate_limit_burst : rate;
}

/* Fills a key, zeroing its padding so that it hashes as a blob. */
void
jam_rate_key(JamRateKey *key, char kind, const char *id)
{
	memset(key, 0, sizeof(*key));
	key->kind = kind;
	strlcpy(key->id, id, sizeof(key->id));
}

/* Drops every bucket that is full again; the caller holds the lock exclusively. */
static void
sweep(TimestampTz now)
{
	HASH_SEQ_STATUS scan;
	RateBucket *bucket;

	hash_seq_init(&scan, rate_table);
	while ((bucket = hash_seq_search(&scan)) != NULL)
		if (bucket->tat <= now)
			hash_search(rate_table, &bucket->key, HASH_REMOVE, NULL);
}

/* The TAT a bucket has now (now when it has none). Lock held. */
static TimestampTz
bucket_tat(const JamRateKey *key, TimestampTz now)
{
	RateBucket *bucket = hash_search(rate_table, key, HASH_FIND, NULL);

	return (bucket != NULL && bucket->tat > now) ? bucket->tat : now;
}

/* Microseconds one unit of weight costs at rate units per minute. */
static double
interval_of(int32 rate)
{
	return (double) USECS_PER_MINUTE / rate;
}

/*
 * Charges weight to each bucket of the request that has a limit, or to
 * none: returns 0 when admitted, else the microseconds until the request
 * could be (JAM_RATE_NEVER when its weight exceeds a burst, or -1 when the
 * table has no room left).
 */
int64
jam_rate_admit(const JamRateRequest *req)
{
	struct
	{
		JamRateKey		key;
		int32		rate;
		TimestampTz next;		/* the bucket's TAT once charged */
	}			charge[2];
	int			n = 0;
	int64		wait = 0;
	TimestampTz now = GetCurrentTimestamp();

	for (int b = 0; b < 2; b++)
	{
		const char *id = b == 0 ? req->service_id : req->token_id;
		int32		rate = b == 0 ? req->service_rate : req->token_rate;

		if (id == NULL || rate <= 0)
			continue;
		if (req->weight > jam_rate_burst(rate))
			return JAM_RATE_NEVER;
		jam_rate_key(&charge[n].key, b == 0 ? 's' : 't', id);
		charge[n].rate = rate;
		n++;
	}
	if (n == 0)
		return 0;
	/* A limit that cannot be enforced refuses rather than lets everything through. */
	if (rate_table == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("jam's rate limits need jam in shared_preload_libraries"),
				 errhint("Add jam to shared_preload_libraries and restart, or set no rate limit.")));

	LWLockAcquire(rate_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < n; i++)
	{
		double		t = interval_of(charge[i].rate);
		int64		over;

		charge[i].next = bucket_tat(&charge[i].key, now) + (TimestampTz) (req->weight * t);
		over = charge[i].next - now - (int64) (jam_rate_burst(charge[i].rate) * t);
		if (over > wait)
			wait = over;
	}
	for (int i = 0; i < n && wait == 0; i++)
	{
		RateBucket *bucket = hash_search(rate_table, &charge[i].key, HASH_ENTER_NULL, NULL);

		if (bucket == NULL)
		{
			sweep(now);
			bucket = hash_search(rate_table, &charge[i].key, HASH_ENTER_NULL, NULL);
		}
		if (bucket == NULL)
		{
			/* No room even after the sweep: undo the first charge, refuse. */
			for (int j = 0; j < i; j++)
			{
				RateBucket *done = hash_search(rate_table, &charge[j].key, HASH_FIND, NULL);

				if (done)
					done->tat -= (TimestampTz) (req->weight * interval_of(charge[j].rate));
			}
			wait = -1;
		}
		else
			bucket->tat = charge[i].next;
	}
	LWLockRelease(rate_shared->lock);
	return wait;
}

/* Gives back what jam_rate_admit charged, for a submit that stored nothing new. */
void
jam_rate_refund(const JamRateRequest *req)
{
	if (rate_table == NULL)
		return;
	LWLockAcquire(rate_shared->lock, LW_EXCLUSIVE);
	for (int b = 0; b < 2; b++)
	{
		const char *id = b == 0 ? req->service_id : req->token_id;
		int32		rate = b == 0 ? req->service_rate : req->token_rate;
		JamRateKey		key;
		RateBucket *bucket;

		if (id == NULL || rate <= 0)
			continue;
		jam_rate_key(&key, b == 0 ? 's' : 't', id);
		bucket = hash_search(rate_table, &key, HASH_FIND, NULL);
		if (bucket)
			bucket->tat -= (TimestampTz) (req->weight * interval_of(rate));
	}
	LWLockRelease(rate_shared->lock);
}

/*
 * The state of one bucket (kind 's' or 't') at rate: the weight it would
 * admit now, and the microseconds until one unit more is admitted.
 */
void
jam_rate_peek(char kind, const char *id, int32 rate, double *available, int64 *wait_us)
{
	JamRateKey		key;
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz tat = now;
	double		t;
	int64		burst_us;

	*available = 0;
	*wait_us = 0;
	if (rate <= 0)
		return;
	t = interval_of(rate);
	burst_us = (int64) (jam_rate_burst(rate) * t);
	if (rate_table != NULL)
	{
		jam_rate_key(&key, kind, id);
		LWLockAcquire(rate_shared->lock, LW_SHARED);
		tat = bucket_tat(&key, now);
		LWLockRelease(rate_shared->lock);
	}
	*available = floor((double) (burst_us - (tat - now)) / t);
	if (*available < 0)
		*available = 0;
	if (*available < 1)
		*wait_us = tat + (int64) t - now - burst_us;
}
