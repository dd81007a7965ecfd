/*
 * tokens.c: bearer tokens (jam_create_token, jam_revoke_token,
 * jam_list_tokens) and their string form.
 *
 * A token is "jam_" || id || "_" || secret: id is 16 lowercase hex
 * characters (8 random bytes), the public name of the token, and secret is
 * 32 random bytes in unpadded base64url.  Only BLAKE2b-256(secret) is
 * stored; the token is shown once, by jam_create_token.  The secret has 256
 * bits of entropy, so a fast hash is enough: nobody can guess one from its
 * hash.
 */
#include "jam.h"
#include "auth.h"
#include "errors.h"
#include "metrics.h"

#include <sodium.h>

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#define TOKEN_PREFIX "jam_"
#define TOKEN_SECRET_BYTES 32
#define TOKEN_SECRET_CHARS 43	/* unpadded base64url of 32 bytes */
#define TOKEN_CHARS (4 + JAM_TOKEN_ID_CHARS + 1 + TOKEN_SECRET_CHARS)
#define TOKEN_NAME_MAX 200

static const char *const scope_names[] = {"jam:read", "jam:submit", "jam:process", "jam:admin"};

#define TOKEN_JSON \
	"jsonb_build_object('id', id, 'name', name, 'scopes', to_jsonb(scopes), " \
	"'services', to_jsonb(services), 'tenant', tenant, 'created_by', created_by, " \
	"'created_at', created_at, 'expires_at', expires_at, 'revoked_at', revoked_at, " \
	"'active', revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()))"

static JamStatement insert_token = {
	"INSERT INTO jam.jam_tokens (id, name, secret_hash, scopes, services, tenant, expires_at) "
	"VALUES ($1, $2, $3, $4, $5, $6, $7)",
	7, {TEXTOID, TEXTOID, BYTEAOID, TEXTARRAYOID, TEXTARRAYOID, TEXTOID, TIMESTAMPTZOID}
};

static JamStatement revoke_token = {
	"WITH t AS (SELECT id, revoked_at FROM jam.jam_tokens WHERE id = $1 "
	"           AND ($2::text IS NULL OR tenant = $2) FOR UPDATE) "
	"UPDATE jam.jam_tokens j SET revoked_at = coalesce(t.revoked_at, now()) FROM t "
	"WHERE j.id = t.id RETURNING t.revoked_at IS NULL",
	2, {TEXTOID, TEXTOID}
};

static JamStatement list_tokens = {
	"SELECT coalesce(jsonb_agg(" TOKEN_JSON " ORDER BY created_at, id), '[]'::jsonb) "
	"FROM jam.jam_tokens WHERE $1::text IS NULL OR tenant = $1",
	1, {TEXTOID}
};

/*
 * Splits a token into its id and the hash of its secret; false when it is
 * not of the form jam_<16 hex>_<43 base64url>.
 */
bool
jam_token_parse(const char *token, char id[JAM_TOKEN_ID_CHARS + 1], uint8 secret_hash[32])
{
	const char *secret;
	uint8		secret_bytes[TOKEN_SECRET_BYTES];
	size_t		decoded;

	if (strlen(token) != TOKEN_CHARS || strncmp(token, TOKEN_PREFIX, 4) != 0 ||
		token[4 + JAM_TOKEN_ID_CHARS] != '_')
		return false;
	for (int i = 0; i < JAM_TOKEN_ID_CHARS; i++)
	{
		char		c = token[4 + i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
		id[i] = c;
	}
	id[JAM_TOKEN_ID_CHARS] = '\0';

	secret = token + 4 + JAM_TOKEN_ID_CHARS + 1;
	if (sodium_base642bin(secret_bytes, sizeof(secret_bytes), secret, TOKEN_SECRET_CHARS,
						  NULL, &decoded, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
		decoded != TOKEN_SECRET_BYTES)
		return false;
	jam_blake2b256(secret_bytes, sizeof(secret_bytes), secret_hash);
	sodium_memzero(secret_bytes, sizeof(secret_bytes));
	return true;
}

/* The scope bits of a text[] of scope names; raises invalid_argument on anything else. */
int
jam_scopes_from_array(ArrayType *scopes)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			bits = 0;

	if (ARR_NDIM(scopes) > 1)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("scopes must be a one-dimensional array")));
	deconstruct_array(scopes, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		char	   *name = nulls[i] ? NULL : TextDatumGetCString(elems[i]);
		int			bit = 0;

		for (int s = 0; s < lengthof(scope_names) && name != NULL && bit == 0; s++)
			if (strcmp(name, scope_names[s]) == 0)
				bit = 1 << s;
		if (bit == 0)
			ereport(ERROR,
					(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
					 errmsg("scopes[%d] is not a scope", i + 1),
					 errdetail("The scopes are jam:read, jam:submit, jam:process and jam:admin.")));
		bits |= bit;
	}
	if (bits == 0)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("a token needs at least one scope")));
	return bits;
}

