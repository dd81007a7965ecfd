/*
 * cmd_receipt.c: jamctl receipt HASH [--proof | --entry [--package ID]] [-o FILE].
 *
 * --entry rebuilds the 74-byte log entry, the leaf a proof leads from, out
 * of what the server says of the item (the receipt, and the package that
 * submitted it or the report it is), and checks it against the receipt's
 * leaf hash before writing it.  With it, verify --leaf-data --hash ties a
 * proof to a package id that the user knows.
 *
 * --proof fetches the receipt as c2sp.org/tlog-proof@v1 text
 * (GET /jam/receipts/{hash}/proof) and writes it as it came, after
 * checking that it is laid out as one: the file is what `jamctl verify`
 * checks offline later, so a damaged one should be noticed now, while the
 * server can still be asked again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "entry.h"
#include "errors.h"
#include "help.h"
#include "http.h"
#include "jamctl.h"
#include "merkle.h"
#include "opts.h"
#include "out.h"
#include "tlogproof.h"
#include "util.h"

static const struct opt_spec specs[] = {
	{"proof", 0, 0},
	{"entry", 0, 0},
	{"package", 0, 1},
	{"output", 'o', 1},
	{NULL, 0, 0}
};

static const char *const receipt_order[] = {
	"service_id", "seq", "kind", "hash", "status", "processed_at", "leaf_hash", "prev_root", "new_root",
	"tree_size", "inclusion", NULL
};

static int
write_out(const char *out, const unsigned char *data, size_t len)
{
	int			fd = STDOUT_FILENO;

	if (out && strcmp(out, "-") != 0 &&
		(fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666)) < 0)
		jc_die(JC_ERROR, "write_failed", "cannot write %s: %s", out, strerror(errno));
	if (write_all(fd, data, len) != 0 || (fd != STDOUT_FILENO && close(fd) != 0))
		jc_die(JC_ERROR, "write_failed", "cannot write %s: %s", out ? out : "stdout", strerror(errno));
	return JC_OK;
}

static int
proof(const char *hash, const char *out)
{
	char	   *path = xasprintf("/jam/receipts/%s/proof", hash);
	struct http_req req = {.method = "GET", .path = path};
	struct http_resp resp;
	struct tlog_proof p;
	char		why[512];

	http_do(&req, &resp);
	if (resp.status != 200)
		http_fail(&resp);
	if (tlog_parse_proof((const char *) resp.body, resp.len, &p, why, sizeof(why)) < 0)
		jc_die(JC_VERIFY, "verification_failed", "the server's proof is not a c2sp.org/tlog-proof@v1: %s", why);
	free(p.extra);
	if (jc.output == JC_OUT_JSON)
	{
		/* Only an explicit --json wraps it: piped, the proof is written as it is, to be kept. */
		json_object *doc = json_object_new_object();

		json_object_object_add(doc, "hash", json_object_new_string(hash));
		json_object_object_add(doc, "index", json_object_new_int64((int64_t) p.index));
		json_object_object_add(doc, "proof", json_object_new_string_len((const char *) resp.body, (int) resp.len));
		char	   *text = xasprintf("%s\n", json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY |
																			  JSON_C_TO_STRING_SPACED |
																			  JSON_C_TO_STRING_NOSLASHESCAPE));

		write_out(out, (const unsigned char *) text, strlen(text));
		free(text);
		json_object_put(doc);
	}
	else
		write_out(out, resp.body, resp.len);
	http_resp_free(&resp);
	free(path);
	return JC_OK;
}

/* A string member of doc, or exit 8 (bad_response). */
static const char *
member_string(json_object *doc, const char *name)
{
	json_object *v;

	if (!doc || !json_object_object_get_ex(doc, name, &v) || !json_object_is_type(v, json_type_string))
		jc_die(JC_ERROR, "bad_response", "the server's answer has no %s", name);
	return json_object_get_string(v);
}

