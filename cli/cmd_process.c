/*
 * cmd_process.c: jamctl process [--service S] [--max N].
 *
 * "Nothing pending" is not an error, but a worker loop needs to tell it
 * from success without parsing output: it exits 7 (and prints nothing on
 * stdout), so `while jamctl process -q; do :; done` drains a queue.
 */
#include <stdio.h>
#include <stdlib.h>

#include "errors.h"
#include "help.h"
#include "http.h"
#include "jamctl.h"
#include "opts.h"
#include "out.h"
#include "util.h"

static const struct opt_spec specs[] = {
	{"service", 0, 1},
	{"max", 0, 1},
	{NULL, 0, 0}
};

const char *const report_order[] = {
	"package_id", "service_id", "status", "refine", "output_hash", "output_size", "report_hash",
	"failure_reason", "contract_version", "preimage_hashes", "created_at", "output", NULL
};

static const struct col report_cols[] = {
	{"package_id", "package", COL_TEXT},
	{"service_id", "service", COL_TEXT},
	{"status", "status", COL_TEXT},
	{"refine", "refine", COL_TEXT},
	{"failure_reason", "failure", COL_TEXT},
	{NULL, NULL, COL_TEXT}
};

int
cmd_process(int argc, char **argv)
{
	struct opts o;
	const char *service;
	long		max;
	char	   *query = xstrdup(""),
			   *path;
	json_object *doc;
	long		status;

	opts_parse(&o, "process", specs, argc, argv, 1);
	if (o.help)
		return help_verb("process");
	opts_positionals(&o, 0, 0, "");
	service = opt_value(&o, "service");
	max = opt_long(&o, "max", 1, 10000, 0);
	if (service)
	{
		char	   *s = url_escape(service);

		free(query);
		query = xasprintf("?service_id=%s", s);
		free(s);
	}
	if (max)
	{
		char	   *q = xasprintf("%s%smax_packages=%ld", query, query[0] ? "&" : "?", max);

		free(query);
		query = q;
	}
	path = xasprintf("/jam/process%s", query);
	doc = api_send("POST", path, NULL, &status);
	free(path);
	free(query);
	if (status == 204 || !doc)
	{
		jc_note("nothing_pending: no package is pending%s%s", service ? " for service " : "",
				service ? service : "");
		return JC_NOTHING;
	}
	if (jc_json())
		out_json(doc);
	else if (max)
	{
		json_object *n,
				   *reports;
		struct table *t = table_new(report_cols, 0);

		json_object_object_get_ex(doc, "processed", &n);
		printf("processed %s\n", n ? json_object_get_string(n) : "?");
		if (json_object_object_get_ex(doc, "reports", &reports) && json_object_is_type(reports, json_type_array))
			for (size_t i = 0; i < json_object_array_length(reports); i++)
				table_add(t, json_object_array_get_idx(reports, i));
		table_end(t);
	}
	else
		out_kv(doc, report_order);
	json_object_put(doc);
	return JC_OK;
}
