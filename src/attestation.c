/*
 * attestation.c: signed attestations of reports (jam_register_attester,
 * jam_attest, jam_verify_attestation, jam_list_attestations, and the
 * node's own signature on every report it writes).
 *
 * An attestation says "attester vouches that package P produced report R
 * in service S".  What is signed (Ed25519) is, integers little-endian:
 *
 *   "jam/attestation/v1" || package id (32 bytes) || report hash (32 bytes)
 *   || u32 len || service_id || u32 len || attester name
 *   || u64 the report's created_at, microseconds since 1970-01-01 UTC
 *
 * Every part is in the report an attester can read, so an external
 * attester (registered with its signed-note verifier key, whose name is the
 * attester's name) signs exactly what the node signs, and anyone holding
 * the key checks an attestation offline with jam_verify_attestation.
 */
#include "jam.h"
#include "auth.h"
#include "attestation.h"
#include "errors.h"
#include "metrics.h"
#include "note.h"

#include <sodium.h>

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#define JAM_ATTESTATION_TAG "jam/attestation/v1"

#define ATTESTATION_JSON \
	"jsonb_build_object('id', id, 'version', 1, 'package_id', @x(package_id), " \
	"'report_hash', @x(report_hash), 'service_id', service_id, 'attester', attester, " \
	"'attested_by', attested_by, 'created_at', created_at, " \
	"'report_created_at', report_created_at, " \
	"'signature', translate(encode(signature, 'base64'), E'\\n', ''))"

static JamStatement select_report_of = {
	"SELECT @x(report_hash), service_id, created_at FROM jam.jam_work_reports "
	"WHERE package_id = @h($1)",
	1, {TEXTOID}
};

static JamStatement upsert_attester = {
	"INSERT INTO jam.jam_attesters (name, verifier_key, public_key) VALUES ($1, $2, $3) "
	"ON CONFLICT (name) DO UPDATE SET verifier_key = EXCLUDED.verifier_key, "
	"public_key = EXCLUDED.public_key "
	"RETURNING jsonb_build_object('name', name, 'verifier_key', verifier_key, 'created_at', created_at)",
	3, {TEXTOID, TEXTOID, BYTEAOID}
};

static JamStatement select_attester = {
	"SELECT public_key FROM jam.jam_attesters WHERE name = $1",
	1, {TEXTOID}
};

static JamStatement insert_external = {
	"INSERT INTO jam.jam_attestations (package_id, report_hash, attester, service_id, "
	"report_created_at, signature) VALUES (@h($1), @h($2), $3, $4, $5, $6) "
	"ON CONFLICT (package_id, attester) DO NOTHING RETURNING " ATTESTATION_JSON,
	6, {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, BYTEAOID}
};

static JamStatement select_one = {
	"SELECT " ATTESTATION_JSON " FROM jam.jam_attestations "
	"WHERE package_id = @h($1) AND attester = $2",
	2, {TEXTOID, TEXTOID}
};

/*
 * The page, filtered by service ($1), attester ($2), package ($3), visible
 * services ($6), after id $7: the first %s is the WHERE clause of the
 * filters given, the second the order of the index that serves them.
 */
#define LIST_PAGE_SQL \
	"WITH page AS (SELECT id, " ATTESTATION_JSON " AS doc FROM jam.jam_attestations " \
	"  WHERE %s ($6::text[] IS NULL OR service_id = ANY($6)) " \
	"  AND id > $7 ORDER BY %s LIMIT $4 + 1 OFFSET $5) " \
	LIST_ENVELOPE_SQL

/*
 * The page of a token's attestations without a service filter, merged from
 * each of its services ($6) walked in id order through (service_id, id),
 * at most a page of each (list.c's page_sql says why, and why the service
 * is bounded by >= and <=): the first %s bounds the service, the second
 * is the WHERE clause of the other filters, the third the order of the
 * index walked.
 */
#define LIST_PAGE_PER_SERVICE_SQL \
	"WITH page AS (SELECT id, " ATTESTATION_JSON " AS doc " \
	"  FROM (SELECT DISTINCT unnest($6::text[])) AS visible(visible_service) " \
	"  CROSS JOIN LATERAL (SELECT * FROM jam.jam_attestations " \
	"    WHERE %s AND %s id > $7 ORDER BY %s LIMIT $4::bigint + 1 + $5) AS rows " \
	"  ORDER BY id LIMIT $4 + 1 OFFSET $5) " \
	LIST_ENVELOPE_SQL

