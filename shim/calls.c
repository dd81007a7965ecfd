/*
 * calls.c: runs a plan's statement on a pooled connection and answers with
 * its result.
 */
#include "calls.h"

#include <civetweb.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "buf.h"
#include "conns.h"
#include "errors.h"
#include "events.h"
#include "log.h"
#include "metrics.h"
#include "openapi.h"
#include "preimages.h"
#include "request.h"
#include "stream.h"

#define JSON_TYPE "application/json"

/* JSON answers describe live state: no cache may keep them. */
#define NO_STORE "Cache-Control: no-store\r\n"

/* Answers with a failed statement's error, keeping the server's text for the log. */
static void
answer_sql_error(struct exchange *x, const struct error_answer *e)
{
	if (e->status >= 500)
		snprintf(x->detail, sizeof(x->detail), "%s%s%s", e->sqlstate, e->sqlstate[0] ? ": " : "", e->detail);
	answer_error(x, e->status, e->code, e->message, e->retry_after);
}

/*
 * Runs the plan's statement.  Returns the result (PGRES_TUPLES_OK), or NULL
 * after answering with the error.  A connection that turns out dead is
 * replaced and the statement retried once, unless it may have changed
 * something that cannot be repeated (POST /jam/process, which would
 * process the next packages).  Submits are idempotent, batches too.
 */
static PGresult *
execute(struct exchange *x, struct plan *p)
{
	int			attempts = (p->kind == CALL_PROCESS || p->kind == CALL_PROCESS_BATCH) ? 1 : 2;

	for (int attempt = 1;; attempt++)
	{
		int			retry_after;
		char		why[320];
		struct pool_conn *c = pool_acquire(x->shim->pool, &retry_after, why, sizeof(why));
		PGresult   *res;
		struct error_answer e;

		if (c == NULL)
		{
			snprintf(x->detail, sizeof(x->detail), "%s", why);
			if (pool_closing(x->shim->pool))
				answer_shutting_down(x);
			else
				answer_error(x, 503, "database_unavailable", "the database is unavailable; retry later",
							 retry_after);
			return NULL;
		}
		res = pool_exec(x->shim->pool, c, p->sql.data, p->nparams, p->types, p->values,
						p->lengths, p->formats, p->binary_result);
		if (PQresultStatus(res) == PGRES_TUPLES_OK)
		{
			pool_release(x->shim->pool, c);
			return res;
		}
		error_from_result(res, pool_pg(c), &e);
		PQclear(res);
		pool_release(x->shim->pool, c);
		/*
		 * Shutdown cancelled the statement after the grace period (57014):
		 * its transaction rolled back, which 503 shutting_down tells.
		 */
		if (pool_closing(x->shim->pool) && (strcmp(e.sqlstate, "57014") == 0 || e.connection_lost))
		{
			snprintf(x->detail, sizeof(x->detail), "%s: %s", e.sqlstate, e.detail);
			answer_shutting_down(x);
			return NULL;
		}
		if (e.connection_lost && attempt < attempts)
			continue;
		answer_sql_error(x, &e);
		return NULL;
	}
}

/* The first row's column as a string, NULL when SQL NULL or no row. */
static const char *
col(const PGresult *res, int column)
{
	if (PQntuples(res) < 1 || PQnfields(res) <= column || PQgetisnull(res, 0, column))
		return NULL;
	return PQgetvalue(res, 0, column);
}

/* Copies a result value into a log field when there is one. */
static void
keep(char *dst, size_t size, const char *value)
{
	if (value)
		snprintf(dst, size, "%s", value);
}

/* A jsonb result as the body, or 404 when the function found nothing. */
static void
answer_json_result(struct exchange *x, const PGresult *res, int status, const char *extra)
{
	const char *body = col(res, 0);
	struct buf	headers = BUF_INIT;

	if (body == NULL)
	{
		answer_error(x, 404, "not_found", "nothing found", 0);
		return;
	}
	buf_puts(&headers, NO_STORE);
	if (extra)
		buf_puts(&headers, extra);
	answer(x, status, JSON_TYPE, body, strlen(body), headers.data);
	buf_free(&headers);
}

