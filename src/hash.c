/*
 * hash.c: BLAKE2b-256 content addresses and their hex text form.
 *
 * jam addresses content the way JAM does: BLAKE2b with a 32-byte output
 * (not a truncated BLAKE2b-512), through libsodium's crypto_generichash.
 * In the SQL API a hash is exactly 64 lowercase hex characters.
 */
#include "jam.h"
#include "errors.h"

#include <sodium.h>

#include "mb/pg_wchar.h"
#include "utils/builtins.h"

void
jam_blake2b256(const void *data, size_t len, uint8 out[JAM_HASH_BYTES])
{
	crypto_generichash(out, JAM_HASH_BYTES, data, len, NULL, 0);
}

/* Writes 2*len lowercase hex characters and a terminating NUL to out. */
void
jam_hex_encode(const uint8 *bytes, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++)
	{
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 0x0f];
	}
	out[2 * len] = '\0';
}

/* A bytea holding a copy of bytes[0..len). */
bytea *
jam_bytes_to_bytea(const uint8 *bytes, Size len)
{
	bytea	   *out = palloc(VARHDRSZ + len);

	SET_VARSIZE(out, VARHDRSZ + len);
	memcpy(VARDATA(out), bytes, len);
	return out;
}

text *
jam_hash_to_text(const uint8 hash[JAM_HASH_BYTES])
{
	char		hex[JAM_HASH_HEX_CHARS + 1];

	jam_hex_encode(hash, JAM_HASH_BYTES, hex);
	return cstring_to_text_with_len(hex, JAM_HASH_HEX_CHARS);
}

static int
lower_hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Is s[0..len) a hash: exactly 64 lowercase hex characters? */
static bool
is_hash(const char *s, int len)
{
	if (len != JAM_HASH_HEX_CHARS)
		return false;
	for (int i = 0; i < len; i++)
		if (lower_hex_value(s[i]) < 0)
			return false;
	return true;
}

PG_FUNCTION_INFO_V1(jam_is_hash);

/* jam_is_hash(value): the tables' check that a column holds a hash. */
Datum
jam_is_hash(PG_FUNCTION_ARGS)
{
	text	   *value = PG_GETARG_TEXT_PP(0);

	PG_RETURN_BOOL(is_hash(VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value)));
}

/*
 * Parses a hash given as text into its 32 bytes, or raises invalid_hash
 * naming the argument ("what") so that the caller sees which one was wrong.
 */
void
jam_parse_hash(text *hash, const char *what, uint8 out[JAM_HASH_BYTES])
{
	const char *s = VARDATA_ANY(hash);
	int			len = VARSIZE_ANY_EXHDR(hash);

	if (len != JAM_HASH_HEX_CHARS)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_HASH),
				 errmsg("%s is not a valid hash", what),
				 errdetail("A hash is exactly %d lowercase hex characters; this one has %d characters.",
						   JAM_HASH_HEX_CHARS, pg_mbstrlen_with_len(s, len))));

	for (int i = 0; i < JAM_HASH_BYTES; i++)
	{
		int			hi = lower_hex_value(s[2 * i]);
		int			lo = lower_hex_value(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			ereport(ERROR,
					(jam_errcode(JAM_ERR_INVALID_HASH),
					 errmsg("%s is not a valid hash", what),
					 errdetail("A hash is exactly %d lowercase hex characters (0-9, a-f); "
							   "character %d is not one.",
							   JAM_HASH_HEX_CHARS, (hi < 0 ? 2 * i : 2 * i + 1) + 1)));
		out[i] = (uint8) ((hi << 4) | lo);
	}
}

/* Validates a hash and returns it as a NUL-terminated C string. */
char *
jam_normalize_hash(text *hash, const char *what)
{
	uint8		raw[JAM_HASH_BYTES];

	jam_parse_hash(hash, what, raw);
	return text_to_cstring(hash);
}

PG_FUNCTION_INFO_V1(jam_hash);

/* jam_hash(data bytea) returns the BLAKE2b-256 of data as 64 lowercase hex characters. */
Datum
jam_hash(PG_FUNCTION_ARGS)
{
	bytea	   *data = PG_GETARG_BYTEA_PP(0);
	uint8		digest[JAM_HASH_BYTES];

	jam_blake2b256(VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data), digest);
	PG_RETURN_TEXT_P(jam_hash_to_text(digest));
}

PG_FUNCTION_INFO_V1(jam_hex_array);

/*
 * jam_hex_array(hashes bytea[]) returns each hash as hex text: how a stored
 * array of raw hashes reaches the API.  Null elements stay null.
 */
Datum
jam_hex_array(PG_FUNCTION_ARGS)
{
	ArrayType  *in = PG_GETARG_ARRAYTYPE_P(0);
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	deconstruct_array(in, BYTEAOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		bytea	   *raw;
		text	   *hex;

		if (nulls[i])
			continue;
		raw = DatumGetByteaPP(elems[i]);
		hex = (text *) palloc(VARHDRSZ + 2 * VARSIZE_ANY_EXHDR(raw) + 1);
		jam_hex_encode((const uint8 *) VARDATA_ANY(raw), VARSIZE_ANY_EXHDR(raw), VARDATA(hex));
		SET_VARSIZE(hex, VARHDRSZ + 2 * VARSIZE_ANY_EXHDR(raw));
		elems[i] = PointerGetDatum(hex);
	}
	PG_RETURN_ARRAYTYPE_P(construct_md_array(elems, nulls, ARR_NDIM(in), ARR_DIMS(in),
											 ARR_LBOUND(in), TEXTOID, -1, false, TYPALIGN_INT));
}

PG_FUNCTION_INFO_V1(jam_unhex_array);

/*
 * jam_unhex_array(hashes text[]) returns each hash as its 32 bytes; an
 * element that is not a hash is refused with invalid_hash.  Null elements
 * stay null.
 */
Datum
jam_unhex_array(PG_FUNCTION_ARGS)
{
	ArrayType  *in = PG_GETARG_ARRAYTYPE_P(0);
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	deconstruct_array(in, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		bytea	   *raw;

		if (nulls[i])
			continue;
		raw = (bytea *) palloc(VARHDRSZ + JAM_HASH_BYTES);
		SET_VARSIZE(raw, VARHDRSZ + JAM_HASH_BYTES);
		jam_parse_hash(DatumGetTextPP(elems[i]), psprintf("hashes[%d]", i + 1),
					   (uint8 *) VARDATA(raw));
		elems[i] = PointerGetDatum(raw);
	}
	PG_RETURN_ARRAYTYPE_P(construct_md_array(elems, nulls, ARR_NDIM(in), ARR_DIMS(in),
											 ARR_LBOUND(in), BYTEAOID, -1, false, TYPALIGN_INT));
}
