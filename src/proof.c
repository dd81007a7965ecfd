/*
 * proof.c: reading a service's verifiable log: roots, inclusion and
 * consistency proofs, receipts with proofs, and a full re-verification.
 *
 * A proof needs O(log n) complete-subtree hashes.  Which ones depends only
 * on the positions, not on the hashes, so each proof runs twice: once to
 * record the nodes it needs, then, after one query has fetched them all,
 * to compute the proof.  A proof at a million entries thus costs one
 * indexed query for a few dozen rows, as at a thousand.
 */
#include "jam.h"
#include "auth.h"
#include "errors.h"
#include "metrics.h"
#include "xact_rows.h"
#include "merkle.h"
#include "witnessing.h"

#include <sodium.h>

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "lib/stringinfo.h"
#include "utils/jsonb.h"

static JamStatement select_head = {
	"SELECT log_size, @x(log_root) FROM jam.jam_services WHERE service_id = $1",
	1, {TEXTOID}
};

static JamStatement select_nodes = {
	"SELECT seq, @x(leaf_hash), nodes FROM jam.jam_log_entries "
	"WHERE service_id = $1 AND seq = ANY($2)",
	2, {TEXTOID, INT8ARRAYOID}
};

static JamStatement select_entry_by_hash = {
	"SELECT service_id, seq, jsonb_build_object('service_id', service_id, 'seq', seq, "
	"'kind', kind, 'hash', @x(hash), 'leaf_hash', @x(leaf_hash), 'prev_root', @x(prev_root), "
	"'new_root', @x(new_root), 'tree_size', seq + 1, 'status', status, "
	"'processed_at', processed_at) FROM jam.jam_log_entries WHERE hash = @h($1) ORDER BY seq LIMIT 1",
	1, {TEXTOID}
};

static JamStatement select_roots = {
	"SELECT coalesce(jsonb_agg(jsonb_build_object('service_id', service_id, "
	"'tree_size', log_size, 'root', coalesce(@x(log_root), $1)) ORDER BY service_id), '[]'::jsonb) "
	"FROM jam.jam_services WHERE $2::text[] IS NULL OR service_id = ANY($2)",
	2, {TEXTOID, TEXTARRAYOID}
};

/*
 * select_roots for a transaction holding service rows it has not written:
 * the rows of the other services, and the heads of those from $3-$5.
 */
static JamStatement select_roots_with_copies = {
	"SELECT coalesce(jsonb_agg(jsonb_build_object('service_id', service_id, "
	"'tree_size', log_size, 'root', root) ORDER BY service_id), '[]'::jsonb) FROM ("
	"SELECT service_id, log_size, coalesce(@x(log_root), $1) AS root FROM jam.jam_services "
	"WHERE ($2::text[] IS NULL OR service_id = ANY($2)) AND service_id <> ALL($3) "
	"UNION ALL "
	"SELECT service_id, log_size, root FROM unnest($3::text[], $4::int8[], $5::text[]) "
	"AS copies(service_id, log_size, root) "
	"WHERE $2::text[] IS NULL OR service_id = ANY($2)) AS heads",
	5, {TEXTOID, TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID, TEXTARRAYOID}
};

/*
 * Whether this call's reads may use the statement's snapshot: not once the
 * transaction has changed service rows, as it may have appended to their
 * logs during this statement (xact_rows.c).  Set by open_log() at each call.
 */
static bool reads_read_only = true;

/*
 * Connects to SPI for a call that reads a log.  The transaction's service
 * rows stay unwritten: a head it changed is read from its copy
 * (log_size(), jam_roots), so that reads between writes in one
 * transaction cost no more with each write.
 */
static void
open_log(void)
{
	reads_read_only = !jam_xact_rows_held();
	SPI_connect();
}

/* The nodes one proof needs, recorded on a first pass and fetched in one query. */
typedef struct NodeCache
{
	const char *service_id;
	bool		recording;
	int			n;
	int			capacity;
	int		   *levels;
	uint64	   *indexes;
	uint8	   *hashes;			/* n * JAM_HASH_BYTES */
} NodeCache;

static void
cache_init(NodeCache *cache, const char *service_id)
{
	cache->service_id = service_id;
	cache->recording = true;
	cache->n = 0;
	cache->capacity = 64;
	cache->levels = palloc(sizeof(int) * cache->capacity);
	cache->indexes = palloc(sizeof(uint64) * cache->capacity);
	cache->hashes = NULL;
}

static int
cache_find(NodeCache *cache, int level, uint64 index)
{
	for (int i = 0; i < cache->n; i++)
		if (cache->levels[i] == level && cache->indexes[i] == index)
			return i;
	return -1;
}

