/*
 * fair.c: which service's package is processed next when the caller names
 * no service (jam_process_next(NULL), jam_process_packages(NULL, n), the
 * processor workers).
 *
 * Start-time fair queuing (Goyal, Vin and Cheng's SFQ) over services: a
 * package's cost is its weight_hint, and a service with share s is charged
 * cost / s of virtual time for it.  Each service carries a finish tag, the
 * virtual time its processing so far has reached; the database has a
 * virtual clock V, the start tag of the package taken last.  The next
 * package is the oldest pending one of the backlogged service with the
 * smallest start tag, max(finish, V), ties going to the smaller service id.
 * A service that was idle starts at V: it neither banks credit while idle
 * nor waits behind what a flooding service has queued; its first package
 * goes no later than after one package of each other backlogged service.
 * Over any busy interval backlogged services receive processing cost in
 * proportion to their shares, within one package's cost of each.
 *
 * "Backlogged" is read from jam_services.pending_count, which submit and
 * processing keep; when no backlogged service yields a package (all of
 * them held by other transactions, or a count that drifted), the claim
 * falls back to the oldest pending package of any service, so nothing is
 * left behind.
 *
 * Reading the backlogged services is a scan of jam_services, whose cost
 * grows with every service, idle or not, and with the row versions that
 * submits leave behind until VACUUM (400 pages for 28 services on a busy
 * cluster: 0.07 ms a claim, more than writing the report).  So with jam
 * preloaded each backend keeps the list it read, and reads it again only
 * when it may have grown: a transaction that gives a service its first
 * pending package, or sets a share, bumps a shared epoch as it commits
 * (jam_fair_backlog_changed); a listed service that yields no package
 * shows the list is out of date; and in any case after
 * FAIR_REFRESH_CLAIMS claims, which bounds what a change no epoch saw
 * (COMMIT PREPARED runs no commit callback of the preparing backend) can
 * wait.  A claim then costs one probe of a service's pending index: it
 * depends neither on how many packages exist nor on how many services.
 *
 * The tags live in shared memory, shared by every backend and worker of a
 * database, and are lost (every service back at V) when the server
 * restarts; without preloading they are the backend's own.  Concurrent
 * processors each choose before the others have charged their choice, so
 * with k of them a service can receive up to k packages out of turn.
 * jam.scheduling = 'fifo' turns all this off: oldest pending package first.
 */
#include "jam.h"
#include "claim.h"
#include "fair.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#define FAIR_ENTRIES 8192

/* Claims a backend makes from its list of backlogged services before reading it again. */
#define FAIR_REFRESH_CLAIMS 64

/* The key of a database's virtual clock: no service id is empty. */
#define CLOCK_KEY ""

typedef struct FairKey
{
	Oid			database;
	char		service_id[JAM_SERVICE_ID_MAX + 1];
} FairKey;

typedef struct FairEntry
{
	FairKey		key;
	double		tag;			/* a service's finish tag; the clock's V */
} FairEntry;

typedef struct Candidate
{
	char	   *service_id;
	int32		share;
	double		start;
} Candidate;

int			jam_scheduling = JAM_SCHEDULING_FAIR;

static const struct config_enum_entry scheduling_options[] = {
	{"fair", JAM_SCHEDULING_FAIR, false},
	{"fifo", JAM_SCHEDULING_FIFO, false},
	{NULL, 0, false}
};

static LWLock *fair_lock = NULL;
static HTAB *fair_tags = NULL;	/* shared, or the backend's own */
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/*
 * Bumped by every commit that may have added a backlogged service or
 * changed a share; NULL without preloading, when nothing is cached.
 */
static pg_atomic_uint64 *backlog_epoch = NULL;

/* This backend's list of backlogged services (service_id, share; start unset). */
static MemoryContext backlog_cxt = NULL;
static Candidate *backlog = NULL;
static int	n_backlog = 0;
static bool backlog_valid = false;
static uint64 backlog_read_at;	/* the epoch before it was read */
static int	backlog_claims;		/* claims made from it since */
static bool backlog_with_share;
static bool bump_at_commit = false;
static bool xact_callback_registered = false;

/* Whether jam_services has the share column (1.2 on): -1 until read, and after any relcache flush. */
static int	has_share = -1;
static bool share_callback_registered = false;

static JamStatement backlogged_with_share = {
	"SELECT service_id, share FROM jam.jam_services WHERE pending_count > 0", 0, {0}
};

