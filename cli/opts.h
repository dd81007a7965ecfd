/*
 * opts.h: the command line: global options anywhere, then each verb's own.
 */
#ifndef JAMCTL_OPTS_H
#define JAMCTL_OPTS_H

/* One option a verb takes: --name, an optional -c, and whether it takes a value. */
struct opt_spec
{
	const char *name;
	char		short_name;
	int			takes_value;
};

#define OPTS_MAX 128

struct opts
{
	const char *verb;			/* for usage messages: "preimage get", "packages" */
	int			help;			/* -h or --help */
	int			n;
	const struct opt_spec *spec[OPTS_MAX];
	const char *value[OPTS_MAX];	/* NULL for flags */
	int			npos;
	const char *pos[OPTS_MAX];
};

/*
 * Parses argv[first..argc) against the verb's specs (NULL-name terminated)
 * and the global options, which are applied at once.  An unknown option,
 * a missing value or too many arguments is a usage error (exit 1).
 */
void		opts_parse(struct opts *o, const char *verb, const struct opt_spec *specs,
					   int argc, char **argv, int first);

/*
 * Parses one global option at argv[*i] (advancing *i past its value);
 * returns 0 when argv[*i] is not one.  main.c calls it before the verb.
 */
int			opts_global(int argc, char **argv, int *i, const char *verb);

/* The last value given for --name, or NULL. */
const char *opt_value(const struct opts *o, const char *name);

/* Whether --name was given. */
int			opt_flag(const struct opts *o, const char *name);

/* Every value given for a repeatable --name, in order; returns how many. */
int			opt_values(const struct opts *o, const char *name, const char **out, int max);

/* A usage error unless the verb got between min and max positional arguments. */
void		opts_positionals(const struct opts *o, int min, int max, const char *what);

/* A usage error when --name was given (it does not apply to this verb). */
void		opts_refuse(const struct opts *o, const char *name);

/* The value of --name as an integer in [min, max], or def when absent; usage error otherwise. */
long		opt_long(const struct opts *o, const char *name, long min, long max, long def);

#endif
