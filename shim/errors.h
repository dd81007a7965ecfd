/*
 * errors.h: what an HTTP client is told when something fails.
 *
 * SQL errors map by SQLSTATE through the table jam_error_codes() publishes
 * (loaded on every new connection, so the extension stays the one source
 * of truth); SQLSTATEs outside that table fall back to a few classes
 * (connection trouble: 503, data exceptions: 400, ...).
 */
#ifndef SHIM_ERRORS_H
#define SHIM_ERRORS_H

#include <libpq-fe.h>

struct error_answer
{
	int			status;
	char		code[64];
	char		message[512];
	int			retry_after;	/* seconds, 0 = no Retry-After header */
	int			connection_lost;	/* the connection broke: retry elsewhere */
	char		sqlstate[6];
	char		detail[512];	/* the server's message, for the log only */
};

int			errmap_load(PGresult *codes);
int			errmap_size(void);
void		error_from_result(const PGresult *res, PGconn *conn, struct error_answer *out);
int			retry_after_from_detail(const char *detail);
const char *error_code_for_status(int status);

#endif
