/*
 * xact_rows.c: the hot rows a transaction changes, kept in memory until it
 * commits.
 *
 * Every submit and every processed package changes its service's row (the
 * log head, the pending count and, from 1.5, the counts of outcomes) and
 * the refcounts of the preimages it references.  Written at once, N
 * changes of one row in one transaction
 * leave N row versions that nobody may prune before the transaction ends,
 * and each change walks the versions before it: N submits in one
 * transaction would cost O(N^2).  So the first change of a row in a
 * transaction locks the row and reads it, later changes update the copy
 * kept here, and the copy is written once: just before the transaction
 * commits (or prepares), or earlier when one of jam's functions is about to
 * read those rows (jam_xact_rows_flush).  A transaction of N submits thus
 * writes each service row and each preimage row once.
 *
 * Locks: a service row is locked FOR UPDATE, as before (it serializes the
 * service's log); a preimage row FOR KEY SHARE, which keeps retention from
 * deleting it while it gains references, yet lets other transactions
 * reference it concurrently; its refcount is raised at flush time by the
 * difference, in hash order, as every writer of refcounts locks them.
 *
 * Subtransactions: ROLLBACK TO SAVEPOINT undoes the rows the subtransaction
 * wrote and releases the locks it took, so each entry remembers its state
 * as it was before each open subtransaction first changed it, and an abort
 * restores that state (or forgets the entry when the subtransaction made
 * it).  Writers outside jam's API that change these rows directly in the
 * same transaction are not seen here: jam's rows are written by jam.
 */
#include "jam.h"
#include "auth.h"
#include "commit_flush.h"
#include "fair.h"
#include "metrics.h"
#include "xact_rows.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#define SERVICE_KEY_BYTES 65	/* a service id has at most 64 characters */

/* An entry's state before a subtransaction first changed it. */
typedef struct SavedService
{
	SubTransactionId subxid;	/* who had changed it last: what to restore */
	bool		dirty;
	JamService	svc;
} SavedService;

typedef struct ServiceEntry
{
	char		key[SERVICE_KEY_BYTES];
	SubTransactionId subxid;	/* the subtransaction that last changed it */
	bool		dirty;			/* differs from the row */
	int64		read_pending;	/* the row's pending count when it was locked */
	JamService	svc;
	List	   *saved;			/* of SavedService, innermost first */
} ServiceEntry;

typedef struct SavedPreimage
{
	SubTransactionId subxid;
	int64		delta;
	int64		flushed;
} SavedPreimage;

typedef struct PreimageEntry
{
	char		key[JAM_HASH_HEX_CHARS + 1];
	SubTransactionId subxid;
	int64		size;
	int64		delta;			/* references added by this transaction */
	int64		flushed;		/* of which already written to the row */
	List	   *saved;			/* of SavedPreimage */
} PreimageEntry;

static HTAB *services = NULL;
static HTAB *preimages = NULL;
static Oid	writer = InvalidOid;	/* who took the locks: the tables' owner */
static bool callbacks_registered = false;

/* The row version read last, then the counts by outcome (1.5) as columns 7 to 10. */
#define LOCK_SERVICE_COLUMNS "pending_count, refine_function, log_size, log_frontier, tenant, ctid"

static JamStatement lock_service = {
	"SELECT " LOCK_SERVICE_COLUMNS " FROM jam.jam_services WHERE service_id = $1 FOR UPDATE",
	1, {TEXTOID}
};

static JamStatement lock_service_counted = {
	"SELECT " LOCK_SERVICE_COLUMNS ", applied_count, failed_count, applied_report_count, "
	"failed_report_count FROM jam.jam_services WHERE service_id = $1 FOR UPDATE",
	1, {TEXTOID}
};

/* A service made by a tenant's token belongs to that tenant. */
static JamStatement create_service = {
	"INSERT INTO jam.jam_services (service_id, tenant) VALUES ($1, $2) "
	"ON CONFLICT (service_id) DO NOTHING",
	2, {TEXTOID, TEXTOID}
};

