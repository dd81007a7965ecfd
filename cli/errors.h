/*
 * errors.h: how jamctl fails: one line on stderr naming a stable code, and
 * the exit code that code maps to (jamctl.h).
 */
#ifndef JAMCTL_ERRORS_H
#define JAMCTL_ERRORS_H

/* "jamctl: CODE: message" on stderr, then exit(exit_code). */
void		jc_die(int exit_code, const char *code, const char *fmt,...)
			__attribute__((noreturn, format(printf, 3, 4)));

/* A usage error: "jamctl: usage: message (see jamctl VERB --help)", exit 1. */
void		jc_usage(const char *verb, const char *fmt,...)
			__attribute__((noreturn, format(printf, 2, 3)));

/* "jamctl: message" on stderr, unless -q. */
void		jc_note(const char *fmt,...) __attribute__((format(printf, 1, 2)));

/* The exit code of a server's answer: its HTTP status and stable code. */
int			jc_exit_for(long status, const char *code);

#endif
