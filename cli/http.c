/*
 * http.c: talking to the shim with libcurl.
 *
 * One easy handle for the whole run, so that the verbs that make several
 * requests (lists with --all, submit --with-receipt) reuse one kept-alive
 * connection.
 *
 * Retries are for answers that say nothing was done: 429 (the rate or
 * quota refused it before anything was written), 503 (Postgres down, the
 * shim busy or stopping: the shim's contract is that nothing of the request
 * was written), and connections that could not be opened at all.  A
 * connection lost after the request went out is not retried: the request
 * may have been done (POST /jam/process would then process a second
 * package).
 */
#include "http.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "errors.h"
#include "jamctl.h"
#include "progress.h"
#include "token.h"
#include "util.h"

/* The longest wait jamctl accepts from Retry-After, so that a confused server cannot park it for a day. */
#define MAX_RETRY_WAIT 600

static CURL *curl;

/* Where the body of one attempt goes. */
struct sink_state
{
	const struct http_req *req;
	struct http_resp *resp;
	size_t		cap;
	int			aborted;
};

static void
cleanup(void)
{
	if (curl)
		curl_easy_cleanup(curl);
	curl_global_cleanup();
}

static CURL *
handle(void)
{
	if (!curl)
	{
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || !(curl = curl_easy_init()))
			jc_die(JC_ERROR, "curl_unavailable", "libcurl could not start");
		atexit(cleanup);
	}
	return curl;
}

static void
keep(struct sink_state *st, const char *data, size_t n)
{
	struct http_resp *r = st->resp;

	if (r->len + n + 1 > st->cap)
	{
		st->cap = (r->len + n + 1) * 2;
		r->body = xrealloc(r->body, st->cap);
	}
	memcpy(r->body + r->len, data, n);
	r->len += n;
	r->body[r->len] = '\0';
}

/* A 2xx body goes to the request's sink, if it has one; anything else is kept. */
static size_t
on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct sink_state *st = ctx;
	size_t		n = size * nmemb;
	long		status = 0;

	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (st->req->sink && status >= 200 && status < 300)
	{
		if (st->req->sink((const unsigned char *) data, n, st->req->sink_ctx) != 0)
		{
			st->aborted = 1;
			return 0;
		}
		return n;
	}
	keep(st, data, n);
	return n;
}

static void
header_value(const char *line, size_t n, size_t name_len, char *out, size_t out_size)
{
	const char *v = line + name_len;
	const char *end = line + n;
	size_t		len;

	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
		end--;
	len = (size_t) (end - v);
	if (len >= out_size)
		len = out_size - 1;
	memcpy(out, v, len);
	out[len] = '\0';
}

/* The headers jamctl uses; a new status line (after a 100 Continue) starts afresh. */
static size_t
on_header(char *line, size_t size, size_t nmemb, void *ctx)
{
	struct http_resp *r = ctx;
	size_t		n = size * nmemb;
	char		len_text[32];

	if (n >= 5 && strncmp(line, "HTTP/", 5) == 0)
	{
		r->content_type[0] = r->retry_after[0] = '\0';
		r->content_length = -1;
	}
	else if (n > 13 && strncasecmp(line, "content-type:", 13) == 0)
		header_value(line, n, 13, r->content_type, sizeof(r->content_type));
	else if (n > 12 && strncasecmp(line, "retry-after:", 12) == 0)
		header_value(line, n, 12, r->retry_after, sizeof(r->retry_after));
	else if (n > 15 && strncasecmp(line, "content-length:", 15) == 0)
	{
		header_value(line, n, 15, len_text, sizeof(len_text));
		r->content_length = strtoll(len_text, NULL, 10);
	}
	return n;
}

static int
on_progress(void *ctx, curl_off_t dl_total, curl_off_t dl_now, curl_off_t ul_total, curl_off_t ul_now)
{
	progress_update((double) dl_total, (double) dl_now, (double) ul_total, (double) ul_now);
	return 0;
}

