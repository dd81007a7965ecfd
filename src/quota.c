/*
 * quota.c: per-service and per-token quotas (jam_set_quota,
 * jam_quota_usage) and their enforcement at ingress.
 *
 * Each quota has a global default (jam.rate_limit_per_minute,
 * jam.max_preimage_bytes, jam.max_pending_packages) that a row of
 * jam_quotas overrides for one service or one token.  A token's row adds
 * limits to its submits on top of its service's; without one a token is
 * limited by its services only.  Overrides are cached per backend, and the
 * cache is dropped when any backend commits a change (auth_cache.c).
 */
#include "jam.h"
#include "auth.h"
#include "errors.h"
#include "metrics.h"
#include "quota.h"
#include "ratelimit.h"
#include "xact_rows.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#define QUOTA_CACHE_MAX 4096

typedef struct CachedQuota
{
	JamRateKey	key;
	JamQuota	quota;
} CachedQuota;

static HTAB *quota_cache = NULL;
static uint64 quota_cache_generation = 0;

#define QUOTA_JSON \
	"jsonb_build_object('service_id', service_id, 'token_id', token_id, " \
	"'rate_limit_per_minute', rate_limit_per_minute, 'max_preimage_bytes', max_preimage_bytes, " \
	"'max_pending_packages', max_pending_packages, 'updated_at', updated_at)"

static JamStatement select_service_quota = {
	"SELECT rate_limit_per_minute, max_preimage_bytes, max_pending_packages "
	"FROM jam.jam_quotas WHERE service_id = $1",
	1, {TEXTOID}
};

static JamStatement select_token_quota = {
	"SELECT rate_limit_per_minute, max_preimage_bytes, max_pending_packages "
	"FROM jam.jam_quotas WHERE token_id = $1",
	1, {TEXTOID}
};

static JamStatement count_token_pending = {
	"SELECT count(*) FROM jam.jam_work_packages WHERE token_id = $1 AND status = 'pending'",
	1, {TEXTOID}
};

/* Counts no further than the quota needs ($2 = limit + 1): a submit's check costs at most that. */
static JamStatement count_token_pending_upto = {
	"SELECT count(*) FROM (SELECT FROM jam.jam_work_packages "
	"WHERE token_id = $1 AND status = 'pending' LIMIT $2) AS upto",
	2, {TEXTOID, INT8OID}
};

static JamStatement select_service_pending = {
	"SELECT pending_count FROM jam.jam_services WHERE service_id = $1",
	1, {TEXTOID}
};

static JamStatement select_token_tenant = {
	"SELECT tenant FROM jam.jam_tokens WHERE id = $1",
	1, {TEXTOID}
};

/* A merged value: NULL keeps the old one, -1 clears it, else the new one. */
#define MERGED(n) \
	"CASE WHEN $" #n " IS NULL THEN %s WHEN $" #n " = -1 THEN NULL ELSE $" #n " END"

static JamStatement upsert_service_quota = {NULL, 4, {TEXTOID, INT4OID, INT8OID, INT4OID}};
static JamStatement upsert_token_quota = {NULL, 4, {TEXTOID, INT4OID, INT8OID, INT4OID}};

static JamStatement service_exists = {
	"SELECT 1 FROM jam.jam_services WHERE service_id = $1",
	1, {TEXTOID}
};

static JamStatement delete_empty_quota = {
	"DELETE FROM jam.jam_quotas WHERE (service_id = $1 OR token_id = $1) "
	"AND rate_limit_per_minute IS NULL AND max_preimage_bytes IS NULL "
	"AND max_pending_packages IS NULL",
	1, {TEXTOID}
};

static void
read_quota_row(JamQuota *q)
{
	bool		isnull;
	Datum		d;

	d = jam_spi_result_datum(1, &isnull);
	q->rate_limit_per_minute = isnull ? -1 : DatumGetInt32(d);
	d = jam_spi_result_datum(2, &isnull);
	q->max_preimage_bytes = isnull ? -1 : DatumGetInt64(d);
	d = jam_spi_result_datum(3, &isnull);
	q->max_pending_packages = isnull ? -1 : DatumGetInt32(d);
}

/*
 * The override of a service (kind 's') or a token ('t'): each field -1
 * where it has none.
 */