/* The envelope of the page above. */
#define LIST_ENVELOPE_SQL \
	"SELECT jsonb_build_object('items', coalesce((SELECT jsonb_agg(doc ORDER BY id) FROM " \
	"  (SELECT * FROM page ORDER BY id LIMIT $4) p), '[]'::jsonb), 'limit', $4, 'offset', $5, " \
	"  'next_offset', CASE WHEN (SELECT count(*) FROM page) > $4 THEN $5 + $4 END, " \
	"  'next_after', CASE WHEN (SELECT count(*) FROM page) > $4 " \
	"    THEN (SELECT max(id) FROM (SELECT id FROM page ORDER BY id LIMIT $4) p) END)"

/*
 * One statement per combination of the filters given (bit 0 service, 1
 * attester, 2 package; bit 3 a token's page merged service by service),
 * so that each is planned for what it filters on
 * rather than for "$n IS NULL OR column = $n", whose generic plan can use
 * no index.  A page of one attester's attestations, or of one service's,
 * must walk that column's index in (column, id) order, whatever the plan
 * cache makes of the value: walking the primary key and filtering, as a
 * generic plan did for an attester it took for common, read every
 * attestation the node ever signed to find an external attester's few
 * (1.6 adds the index by attester).  So the column is bounded by
 * "column >= $n AND column <= $n", the same rows as "=", and the page is
 * ordered by (column, id): with "=" the planner would take the column for
 * a constant and drop it from the order.  The primary key cannot give that
 * order without sorting every match, the column's index gives it at once.
 * Those two are planned once (CURSOR_OPT_GENERIC_PLAN), as that plan is
 * right for any value: left to choose, the plan cache planned a rare
 * attester's page again at every call, as its statistics promised a
 * cheaper plan each time, which made the page half as slow again with
 * 10^6 attestations as with 10^3.  A page filtered by both service and
 * attester is planned for the values at each call (CURSOR_OPT_CUSTOM_PLAN)
 * where the catalog predates 1.7: which of the two indexes holds fewer
 * rows to skip depends on them, and either walk grows with what the other
 * filter skips.  1.7's index on (service_id, attester, id) serves that
 * page (bit 4), and each service's walk of a token's page by attester, at
 * once.  There the service is "=" and the attester bounded by >= and <=,
 * so that the scan ends after the attester's last entry: a B-tree stops at
 * a bound on its second column only when the first is equal (with >= and
 * <= on the service too, it walked the rest of the service's entries, the
 * node's one per report).  The page is ordered by (attester, id), which
 * the attester's own index gives too, but only by filtering the service,
 * so the plan takes the index with both.
 */
static JamStatement list_page[32];

/*
 * The statement of a combination of filters (bits 0 to 3 as above), with
 * bit 4 when it walks (service_id, attester, id): one service's or each of
 * a token's services' attestations by one attester, no package given.
 */
static int
list_variant(int filters)
{
	if ((filters & 2) && (filters & 9) && !(filters & 4) && jam_attestations_by_service_attester())
		return filters | 16;
	return filters;
}

