/*
 * errors.c: SQLSTATE to HTTP status and {error, code}.
 */
#include "errors.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

struct errmap_entry
{
	char		sqlstate[6];
	char		code[64];
	int			status;
};

static pthread_rwlock_t errmap_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct errmap_entry *errmap;
static int	errmap_n;

/*
 * Replaces the table with the rows of
 * SELECT code, sqlstate, http_status FROM jam.jam_error_codes().
 * Returns the number of rows taken, -1 when the result has the wrong shape.
 */
int
errmap_load(PGresult *codes)
{
	int			n;
	struct errmap_entry *fresh;

	if (PQresultStatus(codes) != PGRES_TUPLES_OK || PQnfields(codes) != 3)
		return -1;
	n = PQntuples(codes);
	fresh = xmalloc(sizeof(*fresh) * (size_t) (n > 0 ? n : 1));
	int			k = 0;

	for (int i = 0; i < n; i++)
	{
		const char *code = PQgetvalue(codes, i, 0);
		const char *state = PQgetvalue(codes, i, 1);
		int			status = atoi(PQgetvalue(codes, i, 2));

		if (strlen(state) != 5 || strlen(code) >= sizeof(fresh[k].code) || status < 100 || status > 599)
			continue;
		memcpy(fresh[k].sqlstate, state, 6);
		snprintf(fresh[k].code, sizeof(fresh[k].code), "%s", code);
		fresh[k].status = status;
		k++;
	}
	pthread_rwlock_wrlock(&errmap_lock);
	free(errmap);
	errmap = fresh;
	errmap_n = k;
	pthread_rwlock_unlock(&errmap_lock);
	return k;
}

/* How many codes the table holds (shown by /system/status). */
int
errmap_size(void)
{
	int			n;

	pthread_rwlock_rdlock(&errmap_lock);
	n = errmap_n;
	pthread_rwlock_unlock(&errmap_lock);
	return n;
}

/* The status and code of a SQLSTATE in the table; 0 when it is not there. */
static int
errmap_find(const char *sqlstate, char *code, size_t code_size)
{
	int			status = 0;

	pthread_rwlock_rdlock(&errmap_lock);
	for (int i = 0; i < errmap_n; i++)
	{
		if (strcmp(errmap[i].sqlstate, sqlstate) == 0)
		{
			snprintf(code, code_size, "%s", errmap[i].code);
			status = errmap[i].status;
			break;
		}
	}
	pthread_rwlock_unlock(&errmap_lock);
	return status;
}

/*
 * N of the detail "Retry after N seconds." that jam's rate_limited and
 * blob_store_unavailable errors carry; 0 when the detail is not of that
 * form.
 */
int
retry_after_from_detail(const char *detail)
{
	const char *prefix = "Retry after ";
	const char *p;
	long		n = 0;
	int			digits = 0;

	if (detail == NULL || strncmp(detail, prefix, strlen(prefix)) != 0)
		return 0;
	p = detail + strlen(prefix);
	while (*p >= '0' && *p <= '9' && digits < 9)
	{
		n = n * 10 + (*p - '0');
		p++;
		digits++;
	}
	if (digits == 0 || (strcmp(p, " seconds.") != 0 && strcmp(p, " second.") != 0))
		return 0;
	return n < 1 ? 1 : (int) n;
}

/* The shim's stable code for a status it produces itself. */
const char *
error_code_for_status(int status)
{
	switch (status)
	{
		case 400:
			return "bad_request";
		case 401:
			return "unauthenticated";
		case 403:
			return "forbidden";
		case 404:
			return "not_found";
		case 405:
			return "method_not_allowed";
		case 408:
			return "request_timeout";
		case 411:
			return "length_required";
		case 413:
			return "payload_too_large";
		case 429:
			return "rate_limited";
		case 503:
			return "database_unavailable";
		case 505:
			return "http_version_not_supported";
		default:
			return status >= 500 ? "internal_error" : "bad_request";
	}
}

/* Fills an answer. */
static void
set(struct error_answer *out, int status, const char *code, const char *message)
{
	out->status = status;
	snprintf(out->code, sizeof(out->code), "%s", code);
	snprintf(out->message, sizeof(out->message), "%s", message);
}

/*
 * The answer for a failed statement (res may be NULL when libpq could not
 * even produce a result).  conn tells a broken connection from an error
 * the server raised.
 */
void
error_from_result(const PGresult *res, PGconn *conn, struct error_answer *out)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
	int			status;

	memset(out, 0, sizeof(*out));
	snprintf(out->sqlstate, sizeof(out->sqlstate), "%s", state ? state : "");
	snprintf(out->detail, sizeof(out->detail), "%s",
			 primary ? primary : (res ? PQresultErrorMessage(res) : PQerrorMessage(conn)));
	if (primary == NULL)
		primary = "";

	if (conn == NULL || PQstatus(conn) != CONNECTION_OK || state == NULL)
	{
		out->connection_lost = 1;
		set(out, 503, "database_unavailable", "the database is unreachable");
		out->retry_after = 1;
		return;
	}
	status = errmap_find(state, out->code, sizeof(out->code));
	if (status)
	{
		out->status = status;
		snprintf(out->message, sizeof(out->message), "%s", primary);
		/* Worth retrying later (a rate, the blob store): say when, as the detail does. */
		if (status == 429 || status == 503)
		{
			out->retry_after = retry_after_from_detail(detail);
			if (out->retry_after == 0)
				out->retry_after = 1;
		}
		return;
	}
	if (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 || strcmp(state, "57P02") == 0 ||
		strcmp(state, "57P03") == 0 || strcmp(state, "53300") == 0)
	{
		set(out, 503, "database_unavailable", "the database is unavailable");
		out->retry_after = 1;
		return;
	}
	if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
		strcmp(state, "55P03") == 0 || strcmp(state, "57014") == 0 || strncmp(state, "53", 2) == 0)
	{
		/* Transient: a conflict, a lock or statement timeout, resources. */
		set(out, 503, "database_unavailable", primary);
		out->retry_after = 1;
		return;
	}
	if (strcmp(state, "42883") == 0 && strstr(primary, "function jam.") != NULL)
	{
		/*
		 * A route whose function a later version of the extension added,
		 * on a database still at an earlier one: the library is newer than
		 * the catalog until ALTER EXTENSION jam UPDATE.  Not the client's
		 * fault, nor a bug; it lasts until an operator acts.
		 */
		set(out, 503, "extension_update_required",
			"the jam extension in this database predates this route: run ALTER EXTENSION jam UPDATE");
		out->retry_after = 60;
		return;
	}
	if (strncmp(state, "22", 2) == 0)
	{
		set(out, 400, "invalid_argument", primary);
		return;
	}
	if (strcmp(state, "42501") == 0)
	{
		set(out, 403, "forbidden", primary);
		return;
	}
	set(out, 500, "internal_error", "internal error");
}
