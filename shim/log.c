/*
 * log.c: structured log lines.
 *
 * Request lines are handed to a writer thread through a queue, so that an
 * HTTP thread never waits on the disk (a log file on a busy disk can block
 * a write for a long time, under a lock every request needs).  If the
 * writer falls more than LOG_QUEUE_MAX lines behind, further lines are
 * dropped and counted rather than holding up answers.  Events (start,
 * stop, database lost) are rare and written directly.
 */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"

#define LOG_QUEUE_MAX 65536
#define LOG_BATCH_US 5000

struct line
{
	struct line *next;
	size_t		len;
	char		text[];
};

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;	/* writing to a stream */
static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queue_cond = PTHREAD_COND_INITIALIZER;
static struct line *queue_head,
		   *queue_tail;
static int	queue_len;
static int	queue_stop;
static int	writer_running;
static pthread_t writer;
static atomic_llong dropped;

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

/* Appends ,"name":value, value a JSON string or null. */
static void
field(struct buf *b, const char *name, const char *value)
{
	buf_printf(b, ",\"%s\":", name);
	if (value && *value)
		buf_json_string(b, value, strlen(value));
	else
		buf_puts(b, "null");
}

/* Ends a line and writes it to a stream at once. */
static void
emit(FILE *f, struct buf *b)
{
	buf_puts(b, "}\n");
	pthread_mutex_lock(&log_lock);
	fwrite(b->data, 1, b->len, f);
	fflush(f);
	pthread_mutex_unlock(&log_lock);
}

/* Writes queued lines in batches until log_stop(). */
static void *
writer_main(void *arg)
{
	(void) arg;
	pthread_mutex_lock(&queue_lock);
	for (;;)
	{
		struct line *batch;

		while (queue_head == NULL && !queue_stop)
			pthread_cond_wait(&queue_cond, &queue_lock);
		if (queue_head == NULL && queue_stop)
			break;
		if (!queue_stop)
		{
			/* Let a batch gather: one write and one wake-up per few milliseconds. */
			pthread_mutex_unlock(&queue_lock);
			usleep(LOG_BATCH_US);
			pthread_mutex_lock(&queue_lock);
		}
		batch = queue_head;
		queue_head = queue_tail = NULL;
		queue_len = 0;
		pthread_mutex_unlock(&queue_lock);

		pthread_mutex_lock(&log_lock);
		for (struct line *l = batch; l; l = l->next)
			fwrite(l->text, 1, l->len, stdout);
		fflush(stdout);
		pthread_mutex_unlock(&log_lock);
		while (batch)
		{
			struct line *next = batch->next;

			free(batch);
			batch = next;
		}
		pthread_mutex_lock(&queue_lock);
	}
	pthread_mutex_unlock(&queue_lock);
	return NULL;
}

/* Starts the writer thread; until then (and after log_stop) lines are written directly. */
void
log_start(void)
{
	if (pthread_create(&writer, NULL, writer_main, NULL) == 0)
		writer_running = 1;
}

/* Writes what is queued and stops the writer. */
void
log_stop(void)
{
	if (!writer_running)
		return;
	pthread_mutex_lock(&queue_lock);
	queue_stop = 1;
	pthread_cond_signal(&queue_cond);
	pthread_mutex_unlock(&queue_lock);
	pthread_join(writer, NULL);
	writer_running = 0;
}

/* Request lines dropped because the writer was too far behind. */
long long
log_dropped(void)
{
	return atomic_load(&dropped);
}

/* Hands a request line to the writer thread (or writes it when there is none). */
static void
enqueue(struct buf *b)
{
	struct line *l;

	if (!writer_running)
	{
		emit(stdout, b);
		return;
	}
	buf_puts(b, "}\n");
	l = xmalloc(sizeof(*l) + b->len);
	l->next = NULL;
	l->len = b->len;
	memcpy(l->text, b->data, b->len);
	pthread_mutex_lock(&queue_lock);
	if (queue_len >= LOG_QUEUE_MAX)
	{
		pthread_mutex_unlock(&queue_lock);
		free(l);
		atomic_fetch_add(&dropped, 1);
		return;
	}
	if (queue_tail)
		queue_tail->next = l;
	else
		queue_head = l;
	queue_tail = l;
	/* The writer sleeps only on an empty queue: wake it when this line ends that. */
	if (queue_len++ == 0)
		pthread_cond_signal(&queue_cond);
	pthread_mutex_unlock(&queue_lock);
}

/* The log line of one answered request. */
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
	enqueue(&b);
	buf_free(&b);
}

/* A line about the shim itself, on stderr. */
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
