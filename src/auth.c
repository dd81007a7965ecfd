/*
 * auth.c: the capability a token grants for the rest of a transaction, and
 * the checks every API function makes against it (see auth.h).
 *
 * A token restricts by scope, by the services it lists, and by its tenant:
 * a tenant's token acts only on services of that tenant; a service takes
 * the tenant of the token whose submit creates it.  Objects looked up by id
 * (a package, a report, a receipt) that the token may not see are reported
 * as not found, so that their existence does not leak; a service named in
 * an argument that the token may not use is refused as forbidden.
 */
#include "jam.h"
#include "auth.h"
#include "errors.h"
#include "metrics.h"

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

bool		jam_auth_required = true;

static bool has_capability = false;
static JamCapability current;
static MemoryContext capability_context = NULL;
static bool xact_callback_registered = false;

/* jam_authenticate's last document, for the token and cache generation it was made for. */
static Jsonb *last_json = NULL;
static char last_json_token[JAM_TOKEN_ID_CHARS + 1];
static uint64 last_json_generation = 0;

static JamStatement select_service_tenant = {
	"SELECT tenant FROM jam.jam_services WHERE service_id = $1",
	1, {TEXTOID}
};

static JamStatement select_tenant_services = {
	"SELECT coalesce(array_agg(service_id ORDER BY service_id), '{}') FROM jam.jam_services "
	"WHERE tenant = $1 AND ($2::text[] IS NULL OR service_id = ANY($2))",
	2, {TEXTOID, TEXTARRAYOID}
};

/* Defines jam.auth_required; called before jam_define_gucs() reserves the prefix. */
void
jam_define_auth_gucs(void)
{
	DefineCustomBoolVariable("jam.auth_required",
							 "Whether callers through the jam_api role must present a token.",
							 "Other roles are governed by their GRANTs, and by a token when they present one.",
							 &jam_auth_required, true,
							 PGC_SUSET, 0, NULL, NULL, NULL);
}

/* A capability lasts until its transaction ends, whichever way. */
static void
capability_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
	{
		has_capability = false;
		if (capability_context != NULL)
			MemoryContextReset(capability_context);
	}
}

const JamCapability *
jam_auth_current(void)
{
	return has_capability ? &current : NULL;
}

/* The id of the token in use, or NULL. */
const char *
jam_auth_token_id(void)
{
	return has_capability ? current.token_id : NULL;
}

/* The tenant of the token in use, or NULL. */
const char *
jam_auth_tenant(void)
{
	return has_capability ? current.tenant : NULL;
}

/* Whether the session's role calls through the shim: a member of jam_api, not a superuser. */
static bool
is_api_caller(void)
{
	Oid			role = GetOuterUserId();
	Oid			api = get_role_oid("jam_api", true);

	return OidIsValid(api) && !superuser_arg(role) && is_member_of_role_nosuper(role, api);
}

/*
 * Whether the call comes through jam_api without a token while tokens are
 * required: an anonymous client, to whom only health may be told.
 */
bool
jam_auth_anonymous(void)
{
	return !has_capability && jam_auth_required && is_api_caller();
}

static const char *
scope_name(int scope)
{
	switch (scope)
	{
		case JAM_SCOPE_READ:
			return "jam:read";
		case JAM_SCOPE_SUBMIT:
			return "jam:submit";
		case JAM_SCOPE_PROCESS:
			return "jam:process";
		default:
			return "jam:admin";
	}
}

/*
 * Refuses the call unless the caller may make it: callers through jam_api
 * need a token when jam.auth_required is on, and a token needs the scope.
 * what names the call in the error; a refusal is counted against
 * service_id (NULL: none).
 */
static void
require_scope(int scope, const char *what, const char *service_id)
{
	if (!has_capability)
	{
		if (jam_auth_required && is_api_caller())
		{
			jam_metrics_refusal("unauthenticated", service_id);
			ereport(ERROR,
					(jam_errcode(JAM_ERR_UNAUTHENTICATED),
					 errmsg("%s needs a token", what),
					 errhint("Call jam_authenticate(token) in the same transaction first.")));
		}
		return;
	}
	if ((current.scopes & (scope | JAM_SCOPE_ADMIN)) == 0)
	{
		jam_metrics_refusal("forbidden", service_id);
		ereport(ERROR,
				(jam_errcode(JAM_ERR_FORBIDDEN),
				 errmsg("the token lacks the scope %s", scope_name(scope)),
				 errdetail("Token %s; %s needs %s.", current.token_id, what, scope_name(scope))));
	}
}

void
jam_auth_require(int scope, const char *what)
{
	require_scope(scope, what, NULL);
}

