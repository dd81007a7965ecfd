/*
 * metrics.c: counters and latency histograms per route template, method
 * and status, rendered in the Prometheus text exposition format (0.0.4).
 */
#include "metrics.h"

#include <json-c/json.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "request.h"

/* Upper bounds of the latency histogram, in seconds. */
static const double buckets[] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))

/* Statuses seen per route and method; a route answers only a handful. */
#define MAX_STATUSES 24
#define NROUTES (ROUTE__COUNT + 1)	/* the last one: unmatched */
#define NMETHODS 5

static const unsigned method_bits[NMETHODS] = {
	METHOD_GET, METHOD_HEAD, METHOD_POST, METHOD_OPTIONS, METHOD_OTHER
};

struct series
{
	unsigned long long bucket_counts[NBUCKETS];
	unsigned long long count;
	double		sum;
	unsigned long long bytes;
	int			nstatuses;
	int			statuses[MAX_STATUSES];
	unsigned long long status_counts[MAX_STATUSES];
};

static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static struct series table[NROUTES][NMETHODS];
static atomic_int in_flight;

/* The table row of a route; unmatched requests share the last one. */
static int
route_index(route_id route)
{
	return (route >= 0 && route < ROUTE__COUNT) ? (int) route : ROUTE__COUNT;
}

/* The table column of a method. */
static int
method_index(unsigned method)
{
	for (int i = 0; i < NMETHODS; i++)
		if (method_bits[i] == method)
			return i;
	return NMETHODS - 1;
}

/* Counts one answered request. */
void
metrics_observe(route_id route, unsigned method, int status, double seconds, size_t bytes)
{
	struct series *s = &table[route_index(route)][method_index(method)];
	int			k;

	pthread_mutex_lock(&metrics_lock);
	for (size_t b = 0; b < NBUCKETS; b++)
		if (seconds <= buckets[b])
			s->bucket_counts[b]++;
	s->count++;
	s->sum += seconds;
	s->bytes += bytes;
	for (k = 0; k < s->nstatuses; k++)
		if (s->statuses[k] == status)
			break;
	if (k == s->nstatuses && k < MAX_STATUSES)
	{
		s->statuses[k] = status;
		s->status_counts[k] = 0;
		s->nstatuses++;
	}
	if (k < MAX_STATUSES)
		s->status_counts[k]++;
	pthread_mutex_unlock(&metrics_lock);
}

/* Counts a request starting (+1) or finished (-1). */
void
metrics_in_flight(int delta)
{
	atomic_fetch_add(&in_flight, delta);
}

/* Requests being answered now. */
int
metrics_get_in_flight(void)
{
	return atomic_load(&in_flight);
}

/* The label of a table row. */
static const char *
route_name(int r)
{
	return r < ROUTE__COUNT ? shim_routes[r].template : ROUTE_UNMATCHED_LABEL;
}

/* A sample value: Prometheus spells the non-finite ones +Inf, -Inf, NaN. */
static void
value(struct buf *out, double v)
{
	if (isnan(v))
		buf_puts(out, "NaN");
	else if (isinf(v))
		buf_puts(out, v > 0 ? "+Inf" : "-Inf");
	else
		buf_printf(out, "%.17g", v);
}

/* Appends a label value, escaped as the text format requires (\\, \", \n). */
static void
label_value(struct buf *out, const char *v)
{
	buf_puts(out, "\"");
	for (const char *p = v; *p; p++)
	{
		if (*p == '\\')
			buf_puts(out, "\\\\");
		else if (*p == '"')
			buf_puts(out, "\\\"");
		else if (*p == '\n')
			buf_puts(out, "\\n");
		else
			buf_append(out, p, 1);
	}
	buf_puts(out, "\"");
}

/* HELP text escaping: only \\ and \n. */
static void
help_text(struct buf *out, const char *v)
{
	for (const char *p = v; *p; p++)
	{
		if (*p == '\\')
			buf_puts(out, "\\\\");
		else if (*p == '\n')
			buf_puts(out, "\\n");
		else
			buf_append(out, p, 1);
	}
}

