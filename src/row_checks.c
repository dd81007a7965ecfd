/*
 * row_checks.c: the rules of the rows that every submit and every processed
 * package writes, one function per table, for its CHECK constraint
 * (catalog 1.8).
 *
 * PostgreSQL reads every CHECK of a table back from its stored text and
 * plans it again at each statement that writes the table: the compiled
 * form lives for one statement only (ExecRelCheck).  The cost grows with
 * the stored expressions' text, about 28 instructions a character, and the
 * column checks of packages, log entries, service heads and reports (1,800
 * to 4,500 characters a table) were nearly a quarter of a submit's
 * instructions.
 * One call with the columns as arguments is a third of that text, and
 * nothing to fold.
 *
 * Each rule reads as its SQL check did, and like one it passes a NULL
 * column (NOT NULL is the columns' own constraint).  The functions are
 * not STRICT: a NULL column must not make the whole row pass.
 */
#include "jam.h"

#include "access/detoast.h"
#include "fmgr.h"
#include "utils/builtins.h"

#define HASH_BYTES 32

/* Whether argument argno, a bytea, is NULL or HASH_BYTES bytes long. */
static bool
hash_or_null(FunctionCallInfo fcinfo, int argno)
{
	return PG_ARGISNULL(argno) || toast_raw_datum_size(PG_GETARG_DATUM(argno)) - VARHDRSZ == HASH_BYTES;
}

/* Whether text argument argno equals word; false when NULL. */
static bool
text_is(FunctionCallInfo fcinfo, int argno, const char *word)
{
	text	   *value;
	size_t		len = strlen(word);

	if (PG_ARGISNULL(argno))
		return false;
	value = PG_GETARG_TEXT_PP(argno);
	return VARSIZE_ANY_EXHDR(value) == len && memcmp(VARDATA_ANY(value), word, len) == 0;
}

/* Whether text argument argno is NULL or one of the NULL-terminated words. */
static bool
one_of_or_null(FunctionCallInfo fcinfo, int argno, const char *const *words)
{
	if (PG_ARGISNULL(argno))
		return true;
	for (int i = 0; words[i] != NULL; i++)
		if (text_is(fcinfo, argno, words[i]))
			return true;
	return false;
}

/* Whether bigint argument argno is NULL or at least zero. */
static bool
not_negative(FunctionCallInfo fcinfo, int argno)
{
	return PG_ARGISNULL(argno) || PG_GETARG_INT64(argno) >= 0;
}

static const char *const package_statuses[] = {"pending", "applied", "failed", NULL};
static const char *const report_statuses[] = {"applied", "failed", NULL};
static const char *const log_kinds[] = {"package", "report", NULL};

PG_FUNCTION_INFO_V1(jam_package_row_valid);

/*
 * jam_package_row_valid(id, weight_hint, status): a jam_work_packages row's
 * id is 32 bytes, its weight_hint positive, its status pending, applied or
 * failed.
 */
Datum
jam_package_row_valid(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(hash_or_null(fcinfo, 0) &&
				   (PG_ARGISNULL(1) || PG_GETARG_INT32(1) > 0) &&
				   one_of_or_null(fcinfo, 2, package_statuses));
}

PG_FUNCTION_INFO_V1(jam_log_entry_row_valid);

/*
 * jam_log_entry_row_valid(seq, kind, status, package_id): a jam_log_entries
 * row's seq is not negative, its kind package or report, its status
 * pending, applied or failed; only a report's entry names a package_id,
 * of 32 bytes.
 */
Datum
jam_log_entry_row_valid(PG_FUNCTION_ARGS)
{
	bool		package_ok = PG_ARGISNULL(3) ||
		(hash_or_null(fcinfo, 3) && (PG_ARGISNULL(1) || text_is(fcinfo, 1, "report")));

	PG_RETURN_BOOL(not_negative(fcinfo, 0) &&
				   one_of_or_null(fcinfo, 1, log_kinds) &&
				   one_of_or_null(fcinfo, 2, package_statuses) &&
				   package_ok);
}

PG_FUNCTION_INFO_V1(jam_service_row_valid);

/*
 * jam_service_row_valid(service_id, log_root, share, log_size,
 * pending_count, applied_count, failed_count, applied_report_count,
 * failed_report_count): a jam_services row's service_id is a service id,
 * its log_root 32 bytes, its share between 1 and 1,000,000, and no count
 * is negative.
 */
Datum
jam_service_row_valid(PG_FUNCTION_ARGS)
{
	bool		valid = hash_or_null(fcinfo, 1) &&
		(PG_ARGISNULL(2) || (PG_GETARG_INT32(2) >= 1 && PG_GETARG_INT32(2) <= 1000000));

	if (valid && !PG_ARGISNULL(0))
	{
		text	   *service_id = PG_GETARG_TEXT_PP(0);

		valid = jam_is_valid_service_id(VARDATA_ANY(service_id), VARSIZE_ANY_EXHDR(service_id));
	}
	for (int argno = 3; valid && argno < PG_NARGS(); argno++)
		valid = not_negative(fcinfo, argno);
	PG_RETURN_BOOL(valid);
}

PG_FUNCTION_INFO_V1(jam_report_row_valid);

/*
 * jam_report_row_valid(package_id, report_hash, output_hash, refine_hash,
 * status, output, failure_reason): a jam_work_reports row's hashes are 32
 * bytes, its status applied or failed; an applied report has an output and
 * its hash, a failed one a failure_reason, and neither has the other's.
 */
Datum
jam_report_row_valid(PG_FUNCTION_ARGS)
{
	bool		valid = hash_or_null(fcinfo, 0) && hash_or_null(fcinfo, 1) &&
		hash_or_null(fcinfo, 2) && hash_or_null(fcinfo, 3) &&
		one_of_or_null(fcinfo, 4, report_statuses);

	if (valid && !PG_ARGISNULL(4))
	{
		bool		applied = text_is(fcinfo, 4, "applied");
		bool		has_output = !PG_ARGISNULL(5) && !PG_ARGISNULL(2);
		bool		has_reason = !PG_ARGISNULL(6);

		valid = applied == has_output && !applied == has_reason;
	}
	PG_RETURN_BOOL(valid);
}