/* The tenant a service belongs to (NULL: none), and whether the service exists. Uses SPI. */
static bool
service_tenant(const char *service_id, char **tenant)
{
	MemoryContext caller = CurrentMemoryContext;
	Datum		values[1] = {CStringGetTextDatum(service_id)};
	bool		exists;
	bool		isnull = true;
	Datum		d = (Datum) 0;

	SPI_connect();
	exists = jam_spi_exec(&select_service_tenant, values, NULL, true, 1) == 1;
	if (exists)
		d = jam_spi_result_datum(1, &isnull);
	*tenant = (exists && !isnull) ? MemoryContextStrdup(caller, TextDatumGetCString(d)) : NULL;
	SPI_finish();
	return exists;
}

/*
 * Whether the token in use (if any) may see or act on the service: the
 * token lists it (or lists none), and a tenant's token acts only on its
 * tenant's services, or on one that does not exist yet (which its submit
 * would create for the tenant).
 */
bool
jam_auth_sees_service(const char *service_id)
{
	char	   *tenant;

	if (!has_capability)
		return true;
	if (current.n_services >= 0)
	{
		bool		listed = false;

		for (int i = 0; i < current.n_services && !listed; i++)
			listed = strcmp(current.services[i], service_id) == 0;
		if (!listed)
			return false;
	}
	if (current.tenant == NULL)
		return true;
	if (!service_tenant(service_id, &tenant))
		return true;
	return tenant != NULL && strcmp(tenant, current.tenant) == 0;
}

/* jam_auth_require, and the token must be allowed the service. */
void
jam_auth_require_service(int scope, const char *service_id)
{
	require_scope(scope, psprintf("acting on service \"%s\"", service_id), service_id);
	if (!jam_auth_sees_service(service_id))
	{
		jam_metrics_refusal("forbidden", service_id);
		ereport(ERROR,
				(jam_errcode(JAM_ERR_FORBIDDEN),
				 errmsg("the token may not act on service \"%s\"", service_id),
				 errdetail("Token %s.", current.token_id)));
	}
}

/*
 * Re-checks, under the service row's lock, that a tenant's token submits
 * to a service of its tenant: two tenants racing to create one service
 * both pass jam_auth_require_service, and only the first owns it.
 */
void
jam_auth_check_claim(const char *service_id, const char *service_tenant_now)
{
	if (!has_capability || current.tenant == NULL)
		return;
	if (service_tenant_now == NULL || strcmp(service_tenant_now, current.tenant) != 0)
	{
		jam_metrics_refusal("forbidden", service_id);
		ereport(ERROR,
				(jam_errcode(JAM_ERR_FORBIDDEN),
				 errmsg("the token may not act on service \"%s\"", service_id),
				 errdetail("Token %s; the service belongs to another tenant.", current.token_id)));
	}
}

/*
 * The services the token in use may see, as a text[] for "service_id =
 * ANY(...)" filters, or NULL when it may see every service.  Uses SPI.
 */
ArrayType *
jam_auth_visible_services(void)
{
	Datum	   *elems;
	ArrayType  *listed = NULL;
	Datum		values[2];
	char		nulls[2] = {' ', ' '};
	bool		isnull;
	Datum		services;

	if (!has_capability)
		return NULL;
	if (current.n_services >= 0)
	{
		elems = palloc(sizeof(Datum) * Max(current.n_services, 1));
		for (int i = 0; i < current.n_services; i++)
			elems[i] = CStringGetTextDatum(current.services[i]);
		listed = construct_array(elems, current.n_services, TEXTOID, -1, false, TYPALIGN_INT);
	}
	if (current.tenant == NULL)
		return listed;

	values[0] = CStringGetTextDatum(current.tenant);
	values[1] = PointerGetDatum(listed);
	if (listed == NULL)
		nulls[1] = 'n';
	SPI_connect();
	jam_spi_exec(&select_tenant_services, values, nulls, true, 1);
	services = SPI_datumTransfer(jam_spi_result_datum(1, &isnull), false, -1);
	SPI_finish();

	/*
	 * Detoasted only now, in the caller's context: a short-header copy
	 * detoasted inside SPI would live in SPI's memory, freed by SPI_finish.
	 */
	return DatumGetArrayTypeP(services);
}

static void
refuse_token(const char *message)
{
	jam_metrics_refusal("unauthenticated", NULL);
	ereport(ERROR,
			(jam_errcode(JAM_ERR_UNAUTHENTICATED),
			 errmsg("%s", message),
			 errhint("Ask an operator for a token (jam_create_token).")));
}

