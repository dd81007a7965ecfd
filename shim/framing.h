/*
 * framing.h: whether a request's length is beyond doubt.
 *
 * A server and anything in front of it (a proxy, a load balancer) must
 * agree where each request ends; when two headers could disagree, one of
 * them can be made to read the tail of a body as a second request
 * (request smuggling, RFC 9112 section 11.2).  civetweb resolves such
 * conflicts silently (the first Content-Length wins, Transfer-Encoding
 * beats Content-Length, "identity" counts as absent), so the shim refuses
 * every ambiguity before it reads a byte of the body: 400 and the
 * connection closes.  Pure, like request.c: the fuzz target drives it.
 */
#ifndef SHIM_FRAMING_H
#define SHIM_FRAMING_H

#include <stddef.h>

#include "request.h"

int			framing_check(const struct http_header *headers, int n, const char *http_version,
						  char *why, size_t why_size);
int			parse_content_length(const char *value, long long *out);

#endif