/* Before 1.2 every service has share 1. */
static JamStatement backlogged_without_share = {
	"SELECT service_id, 1 FROM jam.jam_services WHERE pending_count > 0", 0, {0}
};

static void
fair_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(hash_estimate_size(FAIR_ENTRIES, sizeof(FairEntry)));
	RequestAddinShmemSpace(sizeof(pg_atomic_uint64));
	RequestNamedLWLockTranche("jam_fair_scheduling", 1);
}

static void
fair_shmem_startup(void)
{
	HASHCTL		ctl;
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	fair_lock = &(GetNamedLWLockTranche("jam_fair_scheduling"))->lock;
	ctl.keysize = sizeof(FairKey);
	ctl.entrysize = sizeof(FairEntry);
	fair_tags = ShmemInitHash("jam fair scheduling tags", FAIR_ENTRIES, FAIR_ENTRIES,
							  &ctl, HASH_ELEM | HASH_BLOBS);
	backlog_epoch = ShmemInitStruct("jam fair scheduling backlog epoch", sizeof(pg_atomic_uint64),
									&found);
	if (!found)
		pg_atomic_init_u64(backlog_epoch, 0);
	LWLockRelease(AddinShmemInitLock);
}

/* Defines jam.scheduling and, when preloading, claims the shared tags. */
void
jam_fair_init(void)
{
	DefineCustomEnumVariable("jam.scheduling",
							 "How the next package is chosen when no service is named: fair or fifo.",
							 "fair: weighted fair queuing across services by weight_hint and share; "
							 "fifo: the oldest pending package of any service.",
							 &jam_scheduling, JAM_SCHEDULING_FAIR, scheduling_options,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = fair_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = fair_shmem_startup;
}

/* Without preloading, the tags are the backend's own. */
static void
ensure_tags(void)
{
	HASHCTL		ctl;

	if (fair_tags != NULL)
		return;
	ctl.keysize = sizeof(FairKey);
	ctl.entrysize = sizeof(FairEntry);
	ctl.hcxt = TopMemoryContext;
	fair_tags = hash_create("jam fair scheduling tags (local)", 256, &ctl,
							HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

static void
lock_tags(LWLockMode mode)
{
	if (fair_lock)
		LWLockAcquire(fair_lock, mode);
}

static void
unlock_tags(void)
{
	if (fair_lock)
		LWLockRelease(fair_lock);
}

static void
make_key(const char *service_id, FairKey *key)
{
	memset(key, 0, sizeof(*key));
	key->database = MyDatabaseId;
	strlcpy(key->service_id, service_id, sizeof(key->service_id));
}

/* The tag under service_id (CLOCK_KEY: the clock), or absent when there is none.  Lock held. */
static double
tag_of(const char *service_id, double absent)
{
	FairKey		key;
	FairEntry  *e;

	make_key(service_id, &key);
	e = hash_search(fair_tags, &key, HASH_FIND, NULL);
	return e ? e->tag : absent;
}

/*
 * Drops this database's service entries at or behind the clock: their
 * start would be V anyway, so they carry nothing.  Lock held exclusively.
 */
static void
forget_caught_up(double clock)
{
	HASH_SEQ_STATUS seq;
	FairEntry  *e;

	hash_seq_init(&seq, fair_tags);
	while ((e = hash_seq_search(&seq)) != NULL)
		if (e->key.database == MyDatabaseId && e->key.service_id[0] != '\0' && e->tag <= clock)
			hash_search(fair_tags, &e->key, HASH_REMOVE, NULL);
}

/* Sets the tag under service_id; a full table first forgets what it can, then drops the tag. */
static void
set_tag(const char *service_id, double tag, double clock)
{
	FairKey		key;
	FairEntry  *e;

	make_key(service_id, &key);
	e = hash_search(fair_tags, &key, HASH_ENTER_NULL, NULL);
	if (e == NULL)
	{
		forget_caught_up(clock);
		e = hash_search(fair_tags, &key, HASH_ENTER_NULL, NULL);
	}
	if (e != NULL)
		e->tag = tag;
}

/*
 * Charges a package of cost weight to service_id (share share): the clock
 * moves to the package's start tag, the service's finish tag past it.
 */
static void
charge_package(const char *service_id, int32 share, int32 weight)
{
	double		clock;
	double		start;

	lock_tags(LW_EXCLUSIVE);
	clock = tag_of(CLOCK_KEY, 0.0);
	start = Max(tag_of(service_id, clock), clock);
	set_tag(CLOCK_KEY, start, start);
	set_tag(service_id, start + (double) weight / (double) Max(share, 1), start);
	unlock_tags();
}

static void
forget_share_column(Datum arg, Oid relid)
{
	has_share = -1;
}

static void
fair_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (bump_at_commit && backlog_epoch != NULL)
				pg_atomic_fetch_add_u64(backlog_epoch, 1);
			bump_at_commit = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			/* The list may hold what the transaction wrote and undid. */
			backlog_valid = false;
			bump_at_commit = false;
			break;
		case XACT_EVENT_PREPARE:
			/* Visible only at COMMIT PREPARED: left to FAIR_REFRESH_CLAIMS. */
			bump_at_commit = false;
			break;
		default:
			break;
	}
}

/*
 * Records that this transaction gave a service its first pending package
 * or changed a share: this backend's list is out of date now, and every
 * other backend's once the transaction commits.
 */
void
jam_fair_backlog_changed(void)
{
	if (!xact_callback_registered)
	{
		RegisterXactCallback(fair_xact_callback, NULL);
		xact_callback_registered = true;
	}
	backlog_valid = false;
	bump_at_commit = true;
}

/* Whether jam_services has the share column that 1.2 adds. */
bool
jam_services_have_share(void)
{
	if (has_share < 0)
	{
		Oid			ns = get_namespace_oid("jam", true);
		Oid			rel = OidIsValid(ns) ? get_relname_relid("jam_services", ns) : InvalidOid;

		if (!share_callback_registered)
		{
			CacheRegisterRelcacheCallback(forget_share_column, (Datum) 0);
			share_callback_registered = true;
		}
		has_share = OidIsValid(rel) && get_attnum(rel, "share") != InvalidAttrNumber;
	}
	return has_share == 1;
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * The service ids a token may see, sorted, so that each backlogged service
 * is looked up in log time: a tenant may hold thousands of services.
 */
static char **
sorted_ids(ArrayType *visible, int *n_out)
{
	Datum	   *ids;
	char	  **names;
	int			n;

	deconstruct_array(visible, TEXTOID, -1, false, TYPALIGN_INT, &ids, NULL, &n);
	names = palloc(sizeof(char *) * Max(n, 1));
	for (int i = 0; i < n; i++)
		names[i] = TextDatumGetCString(ids[i]);
	qsort(names, n, sizeof(char *), by_name);
	*n_out = n;
	return names;
}

static bool
visible_to(const char *service_id, char **visible, int n_visible)
{
	return bsearch(&service_id, visible, n_visible, sizeof(char *), by_name) != NULL;
}

static int
by_start(const void *a, const void *b)
{
	const Candidate *x = a;
	const Candidate *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return strcmp(x->service_id, y->service_id);
}

/* Reads the backlogged services into this backend's list. Needs SPI. */
static void
read_backlog(void)
{
	bool		with_share = jam_services_have_share();
	uint64		epoch = backlog_epoch ? pg_atomic_read_u64(backlog_epoch) : 0;
	int			rows;
	MemoryContext old;

	/*
	 * The epoch first, then a snapshot of the rows taken after it (not read
	 * only: SPI then takes a new snapshot, where the calling statement's
	 * could be older than the epoch), so that a commit this read misses has
	 * bumped the epoch past the one recorded.
	 */
	pg_memory_barrier();
	rows = jam_spi_exec(with_share ? &backlogged_with_share : &backlogged_without_share,
						NULL, NULL, false, 0);
	if (backlog_cxt == NULL)
		backlog_cxt = AllocSetContextCreate(TopMemoryContext, "jam fair scheduling backlog",
											ALLOCSET_SMALL_SIZES);
	MemoryContextReset(backlog_cxt);
	old = MemoryContextSwitchTo(backlog_cxt);
	backlog = palloc(sizeof(Candidate) * Max(rows, 1));
	for (int r = 0; r < rows; r++)
	{
		bool		isnull;

		backlog[r].service_id = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1);
		backlog[r].share = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[r],
													   SPI_tuptable->tupdesc, 2, &isnull));
	}
	MemoryContextSwitchTo(old);
	n_backlog = rows;
	backlog_read_at = epoch;
	backlog_with_share = with_share;
	backlog_claims = 0;
	/*
	 * Without preloading no epoch tells of other backends' submits; under
	 * REPEATABLE READ the rows come from the transaction's snapshot, older
	 * than the epoch.  Either way the list is read again at every claim.
	 */
	backlog_valid = backlog_epoch != NULL && !IsolationUsesXactSnapshot();
}

