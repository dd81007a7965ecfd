/*
 * log.c: appending to a service's verifiable log and its receipts.
 *
 * Each service has one append-only Merkle tree built exactly as RFC 9162
 * section 2.1 (SHA-256, leaf prefix 0x00, node prefix 0x01), so standard
 * transparency-log tooling checks its proofs.  A leaf's input is a 74-byte
 * entry (integers little-endian):
 *
 *   u8  kind          1 package, 2 report
 *   32  item hash     the package id or the report hash
 *   32  meta hash     BLAKE2b-256 of the item's metadata (jam_log_meta_hash)
 *   u8  status        0 pending, 1 applied, 2 failed
 *   u64 timestamp     microseconds since 1970-01-01 UTC (processed_at)
 *
 * The service's row holds the tree's size and its right-edge frontier, so
 * an append computes the new root from at most 64 hashes in memory and
 * writes one row: the leaf with its receipt and the hashes of the subtrees
 * the leaf completes.  Those stored subtrees make any proof O(log n) reads
 * (proof.c).  The caller holds the service row's lock (jam_service_lock),
 * whose copy of the row gets the new head, written back before commit.
 */
#include "jam.h"
#include "events.h"
#include "merkle.h"

#include <sodium.h>

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#define JAM_LOG_ENTRY_BYTES (1 + JAM_HASH_BYTES + JAM_HASH_BYTES + 1 + 8)
#define JAM_META_TAG "jam/meta/v1"

#define RECEIPT_JSON \
	"jsonb_build_object('service_id', service_id, 'seq', seq, 'kind', kind, 'hash', @x(hash), " \
	"'leaf_hash', @x(leaf_hash), 'prev_root', @x(prev_root), 'new_root', @x(new_root), " \
	"'tree_size', seq + 1, 'status', status, 'processed_at', processed_at)"

/*
 * The leaf with its receipt.  The service's new head stays in the
 * transaction's copy of the service row (xact_rows.c), written once before
 * commit however many entries the transaction appends.  The receipt is
 * built from the values written (log_receipt.c), not read back.
 */
static JamStatement insert_entry = {
	"INSERT INTO jam.jam_log_entries (service_id, seq, kind, hash, status, "
	"processed_at, entry, leaf_hash, prev_root, new_root, nodes) "
	"VALUES ($1, $2, $3, @b($4), $5, $6, $7, @b($8), @b($9), @b($10), $11)",
	11, {TEXTOID, INT8OID, TEXTOID, BYTEAOID, TEXTOID, TIMESTAMPTZOID, BYTEAOID,
	BYTEAOID, BYTEAOID, BYTEAOID, BYTEAOID}
};

/*
 * Many leaves in one statement: a batch's extension of the log.  The
 * second form also keeps each report entry's package ($12), beside the
 * entry and outside what the leaf commits to, for its event (1.3).
 */
#define INSERT_ENTRIES(package_column, package_value, package_array, package_alias) \
	"INSERT INTO jam.jam_log_entries (service_id, seq, kind, hash, status, " \
	"processed_at, entry, leaf_hash, prev_root, new_root, nodes" package_column ") " \
	"SELECT $1, u.seq, $3, @b(u.hash), u.status, $6, u.entry, @b(u.leaf), @b(u.prev), @b(u.new), u.nodes" \
	package_value " " \
	"FROM unnest($2::bigint[], $4::bytea[], $5::text[], $7::bytea[], $8::bytea[], $9::bytea[], " \
	"            $10::bytea[], $11::bytea[]" package_array ") " \
	"AS u(seq, hash, status, entry, leaf, prev, new, nodes" package_alias ") " \
	"ORDER BY u.seq"
#define INSERT_ENTRIES_ARG_TYPES \
	TEXTOID, INT8ARRAYOID, TEXTOID, BYTEAARRAYOID, TEXTARRAYOID, TIMESTAMPTZOID, BYTEAARRAYOID, \
	BYTEAARRAYOID, BYTEAARRAYOID, BYTEAARRAYOID, BYTEAARRAYOID

