/*
 * preimages.c: the answers of GET and HEAD /jam/preimages/{hash}.
 *
 * A preimage's bytes are streamed: the statement returns them as rows of
 * jam_read_preimage's chunks (256 kB), read one result at a time in
 * libpq's single-row mode and written to the client as each arrives, so
 * that a large preimage is never held whole in the shim (with one
 * PGresult, libpq would hold it twice: in its input buffer and in the
 * result).  The extension reads the bytes, and verifies those from the
 * blob store, before the first row, so that an error (integrity_error,
 * blob_store_unavailable) is still answered as such; once the headers are
 * out, a failure can only cut the body short, and the connection closes.
 * A client that goes away cancels the statement.  On a catalog older than
 * 1.2, which lacks jam_read_preimage, the bytes come as one result, as
 * before.  HEAD and 304 are answered from the meta alone.
 */
#include "preimages.h"

#include <civetweb.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "buf.h"
#include "errors.h"
#include "log.h"

/* SQLSTATE undefined_function: the catalog predates jam_read_preimage. */
#define UNDEFINED_FUNCTION "42883"

/*
 * A preimage never changes (its address is its hash), but it may be
 * private to a tenant: only the client's own cache may keep it.  nosniff
 * and the sandbox keep a stored text/html or SVG from running as a page of
 * this origin.
 */
#define PREIMAGE_HEADERS \
	"Cache-Control: private, max-age=31536000, immutable\r\n" \
	"X-Content-Type-Options: nosniff\r\n" \
	"Content-Security-Policy: default-src 'none'; sandbox\r\n"

/* media_type and size from a preimage's meta document. */
static int
meta_fields(const char *meta, size_t len, char *media_type, size_t mt_size, long long *size)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *obj,
			   *v;
	int			ok = 0;

	if (tok == NULL)
		return -1;
	obj = json_tokener_parse_ex(tok, meta, (int) len);
	if (obj && json_object_object_get_ex(obj, "media_type", &v) && json_object_is_type(v, json_type_string))
	{
		snprintf(media_type, mt_size, "%s", json_object_get_string(v));
		ok = 1;
	}
	if (obj && json_object_object_get_ex(obj, "size", &v) && json_object_is_type(v, json_type_int))
		*size = json_object_get_int64(v);
	else
		ok = 0;
	json_object_put(obj);
	json_tokener_free(tok);
	return ok ? 0 : -1;
}

/* The headers of a preimage: ETag, type and caching. */
static void
preimage_headers(struct buf *h, const char *hash)
{
	buf_printf(h, "ETag: \"%s\"\r\n" PREIMAGE_HEADERS, hash);
}

/* GET of a preimage from one result: its meta, then its bytes. */
void
preimage_answer_get(struct exchange *x, struct plan *p, PGresult *res)
{
	char		media_type[256];
	long long	size = -1;
	struct buf	h = BUF_INIT;
	int			ok = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0) && !PQgetisnull(res, 0, 1);

	if (!ok || meta_fields(PQgetvalue(res, 0, 0), (size_t) PQgetlength(res, 0, 0), media_type,
						   sizeof(media_type), &size) < 0)
	{
		answer_error(x, 500, "internal_error", "internal error", 0);
		snprintf(x->detail, sizeof(x->detail), "unexpected preimage result");
		return;
	}
	preimage_headers(&h, p->param);
	answer(x, 200, media_type, PQgetvalue(res, 0, 1), (size_t) PQgetlength(res, 0, 1), h.data);
	buf_free(&h);
}

/* HEAD of a preimage, or 304: the headers GET would send, from the meta alone. */
void
preimage_answer_head(struct exchange *x, struct plan *p, PGresult *res)
{
	char		media_type[256];
	long long	size = -1;
	struct buf	h = BUF_INIT;
	const char *meta = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0) ? PQgetvalue(res, 0, 0) : NULL;

	if (meta == NULL || meta_fields(meta, strlen(meta), media_type, sizeof(media_type), &size) < 0)
	{
		answer_error(x, 500, "internal_error", "internal error", 0);
		snprintf(x->detail, sizeof(x->detail), "unexpected preimage meta");
		return;
	}
	preimage_headers(&h, p->param);
	if (p->not_modified)
		answer_sized(x, 304, NULL, NULL, 0, -1, h.data);
	else
		answer_sized(x, 200, media_type, NULL, 0, size, h.data);
	buf_free(&h);
}

/* Where a streamed answer is. */
struct stream
{
	int			started;		/* the headers are out */
	long long	size;			/* what Content-Length promised */
	long long	sent;
	int			client_gone;
};

