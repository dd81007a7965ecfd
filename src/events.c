/*
 * events.c: every log entry announced once it commits, and read back.
 *
 * The log (log.c) is already the exact, ordered record of what happened
 * to a service: a package submitted (kind package, status pending) and a
 * package processed (kind report, status applied or failed, written with
 * this node's signed attestation in the same transaction).  So an event
 * is a log entry, and its position in the log, (service_id, seq), is its
 * identity: a follower that remembers the last seq it saw can always ask
 * the log for what came after (jam_log_events), and nothing is lost when
 * it was away.
 *
 * The announcement is a NOTIFY on JAM_EVENTS_CHANNEL with a small, fixed
 * payload:
 *
 *   {"service_id": "svc-1", "seq": 12, "kind": "package", "id": "<64 hex>", "status": "pending"}
 *   {"service_id": "svc-1", "seq": 13, "kind": "report", "id": "<64 hex>", "status": "applied",
 *    "package_id": "<64 hex>"}
 *
 * id is the entry's hash: the package id of a package entry, the report
 * hash of a report entry, whose package_id names the package it is of
 * (since 1.3, kept in the log beside the entry).  It is at most a few
 * hundred bytes, well under NOTIFY's 8000.
 *
 * The appending transaction does not send it: Postgres serializes notifying
 * commits cluster-wide, from queueing their notifications until the commit
 * is durable, so that concurrent submits no longer share WAL flushes
 * (measured with pgbench, 4 clients, 16 services, synchronous_commit on:
 * 25 to 40% of submit throughput).  The transaction only notes which
 * entries it appended; once it has committed, the database's announcer
 * worker sends their NOTIFYs (announcer.c), never for an aborted one.
 * jam.events (on by default) turns the announcing off.
 */
#include "jam.h"
#include "announcer.h"
#include "auth.h"
#include "errors.h"
#include "events.h"
#include "metrics.h"

#include "catalog/pg_type.h"
#include "commands/async.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"

bool		jam_events = true;

/* Longest payload: service ids are at most 64 characters, hashes 64. */
#define EVENT_MAX_BYTES 512

/* The most events one jam_log_events call returns. */
#define EVENTS_PAGE_MAX 1000

#define SELECT_EVENTS(package) \
	"SELECT seq, kind, @x(hash), status, @x(" package ") FROM jam.jam_log_entries " \
	"WHERE service_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"

static JamStatement select_events = {
	SELECT_EVENTS("NULL::bytea"), 3, {TEXTOID, INT8OID, INT8OID}
};

static JamStatement select_events_naming_packages = {
	SELECT_EVENTS("package_id"), 3, {TEXTOID, INT8OID, INT8OID}
};

static JamStatement select_last_seq = {
	"SELECT max(seq) FROM jam.jam_log_entries WHERE service_id = $1",
	1, {TEXTOID}
};

/* Defines jam.events; called before jam_define_gucs() reserves the prefix. */
void
jam_define_events_gucs(void)
{
	DefineCustomBoolVariable("jam.events",
							 "Whether each committed log entry is announced with NOTIFY on the channel jam_events.",
							 "The database's announcer worker sends the NOTIFYs after the commits; off: "
							 "nothing is announced (jam_log_events still reads the log).",
							 &jam_events, true,
							 PGC_SUSET, 0, NULL, NULL, NULL);
}

/*
 * Writes one event's document into buf (at least EVENT_MAX_BYTES) and
 * returns its length; package_id (NULL: none) is a report's package.
 * Nothing needs escaping: service ids are checked on the way in to be
 * letters, digits and . _ : -, hashes are hex and the kinds and statuses
 * are jam's own words; a value that is not so is a bug, not something to
 * pass on.
 */
static int
format_event(char *buf, const char *service_id, int64 seq, const char *kind,
			 const char *hash, const char *status, const char *package_id)
{
	int			n;

	if (!jam_is_valid_service_id(service_id, strlen(service_id)) || strlen(hash) != JAM_HASH_HEX_CHARS ||
		(package_id != NULL && strlen(package_id) != JAM_HASH_HEX_CHARS))
		elog(ERROR, "jam event of service \"%s\" is malformed", service_id);
	n = snprintf(buf, EVENT_MAX_BYTES,
				 "{\"service_id\": \"%s\", \"seq\": " INT64_FORMAT ", \"kind\": \"%s\", "
				 "\"id\": \"%s\", \"status\": \"%s\"%s%s%s}",
				 service_id, seq, kind, hash, status,
				 package_id ? ", \"package_id\": \"" : "", package_id ? package_id : "",
				 package_id ? "\"" : "");
	if (n < 0 || n >= EVENT_MAX_BYTES)
		elog(ERROR, "jam event of service \"%s\" is too long", service_id);
	return n;
}