/* POST /jam/preimages: 201 when the bytes are new, 200 when they were there. */
static void
run_put_preimage(struct exchange *x, PGresult *res)
{
	const char *body = col(res, 0);
	const char *created = col(res, 1);
	struct buf	h = BUF_INIT;
	struct json_object *obj = body ? json_tokener_parse(body) : NULL;
	struct json_object *v;

	if (obj && json_object_object_get_ex(obj, "hash", &v) && json_object_is_type(v, json_type_string))
		buf_printf(&h, "Location: /jam/preimages/%s\r\nETag: \"%s\"\r\n",
				   json_object_get_string(v), json_object_get_string(v));
	json_object_put(obj);
	answer_json_result(x, res, created && created[0] == 't' ? 201 : 200, h.data);
	buf_free(&h);
}

/* POST /jam/packages: 201 for a new package, 200 for an identical one. */
static void
run_submit(struct exchange *x, PGresult *res)
{
	const char *created = col(res, 1);
	const char *id = col(res, 2);
	struct buf	h = BUF_INIT;

	keep(x->package_id, sizeof(x->package_id), id);
	keep(x->service_id, sizeof(x->service_id), col(res, 3));
	if (id)
		buf_printf(&h, "Location: /jam/packages/%s\r\n", id);
	answer_json_result(x, res, created && created[0] == 't' ? 201 : 200, h.data);
	buf_free(&h);
}

/* POST /jam/packages/batch: 201 when at least one package is new, 200 when all were stored. */
static void
run_submit_batch(struct exchange *x, PGresult *res)
{
	const char *any_created = col(res, 1);

	keep(x->service_id, sizeof(x->service_id), col(res, 2));
	answer_json_result(x, res, any_created && any_created[0] == 't' ? 201 : 200, NULL);
}

/* POST /jam/process with max_packages: the reports, or 204 when nothing was pending. */
static void
run_process_batch(struct exchange *x, PGresult *res)
{
	const char *processed = col(res, 1);

	if (col(res, 0) == NULL || (processed && strcmp(processed, "0") == 0))
	{
		answer(x, 204, NULL, NULL, 0, NO_STORE);
		return;
	}
	answer_json_result(x, res, 200, NULL);
}

/* POST /jam/process: the report, or 204 when nothing was pending. */
static void
run_process(struct exchange *x, PGresult *res)
{
	if (col(res, 0) == NULL)
	{
		answer(x, 204, NULL, NULL, 0, NO_STORE);
		return;
	}
	keep(x->package_id, sizeof(x->package_id), col(res, 1));
	keep(x->service_id, sizeof(x->service_id), col(res, 2));
	answer_json_result(x, res, 200, NULL);
}

/* GET of a signed checkpoint or a tlog-proof: the function's text as text/plain. */
static void
run_text(struct exchange *x, PGresult *res)
{
	const char *note = col(res, 0);

	if (note == NULL)
	{
		answer_error(x, 404, "not_found", "nothing found", 0);
		return;
	}
	answer(x, 200, "text/plain; charset=utf-8", note, strlen(note), NO_STORE);
}

/*
 * A log's tiles and entry bundles never change (c2sp.org/tlog-tiles: a
 * partial tile of a given width is as immutable as a full one), so any
 * cache may keep them for a year: a shared one when the request carried
 * no token (the log is public, or reads need none), only the client's own
 * otherwise.  Their checkpoint changes with every append: a second.
 */
#define TILE_CACHE "max-age=31536000, immutable"
#define LOG_CHECKPOINT_CACHE "max-age=1"

/* GET or HEAD of a tile or entry bundle: its bytes with a strong ETag, or 304. */
static void
run_tile(struct exchange *x, struct plan *p, PGresult *res)
{
	const char *etag = col(res, 1);
	struct buf	h = BUF_INIT;

	if (col(res, 0) == NULL || etag == NULL)
	{
		answer_error(x, 500, "internal_error", "internal error", 0);
		snprintf(x->detail, sizeof(x->detail), "unexpected tile result");
		return;
	}
	buf_printf(&h, "ETag: \"%s\"\r\nCache-Control: %s, " TILE_CACHE "\r\n"
			   "X-Content-Type-Options: nosniff\r\n", etag, p->has_token ? "private" : "public");
	if (etag_matches(p->if_none_match, etag))
		answer_sized(x, 304, NULL, NULL, 0, -1, h.data);
	else
		answer(x, 200, "application/octet-stream", PQgetvalue(res, 0, 0),
			   (size_t) PQgetlength(res, 0, 0), h.data);
	buf_free(&h);
}