static JamStatement insert_entries = {
	INSERT_ENTRIES("", "", "", ""), 11, {INSERT_ENTRIES_ARG_TYPES}
};

static JamStatement insert_entries_naming_packages = {
	INSERT_ENTRIES(", package_id", ", @h(u.pkg)", ", $12::text[]", ", pkg"), 12,
	{INSERT_ENTRIES_ARG_TYPES, TEXTARRAYOID}
};

/* One report's entry with its package, as insert_entry writes one leaf. */
static JamStatement insert_entry_naming_package = {
	"INSERT INTO jam.jam_log_entries (service_id, seq, kind, hash, status, "
	"processed_at, entry, leaf_hash, prev_root, new_root, nodes, package_id) "
	"VALUES ($1, $2, $3, @b($4), $5, $6, $7, @b($8), @b($9), @b($10), $11, @h($12))",
	12, {TEXTOID, INT8OID, TEXTOID, BYTEAOID, TEXTOID, TIMESTAMPTZOID, BYTEAOID,
	BYTEAOID, BYTEAOID, BYTEAOID, BYTEAOID, TEXTOID}
};

/* [naming packages][one row] */
static JamStatement *const insert_entries_by_shape[2][2] = {
	{&insert_entries, &insert_entry},
	{&insert_entries_naming_packages, &insert_entry_naming_package}
};

/* $1's receipts, each with its position in $1. */
static JamStatement select_receipts = {
	"SELECT r.ord, " RECEIPT_JSON " FROM unnest($1::text[]) WITH ORDINALITY AS r(h, ord) "
	"JOIN jam.jam_log_entries e ON e.hash = @h(r.h) AND e.kind = $2",
	2, {TEXTARRAYOID, TEXTOID}
};

static JamStatement select_receipt = {
	"SELECT " RECEIPT_JSON " FROM jam.jam_log_entries WHERE hash = @h($1) AND kind = $2",
	2, {TEXTOID, TEXTOID}
};

static const char *
kind_name(JamLogKind kind)
{
	return kind == JAM_LOG_PACKAGE ? "package" : "report";
}

static uint8
status_code(const char *status)
{
	if (strcmp(status, "pending") == 0)
		return 0;
	if (strcmp(status, "applied") == 0)
		return 1;
	return 2;
}

/* Reads a frontier stored by jam_log_head_frontier_bytea for a tree of head->size leaves. */
void
jam_log_head_load(JamLogHead *head, bytea *frontier)
{
	Size		len = VARSIZE_ANY_EXHDR(frontier);
	int			expected = pg_popcount64((uint64) head->size);

	if (len != (Size) expected * JAM_HASH_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("jam log head is corrupt"),
				 errdetail("A log of %lld entries has %d frontier hashes; %zu bytes are stored.",
						   (long long) head->size, expected, len)));
	head->n_frontier = expected;
	memcpy(head->frontier, VARDATA_ANY(frontier), len);
	head->root_known = false;
}

bytea *
jam_log_head_frontier_bytea(const JamLogHead *head)
{
	Size		len = (Size) head->n_frontier * JAM_HASH_BYTES;
	bytea	   *out = palloc(VARHDRSZ + len);

	SET_VARSIZE(out, VARHDRSZ + len);
	memcpy(VARDATA(out), head->frontier, len);
	return out;
}

void
jam_log_head_root(const JamLogHead *head, uint8 out[JAM_HASH_BYTES])
{
	if (head->root_known)
		memcpy(out, head->root, JAM_HASH_BYTES);
	else
		jam_merkle_frontier_root(head->size, head->frontier, out);
}

text *
jam_log_head_root_text(const JamLogHead *head)
{
	uint8		root[JAM_HASH_BYTES];

	jam_log_head_root(head, root);
	return jam_hash_to_text(root);
}

