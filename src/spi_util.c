/*
 * spi_util.c: running jam's fixed SQL statements through SPI.
 *
 * Every statement jam runs is a constant string with parameters; it is
 * prepared on first use and the plan is kept for the backend's lifetime, so
 * a hot path such as a submit pays for planning once.
 */
#include "jam.h"

#include "utils/jsonb.h"

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

	if (stmt->plan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(stmt->sql, stmt->nargs, stmt->argtypes);

		if (plan == NULL)
			elog(ERROR, "jam could not prepare a statement: %s",
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "jam could not keep a prepared statement");
		stmt->plan = plan;
	}

	rc = SPI_execute_plan(stmt->plan, values, nulls, read_only, count);
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
