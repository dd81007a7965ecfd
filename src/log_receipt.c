/*
 * log_receipt.c: the receipt of a log entry an append has just written,
 * built from the values the append computed.
 *
 * A stored entry's receipt is read from its row (RECEIPT_JSON in log.c).
 * An append knows every member before it writes the row, so it builds the
 * same document here, member for member, instead of having the INSERT's
 * RETURNING print four hashes as hex and assemble an object per row.  That
 * work took a seventh of a batch of 100 submits, all of it while the
 * service's row is locked, which serializes the service's submits.
 */
#include "jam.h"

#include "catalog/pg_type.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

static void
push_hash(JsonbParseState **state, const char *key, const uint8 hash[JAM_HASH_BYTES])
{
	/* pushJsonbValue keeps the pointer until the document is flattened. */
	char	   *hex = palloc(JAM_HASH_HEX_CHARS + 1);

	jam_hex_encode(hash, JAM_HASH_BYTES, hex);
	jam_jsonb_push_string(state, key, hex);
}

/*
 * The receipt of the entry at seq of service_id's log: its item's hash,
 * its leaf hash, the roots before and after it, its status and time.
 */
Datum
jam_log_new_receipt(const char *service_id, int64 seq, const char *kind,
					const uint8 item_hash[JAM_HASH_BYTES], const uint8 leaf_hash[JAM_HASH_BYTES],
					const uint8 prev_root[JAM_HASH_BYTES], const uint8 new_root[JAM_HASH_BYTES],
					const char *status, TimestampTz processed_at)
{
	JsonbParseState *state = NULL;
	JsonbValue *doc;

	/* In jsonb order, which spares pushJsonbValue's sort (json_members.c). */
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	jam_jsonb_push_integer(&state, "seq", seq);
	push_hash(&state, "hash", item_hash);
	jam_jsonb_push_string(&state, "kind", kind);
	jam_jsonb_push_string(&state, "status", status);
	push_hash(&state, "new_root", new_root);
	push_hash(&state, "leaf_hash", leaf_hash);
	push_hash(&state, "prev_root", prev_root);
	jam_jsonb_push_integer(&state, "tree_size", seq + 1);
	jam_jsonb_push_string(&state, "service_id", service_id);
	jam_jsonb_push_string(&state, "processed_at",
						  JsonEncodeDateTime(NULL, TimestampTzGetDatum(processed_at),
											 TIMESTAMPTZOID, NULL));
	doc = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbPGetDatum(JsonbValueToJsonb(doc));
}
