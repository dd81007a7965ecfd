/*
 * cmd_status.c: jamctl status and jamctl quota.
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

static const struct opt_spec quota_specs[] = {
	{"service", 0, 1},
	{"token", 0, 1},
	{NULL, 0, 0}
};

static const char *const status_order[] = {
	"node_name", "version", "enabled", "verifier_key", "auth", "limits", "counts", "logs", NULL
};

static const char *const quota_order[] = {
	"service_id", "token_id", "rate", "pending_packages", "max_pending_packages", "max_preimage_bytes", NULL
};

int
cmd_status(int argc, char **argv)
{
	struct opts o;
	json_object *doc;

	opts_parse(&o, "status", no_specs, argc, argv, 1);
	if (o.help)
		return help_verb("status");
	opts_positionals(&o, 0, 0, "");
	doc = api_get("/jam/status");
	if (jc_json())
		out_json(doc);
	else
		out_kv(doc, status_order);
	json_object_put(doc);
	return JC_OK;
}

int
cmd_quota(int argc, char **argv)
{
	struct opts o;
	const char *service,
			   *token;
	char	   *path,
			   *esc = NULL;
	json_object *doc;

	/* --token here is a token's id, which is not secret (jamctl tokens list shows it). */
	opts_parse(&o, "quota", quota_specs, argc, argv, 1);
	if (o.help)
		return help_verb("quota");
	opts_positionals(&o, 0, 0, "");
	service = opt_value(&o, "service");
	token = opt_value(&o, "token");
	if (service && token)
		jc_usage("quota", "give --service or --token, not both");
	if (token && (strlen(token) != 16 || strspn(token, "0123456789abcdef") != 16))
		jc_usage("quota", "--token takes a token's id (16 hex characters, see jamctl tokens list), "
				 "never the token itself");
	if (service || token)
		esc = url_escape(service ? service : token);
	path = esc ? xasprintf("/jam/quota?%s=%s", service ? "service_id" : "token_id", esc)
		: xstrdup("/jam/quota");
	doc = api_get(path);
	if (jc_json())
		out_json(doc);
	else
		out_kv(doc, quota_order);
	json_object_put(doc);
	free(path);
	free(esc);
	return JC_OK;
}