static JamStatement *
list_statement(int variant)
{
	JamStatement *stmt = &list_page[variant];
	int			filters = variant & 15;

	if (stmt->sql == NULL)
	{
		static const Oid argtypes[7] = {TEXTOID, TEXTOID, TEXTOID, INT4OID, INT4OID,
		TEXTARRAYOID, INT8OID};
		StringInfoData where;
		const char *order = "id";

		initStringInfo(&where);
		if (filters & 8)
		{
			/* A token's page, service by service (bit 3; never with a service filter). */
			const char *service = (variant & 16) ? "service_id = visible.visible_service" :
				"service_id >= visible.visible_service AND service_id <= visible.visible_service";

			if (variant & 16)
				appendStringInfoString(&where, "attester >= $2 AND attester <= $2 AND ");
			else if (filters & 2)
				appendStringInfoString(&where, "attester = $2 AND ");
			if (filters & 4)
				appendStringInfoString(&where, "package_id = @h($3) AND ");
			stmt->sql = MemoryContextStrdup(TopMemoryContext,
											psprintf(LIST_PAGE_PER_SERVICE_SQL, service, where.data,
													 (variant & 16) ? "service_id, attester, id" : "service_id, id"));
			stmt->nargs = 7;
			memcpy(stmt->argtypes, argtypes, sizeof(argtypes));
			return stmt;
		}
		if (variant & 16)
		{
			appendStringInfoString(&where, "service_id = $1 AND attester >= $2 AND attester <= $2 AND ");
			order = "service_id, attester, id";
		}
		else if (filters == 1)
		{
			appendStringInfoString(&where, "service_id >= $1 AND service_id <= $1 AND ");
			order = "service_id, id";
		}
		else if (filters == 2)
		{
			appendStringInfoString(&where, "attester >= $2 AND attester <= $2 AND ");
			order = "attester, id";
		}
		else
		{
			if (filters & 1)
				appendStringInfoString(&where, "service_id = $1 AND ");
			if (filters & 2)
				appendStringInfoString(&where, "attester = $2 AND ");
			if (filters & 4)
				appendStringInfoString(&where, "package_id = @h($3) AND ");
		}
		stmt->sql = MemoryContextStrdup(TopMemoryContext, psprintf(LIST_PAGE_SQL, where.data, order));
		stmt->plan_options = variant == 3 ? CURSOR_OPT_CUSTOM_PLAN :
			variant == 1 || variant == 2 || (variant & 16) ? CURSOR_OPT_GENERIC_PLAN : 0;
		stmt->nargs = 7;
		memcpy(stmt->argtypes, argtypes, sizeof(argtypes));
	}
	return stmt;
}

static void
put_string(StringInfo m, const char *s)
{
	uint32		len = strlen(s);
	uint8		b[4] = {len & 0xff, (len >> 8) & 0xff, (len >> 16) & 0xff, len >> 24};

	appendBinaryStringInfo(m, (const char *) b, 4);
	appendBinaryStringInfo(m, s, len);
}

