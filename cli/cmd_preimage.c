/*
 * cmd_preimage.c: jamctl preimage put|get|stat|hash, and the prototype's
 * `preimage --stat --hash H [--meta]`.
 *
 * Content addressing is end to end: put checks that the server's hash is
 * the one computed here, and get checks the bytes against the hash asked
 * for before any of them reaches the user (a file is written under a
 * temporary name and renamed only once the hash holds).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "errors.h"
#include "help.h"
#include "http.h"
#include "jamctl.h"
#include "opts.h"
#include "out.h"
#include "pkgid.h"
#include "util.h"

static const struct opt_spec specs[] = {
	{"media-type", 0, 1},
	{"output", 'o', 1},
	{"meta", 0, 0},
	{"stat", 0, 0},
	{"hash", 0, 1},
	{NULL, 0, 0}
};

static const char *const meta_order[] = {
	"hash", "size", "media_type", "refcount", "storage_class", "created_at", "created", NULL
};

static void
check_hash_arg(const char *verb, const char *h)
{
	if (!is_hash_hex(h))
		jc_usage(verb, "\"%s\" is not a hash: 64 lowercase hex characters", h);
}

static int
put(struct opts *o)
{
	const char *media = opt_value(o, "media-type");
	unsigned char *data;
	size_t		len;
	unsigned char h[JC_HASH_BYTES];
	char		hex[JC_HASH_HEX + 1];
	struct http_req req = {.method = "POST", .path = "/jam/preimages"};
	struct http_resp resp;
	json_object *doc,
			   *v;

	opts_refuse(o, "output");
	opts_positionals(o, 2, 2, "FILE (or - for stdin)");
	if (!(data = read_file(o->pos[1], &len)))
		jc_die(JC_USAGE, "file_unreadable", "cannot read %s: %s", o->pos[1], strerror(errno));
	blake2b_256(data, len, h);
	to_hex(h, JC_HASH_BYTES, hex);
	req.content_type = media ? media : "application/octet-stream";
	req.body = data;
	req.body_len = len;
	http_do(&req, &resp);
	if (resp.status != 200 && resp.status != 201)
		http_fail(&resp);
	doc = http_json(&resp);
	if (!json_object_object_get_ex(doc, "hash", &v) || strcmp(json_object_get_string(v), hex) != 0)
		jc_die(JC_VERIFY, "verification_failed",
			   "the server stored the bytes as %s, but they hash to %s",
			   v ? json_object_get_string(v) : "(no hash)", hex);
	if (jc_json())
		out_json(doc);
	else
		printf("%s  %s\n", hex, resp.status == 201 ? "created" : "existing");
	json_object_put(doc);
	http_resp_free(&resp);
	free(data);
	return JC_OK;
}

/* The temporary file of a download under way: removed if jamctl ends before renaming it. */
static char *pending_tmp;

static void
remove_pending_tmp(void)
{
	if (pending_tmp)
		unlink(pending_tmp);
}

/* Where a download goes while its hash is computed. */
struct download
{
	crypto_generichash_state hash;
	int			fd;				/* the temporary file, or -1: kept in memory */
	unsigned char *buf;
	size_t		len,
				cap;
};

static int
download_sink(const unsigned char *data, size_t n, void *ctx)
{
	struct download *d = ctx;

	crypto_generichash_update(&d->hash, data, n);
	if (d->fd >= 0)
		return write_all(d->fd, data, n);
	if (d->len + n > d->cap)
	{
		d->cap = (d->len + n) * 2;
		d->buf = xrealloc(d->buf, d->cap);
	}
	memcpy(d->buf + d->len, data, n);
	d->len += n;
	return 0;
}

/* Whether bytes would garble a terminal: NUL, ESC and other controls, or invalid UTF-8. */
static int
looks_binary(const unsigned char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = s[i];

		if (c < 0x20 && c != '\n' && c != '\t' && c != '\r')
			return 1;
		if (c == 0x7f)
			return 1;
		if (c >= 0x80)
		{
			size_t		n = c >= 0xf0 && c <= 0xf4 ? 3 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xc2 && c <= 0xdf ? 1 : 0;

			if (n == 0 || i + n >= len)
				return 1;
			for (size_t k = 1; k <= n; k++)
				if ((s[i + k] & 0xc0) != 0x80)
					return 1;
			i += n;
		}
	}
	return 0;
}

