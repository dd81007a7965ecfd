/*
 * json_util.c: small jsonb helpers for the documents the API returns.
 */
#include "jam.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"

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