/* services: NULL (every service) or a non-empty array of valid service ids, each once. */
static ArrayType *
check_services(ArrayType *services)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	if (ARR_NDIM(services) > 1)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("services must be a one-dimensional array")));
	deconstruct_array(services, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (n == 0)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("services must list at least one service"),
				 errhint("Pass NULL for a token that may use every service.")));
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(jam_errcode(JAM_ERR_INVALID_SERVICE_ID),
					 errmsg("services[%d] is null", i + 1)));
		elems[i] = CStringGetTextDatum(jam_check_service_id(DatumGetTextPP(elems[i])));
	}
	return construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT);
}

/* Who may manage tokens: anyone the GRANTs let in, unless a token without jam:admin is in use. */
static const char *
require_admin(const char *what)
{
	jam_auth_require(JAM_SCOPE_ADMIN, what);
	return jam_auth_tenant();
}

PG_FUNCTION_INFO_V1(jam_create_token);

/*
 * jam_create_token(name, scopes, services, tenant, expires_at) makes a token
 * and returns it; it is never shown again.  A tenant's admin token makes
 * tokens of its own tenant only.
 */
Datum
jam_create_token(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_TOKEN_CREATE);
	const char *admin_tenant;
	char	   *name;
	uint8		id_bytes[JAM_TOKEN_ID_CHARS / 2];
	char		id[JAM_TOKEN_ID_CHARS + 1];
	uint8		secret[TOKEN_SECRET_BYTES];
	char		secret_b64[TOKEN_SECRET_CHARS + 1];
	uint8		secret_hash[32];
	bytea	   *hash_bytea;
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	char	   *token;

	jam_check_enabled();
	admin_tenant = require_admin("jam_create_token");
	jam_require_arg(fcinfo, 0, "name");
	jam_require_arg(fcinfo, 1, "scopes");

	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (name[0] == '\0' || strlen(name) > TOKEN_NAME_MAX)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("a token name has 1 to %d bytes", TOKEN_NAME_MAX)));
	(void) jam_scopes_from_array(PG_GETARG_ARRAYTYPE_P(1));

	values[4] = (Datum) 0;
	nulls[4] = 'n';
	if (!PG_ARGISNULL(2))
	{
		values[4] = PointerGetDatum(check_services(PG_GETARG_ARRAYTYPE_P(2)));
		nulls[4] = ' ';
	}

	values[5] = (Datum) 0;
	nulls[5] = 'n';
	if (!PG_ARGISNULL(3))
	{
		/* Tenants are named like services. */
		char	   *tenant = jam_check_service_id(PG_GETARG_TEXT_PP(3));

		if (admin_tenant != NULL && strcmp(tenant, admin_tenant) != 0)
			ereport(ERROR,
					(jam_errcode(JAM_ERR_FORBIDDEN),
					 errmsg("a token of tenant \"%s\" makes tokens of that tenant only", admin_tenant)));
		values[5] = CStringGetTextDatum(tenant);
		nulls[5] = ' ';
	}
	else if (admin_tenant != NULL)
	{
		values[5] = CStringGetTextDatum(admin_tenant);
		nulls[5] = ' ';
	}

	values[6] = (Datum) 0;
	nulls[6] = 'n';
	if (!PG_ARGISNULL(4))
	{
		TimestampTz expires_at = PG_GETARG_TIMESTAMPTZ(4);

		if (expires_at <= GetCurrentTimestamp())
			ereport(ERROR,
					(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
					 errmsg("expires_at must be in the future")));
		values[6] = TimestampTzGetDatum(expires_at);
		nulls[6] = ' ';
	}

	randombytes_buf(id_bytes, sizeof(id_bytes));
	jam_hex_encode(id_bytes, sizeof(id_bytes), id);
	id[JAM_TOKEN_ID_CHARS] = '\0';
	randombytes_buf(secret, sizeof(secret));
	sodium_bin2base64(secret_b64, sizeof(secret_b64), secret, sizeof(secret),
					  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	jam_blake2b256(secret, sizeof(secret), secret_hash);
	sodium_memzero(secret, sizeof(secret));

	hash_bytea = palloc(VARHDRSZ + 32);
	SET_VARSIZE(hash_bytea, VARHDRSZ + 32);
	memcpy(VARDATA(hash_bytea), secret_hash, 32);

	values[0] = CStringGetTextDatum(id);
	values[1] = CStringGetTextDatum(name);
	values[2] = PointerGetDatum(hash_bytea);
	values[3] = PG_GETARG_DATUM(1);

	SPI_connect();
	jam_spi_exec(&insert_token, values, nulls, false, 0);
	SPI_finish();

	token = psprintf(TOKEN_PREFIX "%s_%s", id, secret_b64);
	sodium_memzero(secret_b64, sizeof(secret_b64));
	jam_metrics_end(metrics, JAM_OUTCOME_OK);
	PG_RETURN_TEXT_P(cstring_to_text(token));
}

