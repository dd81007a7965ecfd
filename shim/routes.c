/*
 * routes.c: the route table and the path matcher.
 *
 * Paths are matched on their raw (percent-encoded) form, segment by
 * segment, so that an encoded '/' inside a parameter cannot change which
 * route a request takes; only the one {parameter} segment is decoded.
 */
#include "routes.h"

#include <stdio.h>
#include <string.h>

#include "request.h"

#define GET_HEAD (METHOD_GET | METHOD_HEAD)

const struct route_def shim_routes[ROUTE__COUNT] = {
	[ROUTE_PREIMAGES] = {"/jam/preimages", METHOD_POST},
	[ROUTE_PREIMAGE] = {"/jam/preimages/{hash}", GET_HEAD},
	[ROUTE_PREIMAGE_META] = {"/jam/preimages/{hash}/meta", GET_HEAD},
	[ROUTE_PACKAGES] = {"/jam/packages", GET_HEAD | METHOD_POST},
	/* Before {id}, which would match it too: route_match() takes the first match. */
	[ROUTE_PACKAGES_BATCH] = {"/jam/packages/batch", METHOD_POST},
	[ROUTE_PACKAGE] = {"/jam/packages/{id}", GET_HEAD},
	[ROUTE_PACKAGE_REPORT] = {"/jam/packages/{id}/report", GET_HEAD},
	[ROUTE_PACKAGE_ATTESTATIONS] = {"/jam/packages/{id}/attestations", GET_HEAD},
	[ROUTE_PACKAGE_REPLAY] = {"/jam/packages/{id}/replay", GET_HEAD},
	[ROUTE_PROCESS] = {"/jam/process", METHOD_POST},
	[ROUTE_REPORTS] = {"/jam/reports", GET_HEAD},
	[ROUTE_RECEIPT] = {"/jam/receipts/{hash}", GET_HEAD},
	[ROUTE_RECEIPT_PROOF] = {"/jam/receipts/{hash}/proof", GET_HEAD},
	[ROUTE_TOKENS] = {"/jam/tokens", GET_HEAD | METHOD_POST},
	[ROUTE_TOKEN_REVOKE] = {"/jam/tokens/{id}/revoke", METHOD_POST},
	[ROUTE_QUOTA] = {"/jam/quota", GET_HEAD},
	[ROUTE_ATTESTATIONS] = {"/jam/attestations", GET_HEAD},
	[ROUTE_EVENTS] = {"/jam/events", GET_HEAD},
	[ROUTE_ROOTS] = {"/jam/roots", GET_HEAD},
	[ROUTE_CHECKPOINT] = {"/jam/services/{id}/checkpoint", GET_HEAD},
	/* A service's log as c2sp.org/tlog-tiles; entries before {tile_path}, which would match them too. */
	[ROUTE_LOG_CHECKPOINT] = {"/jam/logs/{service_id}/checkpoint", GET_HEAD},
	[ROUTE_LOG_ENTRIES] = {"/jam/logs/{service_id}/tile/entries/{tile_path}", GET_HEAD, ROUTE_REST},
	[ROUTE_LOG_TILE] = {"/jam/logs/{service_id}/tile/{tile_path}", GET_HEAD, ROUTE_REST},
	/* c2sp.org/tlog-witness: this node cosigning the checkpoints of logs it witnesses. */
	[ROUTE_WITNESS_ADD_CHECKPOINT] = {"/jam/witness/add-checkpoint", METHOD_POST},
	[ROUTE_JAM_STATUS] = {"/jam/status", GET_HEAD},
	[ROUTE_SYSTEM_STATUS] = {"/system/status", GET_HEAD},
	[ROUTE_METRICS] = {"/metrics", GET_HEAD},
	[ROUTE_OPENAPI] = {"/jam/openapi.json", GET_HEAD},
};

/*
 * Whether the raw path matches a template; a {...} template segment
 * matches any one non-empty segment, which is decoded into param, and
 * the last one of a ROUTE_REST template the rest of the path (one or more
 * non-empty segments), left undecoded.  Returns 1 on a match, 0
 * otherwise; *param_bad is set when the segment matched but does not
 * decode (bad escape, NUL, too long).
 */
