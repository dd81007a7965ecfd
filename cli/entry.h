/*
 * entry.h: the 74-byte entries of jam's logs (README "The verifiable log").
 */
#ifndef JAMCTL_ENTRY_H
#define JAMCTL_ENTRY_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "util.h"

#define ENTRY_BYTES 74

struct log_entry
{
	int			kind;			/* 1 package, 2 report */
	unsigned char item[JC_HASH_BYTES];	/* package id or report hash */
	unsigned char meta[JC_HASH_BYTES];	/* BLAKE2b-256 of service, principal, detail */
	int			status;			/* 0 pending, 1 applied, 2 failed */
	uint64_t	timestamp_us;	/* processed_at, microseconds since 1970 UTC */
};

/* Decodes an entry; 0, or -1 when it is not 74 bytes of a known kind and status. */
int			entry_decode(const unsigned char *data, size_t len, struct log_entry *e);

/* The entry as JSON: {kind, hash, meta_hash, status, processed_at}. */
json_object *entry_json(const struct log_entry *e);

/* The 74 bytes of an entry. */
void		entry_encode(const struct log_entry *e, unsigned char out[ENTRY_BYTES]);

/*
 * The meta hash: BLAKE2b-256 of "jam/meta/v1" || str service_id || str
 * principal || str detail, str being u32 length || UTF-8 bytes.  For a
 * package the principal is the role that submitted it and the detail is
 * empty; for a report, the attesting node and the refine that ran.
 */
void		entry_meta_hash(const char *service_id, const char *principal, const char *detail,
							unsigned char out[JC_HASH_BYTES]);

/* "pending", "applied", "failed" as 0, 1, 2; -1 otherwise. */
int			entry_status_code(const char *status);

/*
 * Microseconds since 1970 UTC of an ISO 8601 timestamp as Postgres writes
 * timestamptz in JSON ("2026-12-02T01:24:59.850272+00:00"); 0, or -1.
 */
int			entry_parse_time(const char *text, uint64_t *us);

#endif
