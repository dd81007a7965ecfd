/*
 * json_util.c: small jsonb helpers for the documents the API returns.
 */
#include "jam.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

/* Returns doc with the top-level member key set to value (a jsonb). */
Datum
jam_with_member(Datum doc, const char *key, Datum value)
{
	Datum		path_elem = CStringGetTextDatum(key);
	ArrayType  *path = construct_array(&path_elem, 1, TEXTOID, -1, false, TYPALIGN_INT);

	return DirectFunctionCall4(jsonb_set, doc, PointerGetDatum(path), value, BoolGetDatum(true));
}

/* Returns doc with "created": true or false added; puts and submits say whether they wrote. */
Datum
jam_with_created_flag(Datum doc, bool created)
{
	return jam_with_member(doc, "created",
						   DirectFunctionCall1(jsonb_in, CStringGetDatum(created ? "true" : "false")));
}

/* Pushes a key of an object being built with pushJsonbValue. */
void
jam_jsonb_push_key(JsonbParseState **state, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(state, WJB_KEY, &k);
}

/* Pushes key with a string value (NULL: JSON null); value must outlive the build. */
void
jam_jsonb_push_string(JsonbParseState **state, const char *key, const char *value)
{
	JamJsonbMember m = jam_jsonb_string_member(key, value);

	jam_jsonb_push_member(state, &m);
}

/* Pushes key with an integer value. */
void
jam_jsonb_push_integer(JsonbParseState **state, const char *key, int64 value)
{
	JamJsonbMember m = jam_jsonb_integer_member(key, value);

	jam_jsonb_push_member(state, &m);
}

/*
 * Pushes object with one more member, key: value (a jsonb document), as
 * the current array element or key's value; returns what the push of its
 * end returns (the whole document when it is the outermost).
 */
JsonbValue *
jam_jsonb_push_with_member(JsonbParseState **state, Jsonb *object, const char *key, Jsonb *value)
{
	JamJsonbMember member = jam_jsonb_document_member(key, value);

	pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
	jam_jsonb_push_members_with(state, object, &member, 1);
	return pushJsonbValue(state, WJB_END_OBJECT, NULL);
}

/*
 * Pushes what a submit answers for one package: its summary (a jsonb
 * object) with "created" and, unless receipt is (Datum) 0, "receipt".
 */
JsonbValue *
jam_jsonb_push_submitted(JsonbParseState **state, Datum summary, bool created, Datum receipt)
{
	JamJsonbMember added[2];
	int			n_added = jam_created_and_receipt_members(created, receipt, added);

	pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
	jam_jsonb_push_members_with(state, DatumGetJsonbP(summary), added, n_added);
	return pushJsonbValue(state, WJB_END_OBJECT, NULL);
}

/* The summary with "created" and "receipt", in one pass rather than two jsonb_sets. */
Datum
jam_with_created_and_receipt(Datum summary, bool created, Datum receipt)
{
	JsonbParseState *state = NULL;

	return JsonbPGetDatum(JsonbValueToJsonb(jam_jsonb_push_submitted(&state, summary, created,
																	  receipt)));
}
