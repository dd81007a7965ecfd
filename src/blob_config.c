/*
 * blob_config.c: the settings of the blob tier, the store's object keys
 * and URLs, and what jam_status() shows of it.
 *
 * The settings follow what operators of S3-backed Postgres tooling know
 * from pgBackRest's repo-s3-*: an endpoint (host[:port]), a bucket, a
 * region, a key prefix, host- or path-style URIs, TLS on or off.  They
 * are server-wide (postgresql.conf or ALTER SYSTEM, then a reload), as
 * the store is.  The credentials are not settings at all: they come from
 * a file only the server's OS user can read (blob_credentials.c), so no
 * client can SHOW them.
 */
#include "jam.h"
#include "blob.h"
#include "errors.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

typedef enum UriStyle
{
	URI_STYLE_HOST,
	URI_STYLE_PATH
} UriStyle;

static const struct config_enum_entry uri_style_options[] = {
	{"host", URI_STYLE_HOST, false},
	{"path", URI_STYLE_PATH, false},
	{NULL, 0, false}
};

char	   *jam_blob_store_endpoint = NULL;
char	   *jam_blob_store_bucket = NULL;
char	   *jam_blob_store_region = NULL;
char	   *jam_blob_store_prefix = NULL;
char	   *jam_blob_store_credentials_file = NULL;
static char *jam_blob_store_replication = NULL;
static int	jam_blob_store_uri_style = URI_STYLE_HOST;
static bool jam_blob_store_tls = true;
int			jam_blob_offload_threshold = 1024 * 1024;
int			jam_blob_store_timeout_ms = 30000;
int			jam_blob_store_connect_timeout_ms = 2000;
int			jam_blob_store_retries = 2;
int			jam_blob_offload_batch_size = 100;
int			jam_blob_offload_interval = 3600;
int			jam_blob_delete_delay = 0;

/* Whether the catalog has the delete queue (1.2 on): -1 until read, and after a relcache flush. */
static int	has_blob_catalog = -1;
static bool callback_registered = false;

/* Whether every byte of s is one of the allowed ones (and s is at most max bytes). */
static bool
only_chars(const char *s, const char *allowed, size_t max)
{
	size_t		n = strlen(s);

	if (n > max)
		return false;
	for (; *s; s++)
	{
		bool		alnum = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9');

		if (!alnum && strchr(allowed, *s) == NULL)
			return false;
	}
	return true;
}

/* host[:port] (a name, IPv4, or [IPv6]): no scheme and no path, which have settings of their own. */
static bool
check_endpoint(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || **newval == '\0')
		return true;
	if (strstr(*newval, "://") != NULL)
	{
		GUC_check_errdetail("Give host[:port] only; jam.blob_store_tls chooses https or http.");
		return false;
	}
	if (!only_chars(*newval, ".-:[]", 255))
	{
		GUC_check_errdetail("jam.blob_store_endpoint is host[:port]: letters, digits, '.', '-', ':', '[' and ']'.");
		return false;
	}
	return true;
}

/* S3's bucket names, and the older ones some stores still allow (capitals, '_'). */
static bool
check_bucket(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || **newval == '\0')
		return true;
	if (strlen(*newval) < 3 || !only_chars(*newval, ".-_", 63))
	{
		GUC_check_errdetail("A bucket name has 3 to 63 letters, digits, '.', '-' or '_'.");
		return false;
	}
	return true;
}

static bool
check_region(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || **newval == '\0' || !only_chars(*newval, "-_", 64))
	{
		GUC_check_errdetail("A region is letters, digits, '-' and '_', such as us-east-1.");
		return false;
	}
	return true;
}

/*
 * Keys are <prefix>/<xx>/<hash>: the prefix may hold '/' between parts,
 * but no empty part, so that every key maps to one path both URI styles
 * and the signature agree on without encoding.
 */
static bool
check_prefix(char **newval, void **extra, GucSource source)
{
	const char *s = *newval;

	if (s == NULL || *s == '\0')
		return true;
	if (!only_chars(s, "._-/", JAM_BLOB_PREFIX_MAX) || s[0] == '/' || s[strlen(s) - 1] == '/' ||
		strstr(s, "//") != NULL)
	{
		GUC_check_errdetail("A key prefix is at most %d letters, digits, '.', '_', '-', "
							"with '/' between parts (not first, last, or twice in a row).",
							JAM_BLOB_PREFIX_MAX);
		return false;
	}
	return true;
}

/*
 * Defines the jam.blob_* settings.  _PG_init calls it before
 * jam_define_gucs(), which reserves the jam prefix.
 */
