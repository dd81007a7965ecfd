/*
 * cmd_verify.c: jamctl verify FILE --key VKEY [--leaf-data FILE | --leaf-hash HEX] [--hash H] [--origin O]
 *                             [--witness WKEY]... [--min-witnesses K]
 *
 * A receipt checked years later, with no server: the proof file
 * (c2sp.org/tlog-proof@v1) carries the inclusion path and the signed
 * checkpoint; the key (jam_status()'s verifier_key, pinned by the user)
 * says who must have signed it.  Checks, in order, each named when it
 * fails (exit 6):
 *
 *   format      the proof and its checkpoint are laid out as the specs say
 *   signature   a signature by the key verifies the checkpoint
 *   witnesses   at least K of the --witness keys (all of them without
 *               --min-witnesses) cosigned the checkpoint
 *               (c2sp.org/tlog-cosignature), if any are given
 *   origin      the checkpoint is of the log --origin names (if given)
 *   inclusion   the path leads from the leaf at the index to the root
 *   leaf        the leaf is the entry of --hash (if given)
 *
 * Without a leaf (--leaf-data or --leaf-hash) the proof cannot say which
 * entry it proves, so only the path's shape is checked, and the output
 * says so.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "cosig.h"
#include "entry.h"
#include "errors.h"
#include "help.h"
#include "jamctl.h"
#include "merkle.h"
#include "note.h"
#include "opts.h"
#include "out.h"
#include "tlogproof.h"
#include "util.h"

static const struct opt_spec specs[] = {
	{"key", 0, 1},
	{"leaf-data", 0, 1},
	{"leaf-hash", 0, 1},
	{"hash", 0, 1},
	{"origin", 0, 1},
	{"witness", 0, 1},
	{"min-witnesses", 0, 1},
	{NULL, 0, 0}
};

/* The most --witness keys a verification takes. */
#define MAX_WITNESSES 32

/* What was established so far, for the JSON answer. */
struct result
{
	json_object *doc;
	const char *file;
};

/* A failed check: the JSON answer (when JSON), the error line, exit 6. */
static void __attribute__((noreturn))
failed(struct result *r, const char *check, const char *why)
{
	if (jc_json())
	{
		json_object_object_add(r->doc, "ok", json_object_new_boolean(0));
		json_object_object_add(r->doc, "failed", json_object_new_string(check));
		json_object_object_add(r->doc, "error", json_object_new_string(why));
		out_json(r->doc);
	}
	jc_die(JC_VERIFY, "verification_failed", "%s: %s: %s", r->file, check, why);
}

static void
passed(struct result *r, const char *check, const char *how)
{
	json_object *checks;

	if (!json_object_object_get_ex(r->doc, "checks", &checks))
	{
		checks = json_object_new_object();
		json_object_object_add(r->doc, "checks", checks);
	}
	json_object_object_add(checks, check, json_object_new_string(how));
}