/* The signed bytes of an attestation (see the top of this file). */
static void
attestation_message(const char *package_hex, const char *report_hex, const char *service_id,
					const char *attester, TimestampTz report_created_at, StringInfo m)
{
	uint8		hash[JAM_HASH_BYTES];
	uint64		micros = (uint64) (report_created_at +
								   (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY);
	uint8		b[8];

	initStringInfo(m);
	appendBinaryStringInfo(m, JAM_ATTESTATION_TAG, strlen(JAM_ATTESTATION_TAG));
	jam_parse_hash(cstring_to_text(package_hex), "package_id", hash);
	appendBinaryStringInfo(m, (const char *) hash, JAM_HASH_BYTES);
	jam_parse_hash(cstring_to_text(report_hex), "report_hash", hash);
	appendBinaryStringInfo(m, (const char *) hash, JAM_HASH_BYTES);
	put_string(m, service_id);
	put_string(m, attester);
	for (int i = 0; i < 8; i++)
		b[i] = (uint8) (micros >> (8 * i));
	appendBinaryStringInfo(m, (const char *) b, 8);
}

/*
 * This node's signature of its attestation of a report written now (the
 * report's created_at is the transaction's start), or NULL on a node
 * that has no key it can make.  Needs SPI.
 */
bytea *
jam_attestation_node_signature(const char *package_hex, const char *report_hex,
							   const char *service_id)
{
	uint8		secret[crypto_sign_SECRETKEYBYTES];
	uint8		sig[crypto_sign_BYTES];
	StringInfoData m;

	if (!jam_node_secret_key(secret))
		return NULL;
	attestation_message(package_hex, report_hex, service_id, jam_node_name,
						GetCurrentTransactionStartTimestamp(), &m);
	crypto_sign_detached(sig, NULL, (const uint8 *) m.data, m.len, secret);
	sodium_memzero(secret, sizeof(secret));
	jam_metrics_attestation("node");
	return jam_bytes_to_bytea(sig, sizeof(sig));
}

static char *
json_string(Jsonb *doc, const char *key)
{
	JsonbValue	k;
	JsonbValue *v;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	v = findJsonbValueFromContainer(&doc->root, JB_FOBJECT, &k);
	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* Decodes standard base64 of exactly len bytes into out; false otherwise. */
static bool
unbase64_exact(const char *b64, uint8 *out, size_t len)
{
	size_t		got;

	return b64 != NULL &&
		sodium_base642bin(out, len, b64, strlen(b64), NULL, &got, NULL,
						  sodium_base64_VARIANT_ORIGINAL) == 0 && got == len;
}

/*
 * Parses a timestamptz as its input function does; false when it cannot.
 * The input function only allocates, so its error can be caught and
 * dropped here without a subtransaction.
 */
static bool
parse_time(const char *text, Datum *out)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool ok = true;

	PG_TRY();
	{
		*out = DirectFunctionCall3(timestamptz_in, CStringGetDatum(text),
								   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/*
 * Reads the signed fields of an attestation document (the attester from
 * attester when not NULL) and builds its message; false when a field is
 * missing or malformed.
 */
static bool
document_message(Jsonb *doc, const char *attester, StringInfo m)
{
	char	   *package = json_string(doc, "package_id");
	char	   *report = json_string(doc, "report_hash");
	char	   *service = json_string(doc, "service_id");
	char	   *at = json_string(doc, "report_created_at");
	Datum		when;

	if (attester == NULL)
		attester = json_string(doc, "attester");
	if (package == NULL || report == NULL || service == NULL || attester == NULL || at == NULL ||
		strlen(package) != JAM_HASH_HEX_CHARS || strlen(report) != JAM_HASH_HEX_CHARS ||
		strspn(package, "0123456789abcdef") != JAM_HASH_HEX_CHARS ||
		strspn(report, "0123456789abcdef") != JAM_HASH_HEX_CHARS || !parse_time(at, &when))
		return false;
	attestation_message(package, report, service, attester, DatumGetTimestampTz(when), m);
	return true;
}

PG_FUNCTION_INFO_V1(jam_sign_attestation);

/*
 * jam_sign_attestation(attestation jsonb, attester, seed) signs the
 * attestation's report as attester with the Ed25519 seed, returning the
 * base64 signature jam_attest takes: for attesters that run in SQL, and
 * for tests.  The document needs package_id, report_hash, service_id and
 * report_created_at (a report's attestation from jam_attestations has
 * them).  Offline.
 */
Datum
jam_sign_attestation(PG_FUNCTION_ARGS)
{
	Jsonb	   *doc = PG_GETARG_JSONB_P(0);
	char	   *attester = text_to_cstring(PG_GETARG_TEXT_PP(1));
	bytea	   *seed = PG_GETARG_BYTEA_PP(2);
	uint8		public_key[crypto_sign_PUBLICKEYBYTES];
	uint8		secret[crypto_sign_SECRETKEYBYTES];
	uint8		sig[crypto_sign_BYTES];
	char		b64[sodium_base64_ENCODED_LEN(crypto_sign_BYTES, sodium_base64_VARIANT_ORIGINAL)];
	StringInfoData m;

	if (VARSIZE_ANY_EXHDR(seed) != crypto_sign_SEEDBYTES)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("seed must be 32 bytes")));
	if (!document_message(doc, attester, &m))
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("the attestation lacks package_id, report_hash, service_id or report_created_at")));
	crypto_sign_seed_keypair(public_key, secret, (const uint8 *) VARDATA_ANY(seed));
	crypto_sign_detached(sig, NULL, (const uint8 *) m.data, m.len, secret);
	sodium_memzero(secret, sizeof(secret));
	sodium_bin2base64(b64, sizeof(b64), sig, sizeof(sig), sodium_base64_VARIANT_ORIGINAL);
	PG_RETURN_TEXT_P(cstring_to_text(b64));
}

PG_FUNCTION_INFO_V1(jam_verify_attestation);

/*
 * jam_verify_attestation(attestation jsonb, verifier_key text): whether the
 * attestation (a document as jam_attestations or jam_list_attestations
 * return it) is signed by the key, whose name must be the attester's.
 * Offline: reads nothing.  False, never an error, for anything malformed.
 */
