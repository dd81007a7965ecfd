/*
 * help.h: jamctl help, and each verb's --help.
 */
#ifndef JAMCTL_HELP_H
#define JAMCTL_HELP_H

#include <stdio.h>

/* The overview (jamctl help, jamctl --help) on stdout. */
void		help_overview(FILE *to);

/* A verb's help ("packages", "preimage get", ...) on stdout; returns 0 (exit status). */
int			help_verb(const char *verb);

/* Whether there is help for this verb. */
int			help_exists(const char *verb);

#endif
