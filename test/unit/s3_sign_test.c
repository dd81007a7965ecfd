/*
 * s3_sign_test.c: jam's SigV4 signer (src/s3_sign.c) on a case of the AWS
 * Signature Version 4 test suite.
 *
 *   s3_sign_test CASE.req REGION SERVICE ACCESS_KEY_ID SECRET_ACCESS_KEY
 *
 * reads the case's request (a request line, then "Name:value" headers),
 * sends it with libcurl signed by s3_sign_request(), its query made
 * canonical by s3_canonical_query(), to a listener of its own on loopback
 * (CURLOPT_CONNECT_TO, so that the Host header stays the case's), and
 * prints the Authorization header that arrived there: what test/t/
 * 100_blob_sign.pl compares with the case's .authz.
 *
 *   s3_sign_test --canonical-query NAME=VALUE...
 *
 * prints the canonical query string of the parameters, as given.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "s3_sign.h"

static int	listener;
static char received[16384];

/* Accepts one connection, keeps its request head and answers 200. */
static void *
serve_one(void *unused)
{
	static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
	int			c = accept(listener, NULL, NULL);
	size_t		n = 0;

	if (c < 0)
		return NULL;
	while (n < sizeof(received) - 1 && strstr(received, "\r\n\r\n") == NULL)
	{
		ssize_t		r = read(c, received + n, sizeof(received) - 1 - n);

		if (r <= 0)
			break;
		n += (size_t) r;
		received[n] = '\0';
	}
	if (write(c, answer, sizeof(answer) - 1) < 0)
		perror("write");
	close(c);
	return NULL;
}

static char *
read_file(const char *path)
{
	FILE	   *f = fopen(path, "rb");
	static char buf[16384];
	size_t		n;

	if (f == NULL)
	{
		perror(path);
		exit(2);
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* Splits "a=b&c=d" into params (in place); returns how many. */
static int
split_query(char *q, S3QueryParam *params, int max)
{
	int			n = 0;

	for (char *part = strtok(q, "&"); part != NULL && n < max; part = strtok(NULL, "&"))
	{
		char	   *eq = strchr(part, '=');

		if (eq)
			*eq++ = '\0';
		params[n].name = part;
		params[n].value = eq ? eq : "";
		n++;
	}
	return n;
}

static int
canonical_query_mode(int argc, char **argv)
{
	S3QueryParam params[64];
	char		out[8192];
	int			n = 0;

	for (int i = 2; i < argc && n < 64; i++)
	{
		char	   *eq = strchr(argv[i], '=');

		if (eq)
			*eq++ = '\0';
		params[n].name = argv[i];
		params[n].value = eq ? eq : "";
		n++;
	}
	if (s3_canonical_query(params, n, out, sizeof(out)) < 0)
		return 1;
	printf("%s\n", out);
	return 0;
}

int
main(int argc, char **argv)
{
	char	   *req;
	char	   *line;
	char	   *save;
	char		method[16];
	char		target[4096];
	char	   *query;
	char		host[256] = "";
	char		url[16384];
	char		canonical[4096] = "";
	char		connect_to[64];
	S3QueryParam params[64];
	int			n_params = 0;
	struct curl_slist *headers = NULL;
	struct curl_slist *connect = NULL;
	struct sockaddr_in addr;
	socklen_t	addr_len = sizeof(addr);
	pthread_t	server;
	S3Credentials creds;
	CURL	   *h;
	CURLcode	rc;
	char	   *authz;

	if (argc >= 2 && strcmp(argv[1], "--canonical-query") == 0)
		return canonical_query_mode(argc, argv);
	if (argc != 6)
	{
		fprintf(stderr, "usage: %s CASE.req REGION SERVICE ACCESS_KEY_ID SECRET\n", argv[0]);
		return 2;
	}

	/* The request line, then its headers: Host makes the URL, the others go as they are. */
	req = read_file(argv[1]);
	line = strtok_r(req, "\n", &save);
	if (line == NULL || sscanf(line, "%15s %4095s", method, target) != 2)
	{
		fprintf(stderr, "%s: no request line\n", argv[1]);
		return 2;
	}
	while ((line = strtok_r(NULL, "\n", &save)) != NULL)
	{
		line[strcspn(line, "\r")] = '\0';
		if (strncasecmp(line, "Host:", 5) == 0)
			snprintf(host, sizeof(host), "%s", line + 5);
		else if (line[0] != '\0')
			headers = curl_slist_append(headers, line);
	}
	query = strchr(target, '?');
	if (query)
	{
		*query++ = '\0';
		n_params = split_query(query, params, 64);
		if (s3_canonical_query(params, n_params, canonical, sizeof(canonical)) < 0)
			return 2;
	}
	snprintf(url, sizeof(url), "http://%s%s%s%s", host, target, canonical[0] ? "?" : "", canonical);

	listener = socket(AF_INET, SOCK_STREAM, 0);
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (listener < 0 || bind(listener, (struct sockaddr *) &addr, sizeof(addr)) != 0 ||
		listen(listener, 1) != 0 || getsockname(listener, (struct sockaddr *) &addr, &addr_len) != 0)
	{
		perror("listen");
		return 2;
	}
	pthread_create(&server, NULL, serve_one, NULL);

	curl_global_init(CURL_GLOBAL_DEFAULT);
	h = curl_easy_init();
	snprintf(connect_to, sizeof(connect_to), "::127.0.0.1:%d", ntohs(addr.sin_port));
	connect = curl_slist_append(NULL, connect_to);
	creds.access_key_id = argv[4];
	creds.secret_access_key = argv[5];
	creds.session_token = NULL;
	if (s3_sign_request(h, argv[2], argv[3], &creds, NULL, &headers) != 0)
		return 2;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_CONNECT_TO, connect);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
	rc = curl_easy_perform(h);
	pthread_join(server, NULL);
	if (rc != CURLE_OK)
	{
		fprintf(stderr, "curl: %s\n", curl_easy_strerror(rc));
		return 1;
	}
	fprintf(stderr, "%s", received);

	authz = strcasestr(received, "\r\nAuthorization: ");
	if (authz == NULL)
	{
		fprintf(stderr, "no Authorization header was sent\n");
		return 1;
	}
	authz += strlen("\r\nAuthorization: ");
	authz[strcspn(authz, "\r\n")] = '\0';
	printf("%s\n", authz);

	curl_slist_free_all(headers);
	curl_slist_free_all(connect);
	curl_easy_cleanup(h);
	curl_global_cleanup();
	return 0;
}
