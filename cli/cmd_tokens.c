/*
 * cmd_tokens.c: jamctl tokens list|create|revoke (jam:admin).
 *
 * Routes (the shim's token administration):
 *   GET  /jam/tokens                 jam_list_tokens()
 *   POST /jam/tokens                 jam_create_token(): {name, scopes, services?, tenant?, expires_at?}
 *                                    answers {"token": "jam_<id>_<secret>", ...} (or the token as text)
 *   POST /jam/tokens/{id}/revoke     jam_revoke_token(): {"revoked": true|false, ...}
 *
 * A created token is printed once, alone on stdout, so that
 * `jamctl tokens create ci --scope jam:read > ci.token` keeps it in a file
 * and nowhere else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "errors.h"
#include "help.h"
#include "http.h"
#include "jamctl.h"
#include "opts.h"
#include "out.h"
#include "util.h"

#define MAX_LIST 64

static const struct opt_spec specs[] = {
	{"scope", 0, 1},
	{"service", 0, 1},
	{"tenant", 0, 1},
	{"expires", 0, 1},
	{NULL, 0, 0}
};

static const struct col token_cols[] = {
	{"id", "id", COL_TEXT},
	{"name", "name", COL_TEXT},
	{"scopes", "scopes", COL_TEXT},
	{"services", "services", COL_TEXT},
	{"tenant", "tenant", COL_TEXT},
	{"active", "active", COL_TEXT},
	{"expires_at", "expires", COL_TIME},
	{"created_at", "created", COL_TIME},
	{NULL, NULL, COL_TEXT}
};

static int
is_token_id(const char *s)
{
	return strlen(s) == 16 && strspn(s, "0123456789abcdef") == 16;
}

static int
list(struct opts *o)
{
	json_object *doc,
			   *items;

	for (const struct opt_spec *s = specs; s->name; s++)
		opts_refuse(o, s->name);
	opts_positionals(o, 1, 1, "");
	doc = api_get("/jam/tokens");
	if (jc_json())
		out_json(doc);
	else
	{
		struct table *t = table_new(token_cols, 0);

		items = doc;
		if (json_object_is_type(doc, json_type_object))
			json_object_object_get_ex(doc, "items", &items);
		if (items && json_object_is_type(items, json_type_array))
			for (size_t i = 0; i < json_object_array_length(items); i++)
				table_add(t, json_object_array_get_idx(items, i));
		table_end(t);
	}
	json_object_put(doc);
	return JC_OK;
}

static int
create(struct opts *o)
{
	const char *scopes[MAX_LIST],
			   *services[MAX_LIST];
	int			nscopes = opt_values(o, "scope", scopes, MAX_LIST);
	int			nservices = opt_values(o, "service", services, MAX_LIST);
	json_object *body = json_object_new_object(),
			   *arr,
			   *doc,
			   *token;
	long		status;

	opts_positionals(o, 2, 2, "the token's NAME");
	if (nscopes == 0)
		jc_usage(o->verb, "give at least one --scope (jam:read, jam:submit, jam:process, jam:admin)");
	json_object_object_add(body, "name", json_object_new_string(o->pos[1]));
	arr = json_object_new_array();
	for (int i = 0; i < nscopes; i++)
		json_object_array_add(arr, json_object_new_string(scopes[i]));
	json_object_object_add(body, "scopes", arr);
	if (nservices)
	{
		arr = json_object_new_array();
		for (int i = 0; i < nservices; i++)
			json_object_array_add(arr, json_object_new_string(services[i]));
		json_object_object_add(body, "services", arr);
	}
	if (opt_value(o, "tenant"))
		json_object_object_add(body, "tenant", json_object_new_string(opt_value(o, "tenant")));
	if (opt_value(o, "expires"))
		json_object_object_add(body, "expires_at", json_object_new_string(opt_value(o, "expires")));

	doc = api_send("POST", "/jam/tokens", body, &status);
	json_object_put(body);
	token = NULL;
	if (doc && json_object_is_type(doc, json_type_string))
		token = doc;
	else if (doc)
		json_object_object_get_ex(doc, "token", &token);
	if (!token || !json_object_is_type(token, json_type_string))
		jc_die(JC_ERROR, "bad_response", "the server's answer holds no token");
	if (jc_json())
		out_json(doc);
	else
	{
		printf("%s\n", json_object_get_string(token));
		fflush(stdout);
		jc_note("the token is shown this once: keep it in a file (mode 600) and use --token-file");
	}
	json_object_put(doc);
	return JC_OK;
}

static int
revoke(struct opts *o)
{
	char	   *path;
	json_object *doc,
			   *v = NULL;
	long		status;

	for (const struct opt_spec *s = specs; s->name; s++)
		opts_refuse(o, s->name);
	opts_positionals(o, 2, 2, "the token's ID");
	if (!is_token_id(o->pos[1]))
		jc_usage(o->verb, "\"%.20s\" is not a token id (16 hex characters, see jamctl tokens list)", o->pos[1]);
	path = xasprintf("/jam/tokens/%s/revoke", o->pos[1]);
	doc = api_send("POST", path, NULL, &status);
	free(path);
	if (doc && json_object_is_type(doc, json_type_boolean))
		v = doc;
	else if (doc)
		json_object_object_get_ex(doc, "revoked", &v);
	if (jc_json())
	{
		if (doc)
			out_json(doc);
		else
			puts("{ \"revoked\": true }");
	}
	else if (v && !json_object_get_boolean(v))
		printf("%s was already revoked\n", o->pos[1]);
	else
		printf("revoked %s\n", o->pos[1]);
	json_object_put(doc);
	return JC_OK;
}

int
cmd_tokens(int argc, char **argv)
{
	struct opts o;
	const char *sub;
	char		verb[32];

	opts_parse(&o, "tokens", specs, argc, argv, 1);
	if (o.help)
		return help_verb("tokens");
	sub = o.npos > 0 ? o.pos[0] : NULL;
	if (!sub)
		jc_usage("tokens", "missing the verb: list, create or revoke");
	snprintf(verb, sizeof(verb), "tokens %s", sub);
	o.verb = verb;
	if (strcmp(sub, "list") == 0)
		return list(&o);
	if (strcmp(sub, "create") == 0)
		return create(&o);
	if (strcmp(sub, "revoke") == 0)
		return revoke(&o);
	jc_usage("tokens", "unknown verb \"%s\": list, create or revoke", sub);
}
