/*
 * json_util.c: small jsonb helpers for the documents the API returns.
 */
#include "jam.h"

#include "utils/builtins.h"
#include "utils/jsonb.h"

/* Returns doc with "created": true or false added; puts say whether they wrote. */
Datum
jam_with_created_flag(Datum doc, bool created)
{
	Datum		flag = DirectFunctionCall1(jsonb_in,
										   CStringGetDatum(created ? "{\"created\": true}"
														   : "{\"created\": false}"));

	return DirectFunctionCall2(jsonb_concat, doc, flag);
}