/*
 * Writing a copy back.  Each statement takes the same ten arguments: the
 * id, pending count and log head ($1-$5), the counts by outcome ($6-$9,
 * unused before 1.5) and the row version the copy was last read from or
 * written to ($10), and returns the version it writes.  The write goes to
 * that version by its ctid: a transaction that writes its copy more than
 * once (a read of the rows in between flushes it) leaves a version each
 * time, none of which may be pruned before it ends, and finding the row by
 * its id would walk them all, so N flushes would cost O(N^2).  By key
 * only when the version moved under the copy (the row was changed by SQL
 * of the same transaction, as jam_register_service does).
 */
#define WRITE_SERVICE \
	"UPDATE jam.jam_services SET pending_count = $2, log_size = $3, log_root = @h($4), " \
	"log_frontier = $5"
#define WRITE_COUNTS \
	", applied_count = $6, failed_count = $7, applied_report_count = $8, failed_report_count = $9"
#define BY_VERSION " WHERE ctid = $10 AND service_id = $1 RETURNING ctid"
#define BY_KEY " WHERE service_id = $1 RETURNING ctid"
#define WRITE_SERVICE_ARGS \
	10, {TEXTOID, INT8OID, INT8OID, TEXTOID, BYTEAOID, INT8OID, INT8OID, INT8OID, INT8OID, TIDOID}

/* [counted][by key] */
static JamStatement write_service[2][2] = {
	{{WRITE_SERVICE BY_VERSION, WRITE_SERVICE_ARGS}, {WRITE_SERVICE BY_KEY, WRITE_SERVICE_ARGS}},
	{{WRITE_SERVICE WRITE_COUNTS BY_VERSION, WRITE_SERVICE_ARGS},
	{WRITE_SERVICE WRITE_COUNTS BY_KEY, WRITE_SERVICE_ARGS}}
};

/* In hash order, the order every writer of refcounts locks them in. */
static JamStatement lock_preimages = {
	"SELECT @x(hash), size FROM jam.jam_preimages WHERE hash = ANY(@ha($1)) "
	"ORDER BY hash FOR KEY SHARE",
	1, {TEXTARRAYOID}
};

static JamStatement write_refcounts = {
	"UPDATE jam.jam_preimages p SET refcount = p.refcount + d.n "
	"FROM (SELECT hash FROM jam.jam_preimages WHERE hash = ANY(@ha($1)) "
	"      ORDER BY hash FOR NO KEY UPDATE) l, "
	"     unnest($1::text[], $2::bigint[]) AS d(hash, n) "
	"WHERE p.hash = l.hash AND @h(d.hash) = l.hash",
	2, {TEXTARRAYOID, INT8ARRAYOID}
};

static void xact_callback(XactEvent event, void *arg);
static void subxact_callback(SubXactEvent event, SubTransactionId subxid,
							 SubTransactionId parent, void *arg);

static void
ensure_tables(void)
{
	if (!callbacks_registered)
	{
		RegisterXactCallback(xact_callback, NULL);
		RegisterSubXactCallback(subxact_callback, NULL);
		callbacks_registered = true;
	}
	if (services != NULL)
		return;
	/* API functions run as the owner of jam's tables; so do the writes at commit. */
	writer = GetUserId();
	services = jam_transaction_hash("jam transaction services", 16, SERVICE_KEY_BYTES,
									sizeof(ServiceEntry), HASH_STRINGS);
	preimages = jam_transaction_hash("jam transaction preimages", 64, JAM_HASH_HEX_CHARS + 1,
									 sizeof(PreimageEntry), HASH_STRINGS);
}

