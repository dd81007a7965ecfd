/*
 * trace.h: W3C Trace Context (traceparent) for each request.
 *
 * A valid incoming traceparent is continued: its trace id and flags are
 * kept and the shim's own span id becomes the parent id it answers with.
 * Anything else starts a new trace.  The trace id reaches the request's log
 * line and the Postgres session (application_name), so one id links the
 * client, the shim and the server logs.
 */
#ifndef SHIM_TRACE_H
#define SHIM_TRACE_H

struct trace
{
	char		trace_id[33];	/* 32 lowercase hex */
	char		span_id[17];	/* 16 lowercase hex: this request's span */
	char		parent_id[17];	/* the caller's span, "" when the trace is new */
	char		flags[3];
	char		header[56];		/* the traceparent the response carries */
};

int			trace_parse(const char *header, char trace_id[33], char parent_id[17], char flags[3]);
void		trace_begin(struct trace *t, const char *incoming);

#endif
