/*
 * list.c: paginated listing shared by jam_list_packages and
 * jam_list_reports.
 *
 * A list is an envelope {items, limit, offset, total, next_offset}, where
 * next_offset is the offset of the next page or null on the last page; with
 * jam.legacy_list_response it is the plain items array.  Items are in
 * arrival order (seq), so that a client paging forward while new items
 * arrive sees each item once.  A token sees the rows of its services only.
 *
 * Keyset paging (after = the seq of the last item seen) returns {items,
 * limit, after, next_after} and costs the same on any page, where an offset
 * walks every row before it.  The envelope's total is read from the counts
 * each service row keeps (1.5), at the cost of one row per service; before
 * 1.5 it counts every match.
 */
#include "jam.h"
#include "errors.h"
#include "xact_rows.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"

/* Which of the two filters is the status (0 or 1); the other is the service. */
static int
status_filter(JamList *list)
{
	return strcmp(list->filter_columns[0], "status") == 0 ? 0 : 1;
}

/*
 * What filter i (0 or 1) equals in a statement: the service is its
 * parameter ($1 or $2); the status is the constant list->statuses[status],
 * so that the plan can use an index whose predicate names that status.
 */
static char *
filter_value(JamList *list, int i, int status)
{
	if (i == status_filter(list))
		return quote_literal_cstr(list->statuses[status]);
	return psprintf("$%d", i + 1);
}

/*
 * The filters' WHERE clause of a variant: bit 0 the first filter, bit 1 the
 * second.  The service is bounded by ">= and <=" (the same rows as "="),
 * for page_sql's order.
 */
static char *
where_clause(JamList *list, int filters, int status)
{
	/* $5: the services a token may see (NULL: all). */
	const char *visible = "($5::text[] IS NULL OR service_id = ANY($5))";
	char	   *where = pstrdup("WHERE");

	for (int i = 0; i < 2; i++)
	{
		char	   *value = filter_value(list, i, status);

		if (!(filters & (1 << i)))
			continue;
		if (i == status_filter(list))
			where = psprintf("%s status = %s AND", where, value);
		else
			where = psprintf("%s service_id >= %s AND service_id <= %s AND", where, value, value);
	}
	return psprintf("%s %s", where, visible);
}

/* The envelope of a page by offset: its items, and the total of what matches (%s). */
#define ENVELOPE_SQL \
	"WITH page AS (%s), " \
	"shown AS (SELECT count(*) AS n, coalesce(jsonb_agg(doc ORDER BY seq), '[]'::jsonb) AS items FROM page), " \
	"matching AS (%s) " \
	"SELECT jsonb_build_object('items', items, 'limit', $3, 'offset', $4, 'total', total, " \
	"'next_offset', CASE WHEN $4 + n < total THEN $4 + n END) FROM shown, matching"

/*
 * The total of a filter variant read from the counts each service row
 * keeps (1.5): one row per matching service, whatever the history.  The
 * counts change in the transactions that change the rows they count, so in
 * the statement's snapshot they agree with the page.  The rows this
 * transaction changed but has not written yet ($7) are counted from their
 * copies in memory ($8) instead: writing them first would leave a row
 * version per list call, which later reads of the table would step over.
 * A token's page merged service by service (bit 3) is a statement over the
 * array of its services, which gets a generic plan (jam_spi_exec), where
 * "service_id = ANY($5)" beside "$5 IS NULL" can use no index: its total
 * reads each of the services' rows by id instead (LIMIT 1, as the id is
 * unique, also keeps the planner from turning the probes into a hash join
 * over every service).
 */
static char *
counted_total(JamList *list, int filters, int status)
{
	int			status_at = status_filter(list);
	int			service_at = 1 - status_at;
	const char *count = list->count_all;

	if (filters & (1 << status_at))
		count = psprintf(list->count_of_status, filter_value(list, status_at, status));
	if (filters & 8)
		return psprintf("SELECT coalesce(sum(n), 0)::bigint + $8 AS total "
						"FROM (SELECT DISTINCT unnest($5::text[])) AS visible(visible_service) "
						"CROSS JOIN LATERAL (SELECT %s AS n FROM jam.jam_services "
						"WHERE service_id = visible.visible_service AND service_id <> ALL($7) LIMIT 1) AS c",
						count);
	return psprintf("SELECT coalesce(sum(%s), 0)::bigint + $8 AS total FROM jam.jam_services "
					"WHERE ($5::text[] IS NULL OR service_id = ANY($5)) AND service_id <> ALL($7)%s",
					count, (filters & (1 << service_at)) ?
					psprintf(" AND service_id = $%d", service_at + 1) : "");
}

