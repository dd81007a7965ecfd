/*
 * pool.c: the libpq connection pool, with per-connection prepared statements.
 */
#include "pool.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "errors.h"
#include "log.h"

/* A connection idle for less than this is not checked before use. */
#define POOL_TRUST_IDLE_S 0.1

/* Statements each connection keeps prepared (the shim has a few dozen shapes). */
#define POOL_MAX_PREPARED 96

struct prepared
{
	char	   *sql;
	char		name[24];
};

struct pool_conn
{
	PGconn	   *pg;
	PGcancel   *cancel;			/* made with the connection; used and freed under the pool's lock */
	int			busy;
	double		last_used;		/* monotonic seconds, when last given back */
	int			connected;		/* pg != NULL, kept under the pool's lock for others to read */
	int			nprepared;
	struct prepared prepared[POOL_MAX_PREPARED];
};

struct pool
{
	pthread_mutex_t mu;
	pthread_cond_t freed;
	char	   *dsn;
	int			size;
	int			wait_ms;
	struct pool_conn *conns;
	int			waiting;
	int			probing;		/* a thread is trying to reach a down database */
	int			closing;		/* shutting down: no connection is handed out any more */
	int			database_up;
	double		down_until;		/* monotonic seconds; no connect attempt before */
	double		backoff;
	long long	connects;
	long long	connect_failures;
	long long	waits_timed_out;
	char		last_error[256];
};

/* Monotonic seconds. */
static double
now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A pool of size connections to dsn, none opened yet. */
struct pool *
pool_create(const char *dsn, int size, int wait_ms)
{
	struct pool *p = xmalloc(sizeof(*p));
	pthread_condattr_t attr;

	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&p->freed, &attr);
	pthread_condattr_destroy(&attr);
	p->dsn = xstrdup(dsn);
	p->size = size;
	p->wait_ms = wait_ms;
	p->conns = xmalloc(sizeof(struct pool_conn) * (size_t) size);
	memset(p->conns, 0, sizeof(struct pool_conn) * (size_t) size);
	p->database_up = 1;
	p->backoff = 0.5;
	return p;
}

/* Forgets a connection's prepared statements (it is being closed). */
static void
forget_prepared(struct pool_conn *c)
{
	for (int i = 0; i < c->nprepared; i++)
		free(c->prepared[i].sql);
	c->nprepared = 0;
}

/*
 * Closes a connection; the slot reconnects on its next use.  Its cancel
 * handle is taken out under the lock, so that pool_cancel_busy() never
 * uses one being freed.
 */
static void
close_conn(struct pool *p, struct pool_conn *c)
{
	PGcancel   *cancel;

	pthread_mutex_lock(&p->mu);
	cancel = c->cancel;
	c->cancel = NULL;
	pthread_mutex_unlock(&p->mu);
	if (cancel)
		PQfreeCancel(cancel);
	if (c->pg)
		PQfinish(c->pg);
	c->pg = NULL;
	forget_prepared(c);
}

/* Closes every connection and frees the pool. */
void
pool_destroy(struct pool *p)
{
	for (int i = 0; i < p->size; i++)
		close_conn(p, &p->conns[i]);
	free(p->conns);
	free(p->dsn);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->freed);
	free(p);
}

/*
 * Whether an idle connection is still usable: a server that shut down or
 * restarted has closed the socket (after a FATAL message), which shows as
 * readable; reading it then marks the connection bad.
 */
static int
conn_alive(PGconn *pg)
{
	for (int round = 0; round < 2; round++)
	{
		struct pollfd pfd = {.fd = PQsocket(pg), .events = POLLIN};

		if (PQstatus(pg) != CONNECTION_OK || pfd.fd < 0)
			return 0;
		if (poll(&pfd, 1, 0) <= 0)
			return 1;
		if (!PQconsumeInput(pg))
			return 0;
	}
	return PQstatus(pg) == CONNECTION_OK;
}

/* Silences notices: the shim has nobody to show them to. */
static void
ignore_notice(void *arg, const char *message)
{
	(void) arg;
	(void) message;
}

