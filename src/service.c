/*
 * service.c: the per-service row (jam_services) and jam_register_service.
 *
 * The row is the service's serialization point: every write that changes a
 * service's pending count or appends to its verifiable log locks the row
 * first (jam_service_lock, in xact_rows.c, which also keeps the
 * transaction's copy of it and writes it back before commit).  Holding the
 * row lock is what makes a service's log sequence numbers contiguous under
 * any concurrency.
 */
#include "jam.h"
#include "auth.h"
#include "errors.h"
#include "fair.h"
#include "metrics.h"
#include "xact_rows.h"

#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

#define SERVICE_JSON \
	"jsonb_build_object('service_id', service_id, 'refine_function', refine_function::text, " \
	"'tenant', tenant, 'pending_count', pending_count, 'log_size', log_size, 'log_root', @x(log_root), " \
	"'created_at', created_at)"

static JamStatement select_refine_function = {
	"SELECT refine_function FROM jam.jam_services WHERE service_id = $1",
	1, {TEXTOID}
};

static JamStatement upsert_service = {
	"INSERT INTO jam.jam_services AS s (service_id, refine_function, tenant) VALUES ($1, $2, $3) "
	"ON CONFLICT (service_id) DO UPDATE SET refine_function = EXCLUDED.refine_function, "
	"tenant = coalesce(EXCLUDED.tenant, s.tenant) "
	"RETURNING " SERVICE_JSON ", refine_function, tenant",
	3, {TEXTOID, REGPROCEDUREOID, TEXTOID}
};

/* From 1.2 on: with the service's share of fair scheduling ($4 NULL: 1, or unchanged). */
static JamStatement upsert_service_with_share = {
	"INSERT INTO jam.jam_services AS s (service_id, refine_function, tenant, share) "
	"VALUES ($1, $2, $3, coalesce($4, 1)) "
	"ON CONFLICT (service_id) DO UPDATE SET refine_function = EXCLUDED.refine_function, "
	"tenant = coalesce(EXCLUDED.tenant, s.tenant), share = coalesce($4, s.share) "
	"RETURNING " SERVICE_JSON " || jsonb_build_object('share', share), refine_function, tenant",
	4, {TEXTOID, REGPROCEDUREOID, TEXTOID, INT4OID}
};

/* The service's registered refine function, or InvalidOid for the built-in one. Needs SPI. */
Oid
jam_service_refine_function(const char *service_id)
{
	Datum		values[1] = {CStringGetTextDatum(service_id)};
	bool		isnull;
	Datum		fn;

	if (jam_spi_exec(&select_refine_function, values, NULL, true, 1) == 0)
		return InvalidOid;
	fn = jam_spi_result_datum(1, &isnull);
	return isnull ? InvalidOid : DatumGetObjectId(fn);
}

/*
 * A refine function must be IMMUTABLE, so that every node replaying a
 * package computes the same report, and take (bytea, bytea[]) to bytea.
 */
static void
check_refine_function(Oid fn)
{
	HeapTuple	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	Form_pg_proc proc;
	bool		ok;

	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_REFINE_FUNCTION),
				 errmsg("refine function %u does not exist", fn)));
	proc = (Form_pg_proc) GETSTRUCT(tuple);
	ok = proc->prokind == PROKIND_FUNCTION && !proc->proretset &&
		proc->prorettype == BYTEAOID && proc->pronargs == 2 &&
		proc->proargtypes.values[0] == BYTEAOID &&
		proc->proargtypes.values[1] == BYTEAARRAYOID;
	if (!ok)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_REFINE_FUNCTION),
				 errmsg("refine function %s has the wrong signature", format_procedure(fn)),
				 errdetail("A refine function takes (payload bytea, preimages bytea[]) and returns bytea.")));
	if (proc->provolatile != PROVOLATILE_IMMUTABLE)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_REFINE_FUNCTION),
				 errmsg("refine function %s is not IMMUTABLE", format_procedure(fn)),
				 errdetail("Processing must be deterministic so that any node can replay a package."),
				 errhint("Declare the function IMMUTABLE if it truly is.")));
	ReleaseSysCache(tuple);
}

PG_FUNCTION_INFO_V1(jam_register_service);

/*
 * jam_register_service(service_id, refine_function, tenant, share) creates
 * the service or changes its refine function (NULL: the built-in refine),
 * gives it to a tenant (NULL leaves its tenant as it is; a tenant's admin
 * token registers services of its own tenant), and sets its share of fair
 * scheduling (fair.c; NULL: 1 for a new service, unchanged otherwise).  A
 * 1.0 or 1.1 catalog's function has no share argument.
 */
Datum
jam_register_service(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_REGISTER_SERVICE);
	Datum		values[4];
	char		nulls[4] = {' ', 'n', 'n', 'n'};
	bool		with_share = PG_NARGS() > 3 && jam_services_have_share();
	char	   *service_id;
	const char *own_tenant = jam_auth_tenant();
	Datum		doc;

	jam_check_enabled();
	jam_require_arg(fcinfo, 0, "service_id");
	service_id = jam_check_service_id(PG_GETARG_TEXT_PP(0));
	jam_auth_require_service(JAM_SCOPE_ADMIN, service_id);
	values[0] = CStringGetTextDatum(service_id);
	values[1] = (Datum) 0;
	values[2] = (Datum) 0;
	if (!PG_ARGISNULL(2))
	{
		char	   *tenant = jam_check_service_id(PG_GETARG_TEXT_PP(2));

		if (own_tenant != NULL && strcmp(tenant, own_tenant) != 0)
			ereport(ERROR,
					(jam_errcode(JAM_ERR_FORBIDDEN),
					 errmsg("a token of tenant \"%s\" registers services of that tenant only", own_tenant)));
		values[2] = CStringGetTextDatum(tenant);
		nulls[2] = ' ';
	}
	else if (own_tenant != NULL)
	{
		values[2] = CStringGetTextDatum(own_tenant);
		nulls[2] = ' ';
	}
	if (!PG_ARGISNULL(1))
	{
		check_refine_function(PG_GETARG_OID(1));
		values[1] = PG_GETARG_DATUM(1);
		nulls[1] = ' ';
	}

	values[3] = (Datum) 0;
	if (with_share && !PG_ARGISNULL(3))
	{
		int32		share = PG_GETARG_INT32(3);

		if (share < 1 || share > JAM_SHARE_MAX)
			ereport(ERROR,
					(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
					 errmsg("share must be between 1 and %d", JAM_SHARE_MAX),
					 errdetail("The share given was %d.", share)));
		values[3] = Int32GetDatum(share);
		nulls[3] = ' ';
		jam_fair_backlog_changed();
	}

	/* The document shows the row as this transaction has changed it. */
	(void) jam_xact_rows_flush();
	SPI_connect();
	jam_spi_exec(with_share ? &upsert_service_with_share : &upsert_service, values, nulls, false, 0);
	doc = jam_spi_copy_jsonb(1);
	{
		bool		refine_null;
		bool		tenant_null;
		Datum		refine = jam_spi_result_datum(2, &refine_null);
		Datum		tenant = jam_spi_result_datum(3, &tenant_null);

		jam_service_changed(service_id, refine_null ? InvalidOid : DatumGetObjectId(refine),
							tenant_null ? NULL : TextDatumGetCString(tenant));
	}
	SPI_finish();

	jam_metrics_end(metrics, JAM_OUTCOME_OK);
	PG_RETURN_DATUM(doc);
}
