/*
 * package.h: a package's checked fields, shared by single submits
 * (package.c) and batches (batch.c).
 */
#ifndef JAM_PACKAGE_H
#define JAM_PACKAGE_H

#include "jam.h"

#include "utils/jsonb.h"

/* The checked fields of a package, as its hash and the database need them. */
typedef struct CheckedPackage
{
	JamPackageFields fields;
	bytea	   *payload;
	ArrayType  *preimage_array; /* the hashes as given, in order */
	ArrayType  *distinct_array; /* each hash once, for refcounts */
	int			n_distinct;
} CheckedPackage;

extern void jam_check_package(char *service_id, bytea *payload, int32 contract_version,
							  int32 weight_hint, ArrayType *preimage_hashes,
							  CheckedPackage *pkg, uint8 id[JAM_HASH_BYTES]);

/* package_summary.c: the summary of a package this transaction inserts, built in C. */
extern void jam_jsonb_push_new_package(JsonbParseState **state, const CheckedPackage *pkg,
									   const char *id_hex, const char *token_id,
									   const JamJsonbMember *extra, int n);
extern Datum jam_new_package_document(const CheckedPackage *pkg, const char *id_hex,
									  const char *token_id, Datum receipt);

/*
 * The JSON summary of a stored package row, as every statement that reads
 * one builds it.  package_summary.c builds the same members for a package
 * just inserted; batch.sql checks that the two agree.
 */
#define PACKAGE_SUMMARY_JSON \
	"jsonb_build_object('id', @x(id), 'service_id', service_id, 'status', status, " \
	"'contract_version', contract_version, 'weight_hint', weight_hint, " \
	"'payload_size', octet_length(payload), 'preimage_hashes', to_jsonb(@xa(preimage_hashes)), " \
	"'failure_reason', failure_reason, 'submitted_by', submitted_by, 'token_id', token_id, " \
	"'submitted_at', submitted_at, 'processed_at', processed_at)"

#endif							/* JAM_PACKAGE_H */