void
jam_quota_lookup(char kind, const char *id, JamQuota *out)
{
	uint64		generation = jam_auth_generation();
	JamRateKey	key;
	CachedQuota *entry;
	bool		found;
	Datum		values[1];

	if (quota_cache == NULL || generation == 0 || generation != quota_cache_generation ||
		hash_get_num_entries(quota_cache) >= QUOTA_CACHE_MAX)
	{
		HASHCTL		ctl;

		if (quota_cache != NULL)
			hash_destroy(quota_cache);
		ctl.keysize = sizeof(JamRateKey);
		ctl.entrysize = sizeof(CachedQuota);
		ctl.hcxt = TopMemoryContext;
		quota_cache = hash_create("jam quotas", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		quota_cache_generation = generation;
	}

	jam_rate_key(&key, kind, id);
	entry = hash_search(quota_cache, &key, HASH_FIND, &found);
	if (entry != NULL)
	{
		*out = entry->quota;
		return;
	}

	out->rate_limit_per_minute = -1;
	out->max_preimage_bytes = -1;
	out->max_pending_packages = -1;
	values[0] = CStringGetTextDatum(id);
	SPI_connect();
	if (jam_spi_exec(kind == 's' ? &select_service_quota : &select_token_quota,
					 values, NULL, true, 1) == 1)
		read_quota_row(out);
	SPI_finish();

	entry = hash_search(quota_cache, &key, HASH_ENTER, &found);
	entry->quota = *out;
}

/* Whole seconds until a retry, rounded up, at least 1. */
static int64
retry_seconds(int64 wait_us)
{
	int64		s = (wait_us + USECS_PER_SEC - 1) / USECS_PER_SEC;

	return s < 1 ? 1 : s;
}

/*
 * Charges a submit of the given weight to its service's rate limit and to
 * its token's (when it has one), filling *q with the limits the rest of
 * the submit checks.  Returns 0 when admitted, else what jam_rate_admit
 * returned, for jam_quota_refuse_submit.
 */
int64
jam_quota_try_submit(const char *service_id, int32 weight, JamSubmitQuota *q)
{
	JamQuota	svc;
	JamQuota	tok;
	const char *token_id = jam_auth_token_id();

	jam_quota_lookup('s', service_id, &svc);
	tok.rate_limit_per_minute = tok.max_preimage_bytes = tok.max_pending_packages = -1;
	if (token_id != NULL)
		jam_quota_lookup('t', token_id, &tok);

	q->rate.service_id = service_id;
	q->rate.service_rate = svc.rate_limit_per_minute >= 0 ? svc.rate_limit_per_minute
		: jam_rate_limit_per_minute;
	q->rate.token_id = token_id;
	q->rate.token_rate = tok.rate_limit_per_minute > 0 ? tok.rate_limit_per_minute : 0;
	q->rate.weight = weight;
	q->service_max_pending = svc.max_pending_packages >= 0 ? svc.max_pending_packages
		: jam_max_pending_packages;
	q->token_max_pending = tok.max_pending_packages;
	q->service_max_preimage_bytes = svc.max_preimage_bytes;
	q->token_max_preimage_bytes = tok.max_preimage_bytes;

	return jam_rate_admit(&q->rate);
}

/*
 * Raises what a refused jam_quota_try_submit means: rate_limited with the
 * seconds until a retry can pass, or quota_exceeded when the weight
 * exceeds a burst and never can.
 */
void
jam_quota_refuse_submit(const char *service_id, int64 wait, const JamSubmitQuota *q)
{
	if (wait == JAM_RATE_NEVER)
	{
		jam_metrics_refusal("quota_exceeded", service_id);
		ereport(ERROR,
				(jam_errcode(JAM_ERR_QUOTA_EXCEEDED),
				 errmsg("weight_hint %d exceeds the rate limit's burst", q->rate.weight),
				 errdetail("No bucket of service \"%s\"%s can ever admit it.", service_id,
						   q->rate.token_id ? " or of its token" : ""),
				 errhint("Lower the weight_hint, or raise jam.rate_limit_burst.")));
	}
	jam_metrics_refusal("rate_limited", service_id);
	if (wait < 0)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_RATE_LIMITED),
				 errmsg("the rate limiter has no room for service \"%s\"", service_id),
				 errdetail("Retry after 1 seconds."),
				 errhint("Raise jam.rate_limit_buckets.")));
	ereport(ERROR,
			(jam_errcode(JAM_ERR_RATE_LIMITED),
			 errmsg("rate limit reached for service \"%s\"%s", service_id,
					q->rate.token_id && q->rate.token_rate > 0 ? " or its token" : ""),
			 errdetail("Retry after " INT64_FORMAT " seconds.", retry_seconds(wait))));
}

/* Gives back the rate charged by jam_quota_admit_submit, for a package already stored. */
void
jam_quota_refund_submit(const JamSubmitQuota *q)
{
	jam_rate_refund(&q->rate);
}

