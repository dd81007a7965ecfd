/*
 * static_civetweb.c: the baseline of bench/tiles.sh, civetweb serving
 * files from a folder and nothing else, with the shim's thread count and
 * keep-alive, so that the tiles' figure is set against the same HTTP
 * library doing the least it can (and TCP_NODELAY, which a file server
 * needs: see below).
 *
 *   static_civetweb DOCUMENT_ROOT PORT THREADS
 *
 * Serves until SIGTERM or SIGINT.
 */
#include <civetweb.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void) sig;
	stop = 1;
}

int
main(int argc, char **argv)
{
	char		port[64];
	struct mg_context *ctx;

	if (argc != 4)
	{
		fprintf(stderr, "usage: static_civetweb DOCUMENT_ROOT PORT THREADS\n");
		return 2;
	}
	snprintf(port, sizeof(port), "127.0.0.1:%s", argv[2]);
	const char *options[] = {
		"document_root", argv[1],
		"listening_ports", port,
		"num_threads", argv[3],
		"enable_keep_alive", "yes",
		"enable_directory_listing", "no",
		/* Headers and body go out in separate writes: without it, Nagle and delayed ACKs stall each answer. */
		"tcp_nodelay", "1",
		NULL
	};

	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	mg_init_library(0);
	ctx = mg_start(NULL, NULL, options);
	if (ctx == NULL)
	{
		fprintf(stderr, "static_civetweb: could not start on %s\n", port);
		return 1;
	}
	while (!stop)
		pause();
	mg_stop(ctx);
	mg_exit_library();
	return 0;
}