/*
 * Sends the NOTIFY of one log entry, queued in the current transaction and
 * delivered when it commits: the announcer's (announcer.c).
 */
void
jam_event_notify(const char *service_id, int64 seq, const char *kind,
				 const char *hash, const char *status, const char *package_id)
{
	char		payload[EVENT_MAX_BYTES];

	format_event(payload, service_id, seq, kind, hash, status, package_id);
	Async_Notify(JAM_EVENTS_CHANNEL, payload);
}

/* Notes n entries appended from first_seq on. */
void
jam_events_logged(const char *service_id, int64 first_seq, int n, JamLogKind kind,
				  char **hashes, const char *status)
{
	if (jam_events && n > 0)
	{
		jam_announce_at_commit(service_id, first_seq);
		if (n > 1)
			jam_announce_at_commit(service_id, first_seq + n - 1);
	}
}

PG_FUNCTION_INFO_V1(jam_log_events);

/*
 * jam_log_events(service_id, after_seq, max_events): the events of the
 * service's log after after_seq (-1: from the first), oldest first, at most
 * max_events (0 to 1000; 0 only says where the log is), as
 * {service_id, after_seq, last_seq, events, next_after}: events hold the
 * documents NOTIFY announces, last_seq is the log's last position (-1 when
 * it is empty), and next_after is where to continue, null once nothing is
 * left.  The token rules are jam_list_packages': jam:read, and naming a
 * service the token may not see is forbidden.
 */
Datum
jam_log_events(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_LOG_EVENTS);
	char	   *service_id;
	int64		after;
	int32		max_events;
	int64		last = -1;
	int64		next = -1;
	Datum		values[3];
	bool		isnull;
	StringInfoData doc;
	int			rows;
	char		event[EVENT_MAX_BYTES];

	jam_check_enabled();
	jam_auth_require(JAM_SCOPE_READ, "jam_log_events");
	jam_require_arg(fcinfo, 0, "service_id");
	jam_require_arg(fcinfo, 1, "after_seq");
	jam_require_arg(fcinfo, 2, "max_events");
	service_id = jam_check_service_id(PG_GETARG_TEXT_PP(0));
	jam_auth_require_service(JAM_SCOPE_READ, service_id);
	after = PG_GETARG_INT64(1);
	max_events = PG_GETARG_INT32(2);
	if (max_events < 0 || max_events > EVENTS_PAGE_MAX)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_PAGINATION),
				 errmsg("max_events must be between 0 and %d", EVENTS_PAGE_MAX),
				 errdetail("The max_events given was %d.", max_events)));

	values[0] = CStringGetTextDatum(service_id);
	values[1] = Int64GetDatum(after);
	values[2] = Int64GetDatum(max_events);

	/* The document outlives SPI: made in the caller's memory. */
	initStringInfo(&doc);
	SPI_connect();
	jam_spi_exec(&select_last_seq, values, NULL, true, 1);
	{
		Datum		d = jam_spi_result_datum(1, &isnull);

		if (!isnull)
			last = DatumGetInt64(d);
	}

	/*
	 * A position past the log's end is not a place to resume from: it comes
	 * from another log (another database, a restored backup), and waiting
	 * for the log to grow past it would skip what it does not know.
	 */
	if (after < -1 || after > last)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_TREE_SIZE),
				 errmsg("after_seq " INT64_FORMAT " is outside the log of service \"%s\"", after, service_id),
				 errdetail("The log's positions run from -1 (before the first entry) to " INT64_FORMAT ".",
						   last)));

	appendStringInfo(&doc, "{\"service_id\": \"%s\", \"after_seq\": " INT64_FORMAT
					 ", \"last_seq\": " INT64_FORMAT ", \"events\": [", service_id, after, last);
	rows = max_events <= 0 ? 0 :
		jam_spi_exec(jam_log_has_package_id() ? &select_events_naming_packages : &select_events,
					 values, NULL, true, 0);
	next = after;
	for (int r = 0; r < rows; r++)
	{
		HeapTuple	row = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;

		next = DatumGetInt64(SPI_getbinval(row, desc, 1, &isnull));
		if (r > 0)
			appendStringInfoString(&doc, ", ");
		appendBinaryStringInfo(&doc, event,
							   format_event(event, service_id, next, SPI_getvalue(row, desc, 2),
											SPI_getvalue(row, desc, 3), SPI_getvalue(row, desc, 4),
											SPI_getvalue(row, desc, 5)));
	}
	SPI_finish();
	if (next < last)
		appendStringInfo(&doc, "], \"next_after\": " INT64_FORMAT "}", next);
	else
		appendStringInfoString(&doc, "], \"next_after\": null}");

	jam_metrics_end(metrics, JAM_OUTCOME_OK);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(doc.data)));
}