/* The HELP and TYPE lines of a metric. */
static void
header(struct buf *out, const char *name, const char *type, const char *help)
{
	buf_printf(out, "# HELP %s ", name);
	help_text(out, help);
	buf_printf(out, "\n# TYPE %s %s\n", name, type);
}

/* The shim's own metrics. */
void
metrics_render_shim(struct buf *out, const struct pool_stats *ps, double uptime, const char *version)
{
	struct series (*snap)[NMETHODS] = xmalloc(sizeof(table));

	/* Copy under the lock, render outside it. */
	pthread_mutex_lock(&metrics_lock);
	memcpy(snap, table, sizeof(table));

	header(out, "jam_shim_http_requests_total", "counter",
		   "HTTP requests answered, by route template, method and status.");
	for (int r = 0; r < NROUTES; r++)
		for (int m = 0; m < NMETHODS; m++)
			for (int k = 0; k < snap[r][m].nstatuses; k++)
				buf_printf(out, "jam_shim_http_requests_total{route=\"%s\",method=\"%s\",status=\"%d\"} %llu\n",
						   route_name(r), method_label(method_bits[m]), snap[r][m].statuses[k],
						   snap[r][m].status_counts[k]);
	pthread_mutex_unlock(&metrics_lock);

	header(out, "jam_shim_http_request_duration_seconds", "histogram",
		   "Time from reading a request to having written its answer, by route template and method.");
	for (int r = 0; r < NROUTES; r++)
		for (int m = 0; m < NMETHODS; m++)
		{
			const struct series *s = &snap[r][m];
			const char *rn = route_name(r);
			const char *mn = method_label(method_bits[m]);

			if (s->count == 0)
				continue;
			for (size_t b = 0; b < NBUCKETS; b++)
			{
				buf_printf(out, "jam_shim_http_request_duration_seconds_bucket{route=\"%s\",method=\"%s\",le=\"",
						   rn, mn);
				buf_printf(out, "%g\"} %llu\n", buckets[b], s->bucket_counts[b]);
			}
			buf_printf(out, "jam_shim_http_request_duration_seconds_bucket{route=\"%s\",method=\"%s\",le=\"+Inf\"} %llu\n",
					   rn, mn, s->count);
			buf_printf(out, "jam_shim_http_request_duration_seconds_sum{route=\"%s\",method=\"%s\"} ", rn, mn);
			value(out, s->sum);
			buf_printf(out, "\njam_shim_http_request_duration_seconds_count{route=\"%s\",method=\"%s\"} %llu\n",
					   rn, mn, s->count);
		}

	header(out, "jam_shim_http_response_bytes_total", "counter",
		   "Bytes of answer bodies sent, by route template and method.");
	for (int r = 0; r < NROUTES; r++)
		for (int m = 0; m < NMETHODS; m++)
			if (snap[r][m].count)
				buf_printf(out, "jam_shim_http_response_bytes_total{route=\"%s\",method=\"%s\"} %llu\n",
						   route_name(r), method_label(method_bits[m]), snap[r][m].bytes);

	header(out, "jam_shim_http_requests_in_flight", "gauge", "HTTP requests being answered now.");
	buf_printf(out, "jam_shim_http_requests_in_flight %d\n", metrics_get_in_flight());

	header(out, "jam_shim_db_pool_size", "gauge", "Postgres connections the pool may hold.");
	buf_printf(out, "jam_shim_db_pool_size %d\n", ps->size);
	header(out, "jam_shim_db_pool_connections", "gauge", "Postgres connections by state.");
	buf_printf(out, "jam_shim_db_pool_connections{state=\"busy\"} %d\n", ps->busy);
	buf_printf(out, "jam_shim_db_pool_connections{state=\"idle\"} %d\n",
			   ps->connected - ps->busy > 0 ? ps->connected - ps->busy : 0);
	buf_printf(out, "jam_shim_db_pool_connections{state=\"closed\"} %d\n", ps->size - ps->connected);
	header(out, "jam_shim_db_pool_waiting", "gauge", "Requests waiting for a free Postgres connection.");
	buf_printf(out, "jam_shim_db_pool_waiting %d\n", ps->waiting);
	header(out, "jam_shim_db_connects_total", "counter", "Postgres connections opened.");
	buf_printf(out, "jam_shim_db_connects_total %lld\n", ps->connects);
	header(out, "jam_shim_db_connect_failures_total", "counter", "Failed attempts to open a Postgres connection.");
	buf_printf(out, "jam_shim_db_connect_failures_total %lld\n", ps->connect_failures);
	header(out, "jam_shim_db_pool_wait_timeouts_total", "counter",
		   "Requests refused because no Postgres connection became free in time.");
	buf_printf(out, "jam_shim_db_pool_wait_timeouts_total %lld\n", ps->waits_timed_out);
	header(out, "jam_shim_db_up", "gauge", "1 when the last attempt to reach Postgres succeeded.");
	buf_printf(out, "jam_shim_db_up %d\n", ps->database_up ? 1 : 0);
	header(out, "jam_shim_log_lines_dropped_total", "counter",
		   "Request log lines dropped because the log writer fell too far behind.");
	buf_printf(out, "jam_shim_log_lines_dropped_total %lld\n", log_dropped());
	header(out, "jam_shim_uptime_seconds", "gauge", "Seconds since the shim started.");
	buf_puts(out, "jam_shim_uptime_seconds ");
	value(out, uptime);
	buf_puts(out, "\n");
	header(out, "jam_shim_build_info", "gauge", "The shim's version (always 1).");
	buf_puts(out, "jam_shim_build_info{version=");
	label_value(out, version);
	buf_puts(out, "} 1\n");
	free(snap);
}