static void
refuse_pending(const char *service_id, const char *whose, int64 limit)
{
	jam_metrics_refusal("quota_exceeded", service_id);
	ereport(ERROR,
			(jam_errcode(JAM_ERR_QUOTA_EXCEEDED),
			 errmsg("%s has too many pending packages", whose),
			 errdetail("Its quota allows " INT64_FORMAT " pending packages.", limit),
			 errhint("Retry after some packages have been processed.")));
}

/*
 * Checks the pending quotas once the package is counted: the service's
 * (pending_after includes it) and its token's.  Needs SPI.
 */
void
jam_quota_check_pending(const char *service_id, int64 pending_after, const JamSubmitQuota *q)
{
	if (q->service_max_pending > 0 && pending_after > q->service_max_pending)
		refuse_pending(service_id, psprintf("service \"%s\"", service_id), q->service_max_pending);
	if (q->rate.token_id != NULL && q->token_max_pending > 0)
	{
		Datum		values[2] = {CStringGetTextDatum(q->rate.token_id),
		Int64GetDatum((int64) q->token_max_pending + 1)};
		bool		isnull;
		int64		pending;

		/* Not read-only: the count must see this transaction's own submits. */
		jam_spi_exec(&count_token_pending_upto, values, NULL, false, 1);
		pending = DatumGetInt64(jam_spi_result_datum(1, &isnull));
		if (pending > q->token_max_pending)
			refuse_pending(service_id, "the token", q->token_max_pending);
	}
}

/* Checks the largest preimage a package references against its service's and token's overrides. */
void
jam_quota_check_preimage_size(const char *service_id, int64 largest, const JamSubmitQuota *q)
{
	int64		limits[2] = {q->service_max_preimage_bytes, q->token_max_preimage_bytes};

	for (int i = 0; i < 2; i++)
		if (limits[i] >= 0 && largest > limits[i])
		{
			jam_metrics_refusal("payload_too_large", service_id);
			ereport(ERROR,
					(jam_errcode(JAM_ERR_PAYLOAD_TOO_LARGE),
					 errmsg("package references a preimage of " INT64_FORMAT " bytes", largest),
					 errdetail("The %s's quota allows preimages of " INT64_FORMAT " bytes.",
							   i == 0 ? "service" : "token", limits[i])));
		}
}

/* The largest preimage the caller may put: the token's override, else jam.max_preimage_bytes. */
int64
jam_quota_max_put_bytes(bool *from_token)
{
	const char *token_id = jam_auth_token_id();
	JamQuota	tok;

	*from_token = false;
	if (token_id != NULL)
	{
		jam_quota_lookup('t', token_id, &tok);
		if (tok.max_preimage_bytes >= 0)
		{
			*from_token = true;
			return tok.max_preimage_bytes;
		}
	}
	return jam_max_preimage_bytes;
}

/* A token id argument that names a token the caller may manage: its tenant's, when it has one. */
static char *
check_managed_token(text *arg)
{
	char	   *id = jam_check_token_id(arg);
	Datum		values[1] = {CStringGetTextDatum(id)};
	bool		ok;
	bool		isnull;
	Datum		tenant;
	const char *admin_tenant = jam_auth_tenant();

	SPI_connect();
	ok = jam_spi_exec(&select_token_tenant, values, NULL, true, 1) == 1;
	if (ok && admin_tenant != NULL)
	{
		tenant = jam_spi_result_datum(1, &isnull);
		ok = !isnull && strcmp(TextDatumGetCString(tenant), admin_tenant) == 0;
	}
	SPI_finish();
	if (!ok)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_TOKEN_NOT_FOUND),
				 errmsg("token %s not found", id)));
	return id;
}

static void
prepare_upserts(void)
{
	MemoryContext old;
	const char *fmt =
	"INSERT INTO jam.jam_quotas AS q (%s, rate_limit_per_minute, max_preimage_bytes, max_pending_packages) "
	"VALUES ($1, " MERGED(2) ", " MERGED(3) ", " MERGED(4) ") "
	"ON CONFLICT (%s) WHERE %s IS NOT NULL DO UPDATE SET "
	"rate_limit_per_minute = " MERGED(2) ", max_preimage_bytes = " MERGED(3) ", "
	"max_pending_packages = " MERGED(4) ", updated_at = now() "
	"RETURNING " QUOTA_JSON;

	if (upsert_service_quota.sql != NULL)
		return;
	old = MemoryContextSwitchTo(TopMemoryContext);
	upsert_service_quota.sql = psprintf(fmt, "service_id", "NULL", "NULL", "NULL",
										"service_id", "service_id",
										"q.rate_limit_per_minute", "q.max_preimage_bytes",
										"q.max_pending_packages");
	upsert_token_quota.sql = psprintf(fmt, "token_id", "NULL", "NULL", "NULL",
									  "token_id", "token_id",
									  "q.rate_limit_per_minute", "q.max_preimage_bytes",
									  "q.max_pending_packages");
	MemoryContextSwitchTo(old);
}

