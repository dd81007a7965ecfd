/*
 * blob_store.c: requests to the S3-compatible store, through libcurl.
 *
 * Every request is bounded (jam.blob_store_connect_timeout to connect,
 * jam.blob_store_timeout in all), interruptible (libcurl's progress
 * callback stops the transfer when a cancel or a shutdown is pending,
 * then CHECK_FOR_INTERRUPTS raises it; nothing in libcurl's frames is
 * ever jumped over), and retried jam.blob_store_retries times, with a
 * short backoff, when the store could not be reached or answered 5xx or
 * 429.  What still fails raises blob_store_unavailable at once, with
 * "Retry after N seconds." for the shim's Retry-After; a store that
 * refuses (403: bad credentials or signature) fails without retries.
 *
 * Requests are signed with SigV4 (s3_sign.c) and carry the payload's real
 * SHA-256, which S3 checks against the bytes it receives.  Bodies are read
 * into memory the caller sized beforehand (an object's recorded size), so
 * that no allocation, which could raise an error, happens inside libcurl's
 * callbacks.  One easy handle is kept per backend, so connections to the
 * store are reused.  The caller holds no lock a request could prolong but
 * what it must (blob_tier.c's advisory lock on the hash).
 */
#include "jam.h"
#include "blob.h"
#include "errors.h"
#include "sha256.h"

#include <curl/curl.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "portability/instr_time.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

/* SHA-256 of no bytes: the payload hash of GET, HEAD, DELETE and LIST. */
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* A listing page of 1000 keys is about 300 kB of XML; more is refused. */
#define LIST_PAGE_MAX (8 * 1024 * 1024)

/* Backoff before retry i (from 0): 100 ms, 200 ms, 400 ms ..., at most 2 s. */
#define BACKOFF_MS(i) Min(100L << Min((i), 5), 2000L)

static CURL *handle = NULL;
static bool curl_ready = false;

/* What a request sends and where its answer goes. */
typedef struct Transfer
{
	const char *upload;			/* PUT: the body */
	Size		upload_len;
	Size		uploaded;
	char	   *download;		/* GET, LIST: room for the body */
	Size		download_cap;
	Size		downloaded;
	bool		overflow;		/* the body did not fit */
	bool		interrupted;	/* the progress callback stopped it */
	char		etag[80];		/* HEAD: the object's ETag, unquoted ("" when none) */
} Transfer;

static size_t
read_body(char *buf, size_t size, size_t nitems, void *arg)
{
	Transfer   *t = arg;
	Size		n = Min(size * nitems, t->upload_len - t->uploaded);

	memcpy(buf, t->upload + t->uploaded, n);
	t->uploaded += n;
	return n;
}

static size_t
write_body(char *data, size_t size, size_t nmemb, void *arg)
{
	Transfer   *t = arg;
	Size		n = size * nmemb;

	if (t->download == NULL || n > t->download_cap - t->downloaded)
	{
		t->overflow = true;
		return 0;				/* libcurl stops with CURLE_WRITE_ERROR */
	}
	memcpy(t->download + t->downloaded, data, n);
	t->downloaded += n;
	return n;
}

/* Keeps the ETag header of an answer. */
static size_t
header_line(char *line, size_t size, size_t nitems, void *arg)
{
	Transfer   *t = arg;
	size_t		n = size * nitems;

	if (n > 5 && pg_strncasecmp(line, "etag:", 5) == 0)
	{
		size_t		start = 5;
		size_t		end = n;

		while (start < end && (line[start] == ' ' || line[start] == '"'))
			start++;
		while (end > start && (line[end - 1] == '\r' || line[end - 1] == '\n' ||
							   line[end - 1] == ' ' || line[end - 1] == '"'))
			end--;
		if (end - start < sizeof(t->etag))
		{
			memcpy(t->etag, line + start, end - start);
			t->etag[end - start] = '\0';
		}
	}
	return n;
}

/*
 * Called by libcurl about once a second and whenever data moves: stops
 * the transfer when this process has a cancel or shutdown to act on.
 */
static int
progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	Transfer   *t = arg;

	if ((InterruptPending && INTERRUPTS_CAN_BE_PROCESSED() && (QueryCancelPending || ProcDiePending)) ||
		ShutdownRequestPending)
	{
		t->interrupted = true;
		return 1;
	}
	return 0;
}

