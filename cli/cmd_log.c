/*
 * cmd_log.c: jamctl roots and jamctl checkpoint, the heads of the logs.
 *
 * A checkpoint is a signed note, text that is worth keeping as it is (it
 * can be checked later, or handed to a witness), so it is written verbatim
 * unless --json is asked for explicitly.
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

static const struct opt_spec no_specs[] = {{NULL, 0, 0}};

static const struct opt_spec checkpoint_specs[] = {
	{"service", 0, 1},
	{NULL, 0, 0}
};

static const struct col root_cols[] = {
	{"service_id", "service", COL_TEXT},
	{"tree_size", "size", COL_INT},
	{"root", "root", COL_TEXT},
	{NULL, NULL, COL_TEXT}
};

int
cmd_roots(int argc, char **argv)
{
	struct opts o;
	json_object *doc;

	opts_parse(&o, "roots", no_specs, argc, argv, 1);
	if (o.help)
		return help_verb("roots");
	opts_positionals(&o, 0, 0, "");
	doc = api_get("/jam/roots");
	if (jc_json())
		out_json(doc);
	else
	{
		struct table *t = table_new(root_cols, 0);

		if (json_object_is_type(doc, json_type_array))
			for (size_t i = 0; i < json_object_array_length(doc); i++)
				table_add(t, json_object_array_get_idx(doc, i));
		table_end(t);
	}
	json_object_put(doc);
	return JC_OK;
}

/* The note's first three lines as JSON members (origin, tree_size, root). */
static void
describe_note(json_object *doc, const char *note)
{
	const char *l1 = strchr(note, '\n');
	const char *l2 = l1 ? strchr(l1 + 1, '\n') : NULL;
	const char *l3 = l2 ? strchr(l2 + 1, '\n') : NULL;

	if (!l3)
		jc_die(JC_VERIFY, "verification_failed", "the checkpoint is not origin, size and root lines");
	json_object_object_add(doc, "origin", json_object_new_string_len(note, (int) (l1 - note)));
	json_object_object_add(doc, "tree_size", json_object_new_int64(strtoll(l1 + 1, NULL, 10)));
	json_object_object_add(doc, "root", json_object_new_string_len(l2 + 1, (int) (l3 - l2 - 1)));
}

int
cmd_checkpoint(int argc, char **argv)
{
	struct opts o;
	const char *service;
	char	   *esc,
			   *path;
	struct http_req req = {.method = "GET"};
	struct http_resp resp;

	opts_parse(&o, "checkpoint", checkpoint_specs, argc, argv, 1);
	if (o.help)
		return help_verb("checkpoint");
	opts_positionals(&o, 0, 1, "");
	service = opt_value(&o, "service");
	if (service && o.npos)
		jc_usage("checkpoint", "give the service once: --service S or S");
	if (!service && o.npos)
		service = o.pos[0];
	if (!service)
		jc_usage("checkpoint", "missing --service S");
	esc = url_escape(service);
	path = xasprintf("/jam/services/%s/checkpoint", esc);
	req.path = path;
	http_do(&req, &resp);
	if (resp.status != 200)
		http_fail(&resp);
	if (jc.output == JC_OUT_JSON)
	{
		json_object *doc = json_object_new_object();

		json_object_object_add(doc, "service_id", json_object_new_string(service));
		describe_note(doc, (const char *) resp.body);
		json_object_object_add(doc, "note", json_object_new_string_len((const char *) resp.body, (int) resp.len));
		out_json(doc);
		json_object_put(doc);
	}
	else
		write_all(1, resp.body, resp.len);
	http_resp_free(&resp);
	free(path);
	free(esc);
	return JC_OK;
}
