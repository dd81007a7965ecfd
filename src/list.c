/*
 * list.c: paginated listing shared by jam_list_packages and
 * jam_list_reports.
 *
 * A list is an envelope {items, limit, offset, total, next_offset}, where
 * next_offset is the offset of the next page or null on the last page; with
 * jam.legacy_list_response it is the plain items array.  Items are in
 * arrival order (seq), so that a client paging forward while new items
 * arrive sees each item once.  A token sees the rows of its services only.
 */
#include "jam.h"

#include "catalog/pg_type.h"
#include "utils/memutils.h"

/* One statement per combination of the two optional filters and the two shapes. */
static void
prepare_variants(JamList *list)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	for (int v = 0; v < 4; v++)
	{
		const char *where;
		const char *page;

		/* $5: the services a token may see (NULL: all). */
		if (v == 0)
			where = "WHERE ($5::text[] IS NULL OR service_id = ANY($5))";
		else if (v == 1)
			where = psprintf("WHERE %s = $1 AND ($5::text[] IS NULL OR service_id = ANY($5))",
							 list->filter_columns[0]);
		else if (v == 2)
			where = psprintf("WHERE %s = $2 AND ($5::text[] IS NULL OR service_id = ANY($5))",
							 list->filter_columns[1]);
		else
			where = psprintf("WHERE %s = $1 AND %s = $2 AND ($5::text[] IS NULL OR service_id = ANY($5))",
							 list->filter_columns[0], list->filter_columns[1]);

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

		for (int shape = 0; shape < 2; shape++)
		{
			JamStatement *stmt = shape == 0 ? &list->legacy[v] : &list->envelope[v];

			stmt->nargs = 5;
			stmt->argtypes[0] = TEXTOID;
			stmt->argtypes[1] = TEXTOID;
			stmt->argtypes[2] = INT4OID;
			stmt->argtypes[3] = INT4OID;
			stmt->argtypes[4] = TEXTARRAYOID;
		}
	}
	MemoryContextSwitchTo(old);
	list->prepared = true;
}

/*
 * Lists list->table filtered on list->filter_columns by filters[0] and
 * filters[1] (NULL: no filter on that column), showing only rows of the
 * services in visible (NULL: every service).
 */
Datum
jam_list(JamList *list, text *filters[2], ArrayType *visible, int32 limit, int32 offset)
{
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	int			variant = (filters[0] ? 1 : 0) | (filters[1] ? 2 : 0);
	JamStatement *stmt;
	Datum		result;

	jam_check_pagination(limit, offset);
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
	stmt = jam_legacy_list_response ? &list->legacy[variant] : &list->envelope[variant];

	SPI_connect();
	jam_spi_exec(stmt, values, nulls, true, 1);
	result = jam_spi_copy_jsonb(1);
	SPI_finish();
	return result;
}
