/*
 * verify.c: checks a client can run without trusting this node, on any
 * log of RFC 9162's construction (jam_verify_inclusion,
 * jam_verify_consistency, jam_verify_checkpoint), and pure helpers over
 * an in-memory list of leaves and over signed notes, for clients and tests.
 *
 * A well-formed proof that does not check out is false, not an error; a
 * value that is not lowercase hex is invalid_hash.
 */
#include "jam.h"
#include "errors.h"
#include "merkle.h"
#include "note.h"

#include <sodium.h>

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"

/* No valid proof is longer: 64 levels, doubled for a consistency proof. */
#define MAX_PROOF (2 * JAM_LOG_MAX_HEIGHT)
/* Longest value the verifiers read, in bytes; longer ones cannot match. */
#define MAX_VALUE 1024

/*
 * A value given to a verifier: lowercase hex of any even length.  As in
 * transparency-dev/merkle, values are compared as bytes, so one that is
 * not 32 bytes long is not a hash and verifies nothing, rather than being
 * an error; text that is not hex at all is invalid_hash.
 */
typedef struct HexValue
{
	int			len;
	uint8		bytes[MAX_VALUE];
} HexValue;

static int
hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static void
parse_hex(text *value, const char *what, HexValue *out)
{
	const char *s = VARDATA_ANY(value);
	int			len = VARSIZE_ANY_EXHDR(value);

	if (len % 2 != 0)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_HASH),
				 errmsg("%s is not a valid hash", what),
				 errdetail("A hash is lowercase hex; this one has an odd number of characters.")));
	out->len = Min(len / 2, MAX_VALUE);
	for (int i = 0; i < len / 2; i++)
	{
		int			hi = hex_digit(s[2 * i]);
		int			lo = hex_digit(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			ereport(ERROR,
					(jam_errcode(JAM_ERR_INVALID_HASH),
					 errmsg("%s is not a valid hash", what),
					 errdetail("A hash is lowercase hex (0-9, a-f); character %d is not.",
							   (hi < 0 ? 2 * i : 2 * i + 1) + 1)));
		if (i < MAX_VALUE)
			out->bytes[i] = (uint8) ((hi << 4) | lo);
	}
	if (len / 2 > MAX_VALUE)
		out->len = MAX_VALUE + 1;	/* too long to be anything: never matches */
}

static bool
is_hash(const HexValue *v)
{
	return v->len == JAM_HASH_BYTES;
}

/*
 * Parses proof (text[]) into hashes and returns its length, or -1 when it
 * cannot be a proof: longer than any valid one, or with an element that is
 * not 32 bytes.
 */
static int
parse_proof(ArrayType *proof, uint8 (*out)[JAM_HASH_BYTES])
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	bool		all_hashes = true;
	HexValue	v;

	if (ARR_NDIM(proof) > 1)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("proof must be a one-dimensional array")));
	deconstruct_array(proof, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(jam_errcode(JAM_ERR_INVALID_HASH),
					 errmsg("proof[%d] is null", i + 1)));
		parse_hex(DatumGetTextPP(elems[i]), psprintf("proof[%d]", i + 1), &v);
		if (!is_hash(&v) || i >= MAX_PROOF)
			all_hashes = false;
		else
			memcpy(out[i], v.bytes, JAM_HASH_BYTES);
	}
	return all_hashes ? n : -1;
}

static ArrayType *
hashes_to_array(uint8 (*hashes)[JAM_HASH_BYTES], int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		elems[i] = PointerGetDatum(jam_hash_to_text(hashes[i]));
	return construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT);
}

PG_FUNCTION_INFO_V1(jam_verify_inclusion);