void
jam_define_blob_gucs(void)
{
	DefineCustomStringVariable("jam.blob_store_endpoint",
							   "host[:port] of the S3-compatible store for large preimages; empty: no store.",
							   "With no store, every preimage stays inline in jam_preimages.",
							   &jam_blob_store_endpoint, "",
							   PGC_SIGHUP, 0, check_endpoint, NULL, NULL);
	DefineCustomStringVariable("jam.blob_store_bucket",
							   "Bucket of the blob store.",
							   NULL,
							   &jam_blob_store_bucket, "",
							   PGC_SIGHUP, 0, check_bucket, NULL, NULL);
	DefineCustomStringVariable("jam.blob_store_region",
							   "Region requests to the blob store are signed for.",
							   NULL,
							   &jam_blob_store_region, "us-east-1",
							   PGC_SIGHUP, 0, check_region, NULL, NULL);
	DefineCustomStringVariable("jam.blob_store_prefix",
							   "Key prefix of jam's objects in the bucket.",
							   "Objects are <prefix>/<first two hex digits>/<hash>.",
							   &jam_blob_store_prefix, "jam",
							   PGC_SIGHUP, 0, check_prefix, NULL, NULL);
	DefineCustomEnumVariable("jam.blob_store_uri_style",
							 "host: https://<bucket>.<endpoint>/<key>; path: https://<endpoint>/<bucket>/<key>.",
							 NULL,
							 &jam_blob_store_uri_style, URI_STYLE_HOST, uri_style_options,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("jam.blob_store_tls",
							 "Whether the blob store is reached over HTTPS (its certificate verified).",
							 NULL,
							 &jam_blob_store_tls, true,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("jam.blob_store_credentials_file",
							   "File holding the blob store's access key id and secret (mode 0600, the server's user's).",
							   "Read when needed, and again whenever it changes.",
							   &jam_blob_store_credentials_file, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	DefineCustomStringVariable("jam.blob_store_replication",
							   "The bucket's replication policy, as the operator set it up, shown by jam_status().",
							   "For instance: \"none\", or \"versioned, replicated to eu-central-1\".",
							   &jam_blob_store_replication, "",
							   PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("jam.blob_offload_threshold",
							"Preimages of at least this size go to the blob store.",
							NULL,
							&jam_blob_offload_threshold, 1024 * 1024,
							1, MaxAllocSize / 2,
							PGC_SIGHUP, GUC_UNIT_BYTE, NULL, NULL, NULL);
	DefineCustomIntVariable("jam.blob_store_timeout",
							"Longest one request to the blob store may take.",
							NULL,
							&jam_blob_store_timeout_ms, 30000,
							100, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("jam.blob_store_connect_timeout",
							"Longest wait for a connection to the blob store.",
							NULL,
							&jam_blob_store_connect_timeout_ms, 2000,
							100, 600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("jam.blob_store_retries",
							"Times a request the blob store failed (down, 5xx, 429) is retried.",
							NULL,
							&jam_blob_store_retries, 2,
							0, 10,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("jam.blob_offload_batch_size",
							"Most preimages one offload transaction moves to the blob store.",
							NULL,
							&jam_blob_offload_batch_size, 100,
							1, 10000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("jam.blob_offload_interval",
							"Time between two offloads of the blob worker; 0: it never offloads.",
							NULL,
							&jam_blob_offload_interval, 3600,
							0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("jam.blob_delete_delay",
							"Time an object outlives the row retention deleted, before the blob worker deletes it.",
							"Set it to the retention of your database backups, so that a restored database "
							"finds its objects.",
							&jam_blob_delete_delay, 0,
							0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	jam_blob_worker_init();
}

/* Whether a store is set up: an endpoint and a bucket. */
bool
jam_blob_store_configured(void)
{
	return jam_blob_store_endpoint != NULL && jam_blob_store_endpoint[0] != '\0' &&
		jam_blob_store_bucket != NULL && jam_blob_store_bucket[0] != '\0';
}

static void
forget_blob_catalog(Datum arg, Oid relid)
{
	has_blob_catalog = -1;
}

/* Whether this database's catalog has the blob tier (1.2 on): the delete queue. */
bool
jam_blob_catalog(void)
{
	if (has_blob_catalog < 0)
	{
		Oid			ns = get_namespace_oid("jam", true);

		if (!callback_registered)
		{
			CacheRegisterRelcacheCallback(forget_blob_catalog, (Datum) 0);
			callback_registered = true;
		}
		has_blob_catalog = OidIsValid(ns) && OidIsValid(get_relname_relid("jam_blob_deletes", ns));
	}
	return has_blob_catalog == 1;
}

/* Whether new preimages may go to the store: one is configured, and the catalog has the tier. */
bool
jam_blob_tier_ready(void)
{
	return jam_blob_store_configured() && jam_blob_catalog();
}

/* Whether a preimage of size bytes goes to the store. */
bool
jam_blob_offloads(int64 size)
{
	return size >= jam_blob_offload_threshold && jam_blob_tier_ready();
}

/* The prefix every key of jam's starts with: "<prefix>/", or "" without one. */
char *
jam_blob_key_prefix(void)
{
	const char *p = jam_blob_store_prefix ? jam_blob_store_prefix : "";

	return p[0] ? psprintf("%s/", p) : pstrdup("");
}

/* The object key of a hash: <prefix>/<first two hex>/<hash>; out holds JAM_BLOB_KEY_MAX. */
void
jam_blob_object_key(const char *hash_hex, char *out)
{
	const char *p = jam_blob_store_prefix ? jam_blob_store_prefix : "";

	snprintf(out, JAM_BLOB_KEY_MAX, "%s%s%.2s/%s", p, p[0] ? "/" : "", hash_hex, hash_hex);
}

bool
jam_blob_use_path_style(void)
{
	return jam_blob_store_uri_style == URI_STYLE_PATH;
}

/* The bucket's URL, ending in '/': keys and query strings follow it. */
char *
jam_blob_bucket_url(void)
{
	const char *scheme = jam_blob_store_tls ? "https" : "http";

	if (jam_blob_use_path_style())
		return psprintf("%s://%s/%s/", scheme, jam_blob_store_endpoint, jam_blob_store_bucket);
	return psprintf("%s://%s.%s/", scheme, jam_blob_store_bucket, jam_blob_store_endpoint);
}

/*
 * Raises blob_store_unavailable when no store is configured: what needs
 * one (reading an object that is in the store, offloading) cannot go on.
 */
void
jam_blob_require_store(const char *what)
{
	if (!jam_blob_store_configured())
		ereport(ERROR,
				(jam_errcode(JAM_ERR_BLOB_STORE_UNAVAILABLE),
				 errmsg("%s needs the blob store, and none is configured", what),
				 errdetail("Retry after %d seconds.", JAM_BLOB_RETRY_AFTER_S),
				 errhint("Set jam.blob_store_endpoint and jam.blob_store_bucket, then reload.")));
}

static JamStatement queue_length = {
	"SELECT count(*) FROM jam.jam_blob_deletes", 0, {InvalidOid}
};

/*
 * What jam_status() shows of the tier: the store's type, where it is
 * (never the credentials), its key layout, the threshold, the replication
 * policy the operator declared, and how many object deletes are queued.
 */
Datum
jam_blob_status(void)
{
	StringInfoData s;
	bool		configured = jam_blob_store_configured();
	bool		catalog = jam_blob_catalog();
	int64		queued = 0;

	if (catalog)
	{
		bool		isnull;

		SPI_connect();
		jam_spi_exec(&queue_length, NULL, NULL, true, 1);
		queued = DatumGetInt64(jam_spi_result_datum(1, &isnull));
		SPI_finish();
	}
	initStringInfo(&s);
	appendStringInfo(&s, "{\"type\": \"%s\"", configured ? JAM_BLOB_STORE_TYPE : "none");
	if (configured)
	{
		char	   *url = jam_blob_bucket_url();

		appendStringInfoString(&s, ", \"endpoint\": ");
		escape_json(&s, jam_blob_store_endpoint);
		appendStringInfoString(&s, ", \"url\": ");
		escape_json(&s, url);
		appendStringInfoString(&s, ", \"bucket\": ");
		escape_json(&s, jam_blob_store_bucket);
		appendStringInfoString(&s, ", \"region\": ");
		escape_json(&s, jam_blob_store_region);
		appendStringInfoString(&s, ", \"prefix\": ");
		escape_json(&s, jam_blob_store_prefix);
		appendStringInfo(&s, ", \"uri_style\": \"%s\", \"tls\": %s",
						 jam_blob_use_path_style() ? "path" : "host",
						 jam_blob_store_tls ? "true" : "false");
	}
	appendStringInfo(&s, ", \"offload_threshold\": %d, \"replication\": ", jam_blob_offload_threshold);
	if (jam_blob_store_replication != NULL && jam_blob_store_replication[0] != '\0')
		escape_json(&s, jam_blob_store_replication);
	else
		appendStringInfoString(&s, "null");
	appendStringInfo(&s, ", \"catalog\": %s, \"delete_queue\": ", catalog ? "true" : "false");
	if (catalog)
		appendStringInfo(&s, INT64_FORMAT, queued);
	else
		appendStringInfoString(&s, "null");
	appendStringInfoChar(&s, '}');
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(s.data));
}
