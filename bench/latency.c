/*
 * latency: the time from a submit's commit to the commit of its report,
 * at a fixed offered rate, with jam's processor workers doing the work.
 *
 *   latency CONNINFO RATE SECONDS SERVICES
 *
 * LATENCY_SUBMITTERS connections take turns submitting a new package
 * every 1/RATE seconds (open loop: the schedule waits neither for the
 * workers nor for a slow commit, as long as one connection is free), round
 * robin over SERVICES services bench-lat-0.., and note when each submit's
 * commit came back.
 * Another LISTENs on jam_events, where jam announces each report as its
 * transaction commits, and notes when each report's announcement arrived.
 * A report's announcement names its package (jam 1.3 on); from an older
 * catalog the reports' hashes are mapped to their packages after the run
 * (jam_work_reports).  The latencies (announcement arrived - submit
 * returned) are then sorted.  Prints name=value lines: offered and achieved
 * rates, p50, p90, p99 and max in milliseconds, and how many packages had
 * no report within 10 s after the last submit (missing).
 *
 * Both ends are measured on this machine's monotonic clock, on the client
 * side, so the figure includes the notification's delivery: what a client
 * following the event stream sees.
 *
 * LATENCY_SUBMITTERS (default 4, at most 64) sets how many connections
 * submit, and LATENCY_BATCH (default 1, at most 1000) how many due
 * packages one call may carry: above 1 a free connection sends every
 * package that is due, up to that many, in one jam_submit_packages() call
 * to one service, which is how a producer offers more than single submits
 * can carry; each package's latency still runs from its own call's commit.
 *
 * With LATENCY_TRACE set to a file name, every package's line goes there
 * too (seconds from the start to its commit, then its latency in ms, or
 * "missing"), to see when in the run a tail happened.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HEX_LEN 64
#define DRAIN_SECONDS 10.0
#define MAX_SUBMITTERS 64
#define MAX_BATCH 1000
#define PAYLOAD_MAX 96			/* a package's payload text, with its NUL */

typedef struct Sent
{
	char		package_id[HEX_LEN + 1];
	double		committed;
	double		reported;		/* 0 until its report is seen */
} Sent;

typedef struct Seen
{
	char		report_hash[HEX_LEN + 1];
	char		package_id[HEX_LEN + 1];	/* empty before 1.3 */
	double		at;
} Seen;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
die(PGconn *conn, const char *what)
{
	fprintf(stderr, "latency: %s: %s", what, conn ? PQerrorMessage(conn) : "\n");
	exit(1);
}

static PGconn *
connect_or_die(const char *conninfo)
{
	PGconn	   *conn = PQconnectdb(conninfo);

	if (PQstatus(conn) != CONNECTION_OK)
		die(conn, "connect");
	return conn;
}