/* jam_verify_inclusion(leaf_hash, seq, tree_size, proof, root): does the proof put the leaf at seq under root? */
Datum
jam_verify_inclusion(PG_FUNCTION_ARGS)
{
	HexValue	leaf;
	HexValue	root;
	uint8		proof[MAX_PROOF][JAM_HASH_BYTES];
	int64		seq;
	int64		tree_size;
	int			n;

	jam_require_arg(fcinfo, 0, "leaf_hash");
	jam_require_arg(fcinfo, 1, "seq");
	jam_require_arg(fcinfo, 2, "tree_size");
	jam_require_arg(fcinfo, 3, "proof");
	jam_require_arg(fcinfo, 4, "root");
	parse_hex(PG_GETARG_TEXT_PP(0), "leaf_hash", &leaf);
	seq = PG_GETARG_INT64(1);
	tree_size = PG_GETARG_INT64(2);
	n = parse_proof(PG_GETARG_ARRAYTYPE_P(3), proof);
	parse_hex(PG_GETARG_TEXT_PP(4), "root", &root);

	PG_RETURN_BOOL(n >= 0 && seq >= 0 && tree_size > 0 && is_hash(&leaf) && is_hash(&root) &&
				   jam_merkle_verify_inclusion(leaf.bytes, seq, tree_size, proof, n, root.bytes));
}

PG_FUNCTION_INFO_V1(jam_verify_consistency);

/* jam_verify_consistency(first, second, proof, first_root, second_root): does the second tree extend the first? */
Datum
jam_verify_consistency(PG_FUNCTION_ARGS)
{
	HexValue	first_root;
	HexValue	second_root;
	uint8		proof[MAX_PROOF][JAM_HASH_BYTES];
	int64		first;
	int64		second;
	int			n;

	jam_require_arg(fcinfo, 0, "first");
	jam_require_arg(fcinfo, 1, "second");
	jam_require_arg(fcinfo, 2, "proof");
	jam_require_arg(fcinfo, 3, "first_root");
	jam_require_arg(fcinfo, 4, "second_root");
	first = PG_GETARG_INT64(0);
	second = PG_GETARG_INT64(1);
	n = parse_proof(PG_GETARG_ARRAYTYPE_P(2), proof);
	parse_hex(PG_GETARG_TEXT_PP(3), "first_root", &first_root);
	parse_hex(PG_GETARG_TEXT_PP(4), "second_root", &second_root);

	if (n < 0 || first <= 0 || second < 0)
		PG_RETURN_BOOL(false);
	/* Equal sizes: an empty proof and the same root, compared as bytes. */
	if (first == second)
		PG_RETURN_BOOL(n == 0 && first_root.len == second_root.len &&
					   first_root.len <= MAX_VALUE &&
					   memcmp(first_root.bytes, second_root.bytes, first_root.len) == 0);
	PG_RETURN_BOOL(is_hash(&first_root) && is_hash(&second_root) &&
				   jam_merkle_verify_consistency(first, second, proof, n,
												 first_root.bytes, second_root.bytes));
}

PG_FUNCTION_INFO_V1(jam_verify_checkpoint);

/* jam_verify_checkpoint(note, verifier_key): is the signed note signed by that key? */
Datum
jam_verify_checkpoint(PG_FUNCTION_ARGS)
{
	jam_require_arg(fcinfo, 0, "note");
	jam_require_arg(fcinfo, 1, "verifier_key");
	PG_RETURN_BOOL(jam_note_verify(text_to_cstring(PG_GETARG_TEXT_PP(0)),
								   text_to_cstring(PG_GETARG_TEXT_PP(1))));
}

/* A tree over in-memory leaf inputs, read through the same fetch interface as a stored log. */
typedef struct LeafList
{
	int			n;
	uint8	   *leaf_hashes;	/* n * JAM_HASH_BYTES */
} LeafList;

