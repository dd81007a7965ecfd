/*
 * cmd_package.c: jamctl package submit|id|get.
 *
 * submit computes the package id here, from README's documented encoding,
 * and declares it: the server recomputes it and refuses the package (422
 * hash_mismatch, exit 6) if the two encodings ever disagree, so nothing is
 * stored under an id the client did not expect.  The id it answers is
 * checked again.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "help.h"
#include "http.h"
#include "jamctl.h"
#include "opts.h"
#include "out.h"
#include "pkgid.h"
#include "util.h"

#define MAX_PREIMAGES 1024

static const struct opt_spec specs[] = {
	{"service", 0, 1},
	{"preimage", 0, 1},
	{"declared-hash", 0, 1},
	{"contract-version", 0, 1},
	{"weight", 0, 1},
	{"with-receipt", 0, 0},
	{NULL, 0, 0}
};

static const char *const package_order[] = {
	"id", "service_id", "status", "created", "contract_version", "weight_hint", "payload_size",
	"preimage_hashes", "submitted_by", "submitted_at", "processed_at", "failure_reason", NULL
};

/* What a package is made of, from the command line. */
struct package
{
	const char *service;
	uint32_t	contract_version;
	uint32_t	weight;
	unsigned char *payload;
	size_t		payload_len;
	const char *hashes[MAX_PREIMAGES];
	unsigned char raw[MAX_PREIMAGES][JC_HASH_BYTES];
	int			n;
	char		id[JC_HASH_HEX + 1];
};

static void
read_package(struct opts *o, struct package *p)
{
	unsigned char id[JC_HASH_BYTES];

	p->service = opt_value(o, "service");
	if (!p->service)
		jc_usage(o->verb, "--service S is required");
	opts_positionals(o, 2, 2, "the payload FILE (or - for stdin)");
	p->contract_version = (uint32_t) opt_long(o, "contract-version", 0, INT32_MAX, 1);
	p->weight = (uint32_t) opt_long(o, "weight", 0, INT32_MAX, 1);
	p->n = opt_values(o, "preimage", p->hashes, MAX_PREIMAGES);
	for (int i = 0; i < p->n; i++)
		if (!is_hash_hex(p->hashes[i]) || from_hex(p->hashes[i], p->raw[i], JC_HASH_BYTES) < 0)
			jc_usage(o->verb, "--preimage \"%s\" is not a hash: 64 lowercase hex characters", p->hashes[i]);
	if (!(p->payload = read_file(o->pos[1], &p->payload_len)))
		jc_die(JC_USAGE, "file_unreadable", "cannot read %s: %s", o->pos[1], strerror(errno));
	pkgid_compute(p->service, p->contract_version, p->weight, p->payload, p->payload_len,
				  (const unsigned char (*)[JC_HASH_BYTES]) p->raw, (size_t) p->n, id);
	to_hex(id, JC_HASH_BYTES, p->id);
}

static int
submit(struct opts *o)
{
	struct package *p = xmalloc(sizeof(*p));
	const char *declared = opt_value(o, "declared-hash");
	int			with_receipt = opt_flag(o, "with-receipt");
	json_object *body = json_object_new_object(),
			   *hashes = json_object_new_array(),
			   *doc,
			   *v = NULL;
	char	   *b64;
	long		status;

	read_package(o, p);
	if (declared && !is_hash_hex(declared))
		jc_usage(o->verb, "--declared-hash \"%s\" is not a hash: 64 lowercase hex characters", declared);
	b64 = b64_encode(p->payload, p->payload_len);
	json_object_object_add(body, "service_id", json_object_new_string(p->service));
	json_object_object_add(body, "payload", json_object_new_string(b64));
	json_object_object_add(body, "declared_hash", json_object_new_string(declared ? declared : p->id));
	json_object_object_add(body, "contract_version", json_object_new_int((int32_t) p->contract_version));
	json_object_object_add(body, "weight_hint", json_object_new_int((int32_t) p->weight));
	for (int i = 0; i < p->n; i++)
		json_object_array_add(hashes, json_object_new_string(p->hashes[i]));
	json_object_object_add(body, "preimage_hashes", hashes);
	free(b64);

	doc = api_send("POST", with_receipt ? "/jam/packages?include_receipt=true" : "/jam/packages", body, &status);
	if (!doc || !json_object_object_get_ex(doc, "id", &v) || strcmp(json_object_get_string(v), p->id) != 0)
		jc_die(JC_VERIFY, "verification_failed",
			   "the server answered package id %s, but its fields encode to %s",
			   doc && v ? json_object_get_string(v) : "(none)", p->id);
	if (jc_json())
		out_json(doc);
	else
	{
		json_object *st = NULL,
				   *receipt = NULL;

		json_object_object_get_ex(doc, "status", &st);
		printf("%s  %s  %s\n", p->id, status == 201 ? "created" : "existing", st ? json_object_get_string(st) : "");
		if (json_object_object_get_ex(doc, "receipt", &receipt) && receipt)
		{
			json_object *wrap = json_object_new_object();

			json_object_object_add(wrap, "receipt", json_object_get(receipt));
			out_kv(wrap, NULL);
			json_object_put(wrap);
		}
	}
	json_object_put(doc);
	json_object_put(body);
	free(p->payload);
	free(p);
	return JC_OK;
}

static int
package_id(struct opts *o)
{
	struct package *p = xmalloc(sizeof(*p));

	opts_refuse(o, "declared-hash");
	opts_refuse(o, "with-receipt");
	read_package(o, p);
	if (jc_json())
	{
		json_object *doc = json_object_new_object();

		json_object_object_add(doc, "id", json_object_new_string(p->id));
		out_json(doc);
		json_object_put(doc);
	}
	else
		printf("%s\n", p->id);
	free(p->payload);
	free(p);
	return JC_OK;
}

static int
get(struct opts *o)
{
	json_object *doc;

	for (const struct opt_spec *s = specs; s->name; s++)
		opts_refuse(o, s->name);
	opts_positionals(o, 2, 2, "the package ID");
	if (!is_hash_hex(o->pos[1]))
		jc_usage(o->verb, "\"%s\" is not a package id: 64 lowercase hex characters", o->pos[1]);
	doc = api_getf("/jam/packages/%s", o->pos[1]);
	if (jc_json())
		out_json(doc);
	else
		out_kv(doc, package_order);
	json_object_put(doc);
	return JC_OK;
}

int
cmd_package(int argc, char **argv)
{
	struct opts o;
	const char *sub;
	char		verb[32];

	opts_parse(&o, "package", specs, argc, argv, 1);
	sub = o.npos > 0 ? o.pos[0] : NULL;
	snprintf(verb, sizeof(verb), "package %s", sub ? sub : "");
	if (o.help)
		return help_verb(sub && help_exists(verb) ? verb : "package");
	if (!sub)
		jc_usage("package", "missing the verb: submit, id or get");
	o.verb = verb;
	if (strcmp(sub, "submit") == 0)
		return submit(&o);
	if (strcmp(sub, "id") == 0)
		return package_id(&o);
	if (strcmp(sub, "get") == 0)
		return get(&o);
	jc_usage("package", "unknown verb \"%s\": submit, id or get", sub);
}