/*
 * Whether a page without a service filter, for a token that sees the
 * services in visible (NULL: all), is merged service by service (page_sql).
 */
bool
jam_list_merges_per_service(ArrayType *visible)
{
	return visible != NULL &&
		ArrayGetNItems(ARR_NDIM(visible), ARR_DIMS(visible)) <= JAM_LIST_PER_SERVICE_MAX;
}

/* Whether service_id is among the services of visible (a text[]; NULL: all). */
static bool
is_visible(const char *service_id, ArrayType *visible)
{
	Datum	   *ids;
	int			n;

	if (visible == NULL)
		return true;
	deconstruct_array(visible, TEXTOID, -1, false, TYPALIGN_INT, &ids, NULL, &n);
	for (int i = 0; i < n; i++)
		if (strcmp(TextDatumGetCString(ids[i]), service_id) == 0)
			return true;
	return false;
}

/*
 * The services whose rows this transaction changed but has not written
 * (into *ids, a text[]), and what their copies count of the list's rows
 * under the filters (the return value).
 */
static int64
unwritten_total(JamList *list, text *filters[2], ArrayType *visible, ArrayType **ids)
{
	int			status_at = status_filter(list);
	char	   *status = filters[status_at] ? text_to_cstring(filters[status_at]) : NULL;
	char	   *service = filters[1 - status_at] ? text_to_cstring(filters[1 - status_at]) : NULL;
	int			n;
	JamService **copies = jam_xact_unwritten_services(&n);
	Datum	   *names = palloc(sizeof(Datum) * Max(n, 1));
	int64		total = 0;

	int			n_names = 0;

	for (int i = 0; i < n; i++)
	{
		/* A copy read before the update added the counts has none: its row has them. */
		if (!copies[i]->counted)
			continue;
		names[n_names++] = CStringGetTextDatum(copies[i]->service_id);
		if ((service == NULL || strcmp(service, copies[i]->service_id) == 0) &&
			is_visible(copies[i]->service_id, visible))
			total += list->count_in_copy(copies[i], status);
	}
	*ids = construct_array(names, n_names, TEXTOID, -1, false, TYPALIGN_INT);
	return total;
}

/*
 * The page of a variant: its rows' seq and documents, by offset ($3 rows
 * after $4) or after seq $6 (one row more than the page, which tells
 * whether another follows without counting what matches).
 *
 * A token's page without a service filter (bit 3) is merged from each of
 * its services' own rows, walked in seq order through the (service_id,
 * seq) index, at most a page of each.  Filtering every row by
 * "service_id = ANY(its services)" instead made the planner choose between
 * walking all services' rows in seq order, skipping other tenants' history,
 * and sorting all of the token's own: a tenant's first page took 20 ms
 * with 100,000 packages of its own behind 200,000 of another tenant, 0.3 ms
 * with 5.  (Limit and offset add up as bigint: an offset near the largest
 * integer is an empty page, not an overflow.)  Merging costs a page per
 * service, so it is used for tokens of at
 * most JAM_LIST_PER_SERVICE_MAX services.  Each service's walk bounds
 * service_id by ">= and <=" (the same rows as "=") and orders by
 * (service_id, seq): with "=", the planner drops the service from the
 * order and may walk every service's rows in seq order, filtering.
 *
 * A page of one service is bounded and ordered the same way.  With "=" and
 * a status, the planner, taking the two filters for independent, expected
 * a quarter of all rows to match and walked all of them in seq order to
 * find one service's 20 failed packages among 400,000 (60 ms); ordered by
 * (service_id, seq), only the indexes on (service_id, seq) serve the order
 * without a sort, among them the partial ones of the pending and the
 * failed rows (1.7), whose predicate the status constant matches.
 */