/*
 * Opens a connection and loads the error table from it.  Returns NULL with
 * the reason in why when the server cannot be reached.
 */
static PGconn *
open_conn(struct pool *p, char *why, size_t why_size)
{
	/* The DSN comes last, so that whatever it sets wins over these defaults. */
	const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
	const char *vals[] = {"5", "jam-shim", p->dsn, NULL};
	PGconn	   *pg = PQconnectdbParams(keys, vals, 1);
	PGresult   *res;

	if (pg == NULL || PQstatus(pg) != CONNECTION_OK)
	{
		snprintf(why, why_size, "%s", pg ? PQerrorMessage(pg) : "out of memory");
		why[strcspn(why, "\n")] = '\0';
		if (pg)
			PQfinish(pg);
		return NULL;
	}
	PQsetNoticeProcessor(pg, ignore_notice, NULL);
	res = PQexec(pg, "SELECT code, sqlstate, http_status FROM jam.jam_error_codes()");
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		errmap_load(res);
	else if (PQstatus(pg) != CONNECTION_OK)
	{
		snprintf(why, why_size, "%s", PQerrorMessage(pg));
		why[strcspn(why, "\n")] = '\0';
		PQclear(res);
		PQfinish(pg);
		return NULL;
	}
	else
		log_event("warning", "cannot load jam.jam_error_codes(); SQL errors will answer 500 until it works: %s",
				  PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
	PQclear(res);
	return pg;
}

/*
 * Takes a connected connection.  Returns NULL when none is free within the
 * pool's wait or the database is unreachable, with the seconds a client
 * should wait in *retry_after and the reason in why.
 */
struct pool_conn *
pool_acquire(struct pool *p, int *retry_after, char *why, size_t why_size)
{
	struct pool_conn *c = NULL;
	struct timespec deadline;
	double		t;
	double		idle_since;

	*retry_after = 1;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += p->wait_ms / 1000;
	deadline.tv_nsec += (long) (p->wait_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L)
	{
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}

	pthread_mutex_lock(&p->mu);
	for (;;)
	{
		if (p->closing)
		{
			pthread_mutex_unlock(&p->mu);
			snprintf(why, why_size, "the server is shutting down");
			return NULL;
		}
		/* Prefer a connected idle connection, then any idle one. */
		for (int i = 0; i < p->size && c == NULL; i++)
			if (!p->conns[i].busy && p->conns[i].connected)
				c = &p->conns[i];
		for (int i = 0; i < p->size && c == NULL; i++)
			if (!p->conns[i].busy)
				c = &p->conns[i];
		if (c)
			break;
		p->waiting++;
		int			rc = pthread_cond_timedwait(&p->freed, &p->mu, &deadline);

		p->waiting--;
		if (rc == ETIMEDOUT)
		{
			p->waits_timed_out++;
			pthread_mutex_unlock(&p->mu);
			snprintf(why, why_size, "no database connection became free within %d ms", p->wait_ms);
			return NULL;
		}
	}
	c->busy = 1;
	idle_since = c->last_used;
	pthread_mutex_unlock(&p->mu);

	/*
	 * A connection given back a moment ago is used as it is (a failure then
	 * shows in the statement, which the caller may retry); one that sat idle
	 * is checked first, since the server may have restarted meanwhile.
	 */
	if (c->pg && (now_mono() - idle_since < POOL_TRUST_IDLE_S || conn_alive(c->pg)))
		return c;
	close_conn(p, c);

	/* A reconnect: refuse at once while the database is known to be down. */
	pthread_mutex_lock(&p->mu);
	c->connected = 0;
	t = now_mono();
	if (!p->database_up && (t < p->down_until || p->probing))
	{
		double		wait = p->down_until - t;

		*retry_after = wait > 1 ? (int) ceil(wait) : 1;
		snprintf(why, why_size, "the database is unreachable: %s", p->last_error);
		c->busy = 0;
		pthread_cond_signal(&p->freed);
		pthread_mutex_unlock(&p->mu);
		return NULL;
	}
	p->probing++;
	pthread_mutex_unlock(&p->mu);

	char		err[256];
	PGconn	   *pg = open_conn(p, err, sizeof(err));

	pthread_mutex_lock(&p->mu);
	p->probing--;
	if (pg == NULL)
	{
		p->connect_failures++;
		if (p->database_up)
			log_event("error", "cannot connect to the database: %s", err);
		p->database_up = 0;
		snprintf(p->last_error, sizeof(p->last_error), "%s", err);
		p->down_until = now_mono() + p->backoff;
		*retry_after = (int) ceil(p->backoff);
		p->backoff = p->backoff * 2 > 5 ? 5 : p->backoff * 2;
		snprintf(why, why_size, "the database is unreachable: %s", err);
		c->busy = 0;
		pthread_cond_signal(&p->freed);
		pthread_mutex_unlock(&p->mu);
		return NULL;
	}
	if (!p->database_up)
		log_event("info", "connected to the database again");
	p->connects++;
	p->database_up = 1;
	p->backoff = 0.5;
	p->last_error[0] = '\0';
	c->pg = pg;
	c->cancel = PQgetCancel(pg);
	c->connected = 1;
	pthread_mutex_unlock(&p->mu);
	return c;
}

/* Gives a connection back; a broken one is closed and reopened on next use. */
void
pool_release(struct pool *p, struct pool_conn *c)
{
	int			broken = c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK ||
		PQtransactionStatus(c->pg) != PQTRANS_IDLE;

	if (broken)
		close_conn(p, c);
	pthread_mutex_lock(&p->mu);
	c->last_used = now_mono();
	c->connected = c->pg != NULL;
	if (broken)
	{
		/*
		 * The server may have restarted under all of them: check every
		 * connection before its next use.  The next acquire of this one
		 * reconnects; a failure there marks the database down.
		 */
		for (int i = 0; i < p->size; i++)
			p->conns[i].last_used = 0;
		if (p->database_up)
			snprintf(p->last_error, sizeof(p->last_error), "a connection was lost");
	}
	c->busy = 0;
	pthread_cond_signal(&p->freed);
	pthread_mutex_unlock(&p->mu);
}

/* The libpq connection of a pooled connection. */
PGconn *
pool_pg(struct pool_conn *c)
{
	return c->pg;
}

/*
 * The prepared statement of sql on this connection, preparing it the first
 * time: the shim's statements are a fixed set of shapes, so each is parsed
 * and planned once per connection.  NULL when the connection holds as
 * many as it may (the statement then runs unprepared); *failed, the
 * result of a PREPARE that failed.
 */
static struct prepared *
prepared_statement(struct pool_conn *c, const char *sql, int nparams, const unsigned int *types,
				   PGresult **failed)
{
	struct prepared *stmt = NULL;
	PGresult   *res;

	*failed = NULL;
	for (int i = 0; i < c->nprepared; i++)
		if (strcmp(c->prepared[i].sql, sql) == 0)
			stmt = &c->prepared[i];
	if (stmt != NULL || c->nprepared >= POOL_MAX_PREPARED)
		return stmt;
	stmt = &c->prepared[c->nprepared];
	snprintf(stmt->name, sizeof(stmt->name), "jam_shim_%d", c->nprepared);
	res = PQprepare(c->pg, stmt->name, sql, nparams, (const Oid *) types);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		*failed = res ? res : PQmakeEmptyPGresult(c->pg, PGRES_FATAL_ERROR);
		return NULL;
	}
	PQclear(res);
	stmt->sql = xstrdup(sql);
	c->nprepared++;
	return stmt;
}

