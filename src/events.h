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

/*
 * The package of the log entry e when it is a report's, as hex text, or
 * NULL: the column both the announcer and jam_log_events read events
 * with, where the catalog has jam_reports_have_hash_index() (1.3); NULL
 * too when retention has removed the report.
 */
#define JAM_EVENT_PACKAGE_SQL \
	"(SELECT @x(r.package_id) FROM jam.jam_work_reports r WHERE e.kind = 'report' AND r.report_hash = e.hash)"

extern void jam_define_events_gucs(void);
extern void jam_event_logged(const char *service_id, int64 seq, JamLogKind kind,
							 const char *hash, const char *status);
extern void jam_event_notify(const char *service_id, int64 seq, const char *kind,
							 const char *hash, const char *status, const char *package_id);
extern void jam_events_logged(const char *service_id, int64 first_seq, int n, JamLogKind kind,
							  char **hashes, const char *status);

#endif							/* JAM_EVENTS_H */