static char *
page_sql(JamList *list, int v, int status)
{
	bool		keyset = (v & 4) != 0;
	const char *doc = keyset ?
		psprintf("%s || jsonb_build_object('seq', seq)", list->item_json) : list->item_json;
	const char *after = keyset ? " AND seq > $6" : "";
	const char *limit = keyset ? "$3 + 1" : "$3 OFFSET $4";
	int			status_at = status_filter(list);
	const char *order = (v & (1 << (1 - status_at))) ? "service_id, seq" : "seq";

	if (v & 8)
		return psprintf("SELECT seq, %s AS doc "
						"FROM (SELECT DISTINCT unnest($5::text[])) AS visible(visible_service) "
						"CROSS JOIN LATERAL (SELECT * FROM %s WHERE service_id >= visible.visible_service "
						"AND service_id <= visible.visible_service%s%s "
						"ORDER BY service_id, seq LIMIT %s) AS rows ORDER BY seq LIMIT %s",
						doc, list->table,
						(v & (1 << status_at)) ?
						psprintf(" AND status = %s", filter_value(list, status_at, status)) : "",
						after, keyset ? "$3 + 1" : "$3::bigint + $4", limit);
	if (keyset)
		return psprintf("SELECT seq, %s AS doc FROM %s %s%s ORDER BY %s LIMIT %s",
						doc, list->table, where_clause(list, v & 3, status), after, order, limit);
	return psprintf("SELECT seq, %s AS doc FROM %s %s ORDER BY %s LIMIT %s",
					doc, list->table, where_clause(list, v & 3, status), order, limit);
}

/*
 * One statement per variant: bits 0 and 1 the two optional filters, bit 2
 * keyset paging (after $6) rather than offset, bit 3 a token's page merged
 * service by service (page_sql); with the status filter, one per status,
 * which the statement names as a constant (filter_value); and per shape:
 * the legacy array, the envelope, and (by offset) the envelope with its
 * total from the services' counts.
 */
/* A statement's text, kept for the backend's life; the pieces it was built from are not. */
static char *
kept(char *sql)
{
	return MemoryContextStrdup(TopMemoryContext, sql);
}

static void
prepare_variant(JamList *list, int v, int status)
{
	bool		keyset = (v & 4) != 0;
	char	   *page = page_sql(list, v, status);
	JamStatement *shapes[3] = {&list->legacy[v][status], &list->envelope[v][status],
	&list->counted[v][status]};

	if (!keyset)
	{
		shapes[0]->sql = kept(psprintf(
			"SELECT coalesce(jsonb_agg(doc ORDER BY seq), '[]'::jsonb) FROM (%s) page", page));
		shapes[1]->sql = kept(psprintf(ENVELOPE_SQL, page,
									   psprintf("SELECT count(*) AS total FROM %s %s", list->table,
												where_clause(list, v & 3, status))));
		shapes[2]->sql = kept(psprintf(ENVELOPE_SQL, page, counted_total(list, v & 11, status)));
	}
	else
	{
		shapes[0]->sql = kept(psprintf(
			"SELECT coalesce(jsonb_agg(doc ORDER BY seq), '[]'::jsonb) "
			"FROM (SELECT * FROM (%s) p ORDER BY seq LIMIT $3) page", page));
		shapes[1]->sql = kept(psprintf(
			"SELECT jsonb_build_object('items', "
			"coalesce(jsonb_agg(doc ORDER BY seq) FILTER (WHERE rn <= $3), '[]'::jsonb), "
			"'limit', $3, 'after', $6, "
			"'next_after', CASE WHEN count(*) > $3 THEN max(seq) FILTER (WHERE rn <= $3) END) "
			"FROM (SELECT seq, doc, row_number() OVER (ORDER BY seq) AS rn FROM (%s) p) page",
			page));
	}

	for (int shape = 0; shape < 3; shape++)
	{
		JamStatement *stmt = shapes[shape];

		stmt->nargs = 8;
		stmt->argtypes[0] = TEXTOID;
		stmt->argtypes[1] = TEXTOID;
		stmt->argtypes[2] = INT4OID;
		stmt->argtypes[3] = INT4OID;
		stmt->argtypes[4] = TEXTARRAYOID;
		stmt->argtypes[5] = INT8OID;
		stmt->argtypes[6] = TEXTARRAYOID;
		stmt->argtypes[7] = INT8OID;
	}
}