/*
 * Runs a statement, prepared (see prepared_statement).  Returns the result
 * (never NULL: a libpq failure becomes a result carrying the connection's
 * error).
 */
PGresult *
pool_exec(struct pool *p, struct pool_conn *c, const char *sql, int nparams,
		  const unsigned int *types, const char *const *values,
		  const int *lengths, const int *formats, int result_format)
{
	PGresult   *failed;
	struct prepared *stmt = prepared_statement(c, sql, nparams, types, &failed);
	PGresult   *res;

	(void) p;
	if (failed)
		return failed;
	if (stmt == NULL)
		res = PQexecParams(c->pg, sql, nparams, (const Oid *) types, values, lengths, formats, result_format);
	else
		res = PQexecPrepared(c->pg, stmt->name, nparams, values, lengths, formats, result_format);
	return res ? res : PQmakeEmptyPGresult(c->pg, PGRES_FATAL_ERROR);
}

/*
 * Sends a statement (prepared as pool_exec does) whose rows come back one
 * result each (libpq's single-row mode), for the caller to read with
 * PQgetResult until NULL, so that a large result is never held whole.
 * Returns NULL once sent, else the error as a result.
 */
PGresult *
pool_send_rows(struct pool *p, struct pool_conn *c, const char *sql, int nparams,
			   const unsigned int *types, const char *const *values,
			   const int *lengths, const int *formats, int result_format)
{
	PGresult   *failed;
	struct prepared *stmt = prepared_statement(c, sql, nparams, types, &failed);
	int			sent;

	(void) p;
	if (failed)
		return failed;
	if (stmt == NULL)
		sent = PQsendQueryParams(c->pg, sql, nparams, (const Oid *) types, values, lengths, formats,
								 result_format);
	else
		sent = PQsendQueryPrepared(c->pg, stmt->name, nparams, values, lengths, formats, result_format);
	if (!sent || !PQsetSingleRowMode(c->pg))
		return PQmakeEmptyPGresult(c->pg, PGRES_FATAL_ERROR);
	return NULL;
}

