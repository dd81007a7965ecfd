/*
 * main.c: jam-shim's entry point: settings, the HTTP server, signals.
 *
 * SIGTERM and SIGINT are blocked in every thread and taken here with
 * sigwait, so no handler runs inside civetweb or libpq.  Then new requests
 * are refused (503 shutting_down), those in flight get shutdown_grace_ms
 * to finish, what still runs in Postgres after that is cancelled (its
 * requests answer 503 shutting_down, their transactions rolled back), and
 * mg_stop() closes the rest.
 */
#include <civetweb.h>
#include <dlfcn.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "accept.h"
#include "budget.h"
#include "config.h"
#include "conns.h"
#include "events.h"
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
 * civetweb's authorization step, which passes every request to the shim's
 * handler: the shim checks bearer tokens itself.  Without it civetweb looks
 * for a password file (stat("/.htpasswd")) on every request: a syscall a
 * request for nothing, and a stray file there would make civetweb demand
 * digest authentication of every client.
 */
static int
grant_every_request(struct mg_connection *conn, void *cbdata)
{
	(void) conn;
	(void) cbdata;
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

/*
 * Raises the soft limit on open descriptors to the hard one (every
 * connection holds one), sets *max_fd to it, and returns how many
 * connections fit in it, after a margin for the pool, the log and the
 * listening socket.
 */
static int
descriptor_budget(const struct shim_config *c, int *max_fd)
{
	struct rlimit rl;
	long long	fit;

	*max_fd = 1 << 20;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return c->threads;
	if (rl.rlim_cur < rl.rlim_max)
	{
		rl.rlim_cur = rl.rlim_max;
		(void) setrlimit(RLIMIT_NOFILE, &rl);
		(void) getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (rlim_t) (1 << 20))
		return c->threads;
	*max_fd = (int) rl.rlim_cur;
	fit = (long long) rl.rlim_cur - 2LL * c->pool_size - 64;
	return fit < c->threads ? (int) (fit > 1 ? fit : 1) : c->threads;
}

/* Waits until no request is in flight, at most ms milliseconds; 1 when none is left. */
static int
wait_in_flight(int ms)
{
	for (int waited = 0; metrics_get_in_flight() > 0; waited += 10)
	{
		if (waited >= ms)
			return 0;
		usleep(10000);
	}
	return 1;
}

/* How much later civetweb's own timeouts come than the shim's (see below). */
#define CIVETWEB_TIMEOUT_MARGIN_MS 1000

/* How long shutdown waits, after cancelling, for the cancelled requests to be answered. */
#define CANCEL_WAIT_MS 5000

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
				timeout[16],
				ka_timeout[16];
	struct conns_settings admission;
	int			max_fd;
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
	/*
	 * The shim's watchdog (conns.c) enforces request_timeout_ms and
	 * keep_alive_timeout_ms precisely; civetweb's own timeouts, a second
	 * later, are only a backstop, so that a cut request is always answered
	 * as the shim's timeout (408) rather than as civetweb's "malformed".
	 */
	snprintf(timeout, sizeof(timeout), "%d", shim.config.request_timeout_ms + CIVETWEB_TIMEOUT_MARGIN_MS);
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
	 * idle keep-alive connection holds one for at most this long (and
	 * less when the workers are needed: conns.c sheds idle connections).
	 */
	snprintf(ka_timeout, sizeof(ka_timeout), "%d", shim.config.keep_alive_timeout_ms + CIVETWEB_TIMEOUT_MARGIN_MS);
	options[n++] = "keep_alive_timeout_ms";
	options[n++] = ka_timeout;
	/*
	 * civetweb checks that a target in absolute form names this server by
	 * comparing its host with an "authentication domain" (by default
	 * mydomain.com); the shim serves one origin whatever the host.
	 */
	options[n++] = "enable_auth_domain_check";
	options[n++] = "no";
	/*
	 * civetweb answers a CORS preflight (OPTIONS with Origin and
	 * Access-Control-Request-Method) itself, before any handler: off, so
	 * that every request passes the shim's checks (framing first) and
	 * OPTIONS answers as README says.
	 */
	options[n++] = "access_control_allow_methods";
	options[n++] = "";
	/* Answers go out in one write; nothing is gained by delaying the last segment. */
	options[n++] = "tcp_nodelay";
	options[n++] = "1";
	/* Routing decodes path segments itself (an encoded '/' stays inside its segment). */
	options[n++] = "decode_url";
	options[n++] = "no";
	/* The request head's buffer (civetweb's default, stated: handler.c relies on its size). */
	options[n++] = "max_request_size";
	options[n++] = "16384";
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
	memset(&admission, 0, sizeof(admission));
	admission.capacity = descriptor_budget(&shim.config, &max_fd);
	admission.max_per_client = shim.config.max_connections_per_client;
	admission.request_timeout_ms = shim.config.request_timeout_ms;
	admission.keep_alive_timeout_ms = shim.config.keep_alive_timeout_ms;
	if (admission.capacity < shim.config.threads)
		log_event("warning", "the descriptor limit allows %d connections at once, fewer than threads (%d)",
				  admission.capacity, shim.config.threads);
	accept_reserve_fd();
	budget_init(shim.config.max_body_memory_bytes);
	conns_start(&admission, max_fd);
	{
		struct events_settings events = {
			.dsn = shim.config.dsn,
			.queue_events = shim.config.events_queue,
			.max_streams = shim.config.events_max_streams,
		};

		events_start(&events);
	}
	memset(&callbacks, 0, sizeof(callbacks));
	callbacks.http_error = handle_http_error;
	callbacks.log_message = civetweb_log;
	callbacks.init_connection = handle_connection_init;
	callbacks.connection_close = handle_connection_close;
	ctx = mg_start(&callbacks, &shim, options);
	if (ctx == NULL)
	{
		log_event("fatal", "cannot listen on %s (address in use, or a bad tls_cert?)", ports);
		conns_stop();
		log_stop();
		pool_destroy(shim.pool);
		return 1;
	}
	mg_set_auth_handler(ctx, "**", grant_every_request, NULL);
	mg_set_request_handler(ctx, "**", handle_request, &shim);
	log_event("info", "jam-shim %s listening on %s://%s:%d (pool %d, threads %d, max body %lld bytes,"
			  " max batch body %lld bytes, %d connections per client)",
			  SHIM_VERSION, shim.config.tls_cert[0] ? "https" : "http", shim.config.listen_host,
			  shim.config.listen_port, shim.config.pool_size, shim.config.threads,
			  shim.config.max_body_bytes, shim.config.max_batch_body_bytes,
			  shim.config.max_connections_per_client);

	while (sigwait(&stop_signals, &sig) != 0)
		;
	/*
	 * civetweb stops writing answers as soon as mg_stop begins, so the
	 * requests in flight finish first; requests that arrive meanwhile are
	 * refused with 503 and Connection: close.  After the grace period,
	 * what still runs in Postgres is cancelled: a statement waiting on a
	 * lock could otherwise hold the shim up without limit, and the client
	 * would get no answer while its transaction might still commit.  The
	 * cancelled requests answer 503 shutting_down (their transactions
	 * rolled back), unless the statement finished first and its answer
	 * says so.
	 */
	log_event("info", "signal %d: finishing the requests in flight", sig);
	atomic_store(&shim.stopping, 1);
	/* Event streams last as long as their clients: they end now, and their clients resume elsewhere. */
	events_stop();
	if (!wait_in_flight(shim.config.shutdown_grace_ms))
	{
		int			cancelled,
					cut;

		pool_close(shim.pool);
		cancelled = pool_cancel_busy(shim.pool);
		cut = conns_shutdown_all();
		log_event("info", "grace period over: cancelled %d statements, cut %d connections", cancelled, cut);
		if (!wait_in_flight(CANCEL_WAIT_MS))
			log_event("warning", "%d requests still unanswered; stopping anyway", metrics_get_in_flight());
	}
	conns_stop();
	mg_stop(ctx);
	log_stop();
	pool_destroy(shim.pool);
	mg_exit_library();
	log_event("info", "stopped");
	return 0;
}
