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
#include "utils/builtins.h"
#include "utils/memutils.h"

/* The filters' WHERE clause of a variant: bit 0 the first filter, bit 1 the second. */
static char *
where_clause(JamList *list, int filters)
{
	/* $5: the services a token may see (NULL: all). */
	const char *visible = "($5::text[] IS NULL OR service_id = ANY($5))";

	if (filters == 0)
		return psprintf("WHERE %s", visible);
	if (filters == 1)
		return psprintf("WHERE %s = $1 AND %s", list->filter_columns[0], visible);
	if (filters == 2)
		return psprintf("WHERE %s = $2 AND %s", list->filter_columns[1], visible);
	return psprintf("WHERE %s = $1 AND %s = $2 AND %s", list->filter_columns[0],
					list->filter_columns[1], visible);
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
 */
static char *
counted_total(JamList *list, int filters)
{
	int			status_at = strcmp(list->filter_columns[0], "status") == 0 ? 0 : 1;
	int			service_at = 1 - status_at;
	const char *count = list->count_all;

	if (filters & (1 << status_at))
		count = psprintf(list->count_of_status, psprintf("$%d", status_at + 1));
	return psprintf("SELECT coalesce(sum(%s), 0)::bigint + $8 AS total FROM jam.jam_services "
					"WHERE ($5::text[] IS NULL OR service_id = ANY($5)) AND service_id <> ALL($7)%s",
					count, (filters & (1 << service_at)) ?
					psprintf(" AND service_id = $%d", service_at + 1) : "");
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
	int			status_at = strcmp(list->filter_columns[0], "status") == 0 ? 0 : 1;
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
 * One statement per combination of the two optional filters, the two ways
 * of paging (offset; keyset after $6) and the two shapes, and the envelopes
 * by offset again with their totals from the services' counts.
 */
static void
prepare_variants(JamList *list)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	for (int v = 0; v < 8; v++)
	{
		char	   *where = where_clause(list, v & 3);
		bool		keyset = (v & 4) != 0;
		char	   *page;

		if (!keyset)
		{
			page = psprintf("SELECT seq, %s AS doc FROM %s %s ORDER BY seq LIMIT $3 OFFSET $4",
							list->item_json, list->table, where);
			list->legacy[v].sql = psprintf(
				"SELECT coalesce(jsonb_agg(doc ORDER BY seq), '[]'::jsonb) FROM (%s) page", page);
			list->envelope[v].sql = psprintf(ENVELOPE_SQL, page,
											 psprintf("SELECT count(*) AS total FROM %s %s",
													  list->table, where));
			list->counted[v].sql = psprintf(ENVELOPE_SQL, page, counted_total(list, v));
		}
		else
		{
			/*
			 * One row more than the page tells whether another page follows,
			 * without counting what matches: a page costs the same wherever
			 * it is.
			 */
			page = psprintf("SELECT seq, %s || jsonb_build_object('seq', seq) AS doc FROM %s %s "
							"AND seq > $6 ORDER BY seq LIMIT $3 + 1",
							list->item_json, list->table, where);
			list->legacy[v].sql = psprintf(
				"SELECT coalesce(jsonb_agg(doc ORDER BY seq), '[]'::jsonb) "
				"FROM (SELECT * FROM (%s) p ORDER BY seq LIMIT $3) page", page);
			list->envelope[v].sql = psprintf(
				"SELECT jsonb_build_object('items', "
				"coalesce(jsonb_agg(doc ORDER BY seq) FILTER (WHERE rn <= $3), '[]'::jsonb), "
				"'limit', $3, 'after', $6, "
				"'next_after', CASE WHEN count(*) > $3 THEN max(seq) FILTER (WHERE rn <= $3) END) "
				"FROM (SELECT seq, doc, row_number() OVER (ORDER BY seq) AS rn FROM (%s) p) page",
				page);
		}

		for (int shape = 0; shape < 3; shape++)
		{
			JamStatement *stmt = shape == 0 ? &list->legacy[v] :
				shape == 1 ? &list->envelope[v] : &list->counted[v & 3];

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
	MemoryContextSwitchTo(old);
	list->prepared = true;
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
	JamStatement *stmt;
	Datum		result;

	jam_check_pagination(limit, offset);
	if (after >= 0 && offset != 0)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_PAGINATION),
				 errmsg("give after or offset, not both"),
				 errhint("after pages by the seq of the last item seen; offset by position.")));
	if (!list->prepared)
		prepare_variants(list);

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
		stmt = &list->legacy[variant];
	else if (after < 0 && jam_services_have_counts())
		stmt = &list->counted[variant];
	else
		stmt = &list->envelope[variant];

	if (stmt == &list->counted[variant])
		unwritten_count = unwritten_total(list, filters, visible, &unwritten);
	values[6] = PointerGetDatum(unwritten);
	nulls[6] = unwritten ? ' ' : 'n';
	values[7] = Int64GetDatum(unwritten_count);

	SPI_connect();
	jam_spi_exec(stmt, values, nulls, true, 1);
	result = jam_spi_copy_jsonb(1);
	SPI_finish();
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
