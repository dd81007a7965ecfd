/*
 * checkpoint.c: jam_checkpoint, a service log's head as a signed note.
 *
 * The format is C2SP tlog-checkpoint: the origin line (jam.node_name "/"
 * service_id), the tree size in decimal, the root hash in base64, then a
 * blank line and the node key's Ed25519 signed-note signature line.  Any
 * signed-note verifier holding the key from jam_status() checks it.
 */
#include "jam.h"
#include "auth.h"
#include "errors.h"
#include "metrics.h"
#include "xact_rows.h"
#include "merkle.h"
#include "note.h"
#include "witnessing.h"

#include <sodium.h>

#include "catalog/pg_type.h"
#include "utils/builtins.h"

static JamStatement select_head = {
	"SELECT log_size, @x(log_root) FROM jam.jam_services WHERE service_id = $1",
	1, {TEXTOID}
};

/*
 * The signed checkpoint of the service's tree of size leaves with root:
 * origin, size, base64 root, a blank line and the node key's signature.
 * Needs SPI (the node key is read, or made on first use).
 */
char *
jam_checkpoint_note(const char *service_id, int64 size, const uint8 root[JAM_HASH_BYTES])
{
	char		root_b64[sodium_base64_ENCODED_LEN(JAM_HASH_BYTES, sodium_base64_VARIANT_ORIGINAL)];
	JamNodeKey	key;
	char	   *body;
	char	   *note;

	if (!jam_node_key(&key))
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("this node has no signing key yet"),
				 errhint("Call jam_checkpoint or jam_status once on the primary, outside a read-only transaction.")));
	sodium_bin2base64(root_b64, sizeof(root_b64), root, JAM_HASH_BYTES,
					  sodium_base64_VARIANT_ORIGINAL);
	body = psprintf("%s/%s\n%lld\n%s\n", key.name, service_id, (long long) size, root_b64);
	note = jam_note_sign(body, key.name, key.seed);
	sodium_memzero(key.seed, sizeof(key.seed));
	return note;
}

PG_FUNCTION_INFO_V1(jam_checkpoint);

/* jam_checkpoint(service_id) returns the signed checkpoint of the service's current log head. */
Datum
jam_checkpoint(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_CHECKPOINT);
	char	   *service_id;
	Datum		values[1];
	bool		isnull;
	int64		size;
	uint8		root[JAM_HASH_BYTES];
	Datum		root_datum;
	char	   *note;
	Datum		result;

	jam_check_enabled();
	jam_require_arg(fcinfo, 0, "service_id");
	service_id = jam_check_service_id(PG_GETARG_TEXT_PP(0));
	jam_auth_require_service(JAM_SCOPE_READ, service_id);
	values[0] = CStringGetTextDatum(service_id);

	SPI_connect();
	/* A head this transaction changed and has not written is read from its copy (xact_rows.c). */
	if (!jam_xact_unwritten_head(service_id, &size, root))
	{
		if (jam_spi_exec(&select_head, values, NULL, !jam_xact_rows_held(), 1) == 0)
			ereport(ERROR,
					(jam_errcode(JAM_ERR_SERVICE_NOT_FOUND),
					 errmsg("service \"%s\" not found", service_id)));
		size = DatumGetInt64(jam_spi_result_datum(1, &isnull));
		root_datum = jam_spi_result_datum(2, &isnull);
		if (isnull)
			jam_merkle_empty_root(root);
		else
			jam_parse_hash(DatumGetTextPP(root_datum), "log root", root);
	}
	/* With the cosignatures witnesses gave this head, if any (witnessing.c). */
	note = jam_cosigned_checkpoint(service_id, size, root, NULL);
	/* Out of SPI's memory before SPI_finish frees it. */
	result = SPI_datumTransfer(PointerGetDatum(cstring_to_text(note)), false, -1);
	SPI_finish();

	jam_metrics_end(metrics, JAM_OUTCOME_OK);
	PG_RETURN_DATUM(result);
}
