/*
 * errors.c: the table of jam's stable error codes and jam_error_codes().
 */
#include "jam.h"
#include "errors.h"
#include "metrics.h"

#include "funcapi.h"
#include "utils/builtins.h"

typedef struct JamErrorInfo
{
	const char *code;
	char		sqlstate[6];
	int			http_status;
	const char *description;
} JamErrorInfo;

/* Indexed by JamError; the order must follow the enum in errors.h. */
static const JamErrorInfo jam_error_table[JAM_ERR__COUNT] = {
	{"invalid_argument", "JM001", 400, "an argument is missing, null or out of range"},
	{"invalid_hash", "JM002", 400, "a hash is not exactly 64 lowercase hex characters"},
	{"invalid_service_id", "JM003", 400, "a service id is empty, too long or has characters outside [A-Za-z0-9._:-]"},
	{"invalid_weight", "JM004", 400, "a weight hint is not a positive integer"},
	{"invalid_media_type", "JM005", 400, "a media type is not of the form type/subtype"},
	{"invalid_status", "JM006", 400, "a status filter names no known status"},
	{"invalid_pagination", "JM007", 400, "limit is outside 1..1000 or offset is negative"},
	{"too_many_preimages", "JM008", 400, "a package references more preimages than allowed"},
	{"invalid_refine_function", "JM009", 400, "a refine function is not IMMUTABLE or has the wrong signature"},
	{"preimage_not_found", "JM010", 404, "no preimage has this hash"},
	{"package_not_found", "JM011", 404, "no package has this id"},
	{"report_not_found", "JM012", 404, "the package has no report (yet)"},
	{"payload_too_large", "JM013", 413, "a preimage or payload is larger than the configured cap"},
	{"media_type_not_allowed", "JM014", 415, "the media type is not in jam.allowed_media_types"},
	{"hash_mismatch", "JM015", 422, "the declared hash differs from the hash the server computed"},
	{"unsupported_contract_version", "JM016", 422, "this node does not run that execution contract version"},
	{"missing_preimage", "JM017", 422, "a package references a preimage that is not stored"},
	{"quota_exceeded", "JM018", 429, "the service or token has as many pending packages as its quota allows"},
	{"disabled", "JM019", 503, "jam.enabled is off"},
	{"receipt_not_found", "JM020", 404, "no log entry has this hash"},
	{"invalid_tree_size", "JM021", 400, "a tree size or log position is outside the service's log"},
	{"log_append_only", "JM022", 409, "the verifiable log is append-only"},
	{"service_not_found", "JM023", 404, "no service has this id"},
	{"cron_unavailable", "JM024", 503, "pg_cron is not loaded, or not installed in cron.database_name"},
	{"worker_unavailable", "JM025", 503, "a background worker could not start, or stopped before it finished"},
	{"unauthenticated", "JM026", 401, "no token, or a token that is unknown, expired or revoked, where one is required"},
	{"forbidden", "JM027", 403, "the token lacks the scope, or may not act on the service"},
	{"rate_limited", "JM028", 429, "the service's or token's rate limit is spent; retry after the seconds in the detail"},
	{"token_not_found", "JM029", 404, "no token has this id"},
	{"refine_reentry", "JM030", 409, "a refine function called jam's API, which refines may not do"},
	{"invalid_signature", "JM031", 422, "an attestation's signature does not verify with its attester's key"},
	{"attester_not_found", "JM032", 404, "no attester is registered under this name"},
	{"blob_store_unavailable", "JM033", 503, "the blob store is not configured, cannot be reached, or refused the request; retry after the seconds in the detail"},
	{"integrity_error", "JM034", 502, "the blob store returned bytes that do not hash to the preimage's address, or lost the object"},
	{"tile_not_found", "JM035", 404, "no tile or entry bundle of the log lies there (yet): it is past the log's size"},
	{"log_not_witnessed", "JM036", 404, "this node witnesses no log with the checkpoint's origin"},
	{"invalid_checkpoint_signature", "JM037", 403, "the checkpoint carries no valid signature of the log's key"},
	{"inconsistent_checkpoint", "JM038", 422, "the consistency proof does not lead from the checkpoint the witness cosigned to this one"},
};

/* Every jam error passes here, which counts it for jam_metrics(). */
int
jam_errcode(JamError err)
{
	const char *s = jam_error_table[err].sqlstate;

	jam_metrics_error(err);
	return errcode(MAKE_SQLSTATE(s[0], s[1], s[2], s[3], s[4]));
}

const char *
jam_error_code_name(JamError err)
{
	return jam_error_table[err].code;
}

PG_FUNCTION_INFO_V1(jam_error_codes);

/*
 * jam_error_codes() returns every stable code with its SQLSTATE, the HTTP
 * status the shim answers with, and a description.
 */
Datum
jam_error_codes(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; i < JAM_ERR__COUNT; i++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		values[0] = CStringGetTextDatum(jam_error_table[i].code);
		values[1] = CStringGetTextDatum(jam_error_table[i].sqlstate);
		values[2] = Int32GetDatum(jam_error_table[i].http_status);
		values[3] = CStringGetTextDatum(jam_error_table[i].description);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