static bool
backlog_current(void)
{
	return backlog_valid && backlog_claims < FAIR_REFRESH_CLAIMS &&
		backlog_with_share == jam_services_have_share() &&
		pg_atomic_read_u64(backlog_epoch) == backlog_read_at;
}

/*
 * The backlogged services the caller may process (visible: NULL for all),
 * start tags unset.  Needs SPI.
 */
static Candidate *
backlogged_services(ArrayType *visible, int *n_out)
{
	char	  **visible_ids = NULL;
	int			n_visible = 0;
	int			n = 0;
	Candidate  *c;

	if (visible != NULL)
		visible_ids = sorted_ids(visible, &n_visible);
	if (!backlog_current())
		read_backlog();
	backlog_claims++;
	c = palloc(sizeof(Candidate) * Max(n_backlog, 1));
	for (int i = 0; i < n_backlog; i++)
	{
		if (visible != NULL && !visible_to(backlog[i].service_id, visible_ids, n_visible))
			continue;
		c[n].service_id = pstrdup(backlog[i].service_id);
		c[n].share = backlog[i].share;
		n++;
	}
	*n_out = n;
	return c;
}

/* Those services, each with its start tag, in the order they are due.  Needs SPI. */
static Candidate *
due_services(ArrayType *visible, int *n_out)
{
	int			n;
	Candidate  *c = backlogged_services(visible, &n);
	double		clock;

	lock_tags(LW_SHARED);
	clock = tag_of(CLOCK_KEY, 0.0);
	for (int i = 0; i < n; i++)
		c[i].start = Max(tag_of(c[i].service_id, clock), clock);
	unlock_tags();
	qsort(c, n, sizeof(Candidate), by_start);
	*n_out = n;
	return c;
}