/* GET of a log's checkpoint for tile clients: text/plain, cacheable for a second. */
static void
run_log_checkpoint(struct exchange *x, struct plan *p, PGresult *res)
{
	const char *note = col(res, 0);
	char		h[96];

	if (note == NULL)
	{
		answer_error(x, 404, "not_found", "nothing found", 0);
		return;
	}
	snprintf(h, sizeof(h), "Cache-Control: %s, " LOG_CHECKPOINT_CACHE "\r\n",
			 p->has_token ? "private" : "public");
	answer(x, 200, "text/plain; charset=utf-8", note, strlen(note), h);
}

/*
 * POST /jam/witness/add-checkpoint: 200 and the cosignature lines, or 409
 * and the size this node last cosigned, as text/x.tlog.size
 * (c2sp.org/tlog-witness).
 */
static void
run_witness(struct exchange *x, PGresult *res)
{
	const char *status = col(res, 0);
	const char *body = col(res, 1);

	if (status == NULL || body == NULL || (strcmp(status, "200") != 0 && strcmp(status, "409") != 0))
	{
		answer_error(x, 500, "internal_error", "internal error", 0);
		snprintf(x->detail, sizeof(x->detail), "unexpected witness result");
		return;
	}
	answer(x, atoi(status), status[0] == '2' ? "text/plain; charset=utf-8" : "text/x.tlog.size",
		   body, strlen(body), NO_STORE);
}

/* GET /system/status: the shim itself, its pool, and whether Postgres answers now. */
static void
run_system_status(struct exchange *x)
{
	struct pool_stats ps;
	struct conns_stats cs;
	struct buf	b = BUF_INIT;
	int			retry_after;
	char		why[320] = "";
	int			reachable = 0;
	struct pool_conn *c = pool_acquire(x->shim->pool, &retry_after, why, sizeof(why));
	char		started[32];
	struct tm	tm;

	if (c)
	{
		PGresult   *res = PQexec(pool_pg(c), "SELECT 1");

		reachable = PQresultStatus(res) == PGRES_TUPLES_OK;
		if (!reachable)
			snprintf(why, sizeof(why), "%s", PQerrorMessage(pool_pg(c)));
		PQclear(res);
		pool_release(x->shim->pool, c);
	}
	why[strcspn(why, "\n")] = '\0';
	pool_stats(x->shim->pool, &ps);
	gmtime_r(&x->shim->started_wall, &tm);
	strftime(started, sizeof(started), "%Y-%m-%dT%H:%M:%SZ", &tm);

	buf_printf(&b, "{\"service\": \"jam-shim\", \"version\": \"%s\", \"civetweb\": ", SHIM_VERSION);
	buf_json_string(&b, mg_version(), strlen(mg_version()));
	buf_printf(&b, ", \"status\": \"%s\", \"started_at\": \"%s\", \"uptime_seconds\": %.3f",
			   reachable ? "ok" : "degraded", started, shim_now() - x->shim->started);
	buf_printf(&b, ", \"database\": {\"reachable\": %s, \"error\": ", reachable ? "true" : "false");
	if (reachable)
		buf_puts(&b, "null");
	else
		buf_json_string(&b, why, strlen(why));
	buf_printf(&b, ", \"error_codes_loaded\": %d}", errmap_size());
	buf_printf(&b, ", \"pool\": {\"size\": %d, \"connected\": %d, \"busy\": %d, \"idle\": %d, \"waiting\": %d,"
			   " \"connects\": %lld, \"connect_failures\": %lld, \"wait_timeouts\": %lld}",
			   ps.size, ps.connected, ps.busy, ps.connected - ps.busy > 0 ? ps.connected - ps.busy : 0,
			   ps.waiting, ps.connects, ps.connect_failures, ps.waits_timed_out);
	conns_stats(&cs);
	buf_printf(&b, ", \"http\": {\"threads\": %d, \"in_flight\": %d, \"max_body_bytes\": %lld,"
			   " \"max_batch_body_bytes\": %lld, \"tls\": %s, \"request_timeout_ms\": %d,"
			   " \"keep_alive_timeout_ms\": %d",
			   x->shim->config.threads, metrics_get_in_flight(), x->shim->config.max_body_bytes,
			   x->shim->config.max_batch_body_bytes, x->shim->config.tls_cert[0] ? "true" : "false",
			   x->shim->config.request_timeout_ms, x->shim->config.keep_alive_timeout_ms);
	buf_printf(&b, ", \"connections\": {\"open\": %d, \"capacity\": %d, \"max_per_client\": %d,"
			   " \"refused_per_client\": %lld, \"refused_busy\": %lld, \"shed\": %lld, \"timed_out\": %lld}}}\n",
			   cs.open, cs.capacity, cs.max_per_client, cs.refused_per_client, cs.refused_busy, cs.shed,
			   cs.timed_out);
	answer(x, 200, JSON_TYPE, b.data, b.len, NO_STORE);
	buf_free(&b);
}

