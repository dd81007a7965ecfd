/*
 * errors.c: failing the same way everywhere.
 *
 * Errors are one line on stderr, "jamctl: CODE: message", so that a person
 * reads what happened and a script can grep the stable code (the server's
 * own, e.g. rate_limited, or one of jamctl's: usage, connection_failed,
 * verification_failed, ...).  The exit code tells the class of failure
 * without parsing anything (jamctl.h).
 */
#include "errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jamctl.h"

/* Writes text to stderr with control characters as spaces: a message stays one line. */
static void
put_one_line(const char *text)
{
	for (const unsigned char *p = (const unsigned char *) text; *p; p++)
		fputc(*p < 0x20 || *p == 0x7f ? ' ' : *p, stderr);
}

static void
vline(const char *prefix, const char *fmt, va_list ap)
{
	char		msg[2048];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	fputs("jamctl: ", stderr);
	if (prefix)
	{
		put_one_line(prefix);
		fputs(": ", stderr);
	}
	put_one_line(msg);
	fputc('\n', stderr);
}

void
jc_die(int exit_code, const char *code, const char *fmt,...)
{
	va_list		ap;

	fflush(stdout);
	va_start(ap, fmt);
	vline(code, fmt, ap);
	va_end(ap);
	exit(exit_code);
}

void
jc_usage(const char *verb, const char *fmt,...)
{
	char		msg[1024];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (verb)
		jc_die(JC_USAGE, "usage", "%s (see jamctl %s --help)", msg, verb);
	jc_die(JC_USAGE, "usage", "%s (see jamctl help)", msg);
}

void
jc_note(const char *fmt,...)
{
	va_list		ap;

	if (jc.quiet)
		return;
	va_start(ap, fmt);
	vline(NULL, fmt, ap);
	va_end(ap);
}

/*
 * The HTTP status decides the class; a few codes refine it.  A 422
 * hash_mismatch is the server telling us a hash we sent does not hold:
 * a verification failure like the ones jamctl detects itself.
 */
int
jc_exit_for(long status, const char *code)
{
	if (code && strcmp(code, "hash_mismatch") == 0)
		return JC_VERIFY;
	switch (status)
	{
		case 404:
			return JC_NOT_FOUND;
		case 401:
		case 403:
			return JC_AUTH;
		case 429:
			return JC_LIMITED;
		case 502:
		case 503:
		case 504:
			return JC_UNAVAILABLE;
		default:
			return JC_ERROR;
	}
}
