/*
 * package_summary.c: the summary of a package a submit has just inserted,
 * built from what the submit already holds.
 *
 * A stored package's summary is read from its row (PACKAGE_SUMMARY_JSON
 * in package.h).  For a package the submit inserts itself, every member is
 * known before the row is written: the checked fields, 'pending', nothing
 * processed, the session user and the token, and the transaction's start
 * (the defaults of submitted_by and submitted_at).  Building the members
 * here instead of with jsonb_build_object in the INSERT's RETURNING spared
 * a batch of 100 the sixth of its time that went into printing each
 * value and reading it back; the document is the same, member for member.
 */
#include "jam.h"
#include "package.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

/*
 * Pushes the members of the summary of pkg (id id_hex), inserted by this
 * transaction with token_id (NULL: none), into the object being built.
 */
void
jam_jsonb_push_new_package(JsonbParseState **state, const CheckedPackage *pkg, const char *id_hex,
						   const char *token_id)
{
	JsonbValue	v;

	jam_jsonb_push_string(state, "id", id_hex);
	jam_jsonb_push_string(state, "service_id", pkg->fields.service_id);
	jam_jsonb_push_string(state, "status", "pending");
	jam_jsonb_push_integer(state, "contract_version", pkg->fields.contract_version);
	jam_jsonb_push_integer(state, "weight_hint", pkg->fields.weight_hint);
	jam_jsonb_push_integer(state, "payload_size", VARSIZE_ANY_EXHDR(pkg->payload));

	jam_jsonb_push_key(state, "preimage_hashes");
	pushJsonbValue(state, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < pkg->fields.n_preimages; i++)
	{
		char	   *hex = palloc(JAM_HASH_HEX_CHARS + 1);

		jam_hex_encode(pkg->fields.preimage_hashes + (Size) i * JAM_HASH_BYTES, JAM_HASH_BYTES, hex);
		v.type = jbvString;
		v.val.string.val = hex;
		v.val.string.len = JAM_HASH_HEX_CHARS;
		pushJsonbValue(state, WJB_ELEM, &v);
	}
	pushJsonbValue(state, WJB_END_ARRAY, NULL);

	jam_jsonb_push_string(state, "failure_reason", NULL);
	jam_jsonb_push_string(state, "submitted_by", GetUserNameFromId(GetSessionUserId(), false));
	jam_jsonb_push_string(state, "token_id", token_id);
	/* pushJsonbValue keeps pointers until the document is flattened: palloc'd, not on the stack. */
	jam_jsonb_push_string(state, "submitted_at",
				JsonEncodeDateTime(NULL, TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
								   TIMESTAMPTZOID, NULL));
	jam_jsonb_push_string(state, "processed_at", NULL);
}

/* The summary of pkg, inserted by this transaction, as a jsonb Datum. */
Datum
jam_new_package_summary(const CheckedPackage *pkg, const char *id_hex, const char *token_id)
{
	JsonbParseState *state = NULL;
	JsonbValue *doc;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	jam_jsonb_push_new_package(&state, pkg, id_hex, token_id);
	doc = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbPGetDatum(JsonbValueToJsonb(doc));
}