/* The easy handle, made once per backend (libcurl's global state too). */
static CURL *
easy_handle(void)
{
	if (!curl_ready)
	{
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			ereport(ERROR,
					(jam_errcode(JAM_ERR_BLOB_STORE_UNAVAILABLE),
					 errmsg("libcurl could not be initialised"),
					 errdetail("Retry after %d seconds.", JAM_BLOB_RETRY_AFTER_S)));
		curl_ready = true;
	}
	if (handle == NULL)
		handle = curl_easy_init();
	else
		curl_easy_reset(handle);	/* keeps the connections */
	if (handle == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory for a blob store request")));
	return handle;
}

/* The <Code> of an S3 error document, or "" when there is none. */
static char *
error_code(const char *xml, Size len)
{
	char	   *copy = pnstrdup(xml, len);
	char	   *start = strstr(copy, "<Code>");
	char	   *end;

	if (start == NULL)
		return "";
	start += strlen("<Code>");
	end = strstr(start, "</Code>");
	if (end == NULL || end - start > 64)
		return "";
	*end = '\0';
	return start;
}

/* How one attempt ended. */
typedef struct Attempt
{
	CURLcode	rc;
	long		status;			/* HTTP status; 0 without an answer */
	curl_off_t	content_length; /* HEAD: the object's size, -1 when not given */
	char		error[CURL_ERROR_SIZE];
	char		code[80];		/* S3's error code, from an error answer */
} Attempt;

/*
 * One attempt at a request: method on the object key (NULL: the bucket,
 * with query, already canonical), sending t->upload, its answer into
 * t->download.  Counts it.  A transfer stopped for an interrupt raises it.
 */
static void
attempt(JamBlobOp op, const char *key, const char *query, Transfer *t,
		const char *payload_sha256, Attempt *a)
{
	CURL	   *h = easy_handle();
	const S3Credentials *creds = jam_blob_credentials();
	struct curl_slist *headers = NULL;
	char	   *url;
	bool		error_answer;
	instr_time	start,
				elapsed;
	JamBlobOutcome outcome;
	curl_off_t	sent = 0,
				received = 0;

	url = psprintf("%s%s%s%s", jam_blob_bucket_url(), key ? key : "", query ? "?" : "", query ? query : "");
	memset(a, 0, sizeof(*a));
	a->content_length = -1;

	if (op == JAM_BLOB_PUT)
		headers = curl_slist_append(headers, "Content-Type: application/octet-stream");
	if (s3_sign_request(h, jam_blob_store_region, "s3", creds, payload_sha256, &headers) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory for a blob store request")));

	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long) jam_blob_store_connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long) jam_blob_store_timeout_ms);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, a->error);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, t);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "jam (PostgreSQL extension)");
	switch (op)
	{
		case JAM_BLOB_PUT:
			curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
			curl_easy_setopt(h, CURLOPT_READFUNCTION, read_body);
			curl_easy_setopt(h, CURLOPT_READDATA, t);
			curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t) t->upload_len);
			break;
		case JAM_BLOB_HEAD:
			curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
			curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_line);
			curl_easy_setopt(h, CURLOPT_HEADERDATA, t);
			break;
		case JAM_BLOB_DELETE:
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
			break;
		case JAM_BLOB_GET:
		case JAM_BLOB_LIST:
			break;
		default:
			elog(ERROR, "unknown blob store operation %d", (int) op);
	}

	/*
	 * The answer's body goes to t until the status is known: an error
	 * answer's body is then small, and written where its code is read.
	 */
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(h, CURLOPT_FAILONERROR, 0L);

	pgstat_report_wait_start(PG_WAIT_EXTENSION);
	INSTR_TIME_SET_CURRENT(start);
	PG_TRY();
	{
		a->rc = curl_easy_perform(h);
	}
	PG_FINALLY();
	{
		pgstat_report_wait_end();
		curl_slist_free_all(headers);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
		curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	}
	PG_END_TRY();
	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, start);

	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->status);
	curl_easy_getinfo(h, CURLINFO_SIZE_UPLOAD_T, &sent);
	curl_easy_getinfo(h, CURLINFO_SIZE_DOWNLOAD_T, &received);
	if (op == JAM_BLOB_HEAD)
		curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &a->content_length);

	/*
	 * An error answer's body landed in t, where its code is read; that it
	 * did not fit there does not matter: the answer is the status.
	 */
	error_answer = a->status >= 300;
	if (error_answer)
	{
		if (t->download != NULL && t->downloaded > 0)
			strlcpy(a->code, error_code(t->download, t->downloaded), sizeof(a->code));
		if (a->rc == CURLE_WRITE_ERROR)
			a->rc = CURLE_OK;
		t->downloaded = 0;
		t->overflow = false;
	}

	outcome = a->rc != CURLE_OK ? JAM_BLOB_OUTCOME_ERROR
		: a->status == 404 ? JAM_BLOB_OUTCOME_NOT_FOUND
		: a->status >= 200 && a->status < 300 ? JAM_BLOB_OUTCOME_OK
		: JAM_BLOB_OUTCOME_ERROR;
	jam_blob_metrics_request(op, outcome, INSTR_TIME_GET_MICROSEC(elapsed),
							 (uint64) Max(sent, 0), (uint64) Max(received, 0));
	if (t->interrupted)
	{
		CHECK_FOR_INTERRUPTS();
		/* A shutdown request of a background worker: its loop checks it. */
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("a blob store request was stopped: the process is stopping")));
	}
	pfree(url);
}

