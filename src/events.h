/*
 * events.h: the event stream's half inside Postgres (events.c).
 *
 * Every entry appended to a service's log is an event.  It is announced
 * with NOTIFY on JAM_EVENTS_CHANNEL, which Postgres delivers only when the
 * appending transaction commits, and jam_log_events() reads the same
 * events back from the log, so that a listener that missed some (it was
 * not connected, or it was too slow) catches up exactly.
 */
#ifndef JAM_EVENTS_H
#define JAM_EVENTS_H

#include "jam.h"

/* The channel every event is announced on, in the database jam is in. */
#define JAM_EVENTS_CHANNEL "jam_events"

extern bool jam_events;

extern void jam_define_events_gucs(void);
extern void jam_event_notify(const char *service_id, int64 seq, const char *kind,
							 const char *hash, const char *status, const char *package_id);
extern void jam_events_logged(const char *service_id, int64 first_seq, int n, JamLogKind kind,
							  char **hashes, const char *status);

#endif							/* JAM_EVENTS_H */