/* The JamMerkleFetch of a stored log: node (level, index) ends at leaf ((index + 1) << level) - 1. */
static void
fetch_node(void *ctx, int level, uint64 index, uint8 out[JAM_HASH_BYTES])
{
	NodeCache  *cache = (NodeCache *) ctx;
	int			i = cache_find(cache, level, index);

	if (cache->recording)
	{
		if (i < 0)
		{
			if (cache->n == cache->capacity)
			{
				cache->capacity *= 2;
				cache->levels = repalloc(cache->levels, sizeof(int) * cache->capacity);
				cache->indexes = repalloc(cache->indexes, sizeof(uint64) * cache->capacity);
			}
			cache->levels[cache->n] = level;
			cache->indexes[cache->n++] = index;
		}
		memset(out, 0, JAM_HASH_BYTES);
		return;
	}
	if (i < 0)
		elog(ERROR, "jam proof asked for node (%d, " UINT64_FORMAT ") it did not record", level, index);
	memcpy(out, cache->hashes + (Size) i * JAM_HASH_BYTES, JAM_HASH_BYTES);
}

static void
raise_corrupt(const char *service_id, int64 seq)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("jam log of service \"%s\" is missing or has a corrupt entry %lld",
					service_id, (long long) seq),
			 errhint("jam_verify_log() checks the whole log.")));
}

/* Fetches every recorded node with one query and switches the cache to serving. */
static void
cache_fill(NodeCache *cache)
{
	Datum	   *seqs = palloc(sizeof(Datum) * Max(cache->n, 1));
	Datum		values[2];
	int			rows;

	cache->hashes = palloc0((Size) Max(cache->n, 1) * JAM_HASH_BYTES);
	cache->recording = false;
	if (cache->n == 0)
		return;
	for (int i = 0; i < cache->n; i++)
		seqs[i] = Int64GetDatum((int64) (((cache->indexes[i] + 1) << cache->levels[i]) - 1));
	values[0] = CStringGetTextDatum(cache->service_id);
	values[1] = PointerGetDatum(construct_array(seqs, cache->n, INT8OID, 8, true, TYPALIGN_DOUBLE));
	rows = jam_spi_exec(&select_nodes, values, NULL, reads_read_only, 0);

	for (int i = 0; i < cache->n; i++)
	{
		int64		seq = (int64) (((cache->indexes[i] + 1) << cache->levels[i]) - 1);
		bool		found = false;

		for (int r = 0; r < rows && !found; r++)
		{
			HeapTuple	row = SPI_tuptable->vals[r];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			uint8	   *out = cache->hashes + (Size) i * JAM_HASH_BYTES;

			if (DatumGetInt64(SPI_getbinval(row, desc, 1, &isnull)) != seq)
				continue;
			found = true;
			if (cache->levels[i] == 0)
				jam_parse_hash(DatumGetTextPP(SPI_getbinval(row, desc, 2, &isnull)), "leaf hash", out);
			else
			{
				bytea	   *nodes = DatumGetByteaPP(SPI_getbinval(row, desc, 3, &isnull));

				if (VARSIZE_ANY_EXHDR(nodes) < (Size) cache->levels[i] * JAM_HASH_BYTES)
					raise_corrupt(cache->service_id, seq);
				memcpy(out, VARDATA_ANY(nodes) + (Size) (cache->levels[i] - 1) * JAM_HASH_BYTES,
					   JAM_HASH_BYTES);
			}
		}
		if (!found)
			raise_corrupt(cache->service_id, seq);
	}
}

/* The size of the service's log; raises service_not_found for an unknown service. */
static int64
log_size(const char *service_id)
{
	Datum		values[1] = {CStringGetTextDatum(service_id)};
	bool		isnull;
	int64		size;

	if (jam_xact_unwritten_head(service_id, &size, NULL))
		return size;
	if (jam_spi_exec(&select_head, values, NULL, reads_read_only, 1) == 0)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_SERVICE_NOT_FOUND),
				 errmsg("service \"%s\" not found", service_id)));
	return DatumGetInt64(jam_spi_result_datum(1, &isnull));
}

static void
check_range(const char *what, int64 value, int64 low, int64 high, const char *service_id)
{
	if (value < low || value > high)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_TREE_SIZE),
				 errmsg("%s %lld is outside the log of service \"%s\"", what,
						(long long) value, service_id),
				 errdetail("It must be between %lld and %lld.", (long long) low, (long long) high)));
}

static ArrayType *
hashes_to_array(uint8 (*hashes)[JAM_HASH_BYTES], int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		elems[i] = PointerGetDatum(jam_hash_to_text(hashes[i]));
	return construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT);
}

