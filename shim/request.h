/*
 * request.h: the parts of an HTTP request the shim reads, and pure parsers
 * for them (query strings, percent-encoding, bearer tokens, entity tags,
 * base64).  Nothing here does I/O, so the fuzz target drives it directly.
 */
#ifndef SHIM_REQUEST_H
#define SHIM_REQUEST_H

#include <stddef.h>

/* Methods, as bits so that a route can name the set it allows. */
enum
{
	METHOD_GET = 1 << 0,
	METHOD_HEAD = 1 << 1,
	METHOD_POST = 1 << 2,
	METHOD_OPTIONS = 1 << 3,
	METHOD_OTHER = 1 << 4
};

/* One header line as civetweb parsed it. */
struct http_header
{
	const char *name;
	const char *value;
};

/* A request as civetweb hands it over; every string may be NULL. */
struct http_request
{
	const char *method;
	const char *path;			/* raw (still percent-encoded), without the query */
	const char *query;			/* raw, without '?' */
	const char *authorization;
	int			authorization_count;	/* Authorization lines: more than one is refused */
	const char *content_type;
	int			content_type_count;	/* Content-Type lines: likewise */
	const char *if_none_match;
	const char *last_event_id;
	int			last_event_id_count;	/* Last-Event-ID lines: likewise */
	const char *body;
	size_t		body_len;
};

/* A decoded query string: at most QUERY_MAX_PARAMS name/value pairs. */
#define QUERY_MAX_PARAMS 16
struct query
{
	int			n;
	char	   *names[QUERY_MAX_PARAMS];
	char	   *values[QUERY_MAX_PARAMS];
};

unsigned	method_bit(const char *method);
const char *method_label(unsigned bit);

int			percent_decode(const char *src, size_t len, int plus_is_space, char *dst, size_t dst_size);
int			query_parse(const char *raw, struct query *q, char *err, size_t err_size);
const char *query_get(const struct query *q, const char *name);
void		query_free(struct query *q);

int			bearer_token(const char *authorization, const char **token, size_t *token_len);
int			etag_matches(const char *if_none_match, const char *hash);
long		base64_decode(const char *src, size_t len, unsigned char *dst);
int			parse_int64(const char *s, long long *out);
int			parse_int32(const char *s, int *out);
int			parse_bool(const char *s, int *out);
int			header_count(const struct http_header *headers, int n, const char *name);
int			split_absolute_target(const char *target, char *path, size_t path_size,
								  const char **query, char *authority, size_t authority_size);

#endif
