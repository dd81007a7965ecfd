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
	[ROUTE_JAM_STATUS] = {"/jam/status", GET_HEAD},
	[ROUTE_SYSTEM_STATUS] = {"/system/status", GET_HEAD},
	[ROUTE_METRICS] = {"/metrics", GET_HEAD},
	[ROUTE_OPENAPI] = {"/jam/openapi.json", GET_HEAD},
};

/*
 * Whether the raw path matches a template; a {...} template segment
 * matches any one non-empty segment, which is decoded into param.
 * Returns 1 on a match, 0 otherwise; *param_bad is set when the segment
 * matched but does not decode (bad escape, NUL, too long).
 */
static int
match_template(const char *tmpl, const char *path, char *param, size_t param_size, int *param_bad)
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
		if (match_template(shim_routes[r].template, path, param, param_size, &bad))
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