/* The root of the service's log at tree_size, from stored subtrees. Needs SPI. */
static void
root_at(const char *service_id, int64 tree_size, uint8 out[JAM_HASH_BYTES])
{
	NodeCache	cache;

	cache_init(&cache, service_id);
	jam_merkle_root(tree_size, fetch_node, &cache, out);
	cache_fill(&cache);
	jam_merkle_root(tree_size, fetch_node, &cache, out);
}

/*
 * The RFC 9162 inclusion path of leaf seq in the service's tree of
 * tree_size leaves into proof (returns its length), with the leaf hash and
 * that tree's root.  Needs SPI.
 */
static int
inclusion_path(const char *service_id, int64 seq, int64 tree_size,
			   uint8 proof[JAM_LOG_MAX_HEIGHT][JAM_HASH_BYTES], uint8 leaf[JAM_HASH_BYTES],
			   uint8 root[JAM_HASH_BYTES])
{
	NodeCache	cache;
	int			n = 0;

	/* Record what the proof and the leaf need; fetch it all at once; compute. */
	cache_init(&cache, service_id);
	for (int pass = 0; pass < 2; pass++)
	{
		n = jam_merkle_inclusion_proof(seq, tree_size, fetch_node, &cache, proof);
		fetch_node(&cache, 0, (uint64) seq, leaf);
		if (pass == 0)
			cache_fill(&cache);
	}
	/* The leaf and its path determine the root: no further reads. */
	if (!jam_merkle_root_from_inclusion(leaf, seq, tree_size, proof, n, root))
		elog(ERROR, "jam computed an inclusion proof of the wrong length");
	return n;
}

/* {tree_size, root, leaf_hash, proof} for leaf seq at tree_size. Needs SPI. */
static Datum
inclusion_document(const char *service_id, int64 seq, int64 tree_size)
{
	uint8		proof[JAM_LOG_MAX_HEIGHT][JAM_HASH_BYTES];
	uint8		root[JAM_HASH_BYTES];
	uint8		leaf[JAM_HASH_BYTES];
	int			n = inclusion_path(service_id, seq, tree_size, proof, leaf, root);
	StringInfoData json;

	initStringInfo(&json);
	appendStringInfo(&json, "{\"service_id\": \"%s\", \"seq\": %lld, \"tree_size\": %lld, ",
					 service_id, (long long) seq, (long long) tree_size);
	appendStringInfo(&json, "\"leaf_hash\": \"%s\", \"root\": \"%s\", \"proof\": [",
					 text_to_cstring(jam_hash_to_text(leaf)), text_to_cstring(jam_hash_to_text(root)));
	for (int i = 0; i < n; i++)
		appendStringInfo(&json, "%s\"%s\"", i > 0 ? ", " : "",
						 text_to_cstring(jam_hash_to_text(proof[i])));
	appendStringInfoString(&json, "]}");
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(json.data));
}

PG_FUNCTION_INFO_V1(jam_inclusion_proof);

/*
 * jam_inclusion_proof(service_id, seq, tree_size) returns the RFC 9162
 * inclusion proof of entry seq in the service's tree of tree_size leaves,
 * with the leaf hash and that tree's root.
 */
Datum
jam_inclusion_proof(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_INCLUSION_PROOF);
	char	   *service_id;
	int64		seq;
	int64		tree_size;
	Datum		doc;
	int64		size;

	jam_check_enabled();
	jam_require_arg(fcinfo, 0, "service_id");
	jam_require_arg(fcinfo, 1, "seq");
	jam_require_arg(fcinfo, 2, "tree_size");
	service_id = jam_check_service_id(PG_GETARG_TEXT_PP(0));
	jam_auth_require_service(JAM_SCOPE_READ, service_id);
	seq = PG_GETARG_INT64(1);
	tree_size = PG_GETARG_INT64(2);

	open_log();
	size = log_size(service_id);
	check_range("tree size", tree_size, 1, size, service_id);
	check_range("seq", seq, 0, tree_size - 1, service_id);
	doc = SPI_datumTransfer(inclusion_document(service_id, seq, tree_size), false, -1);
	SPI_finish();

	jam_metrics_end(metrics, JAM_OUTCOME_OK);
	PG_RETURN_DATUM(doc);
}

PG_FUNCTION_INFO_V1(jam_consistency_proof);

/*
 * jam_consistency_proof(service_id, first, second) returns the RFC 9162
 * consistency proof between the service's trees of first and second leaves.
 */
