/*
 * plan.h: from an HTTP request to the one SQL statement that answers it.
 *
 * plan_request() is pure: it matches the route, checks the method, parses
 * the query string, the bearer token and the JSON body, and produces either
 * a refusal (status, code, message) or a call: a statement assembled only
 * from fixed fragments, with every value from the request passed as a
 * parameter.  The handler runs the call; the fuzz target runs this alone.
 *
 * Every statement has the same two leading parameters: $1 is the Postgres
 * application_name carrying the trace id, $2 the bearer token (NULL when
 * there is none), which jam_authenticate() checks before the API function
 * runs, in the same statement and so in the same transaction.
 */
#ifndef SHIM_PLAN_H
#define SHIM_PLAN_H

#include <stddef.h>

#include "buf.h"
#include "request.h"
#include "routes.h"

/*
 * The FROM clause every statement shares.  set_config(..., true) puts the
 * trace id into application_name for this transaction only, so the server's
 * log lines (%a) carry it; jam_authenticate() then establishes who is
 * calling.  The CASE makes the authentication depend on the trace row, so
 * that the planner cannot run it first: its failure is logged with the
 * trace id too.  The API function runs in the target list, after both.
 */
#define AUTH_FROM \
	" FROM pg_catalog.set_config('application_name', $1, true) AS trace(app)," \
	" LATERAL jam.jam_authenticate(CASE WHEN trace.app IS NOT NULL THEN $2 END) AS auth"

/* PostgreSQL type OIDs of the parameters (pg_type.h is server-side only). */
#define PLAN_OID_BOOL 16
#define PLAN_OID_BYTEA 17
#define PLAN_OID_INT8 20
#define PLAN_OID_INT4 23
#define PLAN_OID_TEXT 25
#define PLAN_OID_TEXT_ARRAY 1009
#define PLAN_OID_JSONB 3802

typedef enum call_kind
{
	CALL_NONE,					/* refused: status, code, message */
	CALL_OPTIONS,				/* 204 with Allow, answered by the shim */
	CALL_JSON,					/* one jsonb column: the body */
	CALL_PUT_PREIMAGE,			/* body, created */
	CALL_GET_PREIMAGE,			/* stream_sql: meta and a chunk a row; sql: meta, the bytes (binary) */
	CALL_PREIMAGE_HEAD,			/* meta only: HEAD, or 304 for If-None-Match */
	CALL_SUBMIT,				/* body, created, id, service_id */
	CALL_SUBMIT_BATCH,			/* body, any created, service_id */
	CALL_PROCESS,				/* body (NULL: nothing pending), package_id, service_id */
	CALL_PROCESS_BATCH,			/* body, processed (0: nothing pending) */
	CALL_TEXT,				/* text/plain: a signed checkpoint, a tlog-proof */
	CALL_TILE,					/* a tile or entry bundle, and its SHA-256 hex (binary results) */
	CALL_LOG_CHECKPOINT,		/* text/plain: a tile client's checkpoint, briefly cacheable */
	CALL_WITNESS,				/* tlog-witness add-checkpoint: status, and the lines or the size */
	CALL_CREATED,				/* one jsonb column: the body of a 201 */
	CALL_SYSTEM_STATUS,			/* the shim's own status */
	CALL_METRICS,				/* Prometheus text: the shim's and jam_metrics() */
	CALL_OPENAPI,				/* the OpenAPI document compiled into the shim */
	CALL_EVENTS					/* Server-Sent Events (stream.c), which runs its own statements */
} call_kind;

#define PLAN_MAX_PARAMS 10

struct plan
{
	route_id	route;
	unsigned	method;
	char		allow[64];		/* the route's Allow header */

	/* A refusal (kind == CALL_NONE). */
	int			status;
	const char *code;
	char		message[256];

	/* A call. */
	call_kind	kind;
	struct buf	sql;
	struct buf	stream_sql;		/* CALL_GET_PREIMAGE: the bytes in rows (preimages.c) */
	int			nparams;
	unsigned int types[PLAN_MAX_PARAMS];
	const char *values[PLAN_MAX_PARAMS];
	int			lengths[PLAN_MAX_PARAMS];
	int			formats[PLAN_MAX_PARAMS];
	char	   *owned[PLAN_MAX_PARAMS];
	int			binary_result;
	int			has_token;
	int			include_receipt;
	int			not_modified;	/* If-None-Match names the preimage: 304 when it exists */
	const char *if_none_match;	/* a tile's: compared with its ETag once it is read */

	char		param[ROUTE_PARAM_MAX + 1]; /* the decoded path parameter */
	char		events_service[ROUTE_PARAM_MAX + 1];	/* GET /jam/events: its one service, or "" */
	const char *last_event_id;	/* GET /jam/events: where to resume (checked), or NULL */
	char		log_service_id[80];	/* for the request log line */
	char		log_package_id[80];
};

int			plan_request(const struct http_request *req, struct plan *plan);
void		plan_set_application_name(struct plan *plan, const char *application_name);
void		plan_free(struct plan *plan);

#endif
