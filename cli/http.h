/*
 * http.h: one request to the shim, with retries, and what came back.
 */
#ifndef JAMCTL_HTTP_H
#define JAMCTL_HTTP_H

#include <stddef.h>

#include <json-c/json.h>

/* Receives a 2xx answer's body as it arrives; returns 0, or -1 to abort. */
typedef int (*http_sink) (const unsigned char *data, size_t n, void *ctx);

struct http_req
{
	const char *method;			/* GET, HEAD, POST */
	const char *path;			/* "/jam/...", escaped, with its query */
	const char *content_type;	/* of body; NULL: none */
	const void *body;
	size_t		body_len;
	http_sink	sink;			/* NULL: the body is kept in the response */
	void	   *sink_ctx;
};

struct http_resp
{
	long		status;
	unsigned char *body;		/* NUL-terminated (not counted in len) */
	size_t		len;
	char		content_type[256];
	char		retry_after[64];
	long long	content_length; /* -1 when absent */
	char		code[128];		/* an error's stable code */
	char		message[1024];	/* an error's text */
};

/*
 * Sends the request.  Refused connections, 429 and 503 are retried up to
 * --retry times, waiting as Retry-After says; a connection that still fails
 * ends jamctl (exit 5).  Any other answer is returned, whatever its status.
 */
void		http_do(const struct http_req *req, struct http_resp *resp);

/* Ends jamctl with the answer's error: "jamctl: CODE: message", its exit code. */
void		http_fail(const struct http_resp *resp) __attribute__((noreturn));

/* The answer's body as a JSON value, or exit 8 (bad_response) when it is not JSON. */
json_object *http_json(const struct http_resp *resp);

void		http_resp_free(struct http_resp *resp);

/* GET path; a 2xx JSON answer, or the error ends jamctl. */
json_object *api_get(const char *path);

/* api_get of a path built from a format (its parts already escaped or checked). */
json_object *api_getf(const char *fmt,...) __attribute__((format(printf, 1, 2)));

/* method path with a JSON body (NULL: none); the status, and the JSON answer or NULL (204). */
json_object *api_send(const char *method, const char *path, json_object *body, long *status);

/* A path segment or query value, percent-encoded (malloc'd). */
char	   *url_escape(const char *s);

#endif