Datum
jam_consistency_proof(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_CONSISTENCY_PROOF);
	char	   *service_id;
	int64		first;
	int64		second;
	uint8		proof[2 * JAM_LOG_MAX_HEIGHT][JAM_HASH_BYTES];
	NodeCache	cache;
	int			n;
	Datum		result;

	jam_check_enabled();
	jam_require_arg(fcinfo, 0, "service_id");
	jam_require_arg(fcinfo, 1, "first");
	jam_require_arg(fcinfo, 2, "second");
	service_id = jam_check_service_id(PG_GETARG_TEXT_PP(0));
	jam_auth_require_service(JAM_SCOPE_READ, service_id);
	first = PG_GETARG_INT64(1);
	second = PG_GETARG_INT64(2);

	open_log();
	check_range("second tree size", second, 0, log_size(service_id), service_id);
	check_range("first tree size", first, 0, second, service_id);
	cache_init(&cache, service_id);
	jam_merkle_consistency_proof(first, second, fetch_node, &cache, proof);
	cache_fill(&cache);
	n = jam_merkle_consistency_proof(first, second, fetch_node, &cache, proof);
	result = SPI_datumTransfer(PointerGetDatum(hashes_to_array(proof, n)), false, -1);
	SPI_finish();

	jam_metrics_end(metrics, JAM_OUTCOME_OK);
	PG_RETURN_DATUM(result);
}

PG_FUNCTION_INFO_V1(jam_root);

/* jam_root(service_id, tree_size) returns the root of the service's tree of tree_size leaves. */
Datum
jam_root(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_ROOT);
	char	   *service_id;
	int64		tree_size;
	uint8		root[JAM_HASH_BYTES];

	jam_check_enabled();
	jam_require_arg(fcinfo, 0, "service_id");
	jam_require_arg(fcinfo, 1, "tree_size");
	service_id = jam_check_service_id(PG_GETARG_TEXT_PP(0));
	jam_auth_require_service(JAM_SCOPE_READ, service_id);
	tree_size = PG_GETARG_INT64(1);

	open_log();
	check_range("tree size", tree_size, 0, log_size(service_id), service_id);
	root_at(service_id, tree_size, root);
	SPI_finish();

	jam_metrics_end(metrics, JAM_OUTCOME_OK);
	PG_RETURN_TEXT_P(jam_hash_to_text(root));
}

PG_FUNCTION_INFO_V1(jam_roots);

/* jam_roots() returns every service's log head: [{service_id, tree_size, root}]. */
Datum
jam_roots(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_ROOTS);
	uint8		empty[JAM_HASH_BYTES];
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	Datum		doc;
	int			n_copies;
	JamService **copies;
	ArrayType  *visible;

	jam_check_enabled();
	jam_auth_require(JAM_SCOPE_READ, "jam_roots");
	visible = jam_auth_visible_services();
	jam_merkle_empty_root(empty);
	values[0] = PointerGetDatum(jam_hash_to_text(empty));
	values[1] = PointerGetDatum(visible);
	nulls[1] = visible ? ' ' : 'n';
	copies = jam_xact_unwritten_services(&n_copies);

	open_log();
	if (n_copies == 0)
		jam_spi_exec(&select_roots, values, nulls, reads_read_only, 1);
	else
	{
		Datum	   *ids = palloc(sizeof(Datum) * n_copies);
		Datum	   *sizes = palloc(sizeof(Datum) * n_copies);
		Datum	   *roots = palloc(sizeof(Datum) * n_copies);

		for (int i = 0; i < n_copies; i++)
		{
			ids[i] = CStringGetTextDatum(copies[i]->service_id);
			sizes[i] = Int64GetDatum(copies[i]->log.size);
			roots[i] = PointerGetDatum(jam_log_head_root_text(&copies[i]->log));
		}
		values[2] = PointerGetDatum(construct_array(ids, n_copies, TEXTOID, -1, false, TYPALIGN_INT));
		values[3] = PointerGetDatum(construct_array(sizes, n_copies, INT8OID, 8, true, TYPALIGN_DOUBLE));
		values[4] = PointerGetDatum(construct_array(roots, n_copies, TEXTOID, -1, false, TYPALIGN_INT));
		jam_spi_exec(&select_roots_with_copies, values, nulls, reads_read_only, 1);
	}
	doc = jam_spi_copy_jsonb(1);
	SPI_finish();

	jam_metrics_end(metrics, JAM_OUTCOME_OK);
	PG_RETURN_DATUM(doc);
}

/*
 * Finds the log entry of a package id or report hash (SPI's first row then
 * holds its service, seq and receipt); another service's entry is not
 * found, as if it did not exist.  Needs SPI.
 */