/* Seconds Retry-After asks for: delta-seconds or an HTTP date; 1 when absent or unreadable. */
static long
retry_wait(const struct http_resp *r)
{
	long		n;

	if (r->retry_after[0] == '\0')
		return 1;
	if (parse_long(r->retry_after, 0, 1L << 30, &n) == 0)
		return n < MAX_RETRY_WAIT ? n : MAX_RETRY_WAIT;
	{
		time_t		when = curl_getdate(r->retry_after, NULL);
		time_t		now = time(NULL);

		if (when < 0)
			return 1;
		n = when > now ? (long) (when - now) : 0;
		return n < MAX_RETRY_WAIT ? n : MAX_RETRY_WAIT;
	}
}

/* The error code and message of a non-2xx answer: the shim's JSON, or what the status says. */
static void
parse_error(struct http_resp *r)
{
	json_object *doc = r->body ? json_tokener_parse((const char *) r->body) : NULL;
	json_object *v;

	snprintf(r->code, sizeof(r->code), "http_%ld", r->status);
	snprintf(r->message, sizeof(r->message), "the server answered HTTP %ld", r->status);
	if (doc && json_object_is_type(doc, json_type_object))
	{
		if (json_object_object_get_ex(doc, "code", &v) && json_object_is_type(v, json_type_string))
			snprintf(r->code, sizeof(r->code), "%s", json_object_get_string(v));
		if (json_object_object_get_ex(doc, "error", &v) && json_object_is_type(v, json_type_string))
			snprintf(r->message, sizeof(r->message), "%s", json_object_get_string(v));
	}
	else if (r->len > 0 && r->len < 200)
		snprintf(r->message, sizeof(r->message), "HTTP %ld: %s", r->status, (const char *) r->body);
	json_object_put(doc);
}

/* One attempt; returns the curl result. */
static CURLcode
attempt(const struct http_req *req, struct http_resp *resp, struct curl_slist *headers, const char *url)
{
	CURL	   *c = handle();
	struct sink_state st = {req, resp, 0, 0};
	CURLcode	rc;

	free(resp->body);
	memset(resp, 0, sizeof(*resp));
	resp->content_length = -1;

	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "jamctl/" JAMCTL_VERSION);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, jc.timeout);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &st);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, resp);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	/* Only http and https, also across redirects (which jamctl does not follow anyway). */
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	if (strcmp(req->method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else if (strcmp(req->method, "POST") == 0)
	{
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body ? req->body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) req->body_len);
	}
	else if (strcmp(req->method, "GET") != 0)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);

	progress_begin(NULL);
	rc = curl_easy_perform(c);
	progress_end();
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
	if (st.aborted)
		rc = CURLE_WRITE_ERROR;
	if (!resp->body)
	{
		resp->body = xmalloc(1);
		resp->body[0] = '\0';
	}
	return rc;
}

void
http_do(const struct http_req *req, struct http_resp *resp)
{
	const char *base = jc.url;
	size_t		base_len = strlen(base);
	char	   *url;
	struct curl_slist *headers = NULL;
	const char *token = token_get();
	char	   *auth = NULL;

	while (base_len > 0 && base[base_len - 1] == '/')
		base_len--;
	url = xasprintf("%.*s%s", (int) base_len, base, req->path);
	if (token)
	{
		auth = xasprintf("Authorization: Bearer %s", token);
		headers = curl_slist_append(headers, auth);
	}
	if (req->content_type)
	{
		char	   *ct = xasprintf("Content-Type: %s", req->content_type);

		headers = curl_slist_append(headers, ct);
		free(ct);
	}

	memset(resp, 0, sizeof(*resp));
	for (int tries = 0;; tries++)
	{
		CURLcode	rc = attempt(req, resp, headers, url);
		int			can_retry = tries < jc.retry;
		long		wait;

		if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST)
		{
			if (!can_retry)
				jc_die(JC_UNAVAILABLE, "connection_failed", "cannot reach %.*s: %s",
					   (int) base_len, base, curl_easy_strerror(rc));
			/* No Retry-After without an answer: back off 1, 2, 4, ... 30 seconds. */
			wait = tries < 5 ? 1L << tries : 30;
			jc_note("cannot reach %.*s; retrying in %ld s (%d of %d)", (int) base_len, base, wait,
					tries + 1, jc.retry);
		}
		else if (rc == CURLE_WRITE_ERROR)
			jc_die(JC_ERROR, "write_failed", "the answer could not be written out");
		else if (rc == CURLE_OPERATION_TIMEDOUT)
			jc_die(JC_UNAVAILABLE, "timeout", "%s %s took longer than --timeout %ld s",
				   req->method, req->path, jc.timeout);
		else if (rc != CURLE_OK)
			jc_die(JC_UNAVAILABLE, "connection_failed", "%s %.*s%s: %s", req->method,
				   (int) base_len, base, req->path, curl_easy_strerror(rc));
		else if ((resp->status == 429 || resp->status == 503) && can_retry)
		{
			parse_error(resp);
			wait = retry_wait(resp);
			jc_note("%s (HTTP %ld); retrying in %ld s (%d of %d)", resp->code, resp->status, wait,
					tries + 1, jc.retry);
		}
		else
			break;
		sleep((unsigned) wait);
	}
	if (resp->status < 200 || resp->status >= 300)
		parse_error(resp);
	curl_slist_free_all(headers);
	if (auth)
	{
		memset(auth, 0, strlen(auth));
		free(auth);
	}
	free(url);
}

