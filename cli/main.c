/*
 * main.c: jamctl's entry: the global options before the verb, then the verb.
 *
 * Output defaults to JSON when stdout is not a terminal, so that a script
 * piping jamctl into jq gets a document without having to ask, and a
 * person at a terminal gets aligned text (--json and --human override).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "errors.h"
#include "help.h"
#include "jamctl.h"
#include "opts.h"

struct jc_globals jc;

static int
cmd_help(int argc, char **argv)
{
	char		verb[64];

	if (argc < 2)
	{
		help_overview(stdout);
		return JC_OK;
	}
	snprintf(verb, sizeof(verb), "%s%s%s", argv[1], argc > 2 ? " " : "", argc > 2 ? argv[2] : "");
	if (!help_exists(verb))
		snprintf(verb, sizeof(verb), "%s", argv[1]);
	if (!help_exists(verb))
		jc_usage(NULL, "no verb \"%s\"", argv[1]);
	return help_verb(verb);
}

static const struct jc_verb verbs[] = {
	{"preimage", cmd_preimage},
	{"package", cmd_package},
	{"packages", cmd_packages},
	{"reports", cmd_reports},
	{"process", cmd_process},
	{"report", cmd_report},
	{"receipt", cmd_receipt},
	{"roots", cmd_roots},
	{"checkpoint", cmd_checkpoint},
	{"status", cmd_status},
	{"quota", cmd_quota},
	{"tokens", cmd_tokens},
	{"verify", cmd_verify},
	{"help", cmd_help},
	{NULL, NULL}
};

int
jc_json(void)
{
	if (jc.output == JC_OUT_JSON)
		return 1;
	if (jc.output == JC_OUT_HUMAN)
		return 0;
	return !jc.stdout_tty;
}

int
main(int argc, char **argv)
{
	const char *url = getenv("JAM_URL");
	int			i;

	jc.url = url && url[0] ? url : JAMCTL_DEFAULT_URL;
	jc.stdout_tty = isatty(STDOUT_FILENO);
	jc.stderr_tty = isatty(STDERR_FILENO);
	/* A closed pipe (jamctl packages --all | head) ends jamctl quietly, as it does cat. */
	signal(SIGPIPE, SIG_DFL);
	if (sodium_init() < 0)
		jc_die(JC_ERROR, "sodium_unavailable", "libsodium could not start");

	for (i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--version") == 0)
		{
			printf("jamctl %s\n", JAMCTL_VERSION);
			return JC_OK;
		}
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
		{
			help_overview(stdout);
			return JC_OK;
		}
		if (argv[i][0] != '-' || strcmp(argv[i], "-") == 0)
			break;
		if (!opts_global(argc, argv, &i, NULL))
			jc_usage(NULL, "unknown option %s before the verb", argv[i]);
	}
	if (i == argc)
	{
		help_overview(stderr);
		return JC_USAGE;
	}
	if (strcmp(argv[i], "version") == 0)
	{
		printf("jamctl %s\n", JAMCTL_VERSION);
		return JC_OK;
	}
	for (const struct jc_verb *v = verbs; v->name; v++)
		if (strcmp(v->name, argv[i]) == 0)
		{
			int			rc = v->run(argc - i, argv + i);

			if (fflush(stdout) != 0 || ferror(stdout))
				jc_die(JC_ERROR, "write_failed", "cannot write to stdout");
			return rc;
		}
	jc_usage(NULL, "unknown verb \"%s\"", argv[i]);
}
