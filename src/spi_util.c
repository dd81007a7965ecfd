/*
 * spi_util.c: running jam's fixed SQL statements through SPI.
 *
 * Every statement jam runs is a constant string with parameters; it is
 * prepared on first use and the plan is kept for the backend's lifetime, so
 * a hot path such as a submit pays for planning once.
 */
#include "jam.h"

#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/jsonb.h"

/*
 * What each marker becomes in the compact catalog (hashes stored as bytea)
 * and in the hex one (1.0's 64-character text), %s standing for its
 * argument; NULL: the argument itself, in parentheses.
 */
static const struct
{
	const char *marker;
	const char *compact;
	const char *hex;
}			markers[] = {
	{"@c(", "%s", ""},
	{"@ha(", "jam.jam_unhex_array(%s)", NULL},
	{"@xa(", "jam.jam_hex_array(%s)", NULL},
	{"@h(", "decode(%s, 'hex')", NULL},
	{"@x(", "encode(%s, 'hex')", NULL},
	{"@b(", NULL, "encode(%s, 'hex')"},
};

/* The position of the parenthesis that closes the one before s, skipping quoted text. */
static const char *
closing_paren(const char *s)
{
	int			depth = 1;
	bool		quoted = false;

	for (; *s; s++)
	{
		if (*s == '\'')
			quoted = !quoted;
		else if (!quoted && *s == '(')
			depth++;
		else if (!quoted && *s == ')' && --depth == 0)
			return s;
	}
	elog(ERROR, "jam statement has an unbalanced marker");
	return NULL;
}

/* Expands the hash markers of sql (see jam.h) for a catalog.  Markers may nest. */
char *
jam_sql_for_catalog(const char *sql, JamCatalog catalog)
{
	StringInfoData out;
	const char *p = sql;

	initStringInfo(&out);
	while (*p)
	{
		int			m = -1;

		if (*p == '@')
			for (int i = 0; i < lengthof(markers) && m < 0; i++)
				if (strncmp(p, markers[i].marker, strlen(markers[i].marker)) == 0)
					m = i;
		if (m < 0)
		{
			appendStringInfoChar(&out, *p++);
			continue;
		}
		{
			const char *arg = p + strlen(markers[m].marker);
			const char *end = closing_paren(arg);
			char	   *inner = jam_sql_for_catalog(pnstrdup(arg, end - arg), catalog);
			const char *form = catalog == JAM_CATALOG_COMPACT ? markers[m].compact : markers[m].hex;

			appendStringInfo(&out, form ? form : "(%s)", inner);
			p = end + 1;
		}
	}
	return out.data;
}

/*
 * Sets parameter k (values[k], nulls[k]) to a column of n rows whose
 * elements are elems[0..n), isnull[i] telling which are NULL (isnull NULL:
 * none is): with one row, the element itself, for a statement that writes
 * VALUES; with more, an array of them, for one that reads FROM unnest().
 * A statement over unnest() sets up a function scan per array at every
 * execution, and a processed package's statements unnest 27 arrays: a
 * tenth of its work, which one row does not need.
 */
void
jam_spi_column(Datum *values, char *nulls, int k, Datum *elems, bool *isnull, int n, Oid elemtype)
{
	int			dims[1] = {n};
	int			lbs[1] = {1};
	int16		typlen;
	bool		typbyval;
	char		typalign;

	if (n == 1)
	{
		values[k] = elems[0];
		nulls[k] = isnull != NULL && isnull[0] ? 'n' : ' ';
		return;
	}
	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	values[k] = PointerGetDatum(construct_md_array(elems, isnull, 1, dims, lbs, elemtype, typlen, typbyval,
												   typalign));
	nulls[k] = ' ';
}

/*
 * Executes stmt with the given parameters (nulls as SPI expects: ' ' or 'n')
 * and returns the number of rows processed.  The caller must be connected
 * to SPI.
 */
int
jam_spi_exec(JamStatement *stmt, Datum *values, const char *nulls,
			 bool read_only, long count)
{
	int			rc;
	JamCatalog	catalog = jam_catalog();

	if (stmt->plan[catalog] == NULL)
	{
		/*
		 * A statement over arrays of parameters (unnest($n)) gets a generic
		 * plan: a custom plan knows the arrays' lengths, so its estimate is
		 * always the cheaper one, and the plan cache would plan the
		 * statement again at every call (a tenth of a single process call).
		 */
		int			options = stmt->plan_options != 0 ? stmt->plan_options :
			strstr(stmt->sql, "unnest($") ? CURSOR_OPT_GENERIC_PLAN : 0;
		SPIPlanPtr	plan = SPI_prepare_cursor(jam_sql_for_catalog(stmt->sql, catalog),
											  stmt->nargs, stmt->argtypes, options);

		if (plan == NULL)
			elog(ERROR, "jam could not prepare a statement: %s",
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "jam could not keep a prepared statement");
		stmt->plan[catalog] = plan;
	}

	rc = SPI_execute_plan(stmt->plan[catalog], values, nulls, read_only, count);
	if (rc < 0)
		elog(ERROR, "jam statement failed: %s", SPI_result_code_string(rc));
	return (int) SPI_processed;
}

/* Column (1-based) of the first result row. */
Datum
jam_spi_result_datum(int column, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, column, isnull);
}

/*
 * Copies a jsonb column of the first result row out of SPI's memory into
 * the caller's context, so that it survives SPI_finish().
 */
Datum
jam_spi_copy_jsonb(int column)
{
	bool		isnull;
	Datum		d = jam_spi_result_datum(column, &isnull);

	if (isnull)
		elog(ERROR, "jam statement returned a null document");
	return SPI_datumTransfer(d, false, -1);
}
