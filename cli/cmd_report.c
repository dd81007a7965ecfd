/*
 * cmd_report.c: jamctl report --package ID [--with-receipt] (or report ID).
 *
 * --with-receipt is the prototype's flag: the report route does not carry
 * the receipt, so it is fetched by the report's hash and added under
 * "receipt", as submit --with-receipt shows a package's.
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

extern const char *const report_order[];

static const struct opt_spec specs[] = {
	{"package", 0, 1},
	{"with-receipt", 0, 0},
	{NULL, 0, 0}
};

int
cmd_report(int argc, char **argv)
{
	struct opts o;
	const char *id;
	json_object *doc,
			   *hash;

	opts_parse(&o, "report", specs, argc, argv, 1);
	if (o.help)
		return help_verb("report");
	opts_positionals(&o, 0, 1, "");
	id = opt_value(&o, "package");
	if (id && o.npos)
		jc_usage("report", "give the package id once: --package ID or ID");
	if (!id && o.npos)
		id = o.pos[0];
	if (!id)
		jc_usage("report", "missing the package id (--package ID)");
	if (!is_hash_hex(id))
		jc_usage("report", "\"%s\" is not a package id: 64 lowercase hex characters", id);
	doc = api_getf("/jam/packages/%s/report", id);
	if (opt_flag(&o, "with-receipt"))
	{
		if (!json_object_object_get_ex(doc, "report_hash", &hash) || !is_hash_hex(json_object_get_string(hash)))
			jc_die(JC_ERROR, "bad_response", "the report has no report_hash");
		json_object_object_add(doc, "receipt", api_getf("/jam/receipts/%s", json_object_get_string(hash)));
	}
	if (jc_json())
		out_json(doc);
	else
		out_kv(doc, report_order);
	json_object_put(doc);
	return JC_OK;
}