/*
 * Adds a leaf to the tree head and writes the hashes of the subtrees it
 * completes (level 1 upwards, as a log row stores them) to completed;
 * returns how many there are.
 */
int
jam_log_head_push(JamLogHead *head, const uint8 leaf[JAM_HASH_BYTES], uint8 *completed)
{
	JamMerkleNode nodes[JAM_MERKLE_MAX_HEIGHT + 1];
	int			n = jam_merkle_frontier_append(head->size, head->frontier, leaf, nodes);

	if (n < 0)
		elog(ERROR, "jam log is full");
	/* nodes[0] is the leaf itself, which the row keeps as leaf_hash */
	for (int i = 1; i < n; i++)
		memcpy(completed + (Size) (i - 1) * JAM_HASH_BYTES, nodes[i].hash, JAM_HASH_BYTES);
	head->size++;
	head->n_frontier = jam_merkle_frontier_length(head->size);
	head->root_known = false;
	return n - 1;
}

static void
update_string(crypto_generichash_state *st, const char *s)
{
	uint32		len = strlen(s);
	uint8		b[4] = {len & 0xff, (len >> 8) & 0xff, (len >> 16) & 0xff, len >> 24};

	crypto_generichash_update(st, b, 4);
	crypto_generichash_update(st, (const uint8 *) s, len);
}

/*
 * The metadata hash of a log entry: BLAKE2b-256 of "jam/meta/v1" followed
 * by service_id, principal and detail, each as u32 length || UTF-8 bytes.
 * For a package the principal is the role that submitted it and the detail
 * is empty; for a report they are the attesting node and the refine that ran.
 */
void
jam_log_meta_hash(const char *service_id, const char *principal, const char *detail,
				  uint8 out[JAM_HASH_BYTES])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, JAM_HASH_BYTES);
	crypto_generichash_update(&st, (const uint8 *) JAM_META_TAG, strlen(JAM_META_TAG));
	update_string(&st, service_id);
	update_string(&st, principal);
	update_string(&st, detail);
	crypto_generichash_final(&st, out, JAM_HASH_BYTES);
}

/* One leaf, pushed onto a head: what a row of the log stores besides its receipt fields. */
typedef struct PushedLeaf
{
	bytea	   *entry;			/* kind, then the item's hash: see the top of this file */
	uint8		leaf[JAM_HASH_BYTES];
	uint8		prev_root[JAM_HASH_BYTES];
	uint8		new_root[JAM_HASH_BYTES];
	bytea	   *nodes;
} PushedLeaf;

/* The item's hash as leaf's entry holds it, after its kind byte. */
static const uint8 *
entry_item_hash(const PushedLeaf *leaf)
{
	return (const uint8 *) VARDATA(leaf->entry) + 1;
}

/*
 * Builds the entry of item_hash at time now and pushes its leaf onto head.
 * prev_root is head's root when the caller has it (the previous leaf's new
 * root, in a batch), NULL to compute it: a root costs a hash per frontier
 * subtree, about half the work of a leaf in a large log.
 */
