/*
 * batch.h: the body of POST /jam/packages/batch, a JSON array or NDJSON
 * (one package object a line), as the one JSON array that
 * jam_submit_packages() takes.
 *
 * The shim stays a translator: it checks only what building that array
 * needs (the body is an array, or each line one JSON object; there is at
 * least one package) and leaves every field to the extension, which names
 * the first bad package as "packages[i]: ...".  Pure, like request.c: the
 * fuzz target drives it through plan_request().
 */
#ifndef SHIM_BATCH_H
#define SHIM_BATCH_H

#include <stddef.h>

typedef enum batch_format
{
	BATCH_JSON,					/* one array: application/json, or any other type */
	BATCH_NDJSON				/* application/x-ndjson: one object a line */
} batch_format;

/* Why a body was refused. */
struct batch_error
{
	int			status;
	const char *code;
	char		message[256];
};

batch_format batch_format_of(const char *content_type);
char	   *batch_to_array(const char *body, size_t len, batch_format format, struct batch_error *err);

#endif
