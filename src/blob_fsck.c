/*
 * blob_fsck.c: the blob store's part of jam_fsck.
 *
 * It compares the rows that say a preimage is in the store with the
 * objects the store lists under jam's prefix:
 *
 *   - a row whose object is missing (or has another size) cannot be
 *     repaired from the database, which no longer holds the bytes; it is
 *     reported, and putting the same bytes again restores it (blob_tier.c);
 *   - an object no row names (an orphan: a put whose transaction rolled
 *     back or crashed after its upload, an offload batch that did not
 *     commit) is reported, and with repair queued for deletion: the delete
 *     queue's drain deletes it only under the hash's lock and only if no
 *     row names it by then, so an orphan that is in fact a put still in
 *     progress is kept.  Objects already queued are not counted again.
 *
 * The rows are read first and the store listed after, so a row committed
 * meanwhile can only make its object look like an orphan (safe, as said),
 * never a row look like it lost its object; a row reported missing is
 * checked once more, with a fresh read and a HEAD of its object.
 */
#include "jam.h"
#include "blob.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/jsonb.h"

/* Lists in the report stop at this many entries; the counts are complete. */
#define LIST_MAX 100

static JamStatement rows_in_store = {
	"SELECT @x(hash), size FROM jam.jam_preimages WHERE storage_class = 's3'",
	0, {InvalidOid}
};

static JamStatement queued = {
	"SELECT DISTINCT @x(hash) FROM jam.jam_blob_deletes",
	0, {InvalidOid}
};

static JamStatement still_in_store = {
	"SELECT size FROM jam.jam_preimages WHERE hash = @h($1) AND storage_class = 's3'",
	1, {TEXTOID}
};

static JamStatement queue_orphans = {
	"INSERT INTO jam.jam_blob_deletes (hash, size) "
	"SELECT @h(u.h), u.s FROM unnest($1::text[], $2::bigint[]) AS u(h, s)",
	2, {TEXTARRAYOID, INT8ARRAYOID}
};

typedef struct Entry
{
	char		hash[JAM_HASH_HEX_CHARS + 1];	/* the key */
	int64		row_size;		/* -1: no row names it */
	int64		object_size;	/* -1: not listed */
	bool		queued;
} Entry;

static Entry *
entry(HTAB *table, const char *hash)
{
	bool		found;
	Entry	   *e = hash_search(table, hash, HASH_ENTER, &found);

	if (!found)
	{
		e->row_size = -1;
		e->object_size = -1;
		e->queued = false;
	}
	return e;
}

static int
cmp_entries(const void *a, const void *b)
{
	return strcmp((*(Entry *const *) a)->hash, (*(Entry *const *) b)->hash);
}

/* Appends "name": [hashes...] (at most LIST_MAX) of the entries. */
static void
append_list(StringInfo s, const char *name, Entry **entries, int n)
{
	appendStringInfo(s, ", \"%s\": [", name);
	for (int i = 0; i < n && i < LIST_MAX; i++)
		appendStringInfo(s, "%s\"%s\"", i ? ", " : "", entries[i]->hash);
	appendStringInfoChar(s, ']');
}

/*
 * The store's part of jam_fsck(repair): {store, objects_listed,
 * foreign_keys, rows_in_store, orphan_count, orphans, missing_count,
 * missing, queued_deletes, orphans_queued}.  Needs a configured store and
 * the 1.2 catalog; runs before jam_fsck locks anything.
 */
