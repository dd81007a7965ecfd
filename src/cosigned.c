/*
 * cosigned.c: checkpoints that carry their witnesses' cosignatures.
 *
 * The node signs a checkpoint afresh whenever one is asked for (Ed25519 is
 * deterministic: the same head gives the same note), and the cosignatures
 * witnesses returned for that size and root (jam_cosignatures) are added
 * as further signature lines, as c2sp.org/tlog-witness says a log does.
 * With jam.witness_quorum above 0, a checkpoint counts as witnessed once
 * that many witnesses cosigned it: tile clients are served the latest such
 * one, and receipts are proved against it when it covers their entry.
 *
 * The table exists from 1.2 on; on an older catalog nothing is cosigned
 * and checkpoints are as they were.
 */
#include "jam.h"
#include "auth.h"
#include "cosignature.h"
#include "errors.h"
#include "merkle.h"
#include "witnessing.h"
#include "xact_rows.h"

#include <sodium.h>

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"

static JamStatement select_cosignatures = {
	"SELECT witness, signature FROM jam.jam_cosignatures "
	"WHERE service_id = $1 AND tree_size = $2 AND root = $3 ORDER BY witness",
	3, {TEXTOID, INT8OID, BYTEAOID}
};

static JamStatement select_witnessed = {
	"SELECT tree_size, root FROM jam.jam_cosignatures WHERE service_id = $1 AND tree_size <= $3 "
	"GROUP BY tree_size, root HAVING count(*) >= $2 ORDER BY tree_size DESC LIMIT 1",
	3, {TEXTOID, INT8OID, INT8OID}
};

static JamStatement select_head = {
	"SELECT log_size, log_root FROM jam.jam_services WHERE service_id = $1",
	1, {TEXTOID}
};

/* Whether this database's catalog has the cosignatures table (1.2 and later). */
static bool
cosignatures_exist(void)
{
	Oid			ns = get_namespace_oid("jam", true);

	return OidIsValid(ns) && OidIsValid(get_relname_relid("jam_cosignatures", ns));
}

/*
 * The node's signed checkpoint of the service's tree of size leaves with
 * root, followed by the cosignature lines kept for exactly that tree; sets
 * *n_cosignatures (may be NULL).  Needs SPI.
 */
char *
jam_cosigned_checkpoint(const char *service_id, int64 size, const uint8 root[JAM_HASH_BYTES],
						int *n_cosignatures)
{
	StringInfoData note;
	Datum		values[3];
	int			rows = 0;

	initStringInfo(&note);
	appendStringInfoString(&note, jam_checkpoint_note(service_id, size, root));
	if (cosignatures_exist())
	{
		values[0] = CStringGetTextDatum(service_id);
		values[1] = Int64GetDatum(size);
		values[2] = PointerGetDatum(jam_bytes_to_bytea(root, JAM_HASH_BYTES));
		rows = jam_spi_exec(&select_cosignatures, values, NULL, true, 0);
		for (int i = 0; i < rows; i++)
		{
			bool		isnull;
			bytea	   *raw = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[i],
															SPI_tuptable->tupdesc, 2, &isnull));

			if (VARSIZE_ANY_EXHDR(raw) != JAM_COSIGNATURE_BYTES)
				continue;
			appendStringInfoString(&note, jam_cosignature_line(SPI_getvalue(SPI_tuptable->vals[i],
																			SPI_tuptable->tupdesc, 1),
															   (const uint8 *) VARDATA_ANY(raw)));
		}
	}
	if (n_cosignatures)
		*n_cosignatures = rows;
	return note.data;
}

/*
 * The largest tree of the service, of at most below leaves, that at least
 * quorum witnesses cosigned: its size and root; false when there is none.
 * Needs SPI.
 */
bool
jam_witnessed_head(const char *service_id, int quorum, int64 below, int64 *size,
				   uint8 root[JAM_HASH_BYTES])
{
	Datum		values[3];
	bool		isnull;

	if (quorum < 1 || !cosignatures_exist())
		return false;
	values[0] = CStringGetTextDatum(service_id);
	values[1] = Int64GetDatum(quorum);
	values[2] = Int64GetDatum(below);
	if (jam_spi_exec(&select_witnessed, values, NULL, true, 1) == 0)
		return false;
	*size = DatumGetInt64(jam_spi_result_datum(1, &isnull));
	memcpy(root, VARDATA_ANY(DatumGetByteaPP(jam_spi_result_datum(2, &isnull))), JAM_HASH_BYTES);
	return true;
}

PG_FUNCTION_INFO_V1(jam_witnessed_checkpoint);

/*
 * jam_witnessed_checkpoint(service_id) says how witnessed the service's
 * log is: its latest checkpoint that jam.witness_quorum witnesses cosigned
 * (at least one, with a quorum of 0), or its current head when none is:
 * {service_id, tree_size, root, checkpoint, cosignatures, quorum,
 * witnessed}, checkpoint with its cosignature lines.
 */
Datum
jam_witnessed_checkpoint(PG_FUNCTION_ARGS)
{
	char	   *service_id;
	Datum		values[1];
	bool		isnull;
	int64		size;
	uint8		root[JAM_HASH_BYTES];
	int			n;
	int			quorum = Max(jam_witness_quorum, 1);
	char	   *note;
	StringInfoData doc;
	char		root_b64[64];
	Datum		result;

	jam_check_enabled();
	jam_require_arg(fcinfo, 0, "service_id");
	service_id = jam_check_service_id(PG_GETARG_TEXT_PP(0));
	jam_auth_require_service(JAM_SCOPE_READ, service_id);
	values[0] = CStringGetTextDatum(service_id);
	SPI_connect();
	if (jam_spi_exec(&select_head, values, NULL, !jam_xact_rows_held(), 1) == 0)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_SERVICE_NOT_FOUND),
				 errmsg("service \"%s\" not found", service_id)));
	size = DatumGetInt64(jam_spi_result_datum(1, &isnull));
	{
		Datum		r = jam_spi_result_datum(2, &isnull);

		if (isnull)
			jam_merkle_empty_root(root);
		else
			memcpy(root, VARDATA_ANY(DatumGetByteaPP(r)), JAM_HASH_BYTES);
	}
	/* A head this transaction changed and has not written is in its copy (xact_rows.c). */
	(void) jam_xact_unwritten_head(service_id, &size, root);
	jam_witnessed_head(service_id, quorum, size, &size, root);
	note = jam_cosigned_checkpoint(service_id, size, root, &n);
	sodium_bin2base64(root_b64, sizeof(root_b64), root, JAM_HASH_BYTES, sodium_base64_VARIANT_ORIGINAL);

	initStringInfo(&doc);
	appendStringInfoString(&doc, "{\"service_id\": ");
	escape_json(&doc, service_id);
	appendStringInfo(&doc, ", \"tree_size\": %lld, \"root\": \"%s\", \"checkpoint\": ", (long long) size, root_b64);
	escape_json(&doc, note);
	appendStringInfo(&doc, ", \"cosignatures\": %d, \"quorum\": %d, \"witnessed\": %s}", n,
					 jam_witness_quorum, n >= quorum ? "true" : "false");
	result = SPI_datumTransfer(DirectFunctionCall1(jsonb_in, CStringGetDatum(doc.data)), false, -1);
	SPI_finish();
	PG_RETURN_DATUM(result);
}