/* Whether s is a valid metric name (allow_colon) or label name. */
static int
valid_name(const char *s, int allow_colon)
{
	if (s == NULL || *s == '\0')
		return 0;
	for (const char *p = s; *p; p++)
	{
		int			ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
			(allow_colon && *p == ':') || (p > s && *p >= '0' && *p <= '9');

		if (!ok)
			return 0;
	}
	return 1;
}

/*
 * The rows of SELECT name, kind, help, labels::text, value FROM
 * jam.jam_metrics() ORDER BY name, as Prometheus text: one HELP and TYPE
 * per name, one sample per row.  A row with an invalid metric or label name
 * is skipped rather than breaking the page.  Returns the samples written.
 */
int
metrics_render_extension(struct buf *out, const PGresult *rows)
{
	const char *last = NULL;
	int			written = 0;

	for (int i = 0; i < PQntuples(rows); i++)
	{
		const char *name = PQgetvalue(rows, i, 0);
		const char *kind = PQgetvalue(rows, i, 1);
		const char *help = PQgetisnull(rows, i, 2) ? "" : PQgetvalue(rows, i, 2);
		const char *labels = PQgetisnull(rows, i, 3) ? NULL : PQgetvalue(rows, i, 3);
		double		v = PQgetisnull(rows, i, 4) ? NAN : strtod(PQgetvalue(rows, i, 4), NULL);
		struct json_object *obj = NULL;
		struct buf	sample = BUF_INIT;
		int			ok = 1;

		if (!valid_name(name, 1) || strncmp(name, "jam_shim_", 9) == 0)
			continue;
		if (labels)
		{
			obj = json_tokener_parse(labels);
			if (obj == NULL || !json_object_is_type(obj, json_type_object))
				ok = 0;
		}
		buf_puts(&sample, name);
		if (ok && obj && json_object_object_length(obj) > 0)
		{
			int			first = 1;

			buf_puts(&sample, "{");
			json_object_object_foreach(obj, key, val)
			{
				if (!valid_name(key, 0) || strncmp(key, "__", 2) == 0 ||
					!json_object_is_type(val, json_type_string))
				{
					ok = 0;
					break;
				}
				buf_printf(&sample, "%s%s=", first ? "" : ",", key);
				label_value(&sample, json_object_get_string(val));
				first = 0;
			}
			buf_puts(&sample, "}");
		}
		json_object_put(obj);
		if (ok)
		{
			if (last == NULL || strcmp(last, name) != 0)
			{
				header(out, name,
					   strcmp(kind, "counter") == 0 ? "counter" :
					   strcmp(kind, "gauge") == 0 ? "gauge" : "untyped",
					   help);
				last = name;
			}
			buf_append(out, sample.data, sample.len);
			buf_puts(out, " ");
			value(out, v);
			buf_puts(out, "\n");
			written++;
		}
		buf_free(&sample);
	}
	return written;
}