int
cmd_verify(int argc, char **argv)
{
	struct opts o;
	struct result r;
	const char *vkey,
			   *leaf_file,
			   *leaf_hex,
			   *want_hash,
			   *want_origin;
	struct note_key key;
	const char *why;
	char		whybuf[2600],
				label[NOTE_NAME_MAX + 16],
				hex[JC_HASH_HEX + 1];
	unsigned char *text,
			   *leaf_data = NULL;
	size_t		text_len,
				leaf_len = 0,
				signed_len;
	struct tlog_proof p;
	unsigned char leaf[JC_HASH_BYTES];
	int			have_leaf = 0;
	struct log_entry e;
	int			have_entry = 0;
	char	   *root_b64;
	const char *witness_keys[MAX_WITNESSES];
	struct cosigner witnesses[MAX_WITNESSES];
	int			n_witnesses,
				n_cosigned = 0;
	long		min_witnesses;
	char		cosigned_text[4096] = "";	/* who cosigned, for the text answer */

	opts_parse(&o, "verify", specs, argc, argv, 1);
	if (o.help)
		return help_verb("verify");
	opts_positionals(&o, 1, 1, "the proof FILE (or - for stdin)");
	vkey = opt_value(&o, "key");
	leaf_file = opt_value(&o, "leaf-data");
	leaf_hex = opt_value(&o, "leaf-hash");
	want_hash = opt_value(&o, "hash");
	want_origin = opt_value(&o, "origin");
	if (!vkey)
		jc_usage("verify", "--key VKEY is required (the verifier_key of jamctl status)");
	if (note_parse_key(vkey, &key, &why) < 0)
		jc_die(JC_USAGE, "invalid_key", "--key: %s", why);
	n_witnesses = opt_values(&o, "witness", witness_keys, MAX_WITNESSES);
	for (int i = 0; i < n_witnesses; i++)
	{
		if (cosig_parse_key(witness_keys[i], &witnesses[i], &why) < 0)
			jc_die(JC_USAGE, "invalid_key", "--witness %s: %s", witness_keys[i], why);
		for (int j = 0; j < i; j++)
			if (strcmp(witnesses[j].name, witnesses[i].name) == 0 &&
				memcmp(witnesses[j].keyid, witnesses[i].keyid, 4) == 0)
				jc_usage("verify", "the same --witness key is given twice: each witness counts once");
	}
	if (opt_value(&o, "min-witnesses") && n_witnesses == 0)
		jc_usage("verify", "--min-witnesses K needs the witnesses' keys (--witness WKEY, repeated)");
	min_witnesses = opt_long(&o, "min-witnesses", 1, n_witnesses > 0 ? n_witnesses : 1, n_witnesses);
	if (leaf_file && leaf_hex)
		jc_usage("verify", "give --leaf-data or --leaf-hash, not both");
	if (leaf_hex && (strlen(leaf_hex) != JC_HASH_HEX || from_hex(leaf_hex, leaf, JC_HASH_BYTES) < 0))
		jc_usage("verify", "--leaf-hash takes 64 hex characters (a receipt's leaf_hash)");
	if (want_hash && !is_hash_hex(want_hash))
		jc_usage("verify", "--hash takes a package id or report hash: 64 lowercase hex characters");
	if (want_hash && !leaf_file)
		jc_usage("verify", "--hash needs --leaf-data: the entry names the hash");
	if (!(text = read_file(o.pos[0], &text_len)))
		jc_die(JC_USAGE, "file_unreadable", "cannot read %s: %s", o.pos[0], strerror(errno));
	if (leaf_file)
	{
		if (!(leaf_data = read_file(leaf_file, &leaf_len)))
			jc_die(JC_USAGE, "file_unreadable", "cannot read %s: %s", leaf_file, strerror(errno));
		merkle_leaf_hash(leaf_data, leaf_len, leaf);
	}
	have_leaf = leaf_file || leaf_hex;

	r.doc = json_object_new_object();
	r.file = strcmp(o.pos[0], "-") == 0 ? "stdin" : o.pos[0];
	note_key_label(&key, label, sizeof(label));

	/* format: the proof's own lines. */
	if (tlog_parse_proof((const char *) text, text_len, &p, whybuf, sizeof(whybuf)) < 0)
		failed(&r, "format", whybuf);
	json_object_object_add(r.doc, "index", json_object_new_int64((int64_t) p.index));
	json_object_object_add(r.doc, "path_length", json_object_new_int((int) p.n));

	/* signature: the checkpoint is a note signed by the key. */
	switch (note_verify(p.note, p.note_len, &key, &signed_len, whybuf, sizeof(whybuf)))
	{
		case NOTE_MALFORMED:
			failed(&r, "format", whybuf);
		case NOTE_BAD_SIGNATURE:
			failed(&r, "signature", whybuf);
		case NOTE_OK:
			break;
	}
	if (tlog_parse_checkpoint(p.note, signed_len, &p, whybuf, sizeof(whybuf)) < 0)
		failed(&r, "format", whybuf);
	passed(&r, "format", "ok");
	passed(&r, "signature", "ok");
	json_object_object_add(r.doc, "key", json_object_new_string(label));
	json_object_object_add(r.doc, "origin", json_object_new_string(p.origin));
	json_object_object_add(r.doc, "tree_size", json_object_new_int64((int64_t) p.size));
	root_b64 = b64_encode(p.root, JC_HASH_BYTES);
	json_object_object_add(r.doc, "root", json_object_new_string(root_b64));

	/* witnesses: k of n cosigned this checkpoint. */
	if (n_witnesses > 0)
	{
		json_object *list = json_object_new_array();

		for (int i = 0; i < n_witnesses; i++)
		{
			json_object *w = json_object_new_object();
			unsigned long long t;
			char		wlabel[NOTE_NAME_MAX + 16];

			cosig_label(&witnesses[i], wlabel, sizeof(wlabel));
			json_object_object_add(w, "key", json_object_new_string(wlabel));
			if (cosig_find(p.note, p.note_len, signed_len, &witnesses[i], &t) == 0)
			{
				time_t		tt = (time_t) t;
				struct tm	tm;
				char		when[32];

				gmtime_r(&tt, &tm);
				strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
				json_object_object_add(w, "cosigned_at", json_object_new_string(when));
				n_cosigned++;
				snprintf(cosigned_text + strlen(cosigned_text), sizeof(cosigned_text) - strlen(cosigned_text),
						 "%s%s at %s", n_cosigned > 1 ? ", " : "", wlabel, when);
			}
			else
				json_object_object_add(w, "cosigned_at", NULL);
			json_object_array_add(list, w);
		}
		json_object_object_add(r.doc, "witnesses", list);
		json_object_object_add(r.doc, "witnesses_needed", json_object_new_int((int) min_witnesses));
		if (n_cosigned < min_witnesses)
		{
			snprintf(whybuf, sizeof(whybuf), "%d of the %d witnesses cosigned the checkpoint; %ld needed",
					 n_cosigned, n_witnesses, min_witnesses);
			failed(&r, "witnesses", whybuf);
		}
		passed(&r, "witnesses", "ok");
	}

	/* origin: which log. */
	if (want_origin)
	{
		if (strcmp(want_origin, p.origin) != 0)
		{
			snprintf(whybuf, sizeof(whybuf), "the checkpoint is of \"%s\", not \"%s\"", p.origin, want_origin);
			failed(&r, "origin", whybuf);
		}
		passed(&r, "origin", "ok");
	}

	/* inclusion: the path, from the leaf (or, without one, its shape). */
	if (!merkle_verify_inclusion(have_leaf ? leaf : NULL, p.index, p.size,
								 (const unsigned char (*)[JC_HASH_BYTES]) p.path, p.n, p.root, &why))
		failed(&r, "inclusion", why);
	passed(&r, "inclusion", have_leaf ? "ok" : "shape only: no --leaf-data or --leaf-hash");
	if (have_leaf)
	{
		to_hex(leaf, JC_HASH_BYTES, hex);
		json_object_object_add(r.doc, "leaf_hash", json_object_new_string(hex));
	}

	/* leaf: which entry. */
	if (leaf_data && entry_decode(leaf_data, leaf_len, &e) == 0)
	{
		have_entry = 1;
		json_object_object_add(r.doc, "entry", entry_json(&e));
	}
	if (want_hash)
	{
		if (!have_entry)
			failed(&r, "leaf", "the leaf data is not a 74-byte jam log entry");
		to_hex(e.item, JC_HASH_BYTES, hex);
		if (strcmp(hex, want_hash) != 0)
		{
			snprintf(whybuf, sizeof(whybuf), "the entry is of %s, not %s", hex, want_hash);
			failed(&r, "leaf", whybuf);
		}
		passed(&r, "leaf", "ok");
	}
	json_object_object_add(r.doc, "ok", json_object_new_boolean(1));

	if (jc_json())
		out_json(r.doc);
	else
	{
		printf("ok: entry %llu of %s (size %llu) is in the tree signed by %s\n",
			   (unsigned long long) p.index, p.origin, (unsigned long long) p.size, label);
		printf("  format     ok (%zu path hash%s%s)\n", p.n, p.n == 1 ? "" : "es", p.has_extra ? ", extra data" : "");
		printf("  signature  ok (%s)\n", label);
		if (n_witnesses > 0)
			printf("  witnesses  ok (%d of %d, %ld needed: %s)\n", n_cosigned, n_witnesses, min_witnesses,
				   cosigned_text);
		if (want_origin)
			printf("  origin     ok (%s)\n", p.origin);
		if (have_leaf)
			printf("  inclusion  ok (root %s)\n", root_b64);
		else
			printf("  inclusion  path shape only: give --leaf-data or --leaf-hash to check it leads to the root\n");
		if (have_entry)
		{
			to_hex(e.item, JC_HASH_BYTES, hex);
			printf("  leaf       %s%s %s, %s, %s\n", want_hash ? "ok: " : "",
				   e.kind == 1 ? "package" : "report", hex,
				   json_object_get_string(json_object_object_get(json_object_object_get(r.doc, "entry"), "status")),
				   json_object_get_string(json_object_object_get(json_object_object_get(r.doc, "entry"), "processed_at")));
		}
	}
	free(root_b64);
	free(text);
	free(leaf_data);
	free(p.extra);
	json_object_put(r.doc);
	return JC_OK;
}