/* A limit argument: NULL (keep), -1 (back to the default), or 0 and up. */
static void
limit_arg(FunctionCallInfo fcinfo, int argno, const char *name, Datum *value, char *null)
{
	int64		v;

	*null = 'n';
	*value = (Datum) 0;
	if (PG_ARGISNULL(argno))
		return;
	v = argno == 3 ? PG_GETARG_INT64(argno) : PG_GETARG_INT32(argno);
	if (v < -1 || (argno == 2 && v > JAM_RATE_MAX) || (argno == 3 && v > (int64) (MaxAllocSize / 2)))
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("%s is out of range", name),
				 errdetail("Give 0 or more, -1 to go back to the default, or NULL to leave it.")));
	*value = PG_GETARG_DATUM(argno);
	*null = ' ';
}

PG_FUNCTION_INFO_V1(jam_set_quota);

/*
 * jam_set_quota(service_id, token_id, rate_limit_per_minute,
 * max_preimage_bytes, max_pending_packages) sets the override of one
 * service or one token: a NULL limit is left as it is, -1 goes back to the
 * default, 0 means no limit.  Returns the override (all null once none is
 * left, and the row is gone).
 */
Datum
jam_set_quota(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_QUOTA_SET);
	bool		for_service;
	bool		exists;
	char	   *target;
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	Datum		doc;

	jam_check_enabled();
	jam_auth_require(JAM_SCOPE_ADMIN, "jam_set_quota");
	if (PG_ARGISNULL(0) == PG_ARGISNULL(1))
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("give either service_id or token_id"),
				 errhint("Call it with named arguments: jam_set_quota(service_id => 'svc', rate_limit_per_minute => 600).")));
	for_service = !PG_ARGISNULL(0);
	if (for_service)
	{
		target = jam_check_service_id(PG_GETARG_TEXT_PP(0));
		jam_auth_require_service(JAM_SCOPE_ADMIN, target);
	}
	else
		target = check_managed_token(PG_GETARG_TEXT_PP(1));
	values[0] = CStringGetTextDatum(target);
	limit_arg(fcinfo, 2, "rate_limit_per_minute", &values[1], &nulls[1]);
	limit_arg(fcinfo, 3, "max_preimage_bytes", &values[2], &nulls[2]);
	limit_arg(fcinfo, 4, "max_pending_packages", &values[3], &nulls[3]);

	prepare_upserts();
	SPI_connect();
	jam_spi_exec(for_service ? &upsert_service_quota : &upsert_token_quota, values, nulls, false, 0);
	doc = jam_spi_copy_jsonb(1);
	jam_spi_exec(&delete_empty_quota, values, NULL, false, 0);

	/*
	 * A service's quota may be set before its first submit creates it (and
	 * applies from that submit on); the answer says whether it exists, so
	 * that a misspelt service id shows.
	 */
	exists = for_service && jam_spi_exec(&service_exists, values, NULL, false, 1) == 1;
	SPI_finish();
	if (for_service)
		doc = jam_with_member(doc, "service_exists",
							  DirectFunctionCall1(jsonb_in, CStringGetDatum(exists ? "true" : "false")));

	jam_metrics_end(metrics, JAM_OUTCOME_OK);
	PG_RETURN_DATUM(doc);
}

/* Appends "name": {"limit": l, "source": s} for a limit and where it comes from. */
static void
append_limit(StringInfo s, const char *name, int64 limit, const char *source)
{
	appendStringInfo(s, "\"%s\": {\"limit\": " INT64_FORMAT ", \"source\": \"%s\"}",
					 name, limit, source);
}

static void
append_rate(StringInfo s, char kind, const char *id, int32 rate, const char *source)
{
	double		available;
	int64		wait;

	jam_rate_peek(kind, id, rate, &available, &wait);
	appendStringInfo(s, "\"rate\": {\"limit_per_minute\": %d, \"burst\": " INT64_FORMAT
					 ", \"available\": %.0f, \"retry_after_seconds\": " INT64_FORMAT
					 ", \"source\": \"%s\"}",
					 rate, rate > 0 ? jam_rate_burst(rate) : 0, rate > 0 ? available : 0,
					 wait > 0 ? retry_seconds(wait) : 0, source);
}