/* Whether an attempt failed in a way another attempt may not. */
static bool
transient(const Attempt *a)
{
	if (a->rc != CURLE_OK)
		return a->rc != CURLE_WRITE_ERROR;
	return a->status >= 500 || a->status == 429 || a->status == 408;
}

/* Raises blob_store_unavailable for a failed request. */
static void
raise_unavailable(JamBlobOp op, const char *key, const Attempt *a, int attempts)
{
	char	   *why;

	if (a->rc != CURLE_OK)
		why = psprintf("%s", a->error[0] ? a->error : curl_easy_strerror(a->rc));
	else
		why = psprintf("HTTP %ld%s%s", a->status, a->code[0] ? " " : "", a->code);
	ereport(ERROR,
			(jam_errcode(JAM_ERR_BLOB_STORE_UNAVAILABLE),
			 errmsg("the blob store failed a %s of %s: %s", jam_blob_op_label[op],
					key ? key : "the bucket", why),
			 errdetail("Retry after %d seconds.", JAM_BLOB_RETRY_AFTER_S),
			 errcontext("%d attempt%s to %s", attempts, attempts == 1 ? "" : "s",
						jam_blob_store_endpoint)));
}

/*
 * A request, retried while it fails transiently.  Returns the HTTP status
 * of the last attempt when the store answered 2xx or 404 (a missing object
 * is for the caller to judge); anything else raises blob_store_unavailable.
 */