static void
locate_entry(const char *hash, char **service_id, int64 *seq)
{
	Datum		values[1] = {CStringGetTextDatum(hash)};
	bool		isnull;

	if (jam_spi_exec(&select_entry_by_hash, values, NULL, reads_read_only, 1) == 0 ||
		!jam_auth_sees_service(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1)))
		ereport(ERROR,
				(jam_errcode(JAM_ERR_RECEIPT_NOT_FOUND),
				 errmsg("no log entry has hash %s", hash),
				 errhint("Receipts exist for package ids and report hashes.")));
	*service_id = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	*seq = DatumGetInt64(jam_spi_result_datum(2, &isnull));
}

PG_FUNCTION_INFO_V1(jam_receipt);

/*
 * jam_receipt(hash) returns the receipt of the log entry for a package id
 * or report hash, with its inclusion proof against the service's current
 * tree under "inclusion".
 */
Datum
jam_receipt(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_RECEIPT);
	char	   *hash;
	char	   *service_id;
	int64		seq;
	Datum		receipt;
	Datum		doc;

	jam_check_enabled();
	jam_auth_require(JAM_SCOPE_READ, "jam_receipt");
	jam_require_arg(fcinfo, 0, "hash");
	hash = jam_normalize_hash(PG_GETARG_TEXT_PP(0), "hash");

	open_log();
	locate_entry(hash, &service_id, &seq);
	receipt = jam_spi_copy_jsonb(3);
	doc = jam_with_member(receipt, "inclusion",
						  inclusion_document(service_id, seq, log_size(service_id)));
	doc = SPI_datumTransfer(doc, false, -1);
	SPI_finish();

	jam_metrics_end(metrics, JAM_OUTCOME_OK);
	PG_RETURN_DATUM(doc);
}

PG_FUNCTION_INFO_V1(jam_receipt_proof);

/*
 * jam_receipt_proof(hash) returns the receipt of the log entry for a
 * package id or report hash as a C2SP tlog-proof (c2sp.org/tlog-proof@v1):
 * the entry's index, its inclusion path in base64, one hash a line, a blank
 * line, and the node's signed checkpoint of the tree the path leads to,
 * with the cosignatures witnesses gave it.  With the node's verifier key
 * (and the witnesses'), anyone can check it offline, years later.
 */
Datum
jam_receipt_proof(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_RECEIPT);
	char	   *hash;
	char	   *service_id;
	int64		seq;
	int64		size;
	uint8		proof[JAM_LOG_MAX_HEIGHT][JAM_HASH_BYTES];
	uint8		leaf[JAM_HASH_BYTES];
	uint8		root[JAM_HASH_BYTES];
	int			n;
	StringInfoData out;
	Datum		result;

	jam_check_enabled();
	jam_auth_require(JAM_SCOPE_READ, "jam_receipt_proof");
	jam_require_arg(fcinfo, 0, "hash");
	hash = jam_normalize_hash(PG_GETARG_TEXT_PP(0), "hash");

	open_log();
	locate_entry(hash, &service_id, &seq);
	size = log_size(service_id);

	/*
	 * Against the latest tree witnesses cosigned (jam.witness_quorum of
	 * them, at least one) when it holds the entry, so that the proof
	 * carries their cosignatures and an offline verifier can require k of
	 * n witnesses; else against the current head.
	 */
	{
		int64		witnessed;
		uint8		witnessed_root[JAM_HASH_BYTES];

		if (jam_witnessed_head(service_id, Max(jam_witness_quorum, 1), size, &witnessed, witnessed_root) &&
			witnessed > seq)
			size = witnessed;
	}
	n = inclusion_path(service_id, seq, size, proof, leaf, root);

	initStringInfo(&out);
	appendStringInfo(&out, "c2sp.org/tlog-proof@v1\nindex %lld\n", (long long) seq);
	for (int i = 0; i < n; i++)
	{
		char		b64[sodium_base64_ENCODED_LEN(JAM_HASH_BYTES, sodium_base64_VARIANT_ORIGINAL)];

		sodium_bin2base64(b64, sizeof(b64), proof[i], JAM_HASH_BYTES, sodium_base64_VARIANT_ORIGINAL);
		appendStringInfo(&out, "%s\n", b64);
	}
	appendStringInfo(&out, "\n%s", jam_cosigned_checkpoint(service_id, size, root, NULL));
	/* Out of SPI's memory before SPI_finish frees it. */
	result = SPI_datumTransfer(PointerGetDatum(cstring_to_text(out.data)), false, -1);
	SPI_finish();

	jam_metrics_end(metrics, JAM_OUTCOME_OK);
	PG_RETURN_DATUM(result);
}