PG_FUNCTION_INFO_V1(jam_quota_usage);

/*
 * jam_quota_usage(service_id, token_id) shows the limits of a service or a
 * token (by default the caller's token), where each comes from (default,
 * service or token), and what is used now: the rate bucket and the pending
 * packages.
 */
Datum
jam_quota_usage(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_QUOTA_USAGE);
	StringInfoData s;
	JamQuota	q;
	Datum		values[1];
	bool		isnull;
	int64		pending = 0;

	jam_check_enabled();
	jam_auth_require(JAM_SCOPE_READ, "jam_quota_usage");
	initStringInfo(&s);
	if (!PG_ARGISNULL(0) && !PG_ARGISNULL(1))
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("give service_id or token_id, not both")));

	if (!PG_ARGISNULL(0))
	{
		char	   *service_id = jam_check_service_id(PG_GETARG_TEXT_PP(0));
		int32		rate;
		const JamService *copy;

		jam_auth_require_service(JAM_SCOPE_READ, service_id);
		jam_quota_lookup('s', service_id, &q);
		values[0] = CStringGetTextDatum(service_id);
		/* A count this transaction changed is read from its copy (xact_rows.c). */
		copy = jam_xact_unwritten_service(service_id);
		if (copy != NULL)
			pending = copy->pending_count;
		else
		{
			SPI_connect();
			if (jam_spi_exec(&select_service_pending, values, NULL, !jam_xact_rows_held(), 1) == 1)
				pending = DatumGetInt64(jam_spi_result_datum(1, &isnull));
			SPI_finish();
		}

		rate = q.rate_limit_per_minute >= 0 ? q.rate_limit_per_minute : jam_rate_limit_per_minute;
		appendStringInfoString(&s, "{\"service_id\": ");
		escape_json(&s, service_id);
		appendStringInfoString(&s, ", ");
		append_rate(&s, 's', service_id, rate, q.rate_limit_per_minute >= 0 ? "service" : "default");
		appendStringInfo(&s, ", \"pending_packages\": " INT64_FORMAT ", ", pending);
		append_limit(&s, "max_pending_packages",
					 q.max_pending_packages >= 0 ? q.max_pending_packages : jam_max_pending_packages,
					 q.max_pending_packages >= 0 ? "service" : "default");
		appendStringInfoString(&s, ", ");
		append_limit(&s, "max_preimage_bytes",
					 q.max_preimage_bytes >= 0 ? q.max_preimage_bytes : jam_max_preimage_bytes,
					 q.max_preimage_bytes >= 0 ? "service" : "default");
		appendStringInfoChar(&s, '}');
	}
	else
	{
		const char *own = jam_auth_token_id();
		char	   *token_id;

		if (!PG_ARGISNULL(1))
		{
			token_id = text_to_cstring(PG_GETARG_TEXT_PP(1));
			if (own != NULL && strcmp(token_id, own) != 0)
			{
				jam_auth_require(JAM_SCOPE_ADMIN, "jam_quota_usage of another token");
			}
			token_id = check_managed_token(PG_GETARG_TEXT_PP(1));
		}
		else if (own != NULL)
			token_id = pstrdup(own);
		else
			ereport(ERROR,
					(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
					 errmsg("give service_id or token_id"),
					 errhint("Without arguments it shows the quota of the token in use (jam_authenticate).")));

		jam_quota_lookup('t', token_id, &q);
		values[0] = CStringGetTextDatum(token_id);
		SPI_connect();
		jam_spi_exec(&count_token_pending, values, NULL, true, 1);
		pending = DatumGetInt64(jam_spi_result_datum(1, &isnull));
		SPI_finish();

		appendStringInfoString(&s, "{\"token_id\": ");
		escape_json(&s, token_id);
		appendStringInfoString(&s, ", ");
		append_rate(&s, 't', token_id, Max(q.rate_limit_per_minute, 0),
					q.rate_limit_per_minute >= 0 ? "token" : "none");
		appendStringInfo(&s, ", \"pending_packages\": " INT64_FORMAT ", ", pending);
		append_limit(&s, "max_pending_packages", q.max_pending_packages,
					 q.max_pending_packages >= 0 ? "token" : "none");
		appendStringInfoString(&s, ", ");
		append_limit(&s, "max_preimage_bytes",
					 q.max_preimage_bytes >= 0 ? q.max_preimage_bytes : jam_max_preimage_bytes,
					 q.max_preimage_bytes >= 0 ? "token" : "default");
		appendStringInfoChar(&s, '}');
	}
	jam_metrics_end(metrics, JAM_OUTCOME_OK);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(s.data)));
}