/* Reads the locked service row SPI just returned into svc, in TopTransactionContext. */
static void
read_service(const char *service_id, JamService *svc)
{
	HeapTuple	row = SPI_tuptable->vals[0];
	TupleDesc	desc = SPI_tuptable->tupdesc;
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	bool		isnull;
	Datum		d;

	svc->service_id = pstrdup(service_id);
	svc->pending_count = DatumGetInt64(SPI_getbinval(row, desc, 1, &isnull));
	d = SPI_getbinval(row, desc, 2, &isnull);
	svc->refine_function = isnull ? InvalidOid : DatumGetObjectId(d);
	svc->log.size = DatumGetInt64(SPI_getbinval(row, desc, 3, &isnull));
	d = SPI_getbinval(row, desc, 4, &isnull);
	jam_log_head_load(&svc->log, DatumGetByteaPP(d));
	d = SPI_getbinval(row, desc, 5, &isnull);
	svc->tenant = isnull ? NULL : TextDatumGetCString(d);
	ItemPointerCopy((ItemPointer) DatumGetPointer(SPI_getbinval(row, desc, 6, &isnull)), &svc->row);
	svc->counted = desc->natts >= 10;
	if (svc->counted)
	{
		svc->applied_count = DatumGetInt64(SPI_getbinval(row, desc, 7, &isnull));
		svc->failed_count = DatumGetInt64(SPI_getbinval(row, desc, 8, &isnull));
		svc->applied_report_count = DatumGetInt64(SPI_getbinval(row, desc, 9, &isnull));
		svc->failed_report_count = DatumGetInt64(SPI_getbinval(row, desc, 10, &isnull));
	}
	else
		svc->applied_count = svc->failed_count = svc->applied_report_count =
			svc->failed_report_count = 0;
	MemoryContextSwitchTo(old);
}

/* Saves the entry's state for the current subtransaction, once per subtransaction. */
static void
save_service(ServiceEntry *e)
{
	SubTransactionId current = GetCurrentSubTransactionId();
	MemoryContext old;
	SavedService *s;

	if (e->subxid == current)
		return;
	old = MemoryContextSwitchTo(TopTransactionContext);
	s = palloc(sizeof(SavedService));
	s->subxid = e->subxid;
	s->dirty = e->dirty;
	s->svc = e->svc;
	e->saved = lcons(s, e->saved);
	e->subxid = current;
	MemoryContextSwitchTo(old);
}

/*
 * Locks the service's row, creating it first when the service is new, and
 * returns this transaction's copy of it, to be changed by the caller (its
 * pending count) and by jam_log_append (its log head); the copy is written
 * back before commit.  Needs SPI; the lock lasts until the transaction ends.
 */
JamService *
jam_service_lock(const char *service_id)
{
	ServiceEntry *e;
	bool		found;

	ensure_tables();
	e = hash_search(services, service_id, HASH_FIND, NULL);
	if (e == NULL)
	{
		Datum		values[1] = {CStringGetTextDatum(service_id)};
		JamStatement *lock = jam_services_have_counts() ? &lock_service_counted : &lock_service;

		if (jam_spi_exec(lock, values, NULL, false, 1) == 0)
		{
			const char *tenant = jam_auth_tenant();
			Datum		create[2] = {values[0], tenant ? CStringGetTextDatum(tenant) : (Datum) 0};
			char		create_nulls[2] = {' ', tenant ? ' ' : 'n'};

			jam_spi_exec(&create_service, create, create_nulls, false, 0);
			if (jam_spi_exec(lock, values, NULL, false, 1) == 0)
				elog(ERROR, "jam could not create service \"%s\"", service_id);
		}
		e = hash_search(services, service_id, HASH_ENTER, &found);
		e->subxid = GetCurrentSubTransactionId();
		e->dirty = false;
		e->saved = NIL;
		read_service(service_id, &e->svc);
		e->read_pending = e->svc.pending_count;
	}
	else
		save_service(e);
	e->dirty = true;
	return &e->svc;
}

/*
 * Records that this transaction changed the refine function or tenant of a
 * service whose row it has locked, so that its copy agrees with the row.
 */
