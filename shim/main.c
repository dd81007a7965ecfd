/*
 * main.c: jam-shim's entry point: settings, the HTTP server, signals.
 *
 * SIGTERM and SIGINT are blocked in every thread and taken here with
 * sigwait, so no handler runs inside civetweb or libpq; mg_stop() then
 * stops accepting and waits for the requests in flight to be answered.
 */
#include <civetweb.h>
#include <dlfcn.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "handler.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "shim.h"

/* civetweb's own diagnostics, as log lines like the shim's. */
static int
civetweb_log(const struct mg_connection *conn, const char *message)
{
	(void) conn;
	log_event("warning", "civetweb: %s", message);
	return 1;
}

/*
 * Loads libjam-tls-compat.so from beside the executable, so that civetweb's
 * run-time dlopen("libssl.so") finds OpenSSL 3 with the one function name
 * it still expects (see shim/tls/compat.c).  Returns -1 with a message
 * when it cannot.
 */
static int
load_tls_compat(char *err, size_t err_size)
{
	char		exe[PATH_MAX];
	char		path[PATH_MAX + 32];
	ssize_t		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n <= 0)
	{
		snprintf(err, err_size, "cannot find the executable's folder");
		return -1;
	}
	exe[n] = '\0';
	snprintf(path, sizeof(path), "%s/libjam-tls-compat.so", dirname(exe));
	if (dlopen(path, RTLD_NOW | RTLD_GLOBAL) == NULL)
	{
		snprintf(err, err_size, "cannot load the TLS compatibility library: %.500s", dlerror());
		return -1;
	}
	return 0;
}

/* Reads the settings, serves until SIGTERM or SIGINT, then stops cleanly. */
int
main(int argc, char **argv)
{
	static struct shim shim;
	struct mg_callbacks callbacks;
	struct mg_context *ctx;
	const char *config_file = NULL;
	char		err[600];
	char		ports[96],
				threads[16],
				timeout[16];
	const char *options[32];
	int			n = 0;
	sigset_t	stop_signals;
	int			sig;

	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
		{
			config_usage(argv[0]);
			return 0;
		}
		else if (strcmp(argv[i], "--version") == 0)
		{
			printf("jam-shim %s (civetweb %s)\n", SHIM_VERSION, mg_version());
			return 0;
		}
		else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			config_file = argv[++i];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			config_file = argv[i] + 9;
		else
		{
			fprintf(stderr, "%s: unknown argument \"%s\" (see --help)\n", argv[0], argv[i]);
			return 2;
		}
	}

	config_defaults(&shim.config);
	if ((config_file && config_load_file(&shim.config, config_file, err, sizeof(err)) < 0) ||
		config_load_env(&shim.config, err, sizeof(err)) < 0 ||
		config_finish(&shim.config, err, sizeof(err)) < 0)
	{
		fprintf(stderr, "%s: %s\n", argv[0], err);
		return 2;
	}

	/* Blocked before any thread starts, so that every thread inherits it. */
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGTERM);
	sigaddset(&stop_signals, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

	if (shim.config.tls_cert[0])
	{
		if (!mg_check_feature(MG_FEATURES_TLS))
		{
			fprintf(stderr, "%s: this civetweb was built without TLS; unset tls_cert\n", argv[0]);
			return 2;
		}
		if (load_tls_compat(err, sizeof(err)) < 0)
		{
			fprintf(stderr, "%s: %s\n", argv[0], err);
			return 2;
		}
		mg_init_library(MG_FEATURES_TLS);
	}
	else
		mg_init_library(0);

	shim.started = shim_now();
	shim.started_wall = time(NULL);
	shim.pool = pool_create(shim.config.dsn, shim.config.pool_size, shim.config.pool_wait_ms);
	{
		/*
		 * One connection now, so that a wrong DSN shows in the log at start
		 * (the shim serves anyway, answering 503 until Postgres is reachable).
		 */
		int			retry_after;
		struct pool_conn *c = pool_acquire(shim.pool, &retry_after, err, sizeof(err));

		if (c)
			pool_release(shim.pool, c);
	}

	snprintf(ports, sizeof(ports), "%s:%d%s", shim.config.listen_host, shim.config.listen_port,
			 shim.config.tls_cert[0] ? "s" : "");
	snprintf(threads, sizeof(threads), "%d", shim.config.threads);
	snprintf(timeout, sizeof(timeout), "%d", shim.config.request_timeout_ms);
	options[n++] = "listening_ports";
	options[n++] = ports;
	options[n++] = "num_threads";
	options[n++] = threads;
	options[n++] = "request_timeout_ms";
	options[n++] = timeout;
	options[n++] = "enable_keep_alive";
	options[n++] = shim.config.keep_alive ? "yes" : "no";
	/*
	 * civetweb gives each connection a worker thread until it closes: an
	 * idle keep-alive connection holds one for at most this long.
	 */
	options[n++] = "keep_alive_timeout_ms";
	options[n++] = "1000";
	/* Answers go out in one write; nothing is gained by delaying the last segment. */
	options[n++] = "tcp_nodelay";
	options[n++] = "1";
	/* Routing decodes path segments itself (an encoded '/' stays inside its segment). */
	options[n++] = "decode_url";
	options[n++] = "no";
	options[n++] = "connection_queue";
	options[n++] = "256";
	options[n++] = "listen_backlog";
	options[n++] = "512";
	if (shim.config.tls_cert[0])
	{
		options[n++] = "ssl_certificate";
		options[n++] = shim.config.tls_cert;
	}
	options[n] = NULL;

	log_start();
	memset(&callbacks, 0, sizeof(callbacks));
	callbacks.http_error = handle_http_error;
	callbacks.log_message = civetweb_log;
	ctx = mg_start(&callbacks, &shim, options);
	if (ctx == NULL)
	{
		log_event("fatal", "cannot listen on %s (address in use, or a bad tls_cert?)", ports);
		log_stop();
		pool_destroy(shim.pool);
		return 1;
	}
	mg_set_request_handler(ctx, "**", handle_request, &shim);
	log_event("info", "jam-shim %s listening on %s://%s:%d (pool %d, threads %d, max body %lld bytes,"
			  " max batch body %lld bytes)",
			  SHIM_VERSION, shim.config.tls_cert[0] ? "https" : "http", shim.config.listen_host,
			  shim.config.listen_port, shim.config.pool_size, shim.config.threads,
			  shim.config.max_body_bytes, shim.config.max_batch_body_bytes);

	while (sigwait(&stop_signals, &sig) != 0)
		;
	/*
	 * civetweb stops writing answers as soon as mg_stop begins, so the
	 * requests in flight finish first; requests that arrive meanwhile are
	 * refused with 503 and Connection: close.
	 */
	log_event("info", "signal %d: finishing the requests in flight", sig);
	atomic_store(&shim.stopping, 1);
	for (double waited = 0; metrics_get_in_flight() > 0 && waited * 1000 < shim.config.request_timeout_ms;
		 waited += 0.01)
		usleep(10000);
	mg_stop(ctx);
	log_stop();
	pool_destroy(shim.pool);
	mg_exit_library();
	log_event("info", "stopped");
	return 0;
}