static int
entry(const char *hash, const char *package, const char *out)
{
	json_object *receipt = api_getf("/jam/receipts/%s", hash),
			   *item = NULL;
	const char *kind = member_string(receipt, "kind");
	const char *principal,
			   *detail;
	struct log_entry e;
	unsigned char bytes[ENTRY_BYTES],
				leaf[JC_HASH_BYTES],
				want[JC_HASH_BYTES];
	char		leaf_hex[JC_HASH_HEX + 1];

	memset(&e, 0, sizeof(e));
	if (strcmp(kind, "package") == 0)
	{
		/* A package's entry names the role that submitted it, and no detail. */
		if (package && strcmp(package, hash) != 0)
			jc_usage("receipt", "--package names another package than the receipt's");
		item = api_getf("/jam/packages/%s", hash);
		principal = member_string(item, "submitted_by");
		detail = "";
		e.kind = 1;
	}
	else if (strcmp(kind, "report") == 0)
	{
		/* A report's names the node that attested it and the refine that ran: from its package. */
		json_object *attestations,
				   *a,
				   *v;

		if (!package)
			jc_usage("receipt", "--entry of a report's receipt needs its --package ID");
		if (!is_hash_hex(package))
			jc_usage("receipt", "--package takes a package id: 64 lowercase hex characters");
		item = api_getf("/jam/packages/%s/report", package);
		if (strcmp(member_string(item, "report_hash"), hash) != 0)
			jc_die(JC_VERIFY, "verification_failed", "the report of package %s is not %s", package, hash);
		detail = member_string(item, "refine");
		attestations = api_getf("/jam/packages/%s/attestations", package);
		principal = NULL;
		for (size_t i = 0; json_object_is_type(attestations, json_type_array) &&
			 i < json_object_array_length(attestations); i++)
		{
			a = json_object_array_get_idx(attestations, i);
			if (json_object_object_get_ex(a, "report_hash", &v) && strcmp(json_object_get_string(v), hash) == 0 &&
				json_object_object_get_ex(a, "attester", &v) && json_object_is_type(v, json_type_string))
			{
				json_object_object_add(item, "_attester", json_object_get(v));
				principal = json_object_get_string(v);
				break;
			}
		}
		json_object_put(attestations);
		if (!principal)
			jc_die(JC_ERROR, "bad_response", "no attestation of report %s names its node", hash);
		e.kind = 2;
	}
	else
		jc_die(JC_ERROR, "bad_response", "the receipt is of an unknown kind \"%s\"", kind);

	from_hex(hash, e.item, JC_HASH_BYTES);
	entry_meta_hash(member_string(receipt, "service_id"), principal, detail, e.meta);
	if ((e.status = entry_status_code(member_string(receipt, "status"))) < 0)
		jc_die(JC_ERROR, "bad_response", "the receipt has an unknown status");
	if (entry_parse_time(member_string(receipt, "processed_at"), &e.timestamp_us) < 0)
		jc_die(JC_ERROR, "bad_response", "the receipt's processed_at is not a timestamp jamctl reads");
	entry_encode(&e, bytes);
	merkle_leaf_hash(bytes, ENTRY_BYTES, leaf);
	to_hex(leaf, JC_HASH_BYTES, leaf_hex);
	if (from_hex(member_string(receipt, "leaf_hash"), want, JC_HASH_BYTES) < 0 ||
		memcmp(leaf, want, JC_HASH_BYTES) != 0)
		jc_die(JC_VERIFY, "verification_failed",
			   "the entry built from the receipt and its %s hashes to leaf %s, not to the receipt's %s",
			   kind, leaf_hex, member_string(receipt, "leaf_hash"));
	if (!out && jc.stdout_tty)
		jc_die(JC_USAGE, "binary_output", "the entry is 74 binary bytes: use -o FILE or a redirection");
	write_out(out, bytes, ENTRY_BYTES);
	json_object_put(item);
	json_object_put(receipt);
	return JC_OK;
}

int
cmd_receipt(int argc, char **argv)
{
	struct opts o;
	const char *hash;
	json_object *doc;

	opts_parse(&o, "receipt", specs, argc, argv, 1);
	if (o.help)
		return help_verb("receipt");
	opts_positionals(&o, 1, 1, "the HASH (a package id or report hash)");
	hash = o.pos[0];
	if (!is_hash_hex(hash))
		jc_usage("receipt", "\"%s\" is not a hash: 64 lowercase hex characters", hash);
	if (opt_flag(&o, "proof") && opt_flag(&o, "entry"))
		jc_usage("receipt", "give --proof or --entry, not both");
	if (opt_flag(&o, "proof"))
	{
		opts_refuse(&o, "package");
		return proof(hash, opt_value(&o, "output"));
	}
	if (opt_flag(&o, "entry"))
		return entry(hash, opt_value(&o, "package"), opt_value(&o, "output"));
	opts_refuse(&o, "output");
	opts_refuse(&o, "package");
	doc = api_getf("/jam/receipts/%s", hash);
	if (jc_json())
		out_json(doc);
	else
		out_kv(doc, receipt_order);
	json_object_put(doc);
	return JC_OK;
}