/* Cancels what the connection runs (its client went away); the caller still reads the results. */
void
pool_cancel(struct pool *p, struct pool_conn *c)
{
	char		err[256];

	pthread_mutex_lock(&p->mu);
	if (c->cancel != NULL && !PQcancel(c->cancel, err, sizeof(err)))
		log_event("warning", "cannot cancel a statement: %s", err);
	pthread_mutex_unlock(&p->mu);
}

/* A consistent snapshot of the pool, for status and metrics. */
void
pool_stats(struct pool *p, struct pool_stats *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&p->mu);
	out->size = p->size;
	for (int i = 0; i < p->size; i++)
	{
		if (p->conns[i].connected)
			out->connected++;
		if (p->conns[i].busy)
			out->busy++;
	}
	out->waiting = p->waiting;
	out->database_up = p->database_up;
	out->connects = p->connects;
	out->connect_failures = p->connect_failures;
	out->waits_timed_out = p->waits_timed_out;
	snprintf(out->last_error, sizeof(out->last_error), "%s", p->last_error);
	pthread_mutex_unlock(&p->mu);
}

/*
 * Shutting down: from now on pool_acquire() refuses at once ("the server
 * is shutting down"), and requests waiting for a connection are woken to
 * be refused.
 */
void
pool_close(struct pool *p)
{
	pthread_mutex_lock(&p->mu);
	p->closing = 1;
	pthread_cond_broadcast(&p->freed);
	pthread_mutex_unlock(&p->mu);
}

/* Whether pool_close() ran. */
int
pool_closing(struct pool *p)
{
	int			closing;

	pthread_mutex_lock(&p->mu);
	closing = p->closing;
	pthread_mutex_unlock(&p->mu);
	return closing;
}

/*
 * Asks Postgres to cancel what every busy connection is running (the
 * statement then fails with SQLSTATE 57014 and its transaction rolls
 * back, unless it had already committed).  Returns how many cancels were
 * sent.  PQcancel opens a short connection of its own; it is done under
 * the lock, which only shutdown takes this long.
 */
int
pool_cancel_busy(struct pool *p)
{
	int			n = 0;

	pthread_mutex_lock(&p->mu);
	for (int i = 0; i < p->size; i++)
	{
		char		err[256];

		if (!p->conns[i].busy || p->conns[i].cancel == NULL)
			continue;
		if (PQcancel(p->conns[i].cancel, err, sizeof(err)))
			n++;
		else
			log_event("warning", "cannot cancel a statement: %s", err);
	}
	pthread_mutex_unlock(&p->mu);
	return n;
}
