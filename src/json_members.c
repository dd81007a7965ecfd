/*
 * json_members.c: objects whose members are pushed in jsonb's own order.
 *
 * pushJsonbValue sorts an object's members when the object ends, into
 * jsonb's storage order: shorter keys first, equal lengths bytewise.
 * PostgreSQL's qsort returns after one pass over members that already are
 * in that order, so the documents built for every submit, batch row and
 * report (a receipt, a package summary, either with "created" or
 * "receipt" added) push theirs in order.  Sorting took about 7,000
 * instructions an object, two or three objects a package (callgrind).
 * The order only saves time: pushJsonbValue still sorts, so a member out
 * of order yields the same document, a little slower.
 */
#include "jam.h"

#include "utils/jsonb.h"
#include "utils/numeric.h"

/* Whether key a comes before key b in a jsonb object. */
static bool
key_precedes(const char *a, int a_len, const char *b, int b_len)
{
	if (a_len != b_len)
		return a_len < b_len;
	return memcmp(a, b, a_len) < 0;
}

/* Pushes one member into the object being built. */
void
jam_jsonb_push_member(JsonbParseState **state, const JamJsonbMember *m)
{
	jam_jsonb_push_key(state, m->key);
	/* pushJsonbValue copies a scalar and only reads a document: m stays as it is. */
	pushJsonbValue(state, WJB_VALUE, (JsonbValue *) &m->value);
}

#ifdef USE_ASSERT_CHECKING
static bool
in_order(const JamJsonbMember *members, int n)
{
	for (int i = 1; i < n; i++)
		if (!key_precedes(members[i - 1].key, strlen(members[i - 1].key),
						  members[i].key, strlen(members[i].key)))
			return false;
	return true;
}
#endif

/*
 * Pushes the members of a and of b, each list in jsonb order and no key in
 * both, merged into jsonb order, into the object being built.
 */
void
jam_jsonb_push_merged(JsonbParseState **state, const JamJsonbMember *a, int n_a,
					  const JamJsonbMember *b, int n_b)
{
	int			i = 0,
				j = 0;

	Assert(in_order(a, n_a) && in_order(b, n_b));
	while (i < n_a || j < n_b)
	{
		if (j == n_b ||
			(i < n_a && key_precedes(a[i].key, strlen(a[i].key), b[j].key, strlen(b[j].key))))
			jam_jsonb_push_member(state, &a[i++]);
		else
			jam_jsonb_push_member(state, &b[j++]);
	}
}

/*
 * Pushes every member of a stored jsonb object (already in jsonb order)
 * and the n members of extra (in jsonb order, keys the object lacks),
 * merged, into the object being built.
 */
void
jam_jsonb_push_members_with(JsonbParseState **state, Jsonb *object, const JamJsonbMember *extra,
							int n)
{
	JsonbIterator *it = JsonbIteratorInit(&object->root);
	JsonbValue	v;
	JsonbIteratorToken token;
	int			next = 0;

	Assert(in_order(extra, n));
	while ((token = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (token == WJB_KEY)
			while (next < n && key_precedes(extra[next].key, strlen(extra[next].key),
											v.val.string.val, v.val.string.len))
				jam_jsonb_push_member(state, &extra[next++]);
		if (token == WJB_KEY || token == WJB_VALUE)
			pushJsonbValue(state, token, &v);
	}
	while (next < n)
		jam_jsonb_push_member(state, &extra[next++]);
}

/* A member whose value is a string (NULL: JSON null) that outlives the build. */
JamJsonbMember
jam_jsonb_string_member(const char *key, const char *value)
{
	JamJsonbMember m = {.key = key};

	if (value == NULL)
		m.value.type = jbvNull;
	else
	{
		m.value.type = jbvString;
		m.value.val.string.val = (char *) value;
		m.value.val.string.len = strlen(value);
	}
	return m;
}

/* A member whose value is an integer. */
JamJsonbMember
jam_jsonb_integer_member(const char *key, int64 value)
{
	JamJsonbMember m = {.key = key};

	m.value.type = jbvNumeric;
	m.value.val.numeric = int64_to_numeric(value);
	return m;
}

/* A member whose value is a jsonb document. */
JamJsonbMember
jam_jsonb_document_member(const char *key, Jsonb *doc)
{
	JamJsonbMember m = {.key = key};

	m.value.type = jbvBinary;
	m.value.val.binary.data = &doc->root;
	m.value.val.binary.len = VARSIZE(doc) - VARHDRSZ;
	return m;
}

/*
 * Writes to out the members a submit adds to a package's summary, in
 * jsonb order: "created" and, unless receipt is (Datum) 0, "receipt";
 * returns how many.
 */
int
jam_created_and_receipt_members(bool created, Datum receipt, JamJsonbMember out[2])
{
	out[0].key = "created";
	out[0].value.type = jbvBool;
	out[0].value.val.boolean = created;
	if (receipt == (Datum) 0)
		return 1;
	out[1] = jam_jsonb_document_member("receipt", DatumGetJsonbP(receipt));
	return 2;
}
