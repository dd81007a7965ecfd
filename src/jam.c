/*
 * jam.c: module entry point.
 *
 * jam is loaded through shared_preload_libraries so that its configuration
 * exists before any session starts, and so that it can claim shared memory
 * (metrics.c, the rate limiter, the auth cache's generation) and start
 * background workers (retention).
 */
#include "jam.h"
#include "announcer.h"
#include "auth.h"
#include "blob.h"
#include "claim_hint.h"
#include "commit_flush.h"
#include "events.h"
#include "fair.h"
#include "metrics.h"
#include "processor.h"
#include "ratelimit.h"
#include "witnessing.h"

#include <sodium.h>

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	/* libsodium picks its fastest implementations here; it fails only without entropy. */
	if (sodium_init() < 0)
		ereport(FATAL,
				(errmsg("jam could not initialize libsodium")));

	/* Before jam_define_gucs(), which reserves the jam.* prefix. */
	jam_define_retention_gucs();
	jam_processor_init();
	jam_metrics_init();
	jam_define_auth_gucs();
	jam_define_events_gucs();
	jam_define_witness_gucs();
	jam_rate_limit_init();
	jam_fair_init();
	jam_claim_hint_init();
	jam_define_blob_gucs();
	jam_define_gucs();
	jam_auth_cache_init();
	jam_attempts_init();
	jam_announcer_init();
	jam_check_cache_init();
	jam_commit_flush_init();
	jam_retention_worker_register();
}