static int
get(struct opts *o)
{
	const char *out = opt_value(o, "output");
	const char *hash;
	char	   *path,
			   *tmp = NULL;
	struct download d = {.fd = -1};
	struct http_req req = {.method = "GET", .sink = download_sink, .sink_ctx = &d};
	struct http_resp resp;
	unsigned char want[JC_HASH_BYTES],
				got[JC_HASH_BYTES];
	char		got_hex[JC_HASH_HEX + 1];
	int			to_stdout = !out || strcmp(out, "-") == 0;

	opts_refuse(o, "media-type");
	opts_positionals(o, 2, 2, "HASH");
	hash = o->pos[1];
	check_hash_arg("preimage get", hash);
	from_hex(hash, want, JC_HASH_BYTES);
	crypto_generichash_init(&d.hash, NULL, 0, JC_HASH_BYTES);
	if (!to_stdout)
	{
		mode_t		mask = umask(0);

		umask(mask);
		tmp = xasprintf("%s.jamctl-XXXXXX", out);
		if ((d.fd = mkstemp(tmp)) < 0)
			jc_die(JC_ERROR, "write_failed", "cannot create a file beside %s: %s", out, strerror(errno));
		pending_tmp = tmp;
		atexit(remove_pending_tmp);
		fchmod(d.fd, 0666 & ~mask);
	}
	path = xasprintf("/jam/preimages/%s", hash);
	req.path = path;
	http_do(&req, &resp);
	if (resp.status != 200)
		http_fail(&resp);
	crypto_generichash_final(&d.hash, got, JC_HASH_BYTES);
	if (sodium_memcmp(got, want, JC_HASH_BYTES) != 0)
	{
		to_hex(got, JC_HASH_BYTES, got_hex);
		jc_die(JC_VERIFY, "verification_failed",
			   "the bytes the server sent hash to %s, not %s; nothing was written", got_hex, hash);
	}
	if (tmp)
	{
		if (fsync(d.fd) != 0 || close(d.fd) != 0 || rename(tmp, out) != 0)
			jc_die(JC_ERROR, "write_failed", "cannot write %s: %s", out, strerror(errno));
		pending_tmp = NULL;
	}
	else
	{
		/* Only -o - writes bytes that would garble a terminal. */
		if (jc.stdout_tty && !out && looks_binary(d.buf, d.len))
			jc_die(JC_USAGE, "binary_output",
				   "%zu bytes of binary data (%s) not written to the terminal; use -o FILE, "
				   "a redirection, or -o - to write them anyway", d.len,
				   resp.content_type[0] ? resp.content_type : "no media type");
		if (write_all(STDOUT_FILENO, d.buf, d.len) != 0)
			jc_die(JC_ERROR, "write_failed", "cannot write to stdout: %s", strerror(errno));
	}
	free(d.buf);
	free(path);
	free(tmp);
	http_resp_free(&resp);
	return JC_OK;
}

static int
stat_meta(struct opts *o, const char *hash)
{
	json_object *doc;

	opts_refuse(o, "media-type");
	opts_refuse(o, "output");
	check_hash_arg("preimage stat", hash);
	doc = api_getf("/jam/preimages/%s/meta", hash);
	if (jc_json())
		out_json(doc);
	else
		out_kv(doc, meta_order);
	json_object_put(doc);
	return JC_OK;
}

static int
hash_file(struct opts *o)
{
	unsigned char *data;
	size_t		len;
	unsigned char h[JC_HASH_BYTES];
	char		hex[JC_HASH_HEX + 1];

	opts_positionals(o, 2, 2, "FILE (or - for stdin)");
	if (!(data = read_file(o->pos[1], &len)))
		jc_die(JC_USAGE, "file_unreadable", "cannot read %s: %s", o->pos[1], strerror(errno));
	blake2b_256(data, len, h);
	to_hex(h, JC_HASH_BYTES, hex);
	if (jc_json())
	{
		json_object *doc = json_object_new_object();

		json_object_object_add(doc, "hash", json_object_new_string(hex));
		json_object_object_add(doc, "size", json_object_new_int64((int64_t) len));
		out_json(doc);
		json_object_put(doc);
	}
	else
		printf("%s\n", hex);
	free(data);
	return JC_OK;
}

int
cmd_preimage(int argc, char **argv)
{
	struct opts o;
	const char *sub;
	char		verb[32];

	opts_parse(&o, "preimage", specs, argc, argv, 1);
	sub = o.npos > 0 ? o.pos[0] : NULL;
	snprintf(verb, sizeof(verb), "preimage %s", sub ? sub : "");
	if (o.help)
		return help_verb(sub && help_exists(verb) ? verb : "preimage");
	o.verb = sub ? verb : "preimage";

	/* The prototype's `slctl jam preimage --stat --hash H [--meta]`. */
	if (opt_flag(&o, "stat"))
	{
		const char *h = opt_value(&o, "hash");

		if (sub || !h)
			jc_usage("preimage stat", "--stat takes --hash HASH and no verb");
		return stat_meta(&o, h);
	}
	opts_refuse(&o, "hash");
	if (!sub)
		jc_usage("preimage", "missing the verb: put, get, stat or hash");
	if (strcmp(sub, "put") == 0 || strcmp(sub, "get") == 0)
	{
		opts_refuse(&o, "meta");
		return sub[0] == 'p' ? put(&o) : get(&o);
	}
	if (strcmp(sub, "stat") == 0)
	{
		opts_positionals(&o, 2, 2, "HASH");
		return stat_meta(&o, o.pos[1]);
	}
	if (strcmp(sub, "hash") == 0)
	{
		opts_refuse(&o, "meta");
		opts_refuse(&o, "media-type");
		opts_refuse(&o, "output");
		return hash_file(&o);
	}
	jc_usage("preimage", "unknown verb \"%s\": put, get, stat or hash", sub);
}
