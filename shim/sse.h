/*
 * sse.h: events as GET /jam/events sends them (Server-Sent Events), and
 * the positions a stream resumes from (Last-Event-ID).  Pure: no I/O, so
 * plan.c checks a Last-Event-ID with it and the fuzz target drives it.
 *
 * An event is one entry of a service's verifiable log, as the extension
 * announces it on the channel jam_events and jam_log_events() reads it
 * back: {service_id, seq, kind, id, status}.
 *
 * A stream's position is where it stands in each log it follows.  A
 * stream of one service (?service_id=) stands at one seq: its event ids
 * are "<seq>".  A stream of every service the token may see stands at a
 * seq in each of them: its event ids are the whole position,
 * "<service_id>:<seq>" for every service it has seen an entry of, joined
 * by commas in service id order (service ids hold no comma; the seq is
 * after the last colon).  Logs are ordered per service only, so nothing
 * shorter says exactly what a stream of several services has seen.
 */
#ifndef SHIM_SSE_H
#define SHIM_SSE_H

#include <stddef.h>

#include "buf.h"

/* Service ids are 1 to 64 characters of [A-Za-z0-9._:-], starting with a letter or digit. */
#define SSE_SERVICE_ID_MAX 64

/*
 * The most services one stream's position holds: its event ids go back
 * as a Last-Event-ID header, which must fit the shim's 16 kB request head.
 */
#define SSE_MAX_SERVICES 100

struct sse_event
{
	char		service_id[SSE_SERVICE_ID_MAX + 1];
	long long	seq;
	char		kind[8];		/* package, report */
	char		id[65];			/* the entry's hash: package id, or report hash */
	char		status[8];		/* pending, applied, failed */
	char		package_id[65];	/* a report's package (jam 1.3); "" when not named */
};

struct sse_position
{
	char		service_id[SSE_SERVICE_ID_MAX + 1];
	long long	seq;			/* the last entry seen; -1: none */
};

struct sse_cursor
{
	int			single;			/* one service: ids are "<seq>" */
	int			n;
	struct sse_position pos[SSE_MAX_SERVICES];	/* sorted by service id; single: pos[0] */
};

int			sse_valid_service_id(const char *s, size_t len);
struct json_object;
int			sse_event_from_object(struct json_object *obj, struct sse_event *out);
int			sse_event_parse(const char *json, size_t len, struct sse_event *out);
const char *sse_event_name(const struct sse_event *e);
void		sse_event_data(const struct sse_event *e, struct buf *out);

void		sse_cursor_init(struct sse_cursor *c, const char *single_service);
int			sse_cursor_parse(const char *text, const char *single_service, struct sse_cursor *out,
							 char *err, size_t err_size);
struct sse_position *sse_cursor_find(struct sse_cursor *c, const char *service_id);
struct sse_position *sse_cursor_add(struct sse_cursor *c, const char *service_id, long long seq);
void		sse_cursor_remove(struct sse_cursor *c, const char *service_id);
void		sse_cursor_id(const struct sse_cursor *c, struct buf *out);
void		sse_write_event(const struct sse_cursor *c, const struct sse_event *e, struct buf *out);

#endif