/* One row: the meta (first row: the headers go out), and a chunk of the bytes. */
static int
stream_row(struct exchange *x, struct plan *p, struct stream *st, PGresult *row)
{
	if (!st->started)
	{
		char		media_type[256];
		struct buf	h = BUF_INIT;

		if (PQgetisnull(row, 0, 0) || meta_fields(PQgetvalue(row, 0, 0), (size_t) PQgetlength(row, 0, 0),
												  media_type, sizeof(media_type), &st->size) < 0)
			return -1;
		preimage_headers(&h, p->param);
		answer_sized(x, 200, media_type, NULL, 0, st->size, h.data);
		buf_free(&h);
		st->started = 1;
	}
	if (!st->client_gone && !PQgetisnull(row, 0, 1) && PQgetlength(row, 0, 1) > 0)
	{
		int			n = PQgetlength(row, 0, 1);

		if (mg_write(x->conn, PQgetvalue(row, 0, 1), (size_t) n) != n)
			st->client_gone = 1;
		else
			st->sent += n;
	}
	x->bytes = (size_t) st->sent;
	return 0;
}

/*
 * Streams the preimage's bytes (see the top of this file).  Returns 1 when
 * the request is answered, 0 when the catalog lacks jam_read_preimage and
 * the caller should run the statement of old (p->sql).
 */
int
preimage_stream(struct exchange *x, struct plan *p)
{
	for (int attempt = 1; attempt <= 2; attempt++)
	{
		int			retry_after;
		char		why[320];
		struct pool_conn *c = pool_acquire(x->shim->pool, &retry_after, why, sizeof(why));
		PGresult   *res;
		struct error_answer e;
		struct stream st = {0};
		int			failed = 0;

		memset(&e, 0, sizeof(e));
		if (c == NULL)
		{
			snprintf(x->detail, sizeof(x->detail), "%s", why);
			if (pool_closing(x->shim->pool))
				answer_shutting_down(x);
			else
				answer_error(x, 503, "database_unavailable", "the database is unavailable; retry later",
							 retry_after);
			return 1;
		}
		res = pool_send_rows(x->shim->pool, c, p->stream_sql.data, p->nparams, p->types, p->values,
							 p->lengths, p->formats, 1);
		while (res != NULL || (res = PQgetResult(pool_pg(c))) != NULL)
		{
			ExecStatusType status = PQresultStatus(res);

			if (status == PGRES_SINGLE_TUPLE && !failed)
			{
				if (stream_row(x, p, &st, res) < 0)
				{
					failed = 1;
					snprintf(x->detail, sizeof(x->detail), "unexpected preimage rows");
					pool_cancel(x->shim->pool, c);
				}
				else if (st.client_gone)
				{
					/* Nobody reads what follows: stop it in Postgres, drain what was sent. */
					failed = 1;
					snprintf(x->detail, sizeof(x->detail), "the client went away after %lld bytes", st.sent);
					pool_cancel(x->shim->pool, c);
				}
			}
			else if (status != PGRES_SINGLE_TUPLE && status != PGRES_TUPLES_OK && !failed)
			{
				failed = 2;
				error_from_result(res, pool_pg(c), &e);
			}
			PQclear(res);
			res = NULL;
		}
		pool_release(x->shim->pool, c);

		if (failed == 2 && !st.started)
		{
			if (strcmp(e.sqlstate, UNDEFINED_FUNCTION) == 0)
				return 0;
			if (e.connection_lost && attempt == 1 && !pool_closing(x->shim->pool))
				continue;
			if (e.status >= 500)
				snprintf(x->detail, sizeof(x->detail), "%s%s%s", e.sqlstate, e.sqlstate[0] ? ": " : "",
						 e.detail);
			answer_error(x, e.status, e.code, e.message, e.retry_after);
			return 1;
		}
		if (!st.started)
		{
			answer_error(x, 500, "internal_error", "internal error", 0);
			if (!x->detail[0])
				snprintf(x->detail, sizeof(x->detail), "no preimage rows");
			return 1;
		}
		if (failed || st.sent != st.size)
		{
			/* The body is cut short: only closing the connection says so now. */
			x->close = 1;
			mg_disable_connection_keep_alive(x->conn);
			if (!x->detail[0])
				snprintf(x->detail, sizeof(x->detail), "%s after %lld of %lld bytes",
						 failed == 2 ? e.detail : "the rows ended", st.sent, st.size);
		}
		return 1;
	}
	return 1;
}
