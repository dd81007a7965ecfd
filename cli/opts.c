/*
 * opts.c: the command line.
 *
 * Global options (--url, --json, --retry, ...) are accepted before and
 * after the verb, as kubectl does, so that `jamctl packages --json` and
 * `jamctl --json packages` both work.  Values come as `--name value` or
 * `--name=value`; `--` ends the options and `-` is a positional (stdin).
 *
 * There is deliberately no --token: a token on the command line shows in
 * ps and in shell history.  Asking for it gets a usage error that says
 * where the token goes instead.
 */
#include "opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "jamctl.h"
#include "util.h"

static const struct opt_spec global_specs[] = {
	{"url", 0, 1},
	{"token-file", 0, 1},
	{"json", 0, 0},
	{"human", 0, 0},
	{"retry", 0, 1},
	{"timeout", 0, 1},
	{"quiet", 'q', 0},
	{"help", 'h', 0},
	{NULL, 0, 0}
};

/* The spec argv[*i] names among specs, with its inline "=value" if any. */
static const struct opt_spec *
find_spec(const struct opt_spec *specs, const char *arg, const char **inline_value)
{
	*inline_value = NULL;
	if (!specs)
		return NULL;
	if (arg[0] == '-' && arg[1] == '-')
	{
		const char *name = arg + 2;
		const char *eq = strchr(name, '=');
		size_t		len = eq ? (size_t) (eq - name) : strlen(name);

		for (const struct opt_spec *s = specs; s->name; s++)
			if (strlen(s->name) == len && strncmp(s->name, name, len) == 0)
			{
				*inline_value = eq ? eq + 1 : NULL;
				return s;
			}
		return NULL;
	}
	if (arg[0] == '-' && arg[1] != '\0')
	{
		for (const struct opt_spec *s = specs; s->name; s++)
			if (s->short_name && s->short_name == arg[1])
			{
				*inline_value = arg[2] ? arg + 2 : NULL;
				return s;
			}
	}
	return NULL;
}

/* The value of the option at argv[*i]: inline, or the next argument. */
static const char *
take_value(const struct opt_spec *s, const char *inline_value, int argc, char **argv, int *i,
		   const char *verb)
{
	if (!s->takes_value)
	{
		if (inline_value && argv[*i][1] == '-')
			jc_usage(verb, "--%s takes no value", s->name);
		if (inline_value)
			jc_usage(verb, "-%c takes no value", s->short_name);
		return NULL;
	}
	if (inline_value)
		return inline_value;
	if (*i + 1 >= argc)
		jc_usage(verb, "--%s needs a value", s->name);
	return argv[++*i];
}

static void
apply_global(const struct opt_spec *s, const char *value, const char *verb)
{
	long		n;

	if (strcmp(s->name, "url") == 0)
		jc.url = value;
	else if (strcmp(s->name, "token-file") == 0)
		jc.token_file = value;
	else if (strcmp(s->name, "json") == 0)
		jc.output = JC_OUT_JSON;
	else if (strcmp(s->name, "human") == 0)
		jc.output = JC_OUT_HUMAN;
	else if (strcmp(s->name, "retry") == 0)
	{
		if (parse_long(value, 0, 1000, &n) < 0)
			jc_usage(verb, "--retry takes a number of retries from 0 to 1000, not \"%s\"", value);
		jc.retry = (int) n;
	}
	else if (strcmp(s->name, "timeout") == 0)
	{
		if (parse_long(value, 0, 86400, &n) < 0)
			jc_usage(verb, "--timeout takes seconds from 0 (none) to 86400, not \"%s\"", value);
		jc.timeout = n;
	}
	else if (strcmp(s->name, "quiet") == 0)
		jc.quiet = 1;
}

/* A helpful refusal for the options people reach for out of habit. */
static void
refuse_token_option(const char *arg, const char *verb)
{
	if (strcmp(arg, "--token") == 0 || strncmp(arg, "--token=", 8) == 0)
		jc_usage(verb, "jamctl takes no token on the command line (others would see it in ps); "
				 "use --token-file FILE, JAM_TOKEN or JAM_TOKEN_FILE");
}

int
opts_global(int argc, char **argv, int *i, const char *verb)
{
	const char *inline_value;
	const struct opt_spec *s;

	refuse_token_option(argv[*i], verb);
	s = find_spec(global_specs, argv[*i], &inline_value);
	if (!s || strcmp(s->name, "help") == 0)
		return 0;
	apply_global(s, take_value(s, inline_value, argc, argv, i, verb), verb);
	return 1;
}

void
opts_parse(struct opts *o, const char *verb, const struct opt_spec *specs,
		   int argc, char **argv, int first)
{
	int			only_positionals = 0;

	memset(o, 0, sizeof(*o));
	o->verb = verb;
	for (int i = first; i < argc; i++)
	{
		const char *arg = argv[i];
		const char *inline_value;
		const struct opt_spec *s;

		if (only_positionals || arg[0] != '-' || strcmp(arg, "-") == 0)
		{
			if (o->npos == OPTS_MAX)
				jc_usage(verb, "too many arguments");
			o->pos[o->npos++] = arg;
			continue;
		}
		if (strcmp(arg, "--") == 0)
		{
			only_positionals = 1;
			continue;
		}
		/* A verb may take --token (quota --token ID: an id, not a secret); others refuse it. */
		if ((s = find_spec(specs, arg, &inline_value)) != NULL)
		{
			if (o->n == OPTS_MAX)
				jc_usage(verb, "too many options");
			o->spec[o->n] = s;
			o->value[o->n++] = take_value(s, inline_value, argc, argv, &i, verb);
			continue;
		}
		refuse_token_option(arg, verb);
		if ((s = find_spec(global_specs, arg, &inline_value)) != NULL)
		{
			const char *value = take_value(s, inline_value, argc, argv, &i, verb);

			if (strcmp(s->name, "help") == 0)
				o->help = 1;
			else
				apply_global(s, value, verb);
			continue;
		}
		jc_usage(verb, "unknown option %s", arg);
	}
}

const char *
opt_value(const struct opts *o, const char *name)
{
	const char *v = NULL;

	for (int i = 0; i < o->n; i++)
		if (strcmp(o->spec[i]->name, name) == 0)
			v = o->value[i];
	return v;
}

int
opt_flag(const struct opts *o, const char *name)
{
	for (int i = 0; i < o->n; i++)
		if (strcmp(o->spec[i]->name, name) == 0)
			return 1;
	return 0;
}

int
opt_values(const struct opts *o, const char *name, const char **out, int max)
{
	int			k = 0;

	for (int i = 0; i < o->n; i++)
		if (strcmp(o->spec[i]->name, name) == 0)
		{
			if (k == max)
				jc_usage(o->verb, "--%s is given more than %d times", name, max);
			out[k++] = o->value[i];
		}
	return k;
}

void
opts_positionals(const struct opts *o, int min, int max, const char *what)
{
	if (o->npos < min)
		jc_usage(o->verb, "missing %s", what);
	if (o->npos > max)
		jc_usage(o->verb, "unexpected argument \"%s\"", o->pos[max]);
}

void
opts_refuse(const struct opts *o, const char *name)
{
	if (opt_flag(o, name))
		jc_usage(o->verb, "--%s does not apply to %s", name, o->verb);
}

long
opt_long(const struct opts *o, const char *name, long min, long max, long def)
{
	const char *v = opt_value(o, name);
	long		n;

	if (!v)
		return def;
	if (parse_long(v, min, max, &n) < 0)
		jc_usage(o->verb, "--%s takes an integer from %ld to %ld, not \"%s\"", name, min, max, v);
	return n;
}
