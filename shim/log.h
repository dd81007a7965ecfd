/*
 * log.h: one JSON object per line.  Request lines go to stdout (through a
 * writer thread once log_start() ran), the shim's own events (start, stop,
 * database lost and back) to stderr; lines never interleave.
 */
#ifndef SHIM_LOG_H
#define SHIM_LOG_H

#include <stddef.h>

struct request_log
{
	const char *method;
	const char *path;
	const char *route;
	int			status;
	double		duration_ms;
	size_t		bytes;
	const char *code;			/* error code, NULL on success */
	const char *service_id;
	const char *package_id;
	const char *trace_id;
	const char *span_id;
	const char *remote;
	const char *error_detail;	/* the server's message behind a 5xx, for operators */
};

void		log_start(void);
void		log_stop(void);
long long	log_dropped(void);
void		log_request(const struct request_log *r);
void		log_event(const char *level, const char *fmt,...) __attribute__((format(printf, 2, 3)));
void		log_time(char *out, size_t size);

#endif