/* The capability as a JSON document, without any secret. */
static Datum
capability_json(void)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfoString(&s, "{\"authenticated\": true, \"token_id\": ");
	escape_json(&s, current.token_id);
	appendStringInfoString(&s, ", \"name\": ");
	escape_json(&s, current.name);
	appendStringInfoString(&s, ", \"scopes\": [");
	for (int bit = JAM_SCOPE_READ, first = 1; bit <= JAM_SCOPE_ADMIN; bit <<= 1)
		if (current.scopes & bit)
		{
			appendStringInfo(&s, "%s\"%s\"", first ? "" : ", ", scope_name(bit));
			first = 0;
		}
	appendStringInfoString(&s, "], \"services\": ");
	if (current.n_services < 0)
		appendStringInfoString(&s, "null");
	else
	{
		appendStringInfoChar(&s, '[');
		for (int i = 0; i < current.n_services; i++)
		{
			if (i > 0)
				appendStringInfoString(&s, ", ");
			escape_json(&s, current.services[i]);
		}
		appendStringInfoChar(&s, ']');
	}
	appendStringInfoString(&s, ", \"tenant\": ");
	if (current.tenant == NULL)
		appendStringInfoString(&s, "null");
	else
		escape_json(&s, current.tenant);
	appendStringInfoChar(&s, '}');
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(s.data));
}

/* Copies a capability into the transaction's memory. */
static void
set_capability(const JamCapability *cap)
{
	MemoryContext old;

	if (capability_context == NULL)
		capability_context = AllocSetContextCreate(TopMemoryContext, "jam capability",
												   ALLOCSET_SMALL_SIZES);
	if (!xact_callback_registered)
	{
		RegisterXactCallback(capability_xact_callback, NULL);
		xact_callback_registered = true;
	}
	MemoryContextReset(capability_context);
	old = MemoryContextSwitchTo(capability_context);
	memcpy(current.token_id, cap->token_id, sizeof(current.token_id));
	current.name = pstrdup(cap->name);
	current.scopes = cap->scopes;
	current.n_services = cap->n_services;
	current.services = NULL;
	if (cap->n_services >= 0)
	{
		current.services = palloc(sizeof(char *) * Max(cap->n_services, 1));
		for (int i = 0; i < cap->n_services; i++)
			current.services[i] = pstrdup(cap->services[i]);
	}
	current.tenant = cap->tenant ? pstrdup(cap->tenant) : NULL;
	MemoryContextSwitchTo(old);
	has_capability = true;
}

PG_FUNCTION_INFO_V1(jam_authenticate);

/*
 * jam_authenticate(token) checks the token and lets the rest of the
 * transaction act with its capability; it returns the capability (without
 * the secret).  NULL presents no token: {"authenticated": false}.  A
 * malformed, unknown, revoked or expired token raises unauthenticated.
 */
Datum
jam_authenticate(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_AUTHENTICATE);
	char	   *token;
	char		id[JAM_TOKEN_ID_CHARS + 1];
	uint8		secret_hash[32];
	JamCapability cap;
	bool		revoked;
	bool		expired;

	/*
	 * Not refused when jam.enabled is off: jam_status(), which health
	 * checks call with a token, must still answer.
	 */
	has_capability = false;
	if (PG_ARGISNULL(0))
	{
		jam_metrics_end(metrics, JAM_OUTCOME_EMPTY);
		PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum("{\"authenticated\": false}")));
	}

	token = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (!jam_token_parse(token, id, secret_hash))
		refuse_token("the token is malformed");
	if (!jam_auth_lookup_token(id, secret_hash, &cap, &revoked, &expired))
		refuse_token("the token is not valid");
	if (revoked)
		refuse_token("the token has been revoked");
	if (expired)
		refuse_token("the token has expired");

	set_capability(&cap);

	/*
	 * The shim presents the same few tokens over and over: keep the last
	 * document while the token cache it came from is current.
	 */
	if (jam_auth_generation() == 0 || jam_auth_generation() != last_json_generation ||
		strcmp(id, last_json_token) != 0)
	{
		Datum		doc = capability_json();

		if (last_json != NULL)
			pfree(last_json);
		last_json = (Jsonb *) MemoryContextAlloc(TopMemoryContext, VARSIZE(DatumGetPointer(doc)));
		memcpy(last_json, DatumGetPointer(doc), VARSIZE(DatumGetPointer(doc)));
		strlcpy(last_json_token, id, sizeof(last_json_token));
		last_json_generation = jam_auth_generation();
	}
	jam_metrics_end(metrics, JAM_OUTCOME_OK);
	PG_RETURN_DATUM(datumCopy(PointerGetDatum(last_json), false, -1));
}