void
http_fail(const struct http_resp *r)
{
	int			code = jc_exit_for(r->status, r->code);

	/* A refusal for want of a token says where a token goes. */
	if (r->status == 401 && !token_get())
		jc_die(code, r->code, "%s (no token given: use --token-file FILE, JAM_TOKEN or JAM_TOKEN_FILE)",
			   r->message);
	/* The shim's "no such route": an older shim without this route. */
	if (r->status == 404 && strcmp(r->code, "not_found") == 0)
		jc_die(code, r->code, "%s: this jam-shim does not serve the route jamctl needs (too old?)",
			   r->message);
	jc_die(code, r->code, "%s", r->message);
}

json_object *
http_json(const struct http_resp *r)
{
	enum json_tokener_error err = json_tokener_success;
	json_object *doc = json_tokener_parse_verbose((const char *) r->body, &err);

	if (err != json_tokener_success || (r->len > 0 && strlen((const char *) r->body) != r->len))
		jc_die(JC_ERROR, "bad_response", "the server's answer (HTTP %ld) is not JSON", r->status);
	return doc;
}

void
http_resp_free(struct http_resp *r)
{
	free(r->body);
	r->body = NULL;
}

json_object *
api_get(const char *path)
{
	struct http_req req = {.method = "GET", .path = path};
	struct http_resp resp;
	json_object *doc;

	http_do(&req, &resp);
	if (resp.status < 200 || resp.status >= 300)
		http_fail(&resp);
	doc = http_json(&resp);
	http_resp_free(&resp);
	return doc;
}

json_object *
api_getf(const char *fmt,...)
{
	va_list		ap;
	char	   *path;
	json_object *doc;

	va_start(ap, fmt);
	path = xvasprintf(fmt, ap);
	va_end(ap);
	doc = api_get(path);
	free(path);
	return doc;
}

json_object *
api_send(const char *method, const char *path, json_object *body, long *status)
{
	const char *text = body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN) : NULL;
	struct http_req req = {
		.method = method,
		.path = path,
		.content_type = text ? "application/json" : NULL,
		.body = text,
		.body_len = text ? strlen(text) : 0,
	};
	struct http_resp resp;
	json_object *doc = NULL;

	http_do(&req, &resp);
	if (resp.status < 200 || resp.status >= 300)
		http_fail(&resp);
	if (status)
		*status = resp.status;
	if (resp.status != 204 && resp.len > 0)
		doc = http_json(&resp);
	http_resp_free(&resp);
	return doc;
}

char *
url_escape(const char *s)
{
	char	   *e = curl_easy_escape(handle(), s, 0);
	char	   *out;

	if (!e)
		jc_die(JC_ERROR, "out_of_memory", "cannot escape a URL");
	out = xstrdup(e);
	curl_free(e);
	return out;
}