Datum
jam_blob_fsck(bool repair)
{
	HASHCTL		ctl;
	HTAB	   *table;
	HASH_SEQ_STATUS scan;
	Entry	   *e;
	Entry	  **orphans;
	Entry	  **missing;
	int			n_orphans = 0;
	int			n_missing = 0;
	int64		n_rows;
	int64		n_listed = 0;
	int64		n_foreign = 0;
	int64		n_queued;
	int64		n_requeued = 0;
	char	   *prefix = jam_blob_key_prefix();
	char	   *token = NULL;
	StringInfoData s;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = JAM_HASH_HEX_CHARS + 1;
	ctl.entrysize = sizeof(Entry);
	ctl.hcxt = CurrentMemoryContext;
	table = hash_create("jam blob fsck", 1024, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);

	SPI_connect();
	n_rows = jam_spi_exec(&rows_in_store, NULL, NULL, true, 0);
	for (int64 i = 0; i < n_rows; i++)
	{
		bool		isnull;

		e = entry(table, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
		e->row_size = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);
	n_queued = jam_spi_exec(&queued, NULL, NULL, true, 0);
	for (int64 i = 0; i < n_queued; i++)
		entry(table, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1))->queued = true;
	SPI_freetuptable(SPI_tuptable);

	/* Every page of the listing, each a request bounded like any other. */
	do
	{
		JamBlobListing page;
		Size		len;
		char	   *xml = jam_blob_store_list_page(token, &len);

		jam_blob_list_parse(xml, len, prefix, &page);
		pfree(xml);
		for (int i = 0; i < page.n_objects; i++)
			entry(table, page.hashes[i])->object_size = page.sizes[i];
		n_listed += page.n_objects;
		n_foreign += page.n_foreign;
		token = page.next_token;
	} while (token != NULL);

	orphans = palloc(sizeof(Entry *) * Max(hash_get_num_entries(table), 1));
	missing = palloc(sizeof(Entry *) * Max(hash_get_num_entries(table), 1));
	hash_seq_init(&scan, table);
	while ((e = hash_seq_search(&scan)) != NULL)
	{
		if (e->row_size >= 0 && e->object_size != e->row_size)
			missing[n_missing++] = e;
		else if (e->row_size < 0 && e->object_size >= 0 && !e->queued)
			orphans[n_orphans++] = e;
	}

	/* A row seen missing is confirmed: still named now, and its object still absent. */
	for (int i = 0; i < n_missing; i++)
	{
		Datum		v = CStringGetTextDatum(missing[i]->hash);
		int64		size = -1;
		bool		isnull;

		if (jam_spi_exec(&still_in_store, &v, NULL, false, 1) == 0 ||
			(jam_blob_store_head(missing[i]->hash, &size, NULL) &&
			 size == DatumGetInt64(jam_spi_result_datum(1, &isnull))))
			missing[i--] = missing[--n_missing];
	}
	qsort(orphans, n_orphans, sizeof(Entry *), cmp_entries);
	qsort(missing, n_missing, sizeof(Entry *), cmp_entries);

	if (repair && n_orphans > 0)
	{
		Datum	   *names = palloc(sizeof(Datum) * n_orphans);
		Datum	   *sizes = palloc(sizeof(Datum) * n_orphans);
		Datum		values[2];

		for (int i = 0; i < n_orphans; i++)
		{
			names[i] = CStringGetTextDatum(orphans[i]->hash);
			sizes[i] = Int64GetDatum(orphans[i]->object_size);
		}
		values[0] = PointerGetDatum(construct_array(names, n_orphans, TEXTOID, -1, false, TYPALIGN_INT));
		values[1] = PointerGetDatum(construct_array(sizes, n_orphans, INT8OID, 8, FLOAT8PASSBYVAL,
													TYPALIGN_DOUBLE));
		n_requeued = jam_spi_exec(&queue_orphans, values, NULL, false, 0);
		jam_blob_wake_worker_at_commit();
	}
	SPI_finish();

	initStringInfo(&s);
	appendStringInfo(&s, "{\"store\": \"%s\", \"objects_listed\": " INT64_FORMAT
					 ", \"foreign_keys\": " INT64_FORMAT ", \"rows_in_store\": " INT64_FORMAT
					 ", \"orphan_count\": %d",
					 JAM_BLOB_STORE_TYPE, n_listed, n_foreign, n_rows, n_orphans);
	append_list(&s, "orphans", orphans, n_orphans);
	appendStringInfo(&s, ", \"missing_count\": %d", n_missing);
	append_list(&s, "missing", missing, n_missing);
	appendStringInfo(&s, ", \"queued_deletes\": " INT64_FORMAT ", \"orphans_queued\": " INT64_FORMAT "}",
					 n_queued, n_requeued);
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(s.data));
}