void
jam_service_changed(const char *service_id, Oid refine_function, const char *tenant)
{
	ServiceEntry *e;
	MemoryContext old;

	if (services == NULL ||
		(e = hash_search(services, service_id, HASH_FIND, NULL)) == NULL)
		return;
	save_service(e);
	old = MemoryContextSwitchTo(TopTransactionContext);
	e->svc.refine_function = refine_function;
	e->svc.tenant = tenant ? pstrdup(tenant) : NULL;
	MemoryContextSwitchTo(old);
}

static void
save_preimage(PreimageEntry *e)
{
	SubTransactionId current = GetCurrentSubTransactionId();
	MemoryContext old;
	SavedPreimage *s;

	if (e->subxid == current)
		return;
	old = MemoryContextSwitchTo(TopTransactionContext);
	s = palloc(sizeof(SavedPreimage));
	s->subxid = e->subxid;
	s->delta = e->delta;
	s->flushed = e->flushed;
	e->saved = lcons(s, e->saved);
	e->subxid = current;
	MemoryContextSwitchTo(old);
}

/*
 * Adds a reference to each stored preimage in distinct_hashes (a text[] of
 * hashes without duplicates) and returns how many were stored; *largest
 * (when not NULL) gets the size of the largest.  The first reference of a
 * transaction to a preimage locks its row; the refcount itself is written
 * at commit.  Needs SPI.
 */
int
jam_reference_preimages(ArrayType *distinct_hashes, int64 *largest)
{
	return jam_reference_preimages_counted(distinct_hashes, NULL, largest);
}

/* Whether this transaction holds a reference to the preimage (so it is stored). */
bool
jam_preimage_referenced(const char *hash)
{
	return preimages != NULL && hash_search(preimages, hash, HASH_FIND, NULL) != NULL;
}

/*
 * jam_reference_preimages, adding counts[i] references (NULL: one each) to
 * the i-th hash: a batch references each preimage once for all its
 * packages.
 */
int
jam_reference_preimages_counted(ArrayType *distinct_hashes, const int64 *counts, int64 *largest)
{
	Datum	   *hashes;
	int			n;
	Datum	   *unknown;
	int			n_unknown = 0;
	int			stored = 0;

	ensure_tables();
	deconstruct_array(distinct_hashes, TEXTOID, -1, false, TYPALIGN_INT, &hashes, NULL, &n);
	unknown = palloc(sizeof(Datum) * Max(n, 1));
	for (int i = 0; i < n; i++)
		if (hash_search(preimages, TextDatumGetCString(hashes[i]), HASH_FIND, NULL) == NULL)
			unknown[n_unknown++] = hashes[i];

	if (n_unknown > 0)
	{
		Datum		values[1];
		int			rows;

		values[0] = PointerGetDatum(construct_array(unknown, n_unknown, TEXTOID, -1, false,
													TYPALIGN_INT));
		rows = jam_spi_exec(&lock_preimages, values, NULL, false, 0);
		for (int r = 0; r < rows; r++)
		{
			HeapTuple	row = SPI_tuptable->vals[r];
			bool		isnull;
			PreimageEntry *e = hash_search(preimages,
										   SPI_getvalue(row, SPI_tuptable->tupdesc, 1),
										   HASH_ENTER, NULL);

			e->subxid = GetCurrentSubTransactionId();
			e->size = DatumGetInt64(SPI_getbinval(row, SPI_tuptable->tupdesc, 2, &isnull));
			e->delta = 0;
			e->flushed = 0;
			e->saved = NIL;
		}
	}

	if (largest != NULL)
		*largest = 0;
	for (int i = 0; i < n; i++)
	{
		PreimageEntry *e = hash_search(preimages, TextDatumGetCString(hashes[i]), HASH_FIND, NULL);

		if (e == NULL)
			continue;
		save_preimage(e);
		e->delta += counts ? counts[i] : 1;
		stored++;
		if (largest != NULL)
			*largest = Max(*largest, e->size);
	}
	if (counts == NULL)
		jam_metrics_refcount_increments(stored);
	else
		for (int i = 0; i < n; i++)
			if (jam_preimage_referenced(TextDatumGetCString(hashes[i])))
				jam_metrics_refcount_increments(counts[i]);
	return stored;
}