/* A token id argument: 16 lowercase hex characters. */
char *
jam_check_token_id(text *arg)
{
	char	   *id = text_to_cstring(arg);
	bool		ok = strlen(id) == JAM_TOKEN_ID_CHARS;

	for (int i = 0; ok && i < JAM_TOKEN_ID_CHARS; i++)
		ok = (id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f');
	if (!ok)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("a token id is 16 lowercase hex characters"),
				 errhint("jam_list_tokens() shows the ids.")));
	return id;
}

PG_FUNCTION_INFO_V1(jam_revoke_token);

/*
 * jam_revoke_token(token_id) revokes the token from the next call on; true
 * when this call revoked it, false when it already was.
 */
Datum
jam_revoke_token(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_TOKEN_REVOKE);
	const char *admin_tenant;
	char	   *id;
	Datum		values[2];
	char		nulls[2] = {' ', ' '};
	bool		isnull;
	bool		revoked_now;

	jam_check_enabled();
	admin_tenant = require_admin("jam_revoke_token");
	jam_require_arg(fcinfo, 0, "token_id");
	id = jam_check_token_id(PG_GETARG_TEXT_PP(0));
	values[0] = CStringGetTextDatum(id);
	values[1] = admin_tenant ? CStringGetTextDatum(admin_tenant) : (Datum) 0;
	if (admin_tenant == NULL)
		nulls[1] = 'n';

	SPI_connect();
	if (jam_spi_exec(&revoke_token, values, nulls, false, 0) != 1)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_TOKEN_NOT_FOUND),
				 errmsg("token %s not found", id)));
	revoked_now = DatumGetBool(jam_spi_result_datum(1, &isnull));
	SPI_finish();

	jam_metrics_end(metrics, JAM_OUTCOME_OK);
	PG_RETURN_BOOL(revoked_now);
}

PG_FUNCTION_INFO_V1(jam_list_tokens);

/*
 * jam_list_tokens() returns every token (a tenant's admin token: its
 * tenant's) without secrets: id, name, scopes, services, tenant,
 * created_by, created_at, expires_at, revoked_at, active.
 */
Datum
jam_list_tokens(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_TOKEN_LIST);
	const char *admin_tenant;
	Datum		values[1];
	char		nulls[1] = {' '};
	Datum		doc;

	jam_check_enabled();
	admin_tenant = require_admin("jam_list_tokens");
	values[0] = admin_tenant ? CStringGetTextDatum(admin_tenant) : (Datum) 0;
	if (admin_tenant == NULL)
		nulls[0] = 'n';

	SPI_connect();
	jam_spi_exec(&list_tokens, values, nulls, true, 1);
	doc = jam_spi_copy_jsonb(1);
	SPI_finish();

	jam_metrics_end(metrics, JAM_OUTCOME_OK);
	PG_RETURN_DATUM(doc);
}
