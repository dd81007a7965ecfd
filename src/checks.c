/*
 * checks.c: argument checks shared by the API functions, so that every
 * function rejects the same bad input with the same code and message.
 */
#include "jam.h"
#include "errors.h"

#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#define JAM_LIST_LIMIT_MAX 1000

/*
 * Every API function starts here: jam must be on, and the call must not come
 * from inside a refine, whose work must be a pure function of its package
 * (a refine that processed or submitted packages would write jam's tables
 * from the middle of the processing that called it).
 */
void
jam_check_enabled(void)
{
	if (jam_refine_running())
		ereport(ERROR,
				(jam_errcode(JAM_ERR_REFINE_REENTRY),
				 errmsg("jam's API cannot be called from a refine function"),
				 errdetail("A refine computes a report's output from its package alone."),
				 errhint("Remove the call from the service's refine function.")));
	if (!jam_enabled)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_DISABLED),
				 errmsg("jam is disabled"),
				 errhint("An administrator can turn it on with jam.enabled = on.")));
}

/* API functions are not STRICT: a null argument is an error, not a silent null. */
void
jam_require_arg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("%s must not be null", name)));
}

/*
 * A service id is 1 to 64 characters from [A-Za-z0-9._:-], starting with a
 * letter or digit: safe in URLs, log lines and metric labels unescaped.
 * Returns the 1-based position of the first character that breaks the
 * rule, 0 when there is none.
 */
static int
service_id_bad_char(const char *s, int len)
{
	for (int i = 0; i < len; i++)
	{
		char		c = s[i];
		bool		alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9');

		if (!alnum && (i == 0 || (c != '.' && c != '_' && c != ':' && c != '-')))
			return i + 1;
	}
	return 0;
}

char *
jam_check_service_id(text *service_id)
{
	const char *s = VARDATA_ANY(service_id);
	int			len = VARSIZE_ANY_EXHDR(service_id);
	int			bad;

	if (len == 0)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_SERVICE_ID),
				 errmsg("service_id must not be empty")));
	if (len > JAM_SERVICE_ID_MAX)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_SERVICE_ID),
				 errmsg("service_id is too long"),
				 errdetail("A service id has at most %d characters; this one has %d.",
						   JAM_SERVICE_ID_MAX, pg_mbstrlen_with_len(s, len))));
	bad = service_id_bad_char(s, len);
	if (bad > 0)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_SERVICE_ID),
				 errmsg("service_id is malformed"),
				 errdetail("A service id starts with a letter or digit and has only "
						   "letters, digits and . _ : - after it; character %d is not allowed.",
						   bad)));
	return text_to_cstring(service_id);
}

PG_FUNCTION_INFO_V1(jam_is_service_id);

/* jam_is_service_id(value): the tables' check that a column holds a service id. */
Datum
jam_is_service_id(PG_FUNCTION_ARGS)
{
	text	   *value = PG_GETARG_TEXT_PP(0);
	int			len = VARSIZE_ANY_EXHDR(value);

	PG_RETURN_BOOL(jam_is_valid_service_id(VARDATA_ANY(value), len));
}

/* Whether the len bytes at s are a service id, without raising anything. */
bool
jam_is_valid_service_id(const char *s, int len)
{
	return len > 0 && len <= JAM_SERVICE_ID_MAX && service_id_bad_char(s, len) == 0;
}

void
jam_check_pagination(int32 limit, int32 offset)
{
	if (limit < 1 || limit > JAM_LIST_LIMIT_MAX)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_PAGINATION),
				 errmsg("limit must be between 1 and %d", JAM_LIST_LIMIT_MAX),
				 errdetail("The limit given was %d.", limit)));
	if (offset < 0)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_PAGINATION),
				 errmsg("offset must not be negative"),
				 errdetail("The offset given was %d.", offset)));
}

/*
 * A client's text as an error message shows it: its first
 * JAM_SHOWN_INPUT_MAX bytes (whole characters), then "..." when there was
 * more.  An error must say what was refused without copying a hostile
 * client's megabyte into the reply and the server log.
 */
char *
jam_shown_input(const char *given)
{
	int			len = strlen(given);
	int			shown;

	if (len <= JAM_SHOWN_INPUT_MAX)
		return pstrdup(given);
	shown = pg_mbcliplen(given, len, JAM_SHOWN_INPUT_MAX);
	return psprintf("%.*s...", shown, given);
}

/* Raises invalid_status unless status is one of the NULL-terminated allowed list. */
void
jam_check_status_filter(text *status, const char *const *allowed)
{
	char	   *s = text_to_cstring(status);
	StringInfoData names;

	for (int i = 0; allowed[i] != NULL; i++)
		if (strcmp(s, allowed[i]) == 0)
			return;

	initStringInfo(&names);
	for (int i = 0; allowed[i] != NULL; i++)
		appendStringInfo(&names, "%s%s", i > 0 ? ", " : "", allowed[i]);
	ereport(ERROR,
			(jam_errcode(JAM_ERR_INVALID_STATUS),
			 errmsg("unknown status \"%s\"", jam_shown_input(s)),
			 errdetail("The status is one of: %s.", names.data)));
}