/*
 * The copies of service rows this transaction changed and has not written
 * yet (NULL when none), and how many in *n: a read of their counts can add
 * them itself instead of writing them first (list.c).
 */
JamService **
jam_xact_unwritten_services(int *n)
{
	HASH_SEQ_STATUS seq;
	ServiceEntry *e;
	JamService **out;

	*n = 0;
	if (services == NULL || hash_get_num_entries(services) == 0)
		return NULL;
	out = palloc(sizeof(JamService *) * hash_get_num_entries(services));
	hash_seq_init(&seq, services);
	while ((e = hash_seq_search(&seq)) != NULL)
		if (e->dirty)
			out[(*n)++] = &e->svc;
	return out;
}

/*
 * service_id's row as this transaction last changed it, when it has not
 * written it yet (NULL otherwise).  A reader of the row's log head or
 * counts (proofs, roots, checkpoints, quota usage) takes them from here
 * instead of writing the row first: each such write leaves a row version
 * that no one can prune before the transaction ends, and that every later
 * read of the row in the transaction steps over.
 */
const JamService *
jam_xact_unwritten_service(const char *service_id)
{
	ServiceEntry *e;

	if (services == NULL || strlen(service_id) >= SERVICE_KEY_BYTES)
		return NULL;
	e = hash_search(services, service_id, HASH_FIND, NULL);
	return e != NULL && e->dirty ? &e->svc : NULL;
}

/*
 * Whether this transaction changed service_id's log head and has not
 * written it yet; if so, its size into *size and (root not NULL) its root.
 */
bool
jam_xact_unwritten_head(const char *service_id, int64 *size, uint8 *root)
{
	const JamService *copy = jam_xact_unwritten_service(service_id);

	if (copy == NULL)
		return false;
	*size = copy->log.size;
	if (root != NULL)
		jam_log_head_root(&copy->log, root);
	return true;
}

/* The references to a preimage this transaction added and has not written yet. */
int64
jam_xact_unwritten_references(const char *hash)
{
	PreimageEntry *e;

	if (preimages == NULL || strlen(hash) > JAM_HASH_HEX_CHARS)
		return 0;
	e = hash_search(preimages, hash, HASH_FIND, NULL);
	return e != NULL ? e->delta - e->flushed : 0;
}

/*
 * Whether this transaction has locked service rows, and so may have written
 * rows of the log during the current statement: its reads must then not
 * use the statement's snapshot (jam_spi_exec's read_only).
 */
bool
jam_xact_rows_held(void)
{
	return services != NULL;
}

/* Whether any copy differs from its row. */
static bool
anything_to_write(void)
{
	HASH_SEQ_STATUS seq;

	if (services == NULL)
		return false;
	if (hash_get_num_entries(preimages) > 0)
	{
		PreimageEntry *p;

		hash_seq_init(&seq, preimages);
		while ((p = hash_seq_search(&seq)) != NULL)
			if (p->delta != p->flushed)
			{
				hash_seq_term(&seq);
				return true;
			}
	}
	if (hash_get_num_entries(services) > 0)
	{
		ServiceEntry *s;

		hash_seq_init(&seq, services);
		while ((s = hash_seq_search(&seq)) != NULL)
			if (s->dirty)
			{
				hash_seq_term(&seq);
				return true;
			}
	}
	return false;
}