/* Whether the last scrape could read jam_metrics(). */
void
metrics_render_extension_status(struct buf *out, int up)
{
	header(out, "jam_shim_extension_metrics_up", "gauge",
		   "1 when this scrape read the extension's jam_metrics().");
	buf_printf(out, "jam_shim_extension_metrics_up %d\n", up ? 1 : 0);
}

/* The connection table's gauges and counters (conns.c). */
void
metrics_render_connections(struct buf *out, const struct conns_stats *cs)
{
	header(out, "jam_shim_http_connections_open", "gauge", "HTTP connections open (each holds a worker thread, or waits for one).");
	buf_printf(out, "jam_shim_http_connections_open %d\n", cs->open);
	header(out, "jam_shim_http_connections_capacity", "gauge", "HTTP connections the shim serves at once.");
	buf_printf(out, "jam_shim_http_connections_capacity %d\n", cs->capacity);
	header(out, "jam_shim_http_connections_refused_total", "counter",
		   "HTTP connections refused when accepted: per_client (over max_connections_per_client), busy (no worker could be freed).");
	buf_printf(out, "jam_shim_http_connections_refused_total{reason=\"per_client\"} %lld\n", cs->refused_per_client);
	buf_printf(out, "jam_shim_http_connections_refused_total{reason=\"busy\"} %lld\n", cs->refused_busy);
	header(out, "jam_shim_http_connections_cut_total", "counter",
		   "HTTP connections the shim closed early: shed (idle or slow, to make room), timeout (a request or answer past its deadline).");
	buf_printf(out, "jam_shim_http_connections_cut_total{reason=\"shed\"} %lld\n", cs->shed);
	buf_printf(out, "jam_shim_http_connections_cut_total{reason=\"timeout\"} %lld\n", cs->timed_out);
}

/* The event streams (GET /jam/events) and their shared listening connection. */
void
metrics_render_events(struct buf *out, const struct events_stats *es)
{
	header(out, "jam_shim_events_listening", "gauge",
		   "1 while the shim listens for events on the channel jam_events; streams are refused (503) otherwise.");
	buf_printf(out, "jam_shim_events_listening %d\n", es->listening);
	header(out, "jam_shim_events_streams", "gauge", "Event streams open (each holds a worker thread).");
	buf_printf(out, "jam_shim_events_streams %d\n", es->streams);
	header(out, "jam_shim_events_received_total", "counter", "Events announced on jam_events that the shim received.");
	buf_printf(out, "jam_shim_events_received_total %lld\n", es->received);
	header(out, "jam_shim_events_streams_ended_total", "counter",
		   "Event streams that ended: client (it went away), slow (it did not keep up and was dropped), "
		   "revoked (its token no longer reads what it follows), database (the listening connection was lost, or a read the stream needed failed), "
		   "shutdown, error.");
	for (int r = 0; r < STREAM_END__COUNT; r++)
		buf_printf(out, "jam_shim_events_streams_ended_total{reason=\"%s\"} %lld\n",
				   events_end_label((enum stream_end) r), es->ended[r]);
}
