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
 * walks every row before it and the envelope's total counts every match.
 */
#include "jam.h"
#include "errors.h"

#include "catalog/pg_type.h"
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

/*
 * One statement per combination of the two optional filters, the two ways
 * of paging (offset; keyset after $6) and the two shapes.
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
			list->envelope[v].sql = psprintf(
				"WITH page AS (%s), "
				"shown AS (SELECT count(*) AS n, coalesce(jsonb_agg(doc ORDER BY seq), '[]'::jsonb) AS items FROM page), "
				"matching AS (SELECT count(*) AS total FROM %s %s) "
				"SELECT jsonb_build_object('items', items, 'limit', $3, 'offset', $4, 'total', total, "
				"'next_offset', CASE WHEN $4 + n < total THEN $4 + n END) FROM shown, matching",
				page, list->table, where);
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

		for (int shape = 0; shape < 2; shape++)
		{
			JamStatement *stmt = shape == 0 ? &list->legacy[v] : &list->envelope[v];

			stmt->nargs = 6;
			stmt->argtypes[0] = TEXTOID;
			stmt->argtypes[1] = TEXTOID;
			stmt->argtypes[2] = INT4OID;
			stmt->argtypes[3] = INT4OID;
			stmt->argtypes[4] = TEXTARRAYOID;
			stmt->argtypes[5] = INT8OID;
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
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
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
	stmt = jam_legacy_list_response ? &list->legacy[variant] : &list->envelope[variant];

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