Datum
jam_verify_attestation(PG_FUNCTION_ARGS)
{
	Jsonb	   *doc = PG_GETARG_JSONB_P(0);
	char	   *verifier_key = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *attester = json_string(doc, "attester");
	char	   *key_name;
	uint8		public_key[JAM_NOTE_PUBLIC_KEY_BYTES];
	uint8		sig[crypto_sign_BYTES];
	StringInfoData m;

	if (attester == NULL ||
		!unbase64_exact(json_string(doc, "signature"), sig, sizeof(sig)) ||
		!jam_note_parse_verifier_key(verifier_key, &key_name, public_key) ||
		strcmp(key_name, attester) != 0 || !document_message(doc, attester, &m))
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(crypto_sign_verify_detached(sig, (const uint8 *) m.data, m.len, public_key) == 0);
}

PG_FUNCTION_INFO_V1(jam_register_attester);

/*
 * jam_register_attester(name, verifier_key) registers (or re-keys) an
 * external attester: its signed-note verifier key, whose name must be
 * name.  An operator's call (jam:admin).
 */
Datum
jam_register_attester(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *key;
	char	   *key_name;
	uint8		public_key[JAM_NOTE_PUBLIC_KEY_BYTES];
	Datum		values[3];
	Datum		doc;

	jam_check_enabled();
	jam_auth_require(JAM_SCOPE_ADMIN, "jam_register_attester");
	jam_require_arg(fcinfo, 0, "name");
	jam_require_arg(fcinfo, 1, "verifier_key");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	key = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (!jam_note_parse_verifier_key(key, &key_name, public_key))
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("verifier_key is not an Ed25519 signed-note verifier key"),
				 errhint("A key looks like name+1a2b3c4d+AUKq...; jam_note_verifier_key(name, seed) makes one.")));
	if (strcmp(key_name, name) != 0)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("the verifier key is named \"%s\", not \"%s\"", key_name, name)));
	if (strcmp(name, jam_node_name) == 0)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("\"%s\" is this node's name; its attestations are its own", name)));
	values[0] = CStringGetTextDatum(name);
	values[1] = CStringGetTextDatum(key);
	values[2] = PointerGetDatum(jam_bytes_to_bytea(public_key, sizeof(public_key)));
	SPI_connect();
	jam_spi_exec(&upsert_attester, values, NULL, false, 1);
	doc = jam_spi_copy_jsonb(1);
	SPI_finish();
	PG_RETURN_DATUM(doc);
}

PG_FUNCTION_INFO_V1(jam_attest);

/*
 * jam_attest(package_id, attester, signature) adds an external attester's
 * attestation of the package's report, after checking its signature (base64
 * Ed25519 over the encoding at the top of this file).  Idempotent: the same
 * attester attesting again returns its attestation.
 */