static void
exec_or_die(PGconn *conn, const char *sql)
{
	PGresult   *res = PQexec(conn, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
		die(conn, sql);
	PQclear(res);
}

/* The value of "key": "..." in a flat JSON payload of jam's (no escapes in it). */
static int
payload_field(const char *payload, const char *key, char *out, size_t size)
{
	char		pattern[64];
	const char *p;
	const char *end;

	snprintf(pattern, sizeof(pattern), "\"%s\": \"", key);
	p = strstr(payload, pattern);
	if (p == NULL)
		return -1;
	p += strlen(pattern);
	end = strchr(p, '"');
	if (end == NULL || (size_t) (end - p) >= size)
		return -1;
	memcpy(out, p, end - p);
	out[end - p] = '\0';
	return 0;
}

static void
read_notifications(PGconn *listen, Seen **seen, int *n_seen, int *cap_seen)
{
	PGnotify   *note;
	double		at = now();

	if (!PQconsumeInput(listen))
		die(listen, "LISTEN connection");
	while ((note = PQnotifies(listen)) != NULL)
	{
		char		kind[16];
		Seen	   *s;

		if (payload_field(note->extra, "kind", kind, sizeof(kind)) == 0 && strcmp(kind, "report") == 0)
		{
			if (*n_seen == *cap_seen)
			{
				*cap_seen *= 2;
				*seen = realloc(*seen, sizeof(Seen) * *cap_seen);
			}
			s = &(*seen)[*n_seen];
			if (payload_field(note->extra, "id", s->report_hash, sizeof(s->report_hash)) == 0)
			{
				if (payload_field(note->extra, "package_id", s->package_id, sizeof(s->package_id)) != 0)
					s->package_id[0] = '\0';
				s->at = at;
				(*n_seen)++;
			}
		}
		PQfreemem(note);
	}
}

static int
by_double(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return x < y ? -1 : x > y;
}

static int
by_package(const void *a, const void *b)
{
	return strcmp(((const Sent *) a)->package_id, ((const Sent *) b)->package_id);
}

/* Marks the package sent as reported at `at`, unless it already is. */
static void
mark_reported(Sent *sent, int n_sent, const char *package_id, double at)
{
	Sent		key;
	Sent	   *hit;

	memset(&key, 0, sizeof(key));
	snprintf(key.package_id, sizeof(key.package_id), "%s", package_id);
	hit = bsearch(&key, sent, n_sent, sizeof(Sent), by_package);
	if (hit && hit->reported == 0)
		hit->reported = at;
}

/*
 * Fills sent[].reported from the reports seen: by the package their
 * announcement names, else through jam_work_reports.
 */
static void
match_reports(PGconn *conn, Sent *sent, int n_sent, const Seen *seen, int n_seen)
{
	size_t		len = 16 + (size_t) n_seen * (HEX_LEN + 1);
	char	   *array = malloc(len);
	char	   *p = array;
	int			unnamed = 0;
	const char *values[1];
	PGresult   *res;

	qsort(sent, n_sent, sizeof(Sent), by_package);
	*p++ = '{';
	for (int i = 0; i < n_seen; i++)
	{
		if (seen[i].package_id[0] != '\0')
			mark_reported(sent, n_sent, seen[i].package_id, seen[i].at);
		/* An unnamed report keeps its place, so that ord still indexes seen[]. */
		p += sprintf(p, "%s%s", i ? "," : "", seen[i].package_id[0] ? "\"\"" : seen[i].report_hash);
		unnamed += seen[i].package_id[0] == '\0';
	}
	*p++ = '}';
	*p = '\0';
	if (unnamed == 0)
	{
		free(array);
		return;
	}
	values[0] = array;
	res = PQexecParams(conn,
					   "SELECT s.ord, encode(r.package_id::bytea, 'hex') "
					   "FROM unnest($1::text[]) WITH ORDINALITY AS s(h, ord) "
					   "JOIN jam.jam_work_reports r ON r.report_hash = decode(s.h, 'hex') "
					   "WHERE s.h <> ''",
					   1, NULL, values, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		die(conn, "matching reports to packages");
	for (int r = 0; r < PQntuples(res); r++)
		mark_reported(sent, n_sent, PQgetvalue(res, r, 1), seen[atoi(PQgetvalue(res, r, 0)) - 1].at);
	PQclear(res);
	free(array);
}

static double
percentile(const double *sorted, int n, double p)
{
	int			i = (int) (p * n);

	return n == 0 ? 0 : sorted[i < n ? i : n - 1];
}

/* Each package's commit time and latency, in submit order, to PATH. */
static void
write_trace(const char *path, const Sent *sent, int n_sent, double started)
{
	FILE	   *out;

	if (path == NULL || *path == '\0')
		return;
	if ((out = fopen(path, "w")) == NULL)
	{
		perror(path);
		exit(1);
	}
	for (int i = 0; i < n_sent; i++)
	{
		if (sent[i].reported == 0)
			fprintf(out, "%.4f missing\n", sent[i].committed - started);
		else
			fprintf(out, "%.4f %.3f\n", sent[i].committed - started,
					(sent[i].reported - sent[i].committed) * 1000.0);
	}
	if (fclose(out) != 0)
	{
		perror(path);
		exit(1);
	}
}

/*
 * A positive integer from the environment, def when unset; exits when it
 * is not a whole number in 1..max ("4x" and "" included).
 */
static int
env_int(const char *name, int def, int max)
{
	const char *v = getenv(name);
	char	   *end;
	long		n;

	if (v == NULL)
		return def;
	errno = 0;
	n = strtol(v, &end, 10);
	if (end == v || *end != '\0' || errno != 0 || n < 1 || n > max)
	{
		fprintf(stderr, "latency: %s must be a whole number from 1 to %d, not \"%s\"\n", name, max, v);
		exit(2);
	}
	return (int) n;
}

int
main(int argc, char **argv)
{
	const char *conninfo;
	double		rate;
	double		seconds;
	int			services;
	int			submitters = env_int("LATENCY_SUBMITTERS", 4, MAX_SUBMITTERS);
	int			batch = env_int("LATENCY_BATCH", 1, MAX_BATCH);
	PGconn	   *submit[MAX_SUBMITTERS];
	int			slot_of[MAX_SUBMITTERS];	/* the first sent[] entry in flight, or -1 */
	int			count_of[MAX_SUBMITTERS];	/* how many from there */
	int			calls = 0;
	char	   *array;			/* a call's payloads, as a text[] literal */
	PGconn	   *listen;
	Sent	   *sent;
	int			n_sent = 0;
	int			n_done = 0;
	int			cap_sent;
	Seen	   *seen;
	int			n_seen = 0;
	int			cap_seen = 1024;
	double		started;
	double		next;
	double		last_submit = 0;
	double	   *latencies;
	int			n_lat = 0;
	int			missing = 0;

	if (argc != 5)
	{
		fprintf(stderr, "usage: latency CONNINFO RATE SECONDS SERVICES\n");
		return 2;
	}
	conninfo = argv[1];
	rate = atof(argv[2]);
	seconds = atof(argv[3]);
	services = atoi(argv[4]);
	if (rate <= 0 || seconds <= 0 || services <= 0)
	{
		fprintf(stderr, "latency: RATE, SECONDS and SERVICES must be positive\n");
		return 2;
	}
	cap_sent = (int) (rate * seconds) + 16;
	sent = calloc(cap_sent, sizeof(Sent));
	seen = malloc(sizeof(Seen) * cap_seen);
	/* Each element quoted, with its comma; the braces and the end. */
	array = malloc((size_t) batch * (PAYLOAD_MAX + 3) + 3);
	if (sent == NULL || seen == NULL || array == NULL)
	{
		fprintf(stderr, "latency: out of memory\n");
		return 1;
	}

	listen = connect_or_die(conninfo);
	exec_or_die(listen, "LISTEN jam_events");
	for (int c = 0; c < submitters; c++)
	{
		PGresult   *res;

		submit[c] = connect_or_die(conninfo);
		slot_of[c] = -1;
		/* The batch: its payloads as a text array, the ids in their order. */
		res = PQprepare(submit[c], "submit", batch == 1
						? "SELECT jam.jam_submit_package($1, convert_to($2, 'UTF8'))->>'id'"
						: "SELECT e.p->>'id' FROM jsonb_array_elements(jam.jam_submit_packages($1, "
						"ARRAY(SELECT convert_to(x, 'UTF8') FROM unnest($2::text[]) WITH ORDINALITY AS u(x, i) "
						"ORDER BY i))->'packages') WITH ORDINALITY AS e(p, i) ORDER BY e.i",
						2, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			die(submit[c], "prepare");
		PQclear(res);
	}

	started = now();
	next = started;
	for (;;)
	{
		struct pollfd fds[1 + MAX_SUBMITTERS];
		double		t = now();
		double		wait_s = 0.1;
		int			in_flight = 0;

		/*
		 * Every submit that is due goes out on a free connection: up to
		 * batch of them in one call.
		 */
		for (int c = 0; c < submitters && t >= next && t < started + seconds && n_sent < cap_sent; c++)
		{
			char		service[32];
			char		payload[PAYLOAD_MAX];
			const char *values[2] = {service, batch == 1 ? payload : array};
			char	   *p = array;
			int			n = 0;

			if (slot_of[c] >= 0)
				continue;
			snprintf(service, sizeof(service), "bench-lat-%d", (batch == 1 ? n_sent : calls) % services);
			*p++ = '{';
			while (n < batch && t >= next && n_sent + n < cap_sent)
			{
				snprintf(payload, sizeof(payload), "latency %d %.9f", n_sent + n, t);
				p += sprintf(p, "%s\"%s\"", n ? "," : "", payload);
				n++;
				next += 1.0 / rate;
			}
			*p++ = '}';
			*p = '\0';
			if (!PQsendQueryPrepared(submit[c], "submit", 2, values, NULL, NULL, 0))
				die(submit[c], "submit");
			slot_of[c] = n_sent;
			count_of[c] = n;
			n_sent += n;
			calls++;
		}
		for (int c = 0; c < submitters; c++)
			in_flight += slot_of[c] >= 0;
		if (in_flight == 0 && t >= started + seconds)
		{
			if (last_submit == 0)
				last_submit = t;
			if (t > last_submit + DRAIN_SECONDS || n_seen >= n_done)
				break;
		}
		if (t < started + seconds && next > t && next - t < wait_s)
			wait_s = next - t;

		fds[0].fd = PQsocket(listen);
		fds[0].events = POLLIN;
		for (int c = 0; c < submitters; c++)
		{
			fds[1 + c].fd = PQsocket(submit[c]);
			fds[1 + c].events = slot_of[c] >= 0 ? POLLIN : 0;
		}
		if (poll(fds, 1 + submitters, (int) (wait_s * 1000) + (wait_s > 0 && wait_s < 0.001)) < 0 &&
			errno != EINTR)
		{
			perror("latency: poll");
			return 1;
		}
		if (fds[0].revents & POLLIN)
			read_notifications(listen, &seen, &n_seen, &cap_seen);
		for (int c = 0; c < submitters; c++)
		{
			PGresult   *res;
			double		done;

			if (slot_of[c] < 0 || !(fds[1 + c].revents & POLLIN))
				continue;
			if (!PQconsumeInput(submit[c]))
				die(submit[c], "submit connection");
			if (PQisBusy(submit[c]))
				continue;
			done = now();
			while ((res = PQgetResult(submit[c])) != NULL)
			{
				if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != count_of[c])
					die(submit[c], "submit");
				for (int i = 0; i < count_of[c]; i++)
				{
					Sent	   *s = &sent[slot_of[c] + i];

					snprintf(s->package_id, sizeof(s->package_id), "%s", PQgetvalue(res, i, 0));
					s->committed = done;
				}
				PQclear(res);
			}
			n_done += count_of[c];
			slot_of[c] = -1;
		}
	}

	match_reports(listen, sent, n_sent, seen, n_seen);
	write_trace(getenv("LATENCY_TRACE"), sent, n_sent, started);
	latencies = malloc(sizeof(double) * (n_sent ? n_sent : 1));
	for (int i = 0; i < n_sent; i++)
	{
		if (sent[i].reported == 0)
			missing++;
		else
			latencies[n_lat++] = (sent[i].reported - sent[i].committed) * 1000.0;
	}
	qsort(latencies, n_lat, sizeof(double), by_double);
	printf("offered_per_s=%.1f\n", rate);
	printf("submitted_per_s=%.1f\n", n_sent / seconds);
	printf("reported=%d\nmissing=%d\n", n_lat, missing);
	printf("p50_ms=%.2f\np90_ms=%.2f\np99_ms=%.2f\nmax_ms=%.2f\n",
		   percentile(latencies, n_lat, 0.50), percentile(latencies, n_lat, 0.90),
		   percentile(latencies, n_lat, 0.99), n_lat ? latencies[n_lat - 1] : 0);
	printf("submit_calls=%d\n", calls);
	for (int c = 0; c < submitters; c++)
		PQfinish(submit[c]);
	PQfinish(listen);
	free(latencies);
	free(array);
	free(sent);
	free(seen);
	return 0;
}
