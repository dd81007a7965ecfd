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
	JsonbValue	v;

	jam_jsonb_push_key(state, key);
	if (value == NULL)
		v.type = jbvNull;
	else
	{
		v.type = jbvString;
		v.val.string.val = (char *) value;
		v.val.string.len = strlen(value);
	}
	pushJsonbValue(state, WJB_VALUE, &v);
}

/* Pushes key with an integer value. */
void
jam_jsonb_push_integer(JsonbParseState **state, const char *key, int64 value)
{
	JsonbValue	v;

	jam_jsonb_push_key(state, key);
	v.type = jbvNumeric;
	v.val.numeric = int64_to_numeric(value);
	pushJsonbValue(state, WJB_VALUE, &v);
}

/*
 * Pushes every member of a jsonb object into the object being built in
 * *state: how a document grows members without being parsed again.
 */
void
jam_jsonb_push_members(JsonbParseState **state, Jsonb *object)
{
	JsonbIterator *it = JsonbIteratorInit(&object->root);
	JsonbValue	v;
	JsonbIteratorToken token;

	while ((token = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		if (token == WJB_KEY || token == WJB_VALUE)
			pushJsonbValue(state, token, &v);
}

/* Pushes a jsonb document as the value of the current key or array element. */
void
jam_jsonb_push_document(JsonbParseState **state, JsonbIteratorToken as, Jsonb *doc)
{
	JsonbValue	v;

	v.type = jbvBinary;
	v.val.binary.data = &doc->root;
	v.val.binary.len = VARSIZE(doc) - VARHDRSZ;
	pushJsonbValue(state, as, &v);
}

/*
 * Pushes object with one more member, key: value (a jsonb document), as
 * the current array element or key's value; returns what the push of its
 * end returns (the whole document when it is the outermost).
 */
JsonbValue *
jam_jsonb_push_with_member(JsonbParseState **state, Jsonb *object, const char *key, Jsonb *value)
{
	pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
	jam_jsonb_push_members(state, object);
	jam_jsonb_push_key(state, key);
	jam_jsonb_push_document(state, WJB_VALUE, value);
	return pushJsonbValue(state, WJB_END_OBJECT, NULL);
}

/*
 * Pushes what a submit answers for one package: its summary (a jsonb
 * object) with "created" and, unless receipt is (Datum) 0, "receipt".
 */
JsonbValue *
jam_jsonb_push_submitted(JsonbParseState **state, Datum summary, bool created, Datum receipt)
{
	pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
	jam_jsonb_push_members(state, DatumGetJsonbP(summary));
	jam_jsonb_push_created_and_receipt(state, created, receipt);
	return pushJsonbValue(state, WJB_END_OBJECT, NULL);
}

/*
 * Pushes the members a submit adds to a package's summary: "created" and,
 * unless receipt is (Datum) 0, "receipt".
 */
void
jam_jsonb_push_created_and_receipt(JsonbParseState **state, bool created, Datum receipt)
{
	JsonbValue	v;

	jam_jsonb_push_key(state, "created");
	v.type = jbvBool;
	v.val.boolean = created;
	pushJsonbValue(state, WJB_VALUE, &v);
	if (receipt != (Datum) 0)
	{
		jam_jsonb_push_key(state, "receipt");
		jam_jsonb_push_document(state, WJB_VALUE, DatumGetJsonbP(receipt));
	}
}

/* The summary with "created" and "receipt", in one pass rather than two jsonb_sets. */
Datum
jam_with_created_and_receipt(Datum summary, bool created, Datum receipt)
{
	JsonbParseState *state = NULL;

	return JsonbPGetDatum(JsonbValueToJsonb(jam_jsonb_push_submitted(&state, summary, created,
																	  receipt)));
}