static int
compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Writes every changed service row, in service order. Needs SPI. */
static void
write_services(void)
{
	HASH_SEQ_STATUS seq;
	ServiceEntry *e;
	char	  **keys = palloc(sizeof(char *) * Max(hash_get_num_entries(services), 1));
	int			n = 0;

	hash_seq_init(&seq, services);
	while ((e = hash_seq_search(&seq)) != NULL)
		if (e->dirty)
			keys[n++] = e->key;
	qsort(keys, n, sizeof(char *), compare_strings);
	for (int i = 0; i < n; i++)
	{
		Datum		values[10];
		char		nulls[10] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
		JamStatement *by_kind;
		ItemPointerData written;
		bool		isnull;

		e = hash_search(services, keys[i], HASH_FIND, NULL);
		values[0] = CStringGetTextDatum(e->key);
		values[1] = Int64GetDatum(e->svc.pending_count);
		values[2] = Int64GetDatum(e->svc.log.size);
		values[3] = PointerGetDatum(jam_log_head_root_text(&e->svc.log));
		values[4] = PointerGetDatum(jam_log_head_frontier_bytea(&e->svc.log));
		/* An empty log has no root, as in a service row never appended to. */
		nulls[3] = e->svc.log.size == 0 ? 'n' : ' ';
		values[5] = Int64GetDatum(e->svc.applied_count);
		values[6] = Int64GetDatum(e->svc.failed_count);
		values[7] = Int64GetDatum(e->svc.applied_report_count);
		values[8] = Int64GetDatum(e->svc.failed_report_count);
		values[9] = PointerGetDatum(&e->svc.row);

		/*
		 * A copy read before this transaction added the counts (an update
		 * within it) holds none: the update counted the rows itself.
		 */
		by_kind = write_service[e->svc.counted ? 1 : 0];
		if (jam_spi_exec(&by_kind[0], values, nulls, false, 0) != 1 &&
			jam_spi_exec(&by_kind[1], values, nulls, false, 0) != 1)
			elog(ERROR, "jam lost the row of service \"%s\"", e->key);
		ItemPointerCopy((ItemPointer) DatumGetPointer(jam_spi_result_datum(1, &isnull)), &written);
		/* A service that had nothing pending has a backlog now: fair scheduling must see it. */
		if (e->read_pending == 0 && e->svc.pending_count > 0)
			jam_fair_backlog_changed();
		save_service(e);
		e->svc.row = written;
		e->dirty = false;
	}
}

/* Raises the refcounts of the referenced preimages by what this transaction added. Needs SPI. */
static void
write_refcounts_now(void)
{
	HASH_SEQ_STATUS seq;
	PreimageEntry *e;
	long		total = hash_get_num_entries(preimages);
	Datum	   *hashes = palloc(sizeof(Datum) * Max(total, 1));
	Datum	   *deltas = palloc(sizeof(Datum) * Max(total, 1));
	PreimageEntry **written = palloc(sizeof(PreimageEntry *) * Max(total, 1));
	int			n = 0;
	Datum		values[2];

	hash_seq_init(&seq, preimages);
	while ((e = hash_seq_search(&seq)) != NULL)
		if (e->delta != e->flushed)
		{
			hashes[n] = CStringGetTextDatum(e->key);
			deltas[n] = Int64GetDatum(e->delta - e->flushed);
			written[n++] = e;
		}
	if (n == 0)
		return;
	values[0] = PointerGetDatum(construct_array(hashes, n, TEXTOID, -1, false, TYPALIGN_INT));
	values[1] = PointerGetDatum(construct_array(deltas, n, INT8OID, 8, true, TYPALIGN_DOUBLE));
	if (jam_spi_exec(&write_refcounts, values, NULL, false, 0) != n)
		elog(ERROR, "jam lost a preimage this transaction references");
	for (int i = 0; i < n; i++)
	{
		save_preimage(written[i]);
		written[i]->flushed = written[i]->delta;
	}
}

/*
 * Writes what this transaction changed in service rows and refcounts, and
 * returns whether this transaction has changed any: then a read of those
 * rows must take a new snapshot (SPI's read_only = false), since a statement
 * that began before the rows were written does not see them.  Every
 * function that reads a service's head, its pending count or a refcount
 * calls it first.
 */