static void
prepare_variants(JamList *list)
{
	MemoryContext pieces = AllocSetContextCreate(CurrentMemoryContext, "jam list statements",
												 ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(pieces);
	int			statuses = 0;

	while (list->statuses[statuses] != NULL)
		statuses++;
	Assert(statuses <= JAM_LIST_STATUSES_MAX);
	for (int v = 0; v < 16; v++)
		for (int status = 0; status < ((v & (1 << status_filter(list))) ? statuses : 1); status++)
			prepare_variant(list, v, status);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(pieces);
	list->prepared = true;
}

/* The place of the status filter's value in list->statuses (0 when not filtered). */
static int
status_index(JamList *list, text *status)
{
	char	   *value;

	if (status == NULL)
		return 0;
	value = text_to_cstring(status);
	for (int i = 0; list->statuses[i] != NULL; i++)
		if (strcmp(list->statuses[i], value) == 0)
			return i;
	/* The callers check the filter against the same statuses first. */
	elog(ERROR, "unexpected status filter \"%s\"", value);
	return 0;
}

/*
 * Lists list->table filtered on list->filter_columns by filters[0] and
 * filters[1] (NULL: no filter on that column), showing only rows of the
 * services in visible (NULL: every service): by offset, or after the item
 * whose seq is after when after >= 0.
 */
Datum
jam_list(JamList *list, text *filters[2], ArrayType *visible, int32 limit, int32 offset,
		 int64 after)
{
	Datum		values[8];
	char		nulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	ArrayType  *unwritten = NULL;
	int64		unwritten_count = 0;
	int			variant = (filters[0] ? 1 : 0) | (filters[1] ? 2 : 0) | (after >= 0 ? 4 : 0);
	int			status;
	JamStatement *stmt;
	Datum		result;
	int			nest;

	jam_check_pagination(limit, offset);
	if (after >= 0 && offset != 0)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_PAGINATION),
				 errmsg("give after or offset, not both"),
				 errhint("after pages by the seq of the last item seen; offset by position.")));
	if (!list->prepared)
		prepare_variants(list);
	if (filters[1 - status_filter(list)] == NULL && jam_list_merges_per_service(visible))
		variant |= 8;
	status = status_index(list, filters[status_filter(list)]);

	for (int i = 0; i < 2; i++)
	{
		values[i] = filters[i] ? PointerGetDatum(filters[i]) : (Datum) 0;
		nulls[i] = filters[i] ? ' ' : 'n';
	}
	values[2] = Int32GetDatum(limit);
	values[3] = Int32GetDatum(offset);
	values[4] = PointerGetDatum(visible);
	if (visible == NULL)
		nulls[4] = 'n';
	values[5] = Int64GetDatum(after);
	if (jam_legacy_list_response)
		stmt = &list->legacy[variant][status];
	else if (after < 0 && jam_services_have_counts())
		stmt = &list->counted[variant][status];
	else
		stmt = &list->envelope[variant][status];

	if (stmt == &list->counted[variant][status])
		unwritten_count = unwritten_total(list, filters, visible, &unwritten);
	values[6] = PointerGetDatum(unwritten);
	nulls[6] = unwritten ? ' ' : 'n';
	values[7] = Int64GetDatum(unwritten_count);

	/*
	 * Planned without bitmap scans: they give no order, so a page read
	 * through one fetches every match before sorting.  A generic plan
	 * estimates "service_id >= $2 AND service_id <= $2" at 0.5% of the
	 * rows, and so chose to AND the bitmaps of the status's and the
	 * service's indexes for a service's 5 pending packages, reading all of
	 * the service's index entries, rather than the partial index of its
	 * pending ones.  The setting is undone when the statement returns.
	 */
	nest = NewGUCNestLevel();
	(void) set_config_option("enable_bitmapscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	SPI_connect();
	jam_spi_exec(stmt, values, nulls, true, 1);
	result = jam_spi_copy_jsonb(1);
	SPI_finish();
	AtEOXact_GUC(true, nest);
	return result;
}

/*
 * The "after" argument of a list function (its fifth, absent from a 1.0
 * catalog's four-argument form): -1 when not given.
 */
int64
jam_list_after(FunctionCallInfo fcinfo)
{
	int64		after;

	if (PG_NARGS() < 5 || PG_ARGISNULL(4))
		return -1;
	after = PG_GETARG_INT64(4);
	if (after < 0)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_PAGINATION),
				 errmsg("after must not be negative"),
				 errdetail("The after given was " INT64_FORMAT ".", after)));
	return after;
}
