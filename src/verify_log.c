/*
 * verify_log.c: jam_verify_log, an audit of a whole service log.
 *
 * Replays every stored leaf in order and checks, for each entry, that seq
 * is contiguous, that leaf_hash is SHA-256(0x00 || entry), that prev_root
 * and new_root are the roots before and after it, and that the stored
 * subtree hashes are the ones the leaf completes; finally that the
 * recomputed head equals the service's stored head.  Entries are read
 * through a cursor, so memory stays flat however long the log is.
 */
#include "jam.h"
#include "auth.h"
#include "errors.h"
#include "metrics.h"
#include "xact_rows.h"
#include "merkle.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#define VERIFY_BATCH 10000
#define VERIFY_MAX_PROBLEMS 20

static JamStatement select_head = {
	"SELECT log_size, coalesce(@x(log_root), '') FROM jam.jam_services WHERE service_id = $1",
	1, {TEXTOID}
};

static const char *entries_sql =
"SELECT seq, entry, @x(leaf_hash), @x(prev_root), @x(new_root), nodes FROM jam.jam_log_entries "
"WHERE service_id = $1 ORDER BY seq";

typedef struct Audit
{
	JamLogHead	head;
	int64		checked;
	int			n_problems;
	StringInfoData problems;	/* JSON array elements */
} Audit;

static void
problem(Audit *audit, int64 seq, const char *what)
{
	if (audit->n_problems++ < VERIFY_MAX_PROBLEMS)
		appendStringInfo(&audit->problems, "%s{\"seq\": %lld, \"problem\": \"%s\"}",
						 audit->n_problems > 1 ? ", " : "", (long long) seq, what);
}

static bool
hex_equals(Datum stored, const uint8 hash[JAM_HASH_BYTES])
{
	char		hex[JAM_HASH_HEX_CHARS + 1];

	jam_hex_encode(hash, JAM_HASH_BYTES, hex);
	return strcmp(TextDatumGetCString(stored), hex) == 0;
}

static void
check_entry(Audit *audit, HeapTuple row, TupleDesc desc)
{
	bool		isnull;
	int64		seq = DatumGetInt64(SPI_getbinval(row, desc, 1, &isnull));
	bytea	   *entry = DatumGetByteaPP(SPI_getbinval(row, desc, 2, &isnull));
	bytea	   *nodes = DatumGetByteaPP(SPI_getbinval(row, desc, 6, &isnull));
	uint8		leaf[JAM_HASH_BYTES];
	uint8		root[JAM_HASH_BYTES];
	uint8		completed[JAM_LOG_MAX_HEIGHT * JAM_HASH_BYTES];
	int			n_completed;

	if (seq != audit->head.size)
		problem(audit, seq, "seq is not contiguous");
	jam_log_head_root(&audit->head, root);
	if (!hex_equals(SPI_getbinval(row, desc, 4, &isnull), root))
		problem(audit, seq, "prev_root differs from the recomputed root");

	jam_merkle_leaf_hash((const uint8 *) VARDATA_ANY(entry), VARSIZE_ANY_EXHDR(entry), leaf);
	if (!hex_equals(SPI_getbinval(row, desc, 3, &isnull), leaf))
		problem(audit, seq, "leaf_hash is not the hash of the entry");

	n_completed = jam_log_head_push(&audit->head, leaf, completed);
	if (VARSIZE_ANY_EXHDR(nodes) != (Size) n_completed * JAM_HASH_BYTES ||
		memcmp(VARDATA_ANY(nodes), completed, (Size) n_completed * JAM_HASH_BYTES) != 0)
		problem(audit, seq, "stored subtree hashes differ from the recomputed ones");

	jam_log_head_root(&audit->head, root);
	if (!hex_equals(SPI_getbinval(row, desc, 5, &isnull), root))
		problem(audit, seq, "new_root differs from the recomputed root");
	audit->checked++;
}

PG_FUNCTION_INFO_V1(jam_verify_log);

/*
 * jam_verify_log(service_id) recomputes the service's log from its stored
 * leaves and returns {service_id, tree_size, root, computed_size,
 * computed_root, entries_checked, ok, problems}.
 */
Datum
jam_verify_log(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_VERIFY_LOG);
	char	   *service_id;
	Datum		values[1];
	bool		isnull;
	int64		stored_size;
	char	   *stored_root;
	Audit		audit;
	SPIPlanPtr	plan;
	Portal		cursor;
	Oid			argtypes[1] = {TEXTOID};
	char		computed_root[JAM_HASH_HEX_CHARS + 1];
	uint8		root[JAM_HASH_BYTES];
	bool		ok;
	char	   *json;
	Datum		doc;

	jam_check_enabled();
	jam_require_arg(fcinfo, 0, "service_id");
	service_id = jam_check_service_id(PG_GETARG_TEXT_PP(0));
	jam_auth_require_service(JAM_SCOPE_READ, service_id);
	values[0] = CStringGetTextDatum(service_id);

	SPI_connect();
	if (jam_spi_exec(&select_head, values, NULL, !jam_xact_rows_flush(), 1) == 0)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_SERVICE_NOT_FOUND),
				 errmsg("service \"%s\" not found", service_id)));
	stored_size = DatumGetInt64(jam_spi_result_datum(1, &isnull));
	stored_root = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);

	memset(&audit, 0, sizeof(audit));
	initStringInfo(&audit.problems);
	plan = SPI_prepare(jam_sql_for_catalog(entries_sql, jam_catalog()), 1, argtypes);
	if (plan == NULL)
		elog(ERROR, "jam could not prepare the log audit: %s", SPI_result_code_string(SPI_result));
	cursor = SPI_cursor_open(NULL, plan, values, NULL, true);
	for (;;)
	{
		SPI_cursor_fetch(cursor, true, VERIFY_BATCH);
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed; i++)
			check_entry(&audit, SPI_tuptable->vals[i], SPI_tuptable->tupdesc);
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(cursor);

	jam_log_head_root(&audit.head, root);
	jam_hex_encode(root, JAM_HASH_BYTES, computed_root);
	if (audit.head.size != stored_size)
		problem(&audit, audit.head.size, "the service's log_size differs from the number of entries");
	else if (stored_size > 0 && strcmp(stored_root, computed_root) != 0)
		problem(&audit, audit.head.size, "the service's log_root differs from the recomputed root");
	ok = audit.n_problems == 0;

	json = psprintf("{\"service_id\": \"%s\", \"tree_size\": %lld, \"root\": %s%s%s, "
					"\"computed_size\": %lld, \"computed_root\": \"%s\", \"entries_checked\": %lld, "
					"\"ok\": %s, \"problem_count\": %d, \"problems\": [%s]}",
					service_id, (long long) stored_size,
					stored_size > 0 ? "\"" : "", stored_size > 0 ? stored_root : "null",
					stored_size > 0 ? "\"" : "",
					(long long) audit.head.size, computed_root, (long long) audit.checked,
					ok ? "true" : "false", audit.n_problems, audit.problems.data);
	doc = SPI_datumTransfer(DirectFunctionCall1(jsonb_in, CStringGetDatum(json)), false, -1);
	SPI_finish();

	jam_metrics_end(metrics, JAM_OUTCOME_OK);
	PG_RETURN_DATUM(doc);
}
