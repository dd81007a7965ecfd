/*
 * cmd_list.c: jamctl packages and jamctl reports, the paginated lists.
 *
 * --all streams: each page is printed as it arrives (a table's rows, or
 * JSON items inside one {"items": [...], "count": N} document), so a list
 * of a million packages needs the memory of one page.  It pages by key
 * (?after=, next_after), which costs the same for every page; a server
 * that answers only offsets (next_offset) or, with
 * jam.legacy_list_response, plain arrays is followed by offset.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "help.h"
#include "http.h"
#include "jamctl.h"
#include "opts.h"
#include "out.h"
#include "util.h"

static const struct opt_spec specs[] = {
	{"status", 0, 1},
	{"service", 0, 1},
	{"limit", 0, 1},
	{"offset", 0, 1},
	{"after", 0, 1},
	{"all", 0, 0},
	{NULL, 0, 0}
};

static const struct col package_cols[] = {
	{"id", "id", COL_TEXT},
	{"service_id", "service", COL_TEXT},
	{"status", "status", COL_TEXT},
	{"weight_hint", "weight", COL_INT},
	{"payload_size", "size", COL_BYTES},
	{"submitted_at", "submitted", COL_TIME},
	{NULL, NULL, COL_TEXT}
};

static const struct col report_cols[] = {
	{"package_id", "package", COL_TEXT},
	{"service_id", "service", COL_TEXT},
	{"status", "status", COL_TEXT},
	{"refine", "refine", COL_TEXT},
	{"output_size", "output", COL_BYTES},
	{"created_at", "created", COL_TIME},
	{NULL, NULL, COL_TEXT}
};

struct list_kind
{
	const char *verb;
	const char *route;
	const struct col *cols;
};

/* Appends "&name=value" (escaped) to a query being built. */
static void
add_param(char **query, const char *name, const char *value)
{
	char	   *v = url_escape(value);
	char	   *q = xasprintf("%s%s%s=%s", *query, (*query)[0] ? "&" : "?", name, v);

	free(*query);
	free(v);
	*query = q;
}

static long long
int_member(json_object *doc, const char *name, int *present)
{
	json_object *v;

	*present = json_object_object_get_ex(doc, name, &v) && v && json_object_is_type(v, json_type_int);
	return *present ? json_object_get_int64(v) : 0;
}

static int
run_list(const struct list_kind *k, int argc, char **argv)
{
	struct opts o;
	int			all;
	long		limit;
	long long	offset,
				after = -1;
	char	   *base = xstrdup("");
	struct table *t = NULL;
	long long	count = 0;

	opts_parse(&o, k->verb, specs, argc, argv, 1);
	if (o.help)
		return help_verb(k->verb);
	opts_positionals(&o, 0, 0, "");
	all = opt_flag(&o, "all");
	limit = opt_long(&o, "limit", 1, 1000, 0);
	offset = opt_long(&o, "offset", 0, 2147483647L, 0);
	if (opt_value(&o, "after"))
		after = opt_long(&o, "after", 0, 9223372036854775807L, 0);
	if (opt_value(&o, "offset") && (all || after >= 0))
		jc_usage(k->verb, "--offset goes with neither --all nor --after");
	if (all && after < 0)
		after = 0;
	if (opt_value(&o, "status"))
		add_param(&base, "status", opt_value(&o, "status"));
	if (opt_value(&o, "service"))
		add_param(&base, "service_id", opt_value(&o, "service"));
	if (limit)
	{
		char		n[24];

		snprintf(n, sizeof(n), "%ld", limit);
		add_param(&base, "limit", n);
	}

	if (all && jc_json())
		fputs("{\"items\": [", stdout);
	else if (!jc_json())
		t = table_new(k->cols, 0);
	for (;;)
	{
		char	   *query = xstrdup(base);
		char	   *path;
		char		n[24];
		json_object *doc,
				   *items;
		int			has_next_after,
					has_next_offset;
		long long	next_after,
					next_offset;
		size_t		nitems;
		int			legacy;

		if (after >= 0)
		{
			snprintf(n, sizeof(n), "%lld", after);
			add_param(&query, "after", n);
		}
		else if (offset > 0)
		{
			snprintf(n, sizeof(n), "%lld", offset);
			add_param(&query, "offset", n);
		}
		path = xasprintf("%s%s", k->route, query);
		doc = api_get(path);
		free(path);
		free(query);

		/* The envelope, or the legacy plain array. */
		items = json_object_is_type(doc, json_type_array) ? doc : NULL;
		if (!items && (!json_object_object_get_ex(doc, "items", &items) ||
					   !json_object_is_type(items, json_type_array)))
			jc_die(JC_ERROR, "bad_response", "the list has no items array");
		nitems = json_object_array_length(items);
		legacy = items == doc;

		if (!all && jc_json())
		{
			out_json(doc);
			json_object_put(doc);
			break;
		}
		for (size_t i = 0; i < nitems; i++)
		{
			json_object *item = json_object_array_get_idx(items, i);

			if (t)
				table_add(t, item);
			else
				printf("%s\n  %s", count ? "," : "", out_json_line(item));
			count++;
		}
		if (t)
			table_flush(t);
		else
			fflush(stdout);

		next_after = int_member(doc, "next_after", &has_next_after);
		next_offset = int_member(doc, "next_offset", &has_next_offset);
		if (!all)
		{
			int			total_known;
			long long	total = int_member(doc, "total", &total_known);

			table_end(t);
			t = NULL;
			if (has_next_after)
				printf("(more: --after %lld, or --all)\n", next_after);
			else if (has_next_offset)
				printf("(%lld in all; more: --offset %lld, or --all)\n", total, next_offset);
			json_object_put(doc);
			break;
		}
		json_object_put(doc);
		if (has_next_after)
			after = next_after;
		else if (has_next_offset)
		{
			after = -1;
			offset = next_offset;
		}
		else if (legacy && nitems > 0 && nitems >= (size_t) (limit ? limit : 50))
		{
			/* A legacy array says nothing of what follows: a full page may have more. */
			after = -1;
			offset += (long long) nitems;
		}
		else
			break;
	}
	if (all && jc_json())
		printf("%s], \"count\": %lld}\n", count ? "\n" : "", count);
	else if (t)
		table_end(t);
	free(base);
	return JC_OK;
}

int
cmd_packages(int argc, char **argv)
{
	static const struct list_kind k = {"packages", "/jam/packages", package_cols};

	return run_list(&k, argc, argv);
}

int
cmd_reports(int argc, char **argv)
{
	static const struct list_kind k = {"reports", "/jam/reports", report_cols};

	return run_list(&k, argc, argv);
}
