/*
 * jsonkeys.h: finds a member name that one object of a JSON text repeats.
 *
 * json-c keeps the last of two equal member names without a word, and so
 * does Postgres' jsonb, so {"service_id": "a", "service_id": "b"} would act
 * on "b" while a log line, a proxy or a reviewer reads "a".  The shim
 * refuses such bodies, at any depth.  Pure, like request.c: the fuzz target
 * drives it through plan_request().
 */
#ifndef SHIM_JSONKEYS_H
#define SHIM_JSONKEYS_H

#include <stddef.h>

/* Longest name a refusal quotes (the rest is cut). */
#define JSONKEYS_NAME_MAX 64

int			json_duplicate_key(const char *text, size_t len, char *name, size_t name_size, long *element);

#endif