/*
 * GET /metrics: the shim's metrics, then the extension's.  jam_metrics()
 * failing (not installed yet, the token lacking a scope, Postgres down)
 * leaves the shim's own metrics served, with
 * jam_shim_extension_metrics_up 0.
 */
static void
run_metrics(struct exchange *x, struct plan *p)
{
	struct pool_stats ps;
	struct buf	b = BUF_INIT;
	int			up = 0;
	int			retry_after;
	char		why[320];
	struct pool_conn *c = pool_acquire(x->shim->pool, &retry_after, why, sizeof(why));
	PGresult   *res = NULL;

	if (c)
	{
		res = pool_exec(x->shim->pool, c, p->sql.data, p->nparams, p->types, p->values,
						p->lengths, p->formats, 0);
		if (PQresultStatus(res) == PGRES_TUPLES_OK)
			up = 1;
		else
		{
			struct error_answer e;

			error_from_result(res, pool_pg(c), &e);
			snprintf(x->detail, sizeof(x->detail), "jam_metrics(): %s: %s", e.sqlstate, e.detail);
		}
		pool_release(x->shim->pool, c);
	}
	else
		snprintf(x->detail, sizeof(x->detail), "jam_metrics(): %s", why);

	pool_stats(x->shim->pool, &ps);
	metrics_render_shim(&b, &ps, shim_now() - x->shim->started, SHIM_VERSION);
	{
		struct conns_stats cs;
		struct events_stats es;

		conns_stats(&cs);
		metrics_render_connections(&b, &cs);
		events_stats(&es);
		metrics_render_events(&b, &es);
	}
	metrics_render_extension_status(&b, up);
	if (up)
		metrics_render_extension(&b, res);
	PQclear(res);
	answer(x, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len, NO_STORE);
	buf_free(&b);
}

/* Answers a planned request: locally, or with its statement's result. */
void
call_run(struct exchange *x, struct plan *p)
{
	PGresult   *res;

	switch (p->kind)
	{
		case CALL_OPTIONS:
			{
				char		h[96];

				snprintf(h, sizeof(h), "Allow: %s\r\n", p->allow);
				answer(x, 204, NULL, NULL, 0, h);
			}
			return;
		case CALL_SYSTEM_STATUS:
			run_system_status(x);
			return;
		case CALL_METRICS:
			run_metrics(x, p);
			return;
		case CALL_OPENAPI:
			answer(x, 200, JSON_TYPE, (const char *) shim_openapi_json, shim_openapi_json_len, NO_STORE);
			return;
		case CALL_EVENTS:
			stream_serve(x, p);
			return;
		case CALL_NONE:
			answer_error(x, p->status, p->code, p->message, 0);
			return;
		default:
			break;
	}

	/* A preimage's bytes are streamed; before 1.2, they come whole. */
	if (p->kind == CALL_GET_PREIMAGE && preimage_stream(x, p))
		return;
	res = execute(x, p);
	if (res == NULL)
		return;
	switch (p->kind)
	{
		case CALL_GET_PREIMAGE:
			preimage_answer_get(x, p, res);
			break;
		case CALL_PREIMAGE_HEAD:
			preimage_answer_head(x, p, res);
			break;
		case CALL_PUT_PREIMAGE:
			run_put_preimage(x, res);
			break;
		case CALL_SUBMIT:
			run_submit(x, res);
			break;
		case CALL_SUBMIT_BATCH:
			run_submit_batch(x, res);
			break;
		case CALL_PROCESS:
			run_process(x, res);
			break;
		case CALL_PROCESS_BATCH:
			run_process_batch(x, res);
			break;
		case CALL_TEXT:
			run_text(x, res);
			break;
		case CALL_TILE:
			run_tile(x, p, res);
			break;
		case CALL_LOG_CHECKPOINT:
			run_log_checkpoint(x, p, res);
			break;
		case CALL_WITNESS:
			run_witness(x, res);
			break;
		case CALL_CREATED:
			answer_json_result(x, res, 201, NULL);
			break;
		default:
			answer_json_result(x, res, 200, NULL);
			break;
	}
	PQclear(res);
}