static long
request(JamBlobOp op, const char *key, const char *query, Transfer *t,
		const char *payload_sha256, Attempt *a)
{
	int			attempts = 0;

	jam_blob_require_store("a request to the blob store");
	for (;;)
	{
		t->uploaded = 0;
		t->downloaded = 0;
		t->overflow = false;
		attempts++;
		attempt(op, key, query, t, payload_sha256, a);
		if (a->rc == CURLE_OK && ((a->status >= 200 && a->status < 300) || a->status == 404))
			return a->status;
		/* A 2xx answer larger than its room: the caller judges the object. */
		if (a->rc == CURLE_WRITE_ERROR && t->overflow)
			return a->status;
		if (!transient(a) || attempts > jam_blob_store_retries)
			raise_unavailable(op, key, a, attempts);
		jam_blob_metrics_retry();
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 BACKOFF_MS(attempts - 1), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* Hex SHA-256 of len bytes. */
static void
sha256_hex(const char *data, Size len, char out[S3_SHA256_HEX_LEN])
{
	JamSha256Part whole = {data, len};
	uint8		digest[JAM_SHA256_BYTES];

	jam_sha256(&whole, 1, digest);
	jam_hex_encode(digest, sizeof(digest), out);
	out[64] = '\0';
}

/* Stores len bytes as the object of hash_hex (overwriting: the key is its content's). */
void
jam_blob_store_put(const char *hash_hex, const char *data, Size len)
{
	char		key[JAM_BLOB_KEY_MAX];
	char		sha[S3_SHA256_HEX_LEN];
	Transfer	t;
	Attempt		a;
	char		reply[1024];

	jam_blob_object_key(hash_hex, key);
	sha256_hex(data, len, sha);
	memset(&t, 0, sizeof(t));
	t.upload = data;
	t.upload_len = len;
	t.download = reply;
	t.download_cap = sizeof(reply);
	if (request(JAM_BLOB_PUT, key, NULL, &t, sha, &a) == 404)
	{
		/* 404 to a PUT: the bucket is missing, which no retry mends. */
		strlcpy(a.code, "NoSuchBucket", sizeof(a.code));
		raise_unavailable(JAM_BLOB_PUT, key, &a, 1);
	}
}

/*
 * The object of hash_hex, which should have size bytes; NULL when the
 * store has no such object.  *too_large says that it had more bytes than
 * size (the rest is not read).  The bytes are not checked here.
 */
bytea *
jam_blob_store_get(const char *hash_hex, int64 size, bool *too_large)
{
	char		key[JAM_BLOB_KEY_MAX];
	bytea	   *out = palloc(VARHDRSZ + size + 1);
	Transfer	t;
	Attempt		a;
	long		status;

	jam_blob_object_key(hash_hex, key);
	memset(&t, 0, sizeof(t));
	/* One byte more than the recorded size: a larger object shows as such. */
	t.download = VARDATA(out);
	t.download_cap = size + 1;
	status = request(JAM_BLOB_GET, key, NULL, &t, EMPTY_SHA256, &a);
	*too_large = t.overflow || t.downloaded > (Size) size;
	if (status == 404)
	{
		pfree(out);
		return NULL;
	}
	SET_VARSIZE(out, VARHDRSZ + Min(t.downloaded, (Size) size));
	return out;
}

/*
 * Whether the object of hash_hex exists; its size in *size, and its ETag
 * (unquoted, at most 79 characters) in etag when not NULL.
 */
bool
jam_blob_store_head(const char *hash_hex, int64 *size, char *etag)
{
	char		key[JAM_BLOB_KEY_MAX];
	Transfer	t;
	Attempt		a;

	jam_blob_object_key(hash_hex, key);
	memset(&t, 0, sizeof(t));
	if (request(JAM_BLOB_HEAD, key, NULL, &t, EMPTY_SHA256, &a) == 404)
		return false;
	*size = a.content_length;
	if (etag != NULL)
		strlcpy(etag, t.etag, 80);
	return true;
}

/* Deletes the object of hash_hex; a missing object is no error (S3 answers 204 anyway). */
void
jam_blob_store_delete(const char *hash_hex)
{
	char		key[JAM_BLOB_KEY_MAX];
	Transfer	t;
	Attempt		a;
	char		reply[1024];

	jam_blob_object_key(hash_hex, key);
	memset(&t, 0, sizeof(t));
	t.download = reply;
	t.download_cap = sizeof(reply);
	(void) request(JAM_BLOB_DELETE, key, NULL, &t, EMPTY_SHA256, &a);
}

/*
 * One page (up to 1000 keys) of ListObjectsV2 under jam's prefix, from
 * continuation (NULL: the first page), as the store's XML; *len its size.
 */
char *
jam_blob_store_list_page(const char *continuation, Size *len)
{
	S3QueryParam params[4];
	int			n = 0;
	char	   *prefix = jam_blob_key_prefix();
	Size		cap = LIST_PAGE_MAX;
	char		query[8192];
	char	   *xml = palloc(cap);
	Transfer	t;
	Attempt		a;

	params[n].name = "list-type";
	params[n++].value = "2";
	params[n].name = "max-keys";
	params[n++].value = "1000";
	params[n].name = "prefix";
	params[n++].value = prefix;
	if (continuation != NULL)
	{
		params[n].name = "continuation-token";
		params[n++].value = continuation;
	}
	/* libcurl signs the query as given: it must be canonical already. */
	if (s3_canonical_query(params, n, query, sizeof(query)) < 0)
		elog(ERROR, "blob store listing query is too long");

	memset(&t, 0, sizeof(t));
	t.download = xml;
	t.download_cap = cap - 1;
	if (request(JAM_BLOB_LIST, NULL, query, &t, EMPTY_SHA256, &a) == 404 || t.overflow)
	{
		strlcpy(a.code, t.overflow ? "listing page too large" : "NoSuchBucket", sizeof(a.code));
		raise_unavailable(JAM_BLOB_LIST, NULL, &a, 1);
	}
	xml[t.downloaded] = '\0';
	*len = t.downloaded;
	return xml;
}
