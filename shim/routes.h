/*
 * routes.h: the HTTP routes of ../shared/DESIGN.md, as a table of path
 * templates with the methods each allows, and the matcher that maps a raw
 * request path to one of them.
 */
#ifndef SHIM_ROUTES_H
#define SHIM_ROUTES_H

#include <stddef.h>

typedef enum route_id
{
	ROUTE_NONE = -1,
	ROUTE_PREIMAGES,
	ROUTE_PREIMAGE,
	ROUTE_PREIMAGE_META,
	ROUTE_PACKAGES,
	ROUTE_PACKAGES_BATCH,
	ROUTE_PACKAGE,
	ROUTE_PACKAGE_REPORT,
	ROUTE_PACKAGE_ATTESTATIONS,
	ROUTE_PACKAGE_REPLAY,
	ROUTE_PROCESS,
	ROUTE_REPORTS,
	ROUTE_RECEIPT,
	ROUTE_RECEIPT_PROOF,
	ROUTE_TOKENS,
	ROUTE_TOKEN_REVOKE,
	ROUTE_QUOTA,
	ROUTE_ATTESTATIONS,
	ROUTE_EVENTS,
	ROUTE_ROOTS,
	ROUTE_CHECKPOINT,
	ROUTE_LOG_CHECKPOINT,
	ROUTE_LOG_ENTRIES,
	ROUTE_LOG_TILE,
	ROUTE_WITNESS_ADD_CHECKPOINT,
	ROUTE_JAM_STATUS,
	ROUTE_SYSTEM_STATUS,
	ROUTE_METRICS,
	ROUTE_OPENAPI,
	ROUTE__COUNT
} route_id;

/* The longest path parameter the shim accepts, decoded. */
#define ROUTE_PARAM_MAX 256

struct route_def
{
	const char *template;		/* e.g. "/jam/preimages/{hash}", the metrics label */
	unsigned	methods;		/* METHOD_* bits; OPTIONS is always allowed too */
	int			rest;			/* ROUTE_REST: the last {parameter} takes the rest of the path */
};

/*
 * A route whose last parameter is the rest of the path, slashes and all
 * (a tlog-tiles path such as tile/0/x001/234.p/8): it is left as the
 * client sent it, for route_rest(); the route's one decoded parameter is
 * then the one before it.
 */
#define ROUTE_REST 1

extern const struct route_def shim_routes[ROUTE__COUNT];

/* Label of requests that matched no route (metrics, logs). */
#define ROUTE_UNMATCHED_LABEL "unmatched"

route_id	route_match(const char *path, char *param, size_t param_size, int *param_bad);
const char *route_label(route_id route);
const char *route_rest(route_id route, const char *path);
void		route_allow(route_id route, char *out, size_t out_size);

#endif