Datum
jam_attest(PG_FUNCTION_ARGS)
{
	char	   *package;
	char	   *attester;
	char	   *report;
	char	   *service;
	TimestampTz created_at;
	uint8		sig[crypto_sign_BYTES];
	uint8		public_key[JAM_NOTE_PUBLIC_KEY_BYTES];
	bytea	   *stored_key;
	StringInfoData m;
	Datum		values[6];
	bool		isnull;
	Datum		doc;

	jam_check_enabled();
	jam_auth_require(JAM_SCOPE_PROCESS, "jam_attest");
	jam_require_arg(fcinfo, 0, "package_id");
	jam_require_arg(fcinfo, 1, "attester");
	jam_require_arg(fcinfo, 2, "signature");
	package = jam_normalize_hash(PG_GETARG_TEXT_PP(0), "package_id");
	attester = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (!unbase64_exact(text_to_cstring(PG_GETARG_TEXT_PP(2)), sig, sizeof(sig)))
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_SIGNATURE),
				 errmsg("signature is not a base64 Ed25519 signature of 64 bytes")));

	SPI_connect();
	values[0] = CStringGetTextDatum(package);
	if (jam_spi_exec(&select_report_of, values, NULL, false, 1) == 0 ||
		!jam_auth_sees_service(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2)))
		ereport(ERROR,
				(jam_errcode(JAM_ERR_REPORT_NOT_FOUND),
				 errmsg("package %s has no report to attest", package)));
	report = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	service = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	created_at = DatumGetTimestampTz(jam_spi_result_datum(3, &isnull));
	jam_auth_require_service(JAM_SCOPE_PROCESS, service);

	values[0] = CStringGetTextDatum(attester);
	if (jam_spi_exec(&select_attester, values, NULL, false, 1) == 0)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_ATTESTER_NOT_FOUND),
				 errmsg("attester \"%s\" is not registered", jam_shown_input(attester)),
				 errhint("An operator registers it with jam_register_attester(name, verifier_key).")));
	stored_key = DatumGetByteaPP(jam_spi_result_datum(1, &isnull));
	memcpy(public_key, VARDATA_ANY(stored_key), sizeof(public_key));

	attestation_message(package, report, service, attester, created_at, &m);
	if (crypto_sign_verify_detached(sig, (const uint8 *) m.data, m.len, public_key) != 0)
	{
		jam_metrics_refusal("invalid_signature", service);
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_SIGNATURE),
				 errmsg("the signature is not %s's signature of this report", attester),
				 errdetail("README.md documents the signed encoding (jam/attestation/v1).")));
	}

	values[0] = CStringGetTextDatum(package);
	values[1] = CStringGetTextDatum(report);
	values[2] = CStringGetTextDatum(attester);
	values[3] = CStringGetTextDatum(service);
	values[4] = TimestampTzGetDatum(created_at);
	values[5] = PointerGetDatum(jam_bytes_to_bytea(sig, sizeof(sig)));
	if (jam_spi_exec(&insert_external, values, NULL, false, 1) == 1)
		jam_metrics_attestation("external");
	else
		jam_spi_exec(&select_one, (Datum[]) {values[0], values[2]}, NULL, false, 1);
	doc = jam_spi_copy_jsonb(1);
	SPI_finish();
	PG_RETURN_DATUM(doc);
}

PG_FUNCTION_INFO_V1(jam_list_attestations);

/*
 * jam_list_attestations(service_id, attester, package_id, limit, offset,
 * after): attestations oldest first, each filter optional, in the list
 * envelope {items, limit, offset, next_offset, next_after}.
 */
Datum
jam_list_attestations(PG_FUNCTION_ARGS)
{
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	ArrayType  *visible;
	int64		after = PG_ARGISNULL(5) ? 0 : PG_GETARG_INT64(5);
	int			filters;
	Datum		doc;

	jam_check_enabled();
	jam_auth_require(JAM_SCOPE_READ, "jam_list_attestations");
	jam_require_arg(fcinfo, 3, "limit");
	jam_require_arg(fcinfo, 4, "offset");
	jam_check_pagination(PG_GETARG_INT32(3), PG_GETARG_INT32(4));
	if (after < 0)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_PAGINATION),
				 errmsg("after must not be negative")));
	for (int i = 0; i < 3; i++)
		nulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
	if (!PG_ARGISNULL(0))
	{
		char	   *service_id = jam_check_service_id(PG_GETARG_TEXT_PP(0));

		jam_auth_require_service(JAM_SCOPE_READ, service_id);
		values[0] = CStringGetTextDatum(service_id);
	}
	if (!PG_ARGISNULL(1))
		values[1] = PG_GETARG_DATUM(1);
	if (!PG_ARGISNULL(2))
		values[2] = CStringGetTextDatum(jam_normalize_hash(PG_GETARG_TEXT_PP(2), "package_id"));
	values[3] = PG_GETARG_DATUM(3);
	values[4] = PG_GETARG_DATUM(4);
	visible = jam_auth_visible_services();
	values[5] = PointerGetDatum(visible);
	nulls[5] = visible ? ' ' : 'n';
	values[6] = Int64GetDatum(after);

	filters = (PG_ARGISNULL(0) ? 0 : 1) | (PG_ARGISNULL(1) ? 0 : 2) | (PG_ARGISNULL(2) ? 0 : 4);
	if (PG_ARGISNULL(0) && jam_list_merges_per_service(visible))
		filters |= 8;

	SPI_connect();
	jam_spi_exec(list_statement(list_variant(filters)), values, nulls, true, 1);
	doc = jam_spi_copy_jsonb(1);
	SPI_finish();
	PG_RETURN_DATUM(doc);
}