static int
match_template(const char *tmpl, int rest, const char *path, char *param, size_t param_size,
			   int *param_bad)
{
	const char *t = tmpl,
			   *p = path;

	while (*t && *p)
	{
		if (*t != '/' || *p != '/')
			return 0;
		t++;
		p++;
		const char *tend = strchr(t, '/');
		const char *pend = strchr(p, '/');
		size_t		tlen = tend ? (size_t) (tend - t) : strlen(t);
		size_t		plen = pend ? (size_t) (pend - p) : strlen(p);

		if (plen == 0)
			return 0;
		if (rest && tend == NULL && t[0] == '{')
		{
			/* No empty segment in the rest: "a//b" or a trailing "/" is no tile's path. */
			for (const char *s = p; *s; s++)
				if (*s == '/' && (s[1] == '/' || s[1] == '\0'))
					return 0;
			return 1;
		}
		if (tlen > 0 && t[0] == '{')
		{
			if (percent_decode(p, plen, 0, param, param_size) < 0)
				*param_bad = 1;
		}
		else if (tlen != plen || memcmp(t, p, tlen) != 0)
			return 0;
		t += tlen;
		p += plen;
	}
	return *t == '\0' && *p == '\0';
}

/*
 * The route of a raw request path, with its parameter decoded into param
 * ("" for routes without one), or ROUTE_NONE.
 */
route_id
route_match(const char *path, char *param, size_t param_size, int *param_bad)
{
	*param_bad = 0;
	if (param_size > 0)
		param[0] = '\0';
	if (path == NULL || path[0] != '/')
		return ROUTE_NONE;
	for (int r = 0; r < ROUTE__COUNT; r++)
	{
		int			bad = 0;

		if (param_size > 0)
			param[0] = '\0';
		if (match_template(shim_routes[r].template, shim_routes[r].rest, path, param, param_size, &bad))
		{
			*param_bad = bad;
			return (route_id) r;
		}
	}
	if (param_size > 0)
		param[0] = '\0';
	return ROUTE_NONE;
}

/* The metrics and log label of a route. */
const char *
route_label(route_id route)
{
	if (route < 0 || route >= ROUTE__COUNT)
		return ROUTE_UNMATCHED_LABEL;
	return shim_routes[route].template;
}

/*
 * The rest of a raw path matched by a ROUTE_REST route: what its last
 * template segment matched, as the client sent it; NULL for any other
 * route, or a path the route does not match.
 */
const char *
route_rest(route_id route, const char *path)
{
	const char *t;
	const char *p = path;

	if (route < 0 || route >= ROUTE__COUNT || !shim_routes[route].rest || path == NULL)
		return NULL;
	t = strrchr(shim_routes[route].template, '/');
	/* As many segments of the path as the template has before its last. */
	for (const char *s = shim_routes[route].template; s < t; s++)
	{
		if (*s != '/')
			continue;
		p = strchr(p + 1, '/');
		if (p == NULL)
			return NULL;
	}
	return p[0] == '/' && p[1] != '\0' ? p + 1 : NULL;
}

/* The Allow header of a route: its methods, and OPTIONS. */
void
route_allow(route_id route, char *out, size_t out_size)
{
	static const unsigned order[] = {METHOD_GET, METHOD_HEAD, METHOD_POST, METHOD_OPTIONS};
	unsigned	methods = METHOD_OPTIONS;
	size_t		len = 0;

	if (out_size == 0)
		return;
	out[0] = '\0';
	if (route >= 0 && route < ROUTE__COUNT)
		methods |= shim_routes[route].methods;
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
	{
		if (!(methods & order[i]))
			continue;
		int			n = snprintf(out + len, out_size - len, "%s%s", len ? ", " : "", method_label(order[i]));

		if (n < 0 || (size_t) n >= out_size - len)
			return;
		len += (size_t) n;
	}
}
