/*
 * check_cache.c: the CHECK constraints of jam's tables, parsed once per
 * backend instead of at every statement.
 *
 * PostgreSQL keeps a table's CHECK constraints in the relation cache as
 * the text of their expression trees (ccbin), and its executor parses that
 * text again (stringToNode) in every statement that writes the table, when
 * the statement checks its first row.  jam's functions run a few short
 * statements per call, so those parses cost a processed package 96,000 of
 * its 1.6 million instructions (five tables with one check each, 24
 * instructions a character of text).
 *
 * An ExecutorStart hook therefore fills in the check expressions of each
 * table in jam's schema that a statement inserts into or updates, from
 * parse trees kept here.  A tree is keyed by its table and used only while
 * the table's current ccbin text is the one it was parsed from; that text
 * names every function, operator and type by OID, so the same text is the
 * same tree, and any ALTER TABLE that changes a check changes the text.
 * Each statement still plans and compiles a copy of the tree
 * (ExecPrepareExpr, as the executor does), so a SQL function inlined into
 * a check is read as it is now.  Other schemas' tables are left to the
 * executor.
 */
#include "jam.h"

#include "catalog/namespace.h"
#include "executor/executor.h"
#include "nodes/execnodes.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"

/* More tables than jam has: past this, the cache starts again (tables dropped and made anew). */
#define CHECK_CACHE_MAX_TABLES 64

typedef struct CachedChecks
{
	Oid			relid;			/* the hash key */
	int			ncheck;
	char	  **ccbin;			/* the text each tree was parsed from */
	Node	  **trees;
	MemoryContext cxt;			/* holds ccbin and trees */
} CachedChecks;

static ExecutorStart_hook_type prev_executor_start = NULL;
static MemoryContext cache_cxt = NULL;
static HTAB *cache = NULL;
static Oid	jam_namespace = InvalidOid;
static bool jam_namespace_known = false;

/* jam's schema may have gone or come (CREATE or DROP EXTENSION): read its OID again. */
static void
forget_namespace(Datum arg, int cacheid, uint32 hashvalue)
{
	jam_namespace_known = false;
}

static Oid
jam_schema(void)
{
	if (!jam_namespace_known)
	{
		jam_namespace = get_namespace_oid("jam", true);
		jam_namespace_known = true;
	}
	return jam_namespace;
}

static void
reset_cache(void)
{
	HASHCTL		ctl;

	if (cache_cxt == NULL)
		cache_cxt = AllocSetContextCreate(CacheMemoryContext, "jam check cache", ALLOCSET_SMALL_SIZES);
	else
	{
		MemoryContextReset(cache_cxt);
		cache = NULL;
	}
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(CachedChecks);
	ctl.hcxt = cache_cxt;
	cache = hash_create("jam check cache", 16, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/* Whether entry holds the trees of exactly these checks. */
static bool
matches(const CachedChecks *entry, const TupleConstr *constr)
{
	if (entry->ncheck != constr->num_check)
		return false;
	for (int i = 0; i < entry->ncheck; i++)
		if (strcmp(entry->ccbin[i], constr->check[i].ccbin) != 0)
			return false;
	return true;
}

/* The parse trees of rel's checks, parsed now if the cache lacks them or holds older ones. */
static CachedChecks *
checks_of(Relation rel)
{
	const TupleConstr *constr = rel->rd_att->constr;
	Oid			relid = RelationGetRelid(rel);
	CachedChecks *entry;
	MemoryContext cxt;
	MemoryContext old;
	char	  **ccbin;
	Node	  **trees;

	if (cache == NULL || hash_get_num_entries(cache) >= CHECK_CACHE_MAX_TABLES)
		reset_cache();
	entry = hash_search(cache, &relid, HASH_FIND, NULL);
	if (entry != NULL && matches(entry, constr))
		return entry;

	/* Parsed whole before it enters the cache, so that an error leaves no half entry. */
	cxt = AllocSetContextCreate(cache_cxt, "jam checks of a table", ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	ccbin = palloc(sizeof(char *) * constr->num_check);
	trees = palloc(sizeof(Node *) * constr->num_check);
	for (int i = 0; i < constr->num_check; i++)
	{
		ccbin[i] = pstrdup(constr->check[i].ccbin);
		trees[i] = stringToNode(ccbin[i]);
	}
	MemoryContextSwitchTo(old);

	if (entry != NULL)
		MemoryContextDelete(entry->cxt);
	entry = hash_search(cache, &relid, HASH_ENTER, NULL);
	entry->ncheck = constr->num_check;
	entry->ccbin = ccbin;
	entry->trees = trees;
	entry->cxt = cxt;
	return entry;
}

/*
 * Gives each result relation of estate in jam's schema its check
 * expressions, as ExecRelCheck would build them at the first row.
 */
static void
fill_checks(EState *estate)
{
	Oid			schema = InvalidOid;
	ListCell   *lc;

	foreach(lc, estate->es_opened_result_relations)
	{
		ResultRelInfo *rri = lfirst(lc);
		Relation	rel = rri->ri_RelationDesc;
		const TupleConstr *constr = rel->rd_att->constr;
		CachedChecks *entry;
		ExprState **exprs;
		MemoryContext old;

		if (constr == NULL || constr->num_check == 0 || rri->ri_ConstraintExprs != NULL ||
			constr->num_check != rel->rd_rel->relchecks)
			continue;			/* nothing to check, already built, or the executor's error to raise */
		if (!OidIsValid(schema))
			schema = jam_schema();
		if (!OidIsValid(schema) || RelationGetNamespace(rel) != schema)
			continue;

		entry = checks_of(rel);
		old = MemoryContextSwitchTo(estate->es_query_cxt);
		exprs = palloc(sizeof(ExprState *) * entry->ncheck);

		/*
		 * Compiled from a copy, so that nothing of the statement points into
		 * the cache, which a statement run inside this one may start again.
		 */
		for (int i = 0; i < entry->ncheck; i++)
		{
			Expr	   *tree = (Expr *) copyObjectImpl(entry->trees[i]);

			exprs[i] = ExecPrepareExpr(tree, estate);
		}
		MemoryContextSwitchTo(old);
		rri->ri_ConstraintExprs = exprs;
	}
}

static void
check_cache_executor_start(QueryDesc *queryDesc, int eflags)
{
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
	/* A DELETE checks no row; EXPLAIN without ANALYZE runs nothing. */
	if (queryDesc->operation != CMD_DELETE && !(eflags & EXEC_FLAG_EXPLAIN_ONLY) &&
		queryDesc->estate->es_opened_result_relations != NIL)
		fill_checks(queryDesc->estate);
}

void
jam_check_cache_init(void)
{
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = check_cache_executor_start;
	CacheRegisterSyscacheCallback(NAMESPACEOID, forget_namespace, (Datum) 0);
}