static void
fetch_from_leaves(void *ctx, int level, uint64 index, uint8 out[JAM_HASH_BYTES])
{
	LeafList   *leaves = (LeafList *) ctx;
	uint64		begin = index << level;
	uint8		left[JAM_HASH_BYTES];

	if (level == 0)
	{
		memcpy(out, leaves->leaf_hashes + begin * JAM_HASH_BYTES, JAM_HASH_BYTES);
		return;
	}
	fetch_from_leaves(ctx, level - 1, index * 2, left);
	fetch_from_leaves(ctx, level - 1, index * 2 + 1, out);
	jam_merkle_node_hash(left, out, out);
}

static void
load_leaves(FunctionCallInfo fcinfo, LeafList *leaves)
{
	ArrayType  *inputs;
	Datum	   *elems;
	bool	   *nulls;

	jam_require_arg(fcinfo, 0, "leaf_inputs");
	inputs = PG_GETARG_ARRAYTYPE_P(0);
	if (ARR_NDIM(inputs) > 1)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("leaf_inputs must be a one-dimensional array")));
	deconstruct_array(inputs, BYTEAOID, -1, false, TYPALIGN_INT, &elems, &nulls, &leaves->n);
	leaves->leaf_hashes = palloc((Size) Max(leaves->n, 1) * JAM_HASH_BYTES);
	for (int i = 0; i < leaves->n; i++)
	{
		bytea	   *entry;

		if (nulls[i])
			ereport(ERROR,
					(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
					 errmsg("leaf_inputs[%d] is null", i + 1)));
		entry = DatumGetByteaPP(elems[i]);
		jam_merkle_leaf_hash((const uint8 *) VARDATA_ANY(entry), VARSIZE_ANY_EXHDR(entry),
							 leaves->leaf_hashes + (Size) i * JAM_HASH_BYTES);
	}
}

static void
check_position(const char *what, int64 value, int64 low, int64 high)
{
	if (value < low || value > high)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_TREE_SIZE),
				 errmsg("%s %lld is outside the tree", what, (long long) value),
				 errdetail("It must be between %lld and %lld.", (long long) low, (long long) high)));
}

PG_FUNCTION_INFO_V1(jam_merkle_leaf_hash_sql);

/* jam_merkle_leaf_hash(entry) returns SHA-256(0x00 || entry). */
Datum
jam_merkle_leaf_hash_sql(PG_FUNCTION_ARGS)
{
	bytea	   *entry = PG_GETARG_BYTEA_PP(0);
	uint8		hash[JAM_HASH_BYTES];

	jam_merkle_leaf_hash((const uint8 *) VARDATA_ANY(entry), VARSIZE_ANY_EXHDR(entry), hash);
	PG_RETURN_TEXT_P(jam_hash_to_text(hash));
}

PG_FUNCTION_INFO_V1(jam_merkle_root_sql);

/* jam_merkle_root(leaf_inputs) returns the RFC 9162 root of the tree over leaf_inputs. */
Datum
jam_merkle_root_sql(PG_FUNCTION_ARGS)
{
	LeafList	leaves;
	uint8		root[JAM_HASH_BYTES];

	load_leaves(fcinfo, &leaves);
	jam_merkle_root(leaves.n, fetch_from_leaves, &leaves, root);
	PG_RETURN_TEXT_P(jam_hash_to_text(root));
}

PG_FUNCTION_INFO_V1(jam_merkle_inclusion_proof_sql);

/* jam_merkle_inclusion_proof(leaf_inputs, seq, tree_size): the proof of leaf seq in the first tree_size leaves. */
Datum
jam_merkle_inclusion_proof_sql(PG_FUNCTION_ARGS)
{
	LeafList	leaves;
	uint8		proof[JAM_LOG_MAX_HEIGHT][JAM_HASH_BYTES];
	int64		seq;
	int64		tree_size;
	int			n;

	load_leaves(fcinfo, &leaves);
	jam_require_arg(fcinfo, 1, "seq");
	jam_require_arg(fcinfo, 2, "tree_size");
	seq = PG_GETARG_INT64(1);
	tree_size = PG_GETARG_INT64(2);
	check_position("tree size", tree_size, 1, leaves.n);
	check_position("seq", seq, 0, tree_size - 1);
	n = jam_merkle_inclusion_proof(seq, tree_size, fetch_from_leaves, &leaves, proof);
	PG_RETURN_ARRAYTYPE_P(hashes_to_array(proof, n));
}

