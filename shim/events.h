/*
 * events.h: one LISTEN connection shared by every event stream.
 *
 * A thread of its own holds a libpq connection that listens on the
 * channel jam_events, on which the extension announces each log entry as
 * its transaction commits (src/events.c), and hands each announcement to
 * the streams that follow its service (GET /jam/events, stream.c).  Each
 * stream has a bounded queue, and nothing is buffered without bound: when
 * a stream's queue is full and its client has not taken what the stream
 * last wrote for EVENTS_STALLED_S (its socket is full: it does not read),
 * the stream is dropped, its connection cut, and the client resumes from
 * its Last-Event-ID; a stream that is merely behind on a burst (its client
 * reads) loses the announcements that do not fit and reads them from the
 * log instead.  When the listening connection is lost, announcements may
 * have been missed, so every stream ends and its client resumes the same
 * way; new streams are refused until it is back.
 */
#ifndef SHIM_EVENTS_H
#define SHIM_EVENTS_H

#include "sse.h"

struct conn;
struct subscription;

/* A write not taken by its client for this long, when the queue is full too, is a client that does not read. */
#define EVENTS_STALLED_S 0.1

struct events_settings
{
	const char *dsn;
	int			queue_events;	/* announcements a stream may have waiting */
	int			max_streams;
};

/* Why a subscription ended. */
enum events_end
{
	EVENTS_OPEN,				/* it has not */
	EVENTS_SLOW,				/* its queue was full: the client did not keep up */
	EVENTS_LOST,				/* the listening connection was lost */
	EVENTS_STOPPING				/* the shim is shutting down */
};

/* Why events_subscribe() refused. */
enum events_refusal
{
	EVENTS_NOT_LISTENING,		/* the listening connection is not up */
	EVENTS_TOO_MANY,			/* max_streams streams are open */
	EVENTS_SHUTTING_DOWN
};

/* Why a stream ended, for the metrics. */
enum stream_end
{
	STREAM_END_CLIENT,			/* the client went away */
	STREAM_END_SLOW,			/* it did not keep up: a full queue, or a write past its deadline */
	STREAM_END_REVOKED,			/* its token may no longer read what it follows */
	STREAM_END_DATABASE,		/* the database was lost: the listening connection, or a read the stream needed */
	STREAM_END_SHUTDOWN,
	STREAM_END_ERROR,			/* a statement failed, or the position outgrew SSE_MAX_SERVICES */
	STREAM_END__COUNT
};

struct events_stats
{
	int			listening;
	int			streams;
	long long	received;
	long long	ended[STREAM_END__COUNT];
};

void		events_start(const struct events_settings *settings);
void		events_stop(void);
struct subscription *events_subscribe(const char *service_id, struct conn *conn, int wait_ms,
									  enum events_refusal *why);
int			events_next(struct subscription *s, struct sse_event *out, int max, int timeout_ms,
						enum events_end *end, int *lost);
void		events_writing(struct subscription *s, int writing);
void		events_unsubscribe(struct subscription *s);
void		events_count_end(enum stream_end reason);
const char *events_end_label(enum stream_end reason);
void		events_stats(struct events_stats *out);

#endif
