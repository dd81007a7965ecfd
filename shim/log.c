/*
 * log.c: structured log lines.
 */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "buf.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

/* The current time as RFC 3339 UTC with milliseconds. */
void
log_time(char *out, size_t size)
{
	struct timeval tv;
	struct tm	tm;
	char		base[32];

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, size, "%s.%03ldZ", base, (long) (tv.tv_usec / 1000));
}

static void
field(struct buf *b, const char *name, const char *value)
{
	buf_printf(b, ",\"%s\":", name);
	if (value && *value)
		buf_json_string(b, value, strlen(value));
	else
		buf_puts(b, "null");
}

static void
emit(FILE *f, struct buf *b)
{
	buf_puts(b, "}\n");
	pthread_mutex_lock(&log_lock);
	fwrite(b->data, 1, b->len, f);
	fflush(f);
	pthread_mutex_unlock(&log_lock);
}

void
log_request(const struct request_log *r)
{
	struct buf	b = BUF_INIT;
	char		t[40];

	log_time(t, sizeof(t));
	buf_printf(&b, "{\"time\":\"%s\",\"level\":\"info\",\"msg\":\"request\"", t);
	field(&b, "method", r->method);
	field(&b, "path", r->path);
	field(&b, "route", r->route);
	buf_printf(&b, ",\"status\":%d,\"duration_ms\":%.3f,\"bytes\":%zu", r->status, r->duration_ms, r->bytes);
	field(&b, "code", r->code);
	field(&b, "service_id", r->service_id);
	field(&b, "package_id", r->package_id);
	field(&b, "trace_id", r->trace_id);
	field(&b, "span_id", r->span_id);
	field(&b, "remote", r->remote);
	if (r->error_detail && *r->error_detail)
		field(&b, "error_detail", r->error_detail);
	emit(stdout, &b);
	buf_free(&b);
}

void
log_event(const char *level, const char *fmt,...)
{
	struct buf	b = BUF_INIT;
	struct buf	msg = BUF_INIT;
	char		t[40];
	va_list		ap;
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n > 0)
	{
		buf_reserve(&msg, (size_t) n);
		va_start(ap, fmt);
		vsnprintf(msg.data, (size_t) n + 1, fmt, ap);
		va_end(ap);
		msg.len = (size_t) n;
	}
	log_time(t, sizeof(t));
	buf_printf(&b, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":", t, level);
	buf_json_string(&b, msg.data ? msg.data : "", msg.len);
	emit(stderr, &b);
	buf_free(&b);
	buf_free(&msg);
}