PG_FUNCTION_INFO_V1(jam_merkle_consistency_proof_sql);

/* jam_merkle_consistency_proof(leaf_inputs, first, second): the proof between the first and second prefixes. */
Datum
jam_merkle_consistency_proof_sql(PG_FUNCTION_ARGS)
{
	LeafList	leaves;
	uint8		proof[MAX_PROOF][JAM_HASH_BYTES];
	int64		first;
	int64		second;
	int			n;

	load_leaves(fcinfo, &leaves);
	jam_require_arg(fcinfo, 1, "first");
	jam_require_arg(fcinfo, 2, "second");
	first = PG_GETARG_INT64(1);
	second = PG_GETARG_INT64(2);
	check_position("second tree size", second, 0, leaves.n);
	check_position("first tree size", first, 0, second);
	n = jam_merkle_consistency_proof(first, second, fetch_from_leaves, &leaves, proof);
	PG_RETURN_ARRAYTYPE_P(hashes_to_array(proof, n));
}

static void
check_seed(bytea *seed)
{
	if (VARSIZE_ANY_EXHDR(seed) != 32)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("seed must be 32 bytes"),
				 errdetail("An Ed25519 seed is 32 bytes; this one has %zu.", VARSIZE_ANY_EXHDR(seed))));
}

static char *
check_key_name(text *name)
{
	char	   *s = text_to_cstring(name);

	if (*s == '\0' || strpbrk(s, " +\n\t") != NULL)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("key name \"%s\" is not allowed", s),
				 errdetail("A signed-note key name is non-empty and has no spaces or \"+\".")));
	return s;
}

PG_FUNCTION_INFO_V1(jam_sign_note);

/* jam_sign_note(text, name, seed) signs text (ending in a newline) with the Ed25519 key of seed. */
Datum
jam_sign_note(PG_FUNCTION_ARGS)
{
	char	   *body;
	char	   *name;
	bytea	   *seed;

	jam_require_arg(fcinfo, 0, "text");
	jam_require_arg(fcinfo, 1, "name");
	jam_require_arg(fcinfo, 2, "seed");
	body = text_to_cstring(PG_GETARG_TEXT_PP(0));
	name = check_key_name(PG_GETARG_TEXT_PP(1));
	seed = PG_GETARG_BYTEA_PP(2);
	check_seed(seed);
	if (*body == '\0' || body[strlen(body) - 1] != '\n')
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("note text must end with a newline")));
	PG_RETURN_TEXT_P(cstring_to_text(jam_note_sign(body, name, (const uint8 *) VARDATA_ANY(seed))));
}

PG_FUNCTION_INFO_V1(jam_note_verifier_key_sql);

/* jam_note_verifier_key(name, seed) returns the signed-note verifier key of the seed's Ed25519 key. */
Datum
jam_note_verifier_key_sql(PG_FUNCTION_ARGS)
{
	char	   *name;
	bytea	   *seed;
	uint8		public_key[crypto_sign_PUBLICKEYBYTES];
	uint8		secret[crypto_sign_SECRETKEYBYTES];

	jam_require_arg(fcinfo, 0, "name");
	jam_require_arg(fcinfo, 1, "seed");
	name = check_key_name(PG_GETARG_TEXT_PP(0));
	seed = PG_GETARG_BYTEA_PP(1);
	check_seed(seed);
	crypto_sign_seed_keypair(public_key, secret, (const uint8 *) VARDATA_ANY(seed));
	sodium_memzero(secret, sizeof(secret));
	PG_RETURN_TEXT_P(cstring_to_text(jam_note_verifier_key(name, public_key)));
}
