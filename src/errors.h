/*
 * errors.h: jam's stable error codes.
 *
 * Every error jam raises carries one of these codes through a fixed SQLSTATE
 * of class "JM", so that a client (psql, an application, the HTTP shim) can
 * tell errors apart without parsing messages.  The table in errors.c is the
 * single source of truth; jam_error_codes() publishes it.
 */
#ifndef JAM_ERRORS_H
#define JAM_ERRORS_H

typedef enum JamError
{
	JAM_ERR_INVALID_ARGUMENT,
	JAM_ERR_INVALID_HASH,
	JAM_ERR_INVALID_SERVICE_ID,
	JAM_ERR_INVALID_WEIGHT,
	JAM_ERR_INVALID_MEDIA_TYPE,
	JAM_ERR_INVALID_STATUS,
	JAM_ERR_INVALID_PAGINATION,
	JAM_ERR_TOO_MANY_PREIMAGES,
	JAM_ERR_INVALID_REFINE_FUNCTION,
	JAM_ERR_PREIMAGE_NOT_FOUND,
	JAM_ERR_PACKAGE_NOT_FOUND,
	JAM_ERR_REPORT_NOT_FOUND,
	JAM_ERR_PAYLOAD_TOO_LARGE,
	JAM_ERR_MEDIA_TYPE_NOT_ALLOWED,
	JAM_ERR_HASH_MISMATCH,
	JAM_ERR_UNSUPPORTED_CONTRACT_VERSION,
	JAM_ERR_MISSING_PREIMAGE,
	JAM_ERR_QUOTA_EXCEEDED,
	JAM_ERR_DISABLED,
	JAM_ERR_RECEIPT_NOT_FOUND,
	JAM_ERR_INVALID_TREE_SIZE,
	JAM_ERR_LOG_APPEND_ONLY,
	JAM_ERR_SERVICE_NOT_FOUND,
	JAM_ERR_CRON_UNAVAILABLE,
	JAM_ERR_WORKER_UNAVAILABLE,
	JAM_ERR_UNAUTHENTICATED,
	JAM_ERR_FORBIDDEN,
	JAM_ERR_RATE_LIMITED,
	JAM_ERR_TOKEN_NOT_FOUND,
	JAM_ERR_REFINE_REENTRY,
	JAM_ERR_INVALID_SIGNATURE,
	JAM_ERR_ATTESTER_NOT_FOUND,
	JAM_ERR_TILE_NOT_FOUND,
	JAM_ERR_LOG_NOT_WITNESSED,
	JAM_ERR_INVALID_CHECKPOINT_SIGNATURE,
	JAM_ERR_INCONSISTENT_CHECKPOINT,
	JAM_ERR__COUNT
} JamError;

/* errcode() for a jam error, to use inside ereport(). */
extern int	jam_errcode(JamError err);

/* The stable code of a jam error, e.g. "quota_exceeded". */
extern const char *jam_error_code_name(JamError err);

#endif							/* JAM_ERRORS_H */
