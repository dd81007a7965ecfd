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

/* pkg's preimage hashes as a jsonb array of hex strings. */
static Jsonb *
preimage_array(const CheckedPackage *pkg)
{
	JsonbParseState *state = NULL;
	JsonbValue	v;

	pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < pkg->fields.n_preimages; i++)
	{
		char	   *hex = palloc(JAM_HASH_HEX_CHARS + 1);

		jam_hex_encode(pkg->fields.preimage_hashes + (Size) i * JAM_HASH_BYTES, JAM_HASH_BYTES, hex);
		v.type = jbvString;
		v.val.string.val = hex;
		v.val.string.len = JAM_HASH_HEX_CHARS;
		pushJsonbValue(&state, WJB_ELEM, &v);
	}
	return JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_ARRAY, NULL));
}

/*
 * Pushes the members of the summary of pkg (id id_hex), inserted by this
 * transaction with token_id (NULL: none), and the n members of extra (in
 * jsonb order: see json_members.c), into the object being built.
 */
void
jam_jsonb_push_new_package(JsonbParseState **state, const CheckedPackage *pkg, const char *id_hex,
						   const char *token_id, const JamJsonbMember *extra, int n)
{
	/* In jsonb order; pushJsonbValue keeps pointers until the document is flattened. */
	JamJsonbMember members[] = {
		jam_jsonb_string_member("id", id_hex),
		jam_jsonb_string_member("status", "pending"),
		jam_jsonb_string_member("token_id", token_id),
		jam_jsonb_string_member("service_id", pkg->fields.service_id),
		jam_jsonb_integer_member("weight_hint", pkg->fields.weight_hint),
		jam_jsonb_integer_member("payload_size", VARSIZE_ANY_EXHDR(pkg->payload)),
		jam_jsonb_string_member("processed_at", NULL),
		jam_jsonb_string_member("submitted_at",
								JsonEncodeDateTime(NULL,
												   TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
												   TIMESTAMPTZOID, NULL)),
		jam_jsonb_string_member("submitted_by", GetUserNameFromId(GetSessionUserId(), false)),
		jam_jsonb_string_member("failure_reason", NULL),
		jam_jsonb_document_member("preimage_hashes", preimage_array(pkg)),
		jam_jsonb_integer_member("contract_version", pkg->fields.contract_version),
	};

	jam_jsonb_push_merged(state, members, lengthof(members), extra, n);
}

/*
 * What a submit answers for pkg, inserted by this transaction: its
 * summary with "created": true and receipt, as a jsonb Datum.
 */
Datum
jam_new_package_document(const CheckedPackage *pkg, const char *id_hex, const char *token_id,
						 Datum receipt)
{
	JsonbParseState *state = NULL;
	JamJsonbMember added[2];
	int			n_added = jam_created_and_receipt_members(true, receipt, added);
	JsonbValue *doc;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	jam_jsonb_push_new_package(&state, pkg, id_hex, token_id, added, n_added);
	doc = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbPGetDatum(JsonbValueToJsonb(doc));
}