/*
 * jam.scheduling = 'fifo' for a caller limited to some services: the
 * oldest pending package of those it may see.  Walking every service's
 * queue in arrival order would step over all the packages of the services
 * it may not see (16 ms a call behind another tenant's 100,000), so each
 * of its backlogged services is asked for the arrival of its oldest
 * package instead, and they are tried in that order.
 */
static bool
claim_oldest_visible(ArrayType *visible, ClaimedPackage *pkg)
{
	int			n;
	int			n_heads = 0;
	Candidate  *c = backlogged_services(visible, &n);

	for (int i = 0; i < n; i++)
	{
		int64		head = jam_claim_peek(c[i].service_id);

		if (head >= 0)
		{
			c[n_heads] = c[i];
			c[n_heads++].start = (double) head;
		}
	}
	qsort(c, n_heads, sizeof(Candidate), by_start);
	for (int i = 0; i < n_heads; i++)
		if (jam_claim_next(c[i].service_id, pkg))
			return true;
	/* Drained, or held by others: the list is read again at the next claim. */
	backlog_valid = false;
	return false;
}

/*
 * Claims the next package when no service is named (visible: the services
 * a token limits the caller to, or NULL), in the order jam.scheduling
 * sets, and charges it to its service.  False when nothing is pending.
 * Needs SPI.
 */
bool
jam_fair_claim(ArrayType *visible, ClaimedPackage *pkg)
{
	Candidate  *due;
	int			n_due;
	int32		share = 1;

	if (jam_scheduling == JAM_SCHEDULING_FIFO)
		return visible ? claim_oldest_visible(visible, pkg) : jam_claim_next(NULL, pkg);

	ensure_tags();
	due = due_services(visible, &n_due);
	for (int i = 0; i < n_due; i++)
	{
		if (jam_claim_next(due[i].service_id, pkg))
		{
			charge_package(pkg->service_id, due[i].share, pkg->weight_hint);
			return true;
		}
		/* Drained, or held by others: the list is read again at the next claim. */
		backlog_valid = false;
	}

	/*
	 * None of them: every package is held by others, or a pending count has
	 * drifted (jam_fsck repairs it).  The oldest package of any service is
	 * taken, so that nothing is left behind; but a caller limited to some
	 * services is not sent through the queues of all the others, whose
	 * length it does not control: for it, nothing is pending.
	 */
	if (visible != NULL || !jam_claim_next(NULL, pkg))
		return false;
	for (int i = 0; i < n_due; i++)
		if (strcmp(due[i].service_id, pkg->service_id) == 0)
			share = due[i].share;
	charge_package(pkg->service_id, share, pkg->weight_hint);
	return true;
}