bool
jam_xact_rows_flush(void)
{
	Oid			save_user;
	int			save_sec;
	int			nest;

	if (!anything_to_write())
		return services != NULL;

	/*
	 * As the tables' owner with search_path pinned, as in the API functions
	 * themselves, whoever's COMMIT this is.  An error aborts the transaction,
	 * which restores both.
	 */
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(writer, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	nest = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, jam, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	SPI_connect();
	write_services();
	write_refcounts_now();
	SPI_finish();
	AtEOXact_GUC(true, nest);
	SetUserIdAndSecContext(save_user, save_sec);
	return true;
}

/* The last changes, written before commit: a failure here aborts the transaction. */
static void
flush_before_commit(void)
{
	if (!anything_to_write())
		return;
	PushActiveSnapshot(GetTransactionSnapshot());
	(void) jam_xact_rows_flush();
	PopActiveSnapshot();
}

static void
xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			flush_before_commit();
			/* Holding a service's lock: released before the commit's flush (commit_flush.c). */
			if (services != NULL && hash_get_num_entries(services) > 0)
				jam_commit_flush_after_unlock();
			break;
		case XACT_EVENT_PRE_PREPARE:
			flush_before_commit();
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			/* The tables lived in TopTransactionContext, gone now. */
			services = NULL;
			preimages = NULL;
			writer = InvalidOid;
			break;
		default:
			break;
	}
}

/* A subtransaction's commit hands its saved states to its parent. */
static void
commit_subxact(SubTransactionId subxid, SubTransactionId parent)
{
	HASH_SEQ_STATUS seq;
	ServiceEntry *s;
	PreimageEntry *p;

	hash_seq_init(&seq, services);
	while ((s = hash_seq_search(&seq)) != NULL)
		if (s->subxid == subxid)
		{
			s->subxid = parent;
			/* The parent's own earlier state, if any, stays the one to restore. */
			if (s->saved != NIL && ((SavedService *) linitial(s->saved))->subxid == parent)
			{
				pfree(linitial(s->saved));
				s->saved = list_delete_first(s->saved);
			}
		}
	hash_seq_init(&seq, preimages);
	while ((p = hash_seq_search(&seq)) != NULL)
		if (p->subxid == subxid)
		{
			p->subxid = parent;
			if (p->saved != NIL && ((SavedPreimage *) linitial(p->saved))->subxid == parent)
			{
				pfree(linitial(p->saved));
				p->saved = list_delete_first(p->saved);
			}
		}
}

/*
 * A subtransaction's abort undid its writes and released the locks it took:
 * each entry it changed goes back to its state before, and an entry it made
 * (whose row lock is gone) is forgotten.
 */
static void
abort_subxact(SubTransactionId subxid)
{
	HASH_SEQ_STATUS seq;
	ServiceEntry *s;
	PreimageEntry *p;

	hash_seq_init(&seq, services);
	while ((s = hash_seq_search(&seq)) != NULL)
	{
		if (s->subxid != subxid)
			continue;
		if (s->saved == NIL)
			hash_search(services, s->key, HASH_REMOVE, NULL);
		else
		{
			SavedService *saved = linitial(s->saved);

			s->subxid = saved->subxid;
			s->dirty = saved->dirty;
			s->svc = saved->svc;
			pfree(saved);
			s->saved = list_delete_first(s->saved);
		}
	}
	hash_seq_init(&seq, preimages);
	while ((p = hash_seq_search(&seq)) != NULL)
	{
		if (p->subxid != subxid)
			continue;
		if (p->saved == NIL)
			hash_search(preimages, p->key, HASH_REMOVE, NULL);
		else
		{
			SavedPreimage *saved = linitial(p->saved);

			p->subxid = saved->subxid;
			p->delta = saved->delta;
			p->flushed = saved->flushed;
			pfree(saved);
			p->saved = list_delete_first(p->saved);
		}
	}
}

static void
subxact_callback(SubXactEvent event, SubTransactionId subxid, SubTransactionId parent, void *arg)
{
	if (services == NULL)
		return;
	if (event == SUBXACT_EVENT_COMMIT_SUB)
		commit_subxact(subxid, parent);
	else if (event == SUBXACT_EVENT_ABORT_SUB)
		abort_subxact(subxid);
}