static void
push_entry(JamLogHead *head, JamLogKind kind, const char *item_hash,
		   const uint8 meta_hash[JAM_HASH_BYTES], const char *status, TimestampTz now,
		   const uint8 *prev_root, PushedLeaf *out)
{
	uint8		entry[JAM_LOG_ENTRY_BYTES];
	uint8		completed[JAM_LOG_MAX_HEIGHT * JAM_HASH_BYTES];
	int			n_completed;
	uint64		unix_micros = (uint64) (now + (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) *
										USECS_PER_DAY);
	uint8	   *p = entry;

	*p++ = (uint8) kind;
	jam_parse_hash(cstring_to_text(item_hash), "item hash", p);
	p += JAM_HASH_BYTES;
	memcpy(p, meta_hash, JAM_HASH_BYTES);
	p += JAM_HASH_BYTES;
	*p++ = status_code(status);
	for (int i = 0; i < 8; i++)
		*p++ = (uint8) (unix_micros >> (8 * i));

	if (prev_root != NULL)
		memcpy(out->prev_root, prev_root, JAM_HASH_BYTES);
	else
		jam_log_head_root(head, out->prev_root);
	jam_merkle_leaf_hash(entry, sizeof(entry), out->leaf);
	n_completed = jam_log_head_push(head, out->leaf, completed);
	jam_log_head_root(head, out->new_root);
	memcpy(head->root, out->new_root, JAM_HASH_BYTES);
	head->root_known = true;

	out->entry = palloc(VARHDRSZ + sizeof(entry));
	SET_VARSIZE(out->entry, VARHDRSZ + sizeof(entry));
	memcpy(VARDATA(out->entry), entry, sizeof(entry));
	out->nodes = palloc(VARHDRSZ + (Size) n_completed * JAM_HASH_BYTES);
	SET_VARSIZE(out->nodes, VARHDRSZ + (Size) n_completed * JAM_HASH_BYTES);
	memcpy(VARDATA(out->nodes), completed, (Size) n_completed * JAM_HASH_BYTES);
}

/* The receipt of leaf, appended at seq to svc's log; a copy that outlives SPI. */
static Datum
leaf_receipt(const JamService *svc, int64 seq, JamLogKind kind, const PushedLeaf *leaf,
			 const char *status, TimestampTz now)
{
	return SPI_datumTransfer(jam_log_new_receipt(svc->service_id, seq, kind_name(kind),
												 entry_item_hash(leaf),
												 leaf->leaf, leaf->prev_root, leaf->new_root,
												 status, now),
							 false, -1);
}

/*
 * Appends an entry for item_hash to the log of svc (a service locked by
 * jam_service_lock), advancing its head in the transaction's copy of the
 * service row, and returns the receipt.  Needs SPI.
 */
Datum
jam_log_append(JamService *svc, JamLogKind kind, const char *item_hash,
			   const uint8 meta_hash[JAM_HASH_BYTES], const char *status)
{
	char	   *hash = unconstify(char *, item_hash);
	Datum		receipt;

	jam_log_append_many(svc, kind, 1, &hash, meta_hash, &status, NULL, &receipt);
	return receipt;
}

/*
 * Appends n entries of one kind and one metadata hash, entry i with
 * statuses[i] (and, for reports, package_ids[i], kept where the catalog
 * has the column), to the log of svc in one statement, and fills
 * receipts[0..n) in order (unless receipts is NULL): a batch's whole
 * extension of the log.  Needs SPI.
 */
