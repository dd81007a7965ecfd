/*
 * jamctl.h: what every part of jamctl shares: the exit codes scripts rely
 * on, the global options, and the verbs.
 *
 * jamctl is the command-line client of jam's HTTP shim (README "CLI").  Each
 * verb lives in a cmd_*.c file and turns its arguments into one or a few
 * HTTP requests (http.c), checks what it can check locally (the package id,
 * a preimage's hash, a proof), and prints the answer as a human table or as
 * JSON (out.c).
 */
#ifndef JAMCTL_H
#define JAMCTL_H

#include <stddef.h>

#define JAMCTL_VERSION "1.1.0"

/* The URL `make run` prints for its shim (scripts/run.sh starts at port 8080). */
#define JAMCTL_DEFAULT_URL "http://127.0.0.1:8080"

/*
 * Exit codes: documented (jamctl help, the man page, README) and stable,
 * because scripts branch on them.  Every server error code maps to one of
 * them (errors.c).
 */
enum jc_exit
{
	JC_OK = 0,
	JC_USAGE = 1,				/* the command line is wrong */
	JC_NOT_FOUND = 2,			/* 404: no such preimage, package, report, receipt, route */
	JC_AUTH = 3,				/* 401, 403: no or bad token, or it lacks the scope */
	JC_LIMITED = 4,				/* 429: rate limited, quota exceeded */
	JC_UNAVAILABLE = 5,			/* 503, or the shim cannot be reached */
	JC_VERIFY = 6,				/* a hash, id, signature or proof did not check out */
	JC_NOTHING = 7,				/* process: nothing pending */
	JC_ERROR = 8				/* anything else the server refused (400, 409, 413, 415, 422, 500) or a local I/O error */
};

/* The global options (main.c parses them, wherever they stand). */
struct jc_globals
{
	const char *url;			/* --url, JAM_URL, or JAMCTL_DEFAULT_URL */
	const char *token_file;		/* --token-file */
	int			output;			/* JC_OUT_AUTO, JC_OUT_JSON (--json), JC_OUT_HUMAN (--human) */
	int			retry;			/* --retry N: retries on 429, 503 and refused connections */
	int			quiet;			/* -q: no progress bar, no retry notices */
	long		timeout;		/* --timeout SECONDS for one request, 0: none */
	int			stdout_tty;
	int			stderr_tty;
};

enum
{
	JC_OUT_AUTO,
	JC_OUT_JSON,
	JC_OUT_HUMAN
};

extern struct jc_globals jc;

/* Whether output is JSON: --json, or stdout is not a terminal and --human was not given. */
int			jc_json(void);

/* A verb: its name and its function (argv[0] is the verb); help.c holds its help. */
struct jc_verb
{
	const char *name;
	int			(*run) (int argc, char **argv);
};

int			cmd_preimage(int argc, char **argv);
int			cmd_package(int argc, char **argv);
int			cmd_packages(int argc, char **argv);
int			cmd_reports(int argc, char **argv);
int			cmd_process(int argc, char **argv);
int			cmd_report(int argc, char **argv);
int			cmd_receipt(int argc, char **argv);
int			cmd_roots(int argc, char **argv);
int			cmd_checkpoint(int argc, char **argv);
int			cmd_status(int argc, char **argv);
int			cmd_quota(int argc, char **argv);
int			cmd_tokens(int argc, char **argv);
int			cmd_verify(int argc, char **argv);

#endif
