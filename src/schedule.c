/*
 * schedule.c: jam_schedule_retention and jam_unschedule_retention, which
 * have pg_cron run jam_cleanup().
 *
 * The job is named "jam-retention" and runs "SELECT jam.jam_cleanup()" in
 * the database it was scheduled from.  pg_cron's functions exist only in
 * its own database (cron.database_name): from there, the job is made with
 * cron.schedule; from any other database, a task worker connected to the
 * cron database as the calling role makes it with cron.schedule_in_database
 * (pg_cron 1.4), and that change commits on its own.  pg_cron keys named
 * jobs by name and role, so one role has one "jam-retention" job in the
 * cluster: scheduling again replaces it.
 */
#include "jam.h"
#include "errors.h"
#include "retention.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/snapmgr.h"

#define JAM_CRON_JOB_NAME "jam-retention"
#define JAM_CRON_COMMAND "SELECT jam.jam_cleanup()"

static JamStatement cron_schedule = {
	"SELECT cron.schedule('" JAM_CRON_JOB_NAME "', $1, '" JAM_CRON_COMMAND "')",
	1, {TEXTOID}
};

static JamStatement cron_schedule_in_database = {
	"SELECT cron.schedule_in_database('" JAM_CRON_JOB_NAME "', $1, '" JAM_CRON_COMMAND "', $2)",
	2, {TEXTOID, TEXTOID}
};

/* cron.job shows a role its own jobs only, unless it is a superuser. */
static JamStatement cron_unschedule = {
	"SELECT count(*) FILTER (WHERE cron.unschedule(jobid)) FROM cron.job "
	"WHERE jobname = '" JAM_CRON_JOB_NAME "' AND database = $1",
	1, {TEXTOID}
};

/* cron.database_name, or an error saying that pg_cron is not loaded. */
static const char *
cron_database(void)
{
	const char *name = GetConfigOption("cron.database_name", true, false);

	if (name == NULL || (GetConfigOptionFlags("cron.database_name", true) & GUC_CUSTOM_PLACEHOLDER))
		ereport(ERROR,
				(jam_errcode(JAM_ERR_CRON_UNAVAILABLE),
				 errmsg("pg_cron is not loaded"),
				 errdetail("jam_schedule_retention() registers jam_cleanup() as a pg_cron job."),
				 errhint("Add pg_cron to shared_preload_libraries and CREATE EXTENSION pg_cron in "
						 "the database cron.database_name, or have jam's own worker run cleanup: "
						 "jam.retention_worker = on.")));
	return name;
}

/*
 * Schedules (or, with unschedule, removes) the job of target_db in the
 * current database, which is pg_cron's.  Returns the job id (or how many
 * jobs were removed).  Needs SPI.
 */
static int64
cron_run(bool unschedule, const char *schedule, const char *target_db)
{
	char	   *here = get_database_name(MyDatabaseId);
	Datum		values[2];
	bool		isnull;

	if (!OidIsValid(get_extension_oid("pg_cron", true)))
		ereport(ERROR,
				(jam_errcode(JAM_ERR_CRON_UNAVAILABLE),
				 errmsg("pg_cron is not installed in database \"%s\"", here),
				 errhint("Run CREATE EXTENSION pg_cron in database \"%s\" (cron.database_name).",
						 here)));

	if (unschedule)
	{
		values[0] = CStringGetTextDatum(target_db);
		jam_spi_exec(&cron_unschedule, values, NULL, false, 0);
	}
	else if (strcmp(here, target_db) == 0)
	{
		values[0] = CStringGetTextDatum(schedule);
		jam_spi_exec(&cron_schedule, values, NULL, false, 0);
	}
	else
	{
		values[0] = CStringGetTextDatum(schedule);
		values[1] = CStringGetTextDatum(target_db);
		jam_spi_exec(&cron_schedule_in_database, values, NULL, false, 0);
	}
	return DatumGetInt64(jam_spi_result_datum(1, &isnull));
}

/*
 * The task worker's side: connected to the cron database, schedules or
 * unschedules the caller's job in a transaction of its own.
 */
void
jam_cron_task(JamTask *task)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	task->cron_result = cron_run(task->cron_unschedule, task->cron_schedule,
								 task->cron_target_database);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/*
 * Schedules (or removes) this database's job, in this transaction when
 * this is pg_cron's database, through a task worker otherwise.
 */
static int64
cron_call(bool unschedule, const char *schedule)
{
	const char *cron_db = cron_database();
	char	   *here = get_database_name(MyDatabaseId);
	JamTask		task;
	int64		result;

	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("pg_cron jobs cannot be changed during recovery"),
				 errhint("Schedule retention on the primary.")));

	if (strcmp(cron_db, here) == 0)
	{
		SPI_connect();
		result = cron_run(unschedule, schedule, here);
		SPI_finish();
		return result;
	}

	memset(&task, 0, sizeof(task));
	task.kind = JAM_TASK_CRON;
	task.database_id = get_database_oid(cron_db, true);
	if (!OidIsValid(task.database_id))
		ereport(ERROR,
				(jam_errcode(JAM_ERR_CRON_UNAVAILABLE),
				 errmsg("database \"%s\" named by cron.database_name does not exist", cron_db)));
	task.cron_unschedule = unschedule;
	if (schedule)
		strlcpy(task.cron_schedule, schedule, JAM_TASK_TEXT_MAX);
	strlcpy(task.cron_target_database, here, NAMEDATALEN);
	if (!jam_task_run(&task, "cron"))
		ereport(ERROR,
				(jam_errcode(JAM_ERR_WORKER_UNAVAILABLE),
				 errmsg("the jam cron worker stopped before it finished")));
	return task.cron_result;
}

PG_FUNCTION_INFO_V1(jam_schedule_retention);

/*
 * jam_schedule_retention(schedule) has pg_cron run jam_cleanup() in this
 * database on that cron schedule, replacing the job's schedule if it
 * exists, and returns {job_id, job_name, schedule, command, database,
 * cron_database}.
 */
Datum
jam_schedule_retention(PG_FUNCTION_ARGS)
{
	char	   *schedule;
	int64		job_id;
	StringInfoData doc;

	jam_check_enabled();
	jam_require_arg(fcinfo, 0, "schedule");
	schedule = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (strlen(schedule) >= JAM_TASK_TEXT_MAX)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("schedule is too long"),
				 errdetail("A schedule has fewer than %d bytes.", JAM_TASK_TEXT_MAX)));

	job_id = cron_call(false, schedule);

	initStringInfo(&doc);
	appendStringInfo(&doc, "{\"job_id\": " INT64_FORMAT ", \"job_name\": ", job_id);
	escape_json(&doc, JAM_CRON_JOB_NAME);
	appendStringInfoString(&doc, ", \"schedule\": ");
	escape_json(&doc, schedule);
	appendStringInfoString(&doc, ", \"command\": ");
	escape_json(&doc, JAM_CRON_COMMAND);
	appendStringInfoString(&doc, ", \"database\": ");
	escape_json(&doc, get_database_name(MyDatabaseId));
	appendStringInfoString(&doc, ", \"cron_database\": ");
	escape_json(&doc, cron_database());
	appendStringInfoChar(&doc, '}');
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(doc.data)));
}

PG_FUNCTION_INFO_V1(jam_unschedule_retention);

/*
 * jam_unschedule_retention() removes this database's "jam-retention" job
 * and returns whether there was one.
 */
Datum
jam_unschedule_retention(PG_FUNCTION_ARGS)
{
	jam_check_enabled();
	PG_RETURN_BOOL(cron_call(true, NULL) > 0);
}