void
jam_log_append_many(JamService *svc, JamLogKind kind, int n, char **item_hashes,
					const uint8 meta_hash[JAM_HASH_BYTES], const char *const *statuses,
					char **package_ids, Datum *receipts)
{
	TimestampTz now = GetCurrentTimestamp();
	int64		first = svc->log.size;
	Datum	   *seqs = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *hashes = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *entries = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *leaves = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *prevs = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *news = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *nodes = palloc(sizeof(Datum) * Max(n, 1));
	Datum	   *status_texts = palloc(sizeof(Datum) * Max(n, 1));
	Datum		values[12];
	char		nulls[12] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	bool		naming = package_ids != NULL && jam_log_has_package_id();
	uint8		root[JAM_HASH_BYTES];	/* the head's, after the leaves pushed so far */
	int			rows;

	if (n == 0)
		return;
	for (int i = 0; i < n; i++)
	{
		PushedLeaf	leaf;

		push_entry(&svc->log, kind, item_hashes[i], meta_hash, statuses[i], now,
				   i > 0 ? root : NULL, &leaf);
		memcpy(root, leaf.new_root, JAM_HASH_BYTES);
		if (receipts != NULL)
			receipts[i] = leaf_receipt(svc, first + i, kind, &leaf, statuses[i], now);
		seqs[i] = Int64GetDatum(first + i);
		status_texts[i] = CStringGetTextDatum(statuses[i]);
		hashes[i] = PointerGetDatum(jam_bytes_to_bytea(entry_item_hash(&leaf), JAM_HASH_BYTES));
		entries[i] = PointerGetDatum(leaf.entry);
		leaves[i] = PointerGetDatum(jam_bytes_to_bytea(leaf.leaf, JAM_HASH_BYTES));
		prevs[i] = PointerGetDatum(jam_bytes_to_bytea(leaf.prev_root, JAM_HASH_BYTES));
		news[i] = PointerGetDatum(jam_bytes_to_bytea(leaf.new_root, JAM_HASH_BYTES));
		nodes[i] = PointerGetDatum(leaf.nodes);
	}
	values[0] = CStringGetTextDatum(svc->service_id);
	jam_spi_column(values, nulls, 1, seqs, NULL, n, INT8OID);
	values[2] = CStringGetTextDatum(kind_name(kind));
	jam_spi_column(values, nulls, 3, hashes, NULL, n, BYTEAOID);
	jam_spi_column(values, nulls, 4, status_texts, NULL, n, TEXTOID);
	values[5] = TimestampTzGetDatum(now);
	jam_spi_column(values, nulls, 6, entries, NULL, n, BYTEAOID);
	jam_spi_column(values, nulls, 7, leaves, NULL, n, BYTEAOID);
	jam_spi_column(values, nulls, 8, prevs, NULL, n, BYTEAOID);
	jam_spi_column(values, nulls, 9, news, NULL, n, BYTEAOID);
	jam_spi_column(values, nulls, 10, nodes, NULL, n, BYTEAOID);
	if (naming)
	{
		Datum	   *packages = palloc(sizeof(Datum) * n);

		for (int i = 0; i < n; i++)
			packages[i] = CStringGetTextDatum(package_ids[i]);
		jam_spi_column(values, nulls, 11, packages, NULL, n, TEXTOID);
	}
	rows = jam_spi_exec(insert_entries_by_shape[naming][n == 1], values, nulls, false, 0);
	if (rows != n)
		elog(ERROR, "jam appended %d log entries of %d", rows, n);
	jam_events_logged(svc->service_id, first, n, kind, item_hashes, statuses[0]);
}

/* The receipt of the log entry of kind for item_hash, or NULL when there is none. Needs SPI. */
Datum
jam_log_receipt_of(const char *item_hash, JamLogKind kind)
{
	Datum		values[2];

	values[0] = CStringGetTextDatum(item_hash);
	values[1] = CStringGetTextDatum(kind_name(kind));
	if (jam_spi_exec(&select_receipt, values, NULL, true, 1) == 0)
		return (Datum) 0;
	return jam_spi_copy_jsonb(1);
}

/*
 * The receipts of the log entries of kind for item_hashes[0..n), into
 * receipts[0..n) ((Datum) 0 where there is none).  Needs SPI.
 */
void
jam_log_receipts_of(int n, char **item_hashes, JamLogKind kind, Datum *receipts)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	Datum		values[2];
	int			rows;

	for (int i = 0; i < n; i++)
	{
		elems[i] = CStringGetTextDatum(item_hashes[i]);
		receipts[i] = (Datum) 0;
	}
	values[0] = PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
	values[1] = CStringGetTextDatum(kind_name(kind));
	rows = jam_spi_exec(&select_receipts, values, NULL, false, 0);
	for (int r = 0; r < rows; r++)
	{
		bool		isnull;
		int64		ord = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r],
													  SPI_tuptable->tupdesc, 1, &isnull));

		receipts[ord - 1] = SPI_datumTransfer(SPI_getbinval(SPI_tuptable->vals[r],
															SPI_tuptable->tupdesc, 2, &isnull),
											  false, -1);
	}
}
