/*
 * verify.c: checks a client can run without trusting this node, on any
 * log of RFC 9162's construction (jam_verify_inclusion,
 * jam_verify_consistency, jam_verify_checkpoint), and pure helpers over
 * an in-memory list of leaves and over signed notes, for clients and tests.
 *
 * A well-formed proof that does not check out is false, not an error; a
 * value that is not lowercase hex is invalid_hash; a null argument is
 * invalid_argument.  Sizes and positions that no tree has (negative, a
 * leaf at or past the tree's size) make a proof false, as in
 * transparency-dev/merkle, whose whole suite test/t/010 runs.
 */
#include "jam.h"
#include "errors.h"
#include "merkle.h"
#include "note.h"

#include <sodium.h>

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"

/* Room for any proof; a longer array cannot verify. */
#define MAX_PROOF JAM_MERKLE_MAX_CONSISTENCY
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

/*
 * jam_verify_inclusion(leaf_hash, seq, tree_size, proof, root): does proof
 * put the leaf hash at position seq of the tree of tree_size leaves whose
 * root is root (RFC 9162 section 2.1.3.2)?  False, not an error, for a
 * wrong or malformed proof, seq < 0, tree_size <= 0, seq >= tree_size,
 * or hex values that are not 32 bytes; invalid_hash for text that is not
 * lowercase hex of even length.
 */
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

/*
 * jam_verify_consistency(first, second, proof, first_root, second_root):
 * does proof show that the tree of second leaves with root second_root
 * extends the tree of first leaves with root first_root (RFC 9162 section
 * 2.1.4.2)?  Equal sizes need an empty proof and equal roots.  False, not
 * an error, for a wrong or malformed proof, first <= 0 (the empty tree
 * proves nothing, as in transparency-dev/merkle), first > second, or hex
 * values that are not 32 bytes; invalid_hash for text that is not
 * lowercase hex of even length.
 */
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

/*
 * jam_verify_checkpoint(note, verifier_key): is the signed note (any
 * signed note, a checkpoint or not) signed by the key?  False, never an
 * error, for a malformed note or key; see jam_note_verify.
 */
Datum
jam_verify_checkpoint(PG_FUNCTION_ARGS)
{
	jam_require_arg(fcinfo, 0, "note");
	jam_require_arg(fcinfo, 1, "verifier_key");
	PG_RETURN_BOOL(jam_note_verify(text_to_cstring(PG_GETARG_TEXT_PP(0)),
								   text_to_cstring(PG_GETARG_TEXT_PP(1))));
}

/*
 * A tree over in-memory leaf inputs, kept as a log keeps it: every
 * complete subtree that jam_merkle_frontier_append reports, and the
 * frontier.  Proofs then read it through the same fetch interface and
 * with the same O(log n) fetches as a stored log.
 */
typedef struct LeafTree
{
	uint64		n;
	uint8	   *levels[JAM_MERKLE_MAX_HEIGHT];	/* level L: n >> L hashes */
	uint8		frontier[JAM_MERKLE_MAX_HEIGHT][JAM_HASH_BYTES];
} LeafTree;

static void
fetch_from_tree(void *ctx, int level, uint64 index, uint8 out[JAM_HASH_BYTES])
{
	LeafTree   *tree = (LeafTree *) ctx;

	if (level < 0 || level >= JAM_MERKLE_MAX_HEIGHT || index >= (tree->n >> level))
		elog(ERROR, "jam Merkle tree of " UINT64_FORMAT " leaves has no complete node (%d, " UINT64_FORMAT ")",
			 tree->n, level, index);
	memcpy(out, tree->levels[level] + index * JAM_HASH_BYTES, JAM_HASH_BYTES);
}

static void
load_leaves(FunctionCallInfo fcinfo, LeafTree *tree)
{
	ArrayType  *inputs;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	JamMerkleNode completed[JAM_MERKLE_MAX_HEIGHT];

	jam_require_arg(fcinfo, 0, "leaf_inputs");
	inputs = PG_GETARG_ARRAYTYPE_P(0);
	if (ARR_NDIM(inputs) > 1)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("leaf_inputs must be a one-dimensional array")));
	deconstruct_array(inputs, BYTEAOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);

	tree->n = 0;
	for (int level = 0; level < JAM_MERKLE_MAX_HEIGHT; level++)
		tree->levels[level] = ((uint64) n >> level) > 0 ?
			palloc(((Size) n >> level) * JAM_HASH_BYTES) : NULL;
	for (int i = 0; i < n; i++)
	{
		bytea	   *entry;
		uint8		leaf[JAM_HASH_BYTES];
		int			n_completed;

		if (nulls[i])
			ereport(ERROR,
					(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
					 errmsg("leaf_inputs[%d] is null", i + 1)));
		entry = DatumGetByteaPP(elems[i]);
		jam_merkle_leaf_hash((const uint8 *) VARDATA_ANY(entry), VARSIZE_ANY_EXHDR(entry), leaf);
		n_completed = jam_merkle_frontier_append(tree->n, tree->frontier, leaf, completed);
		for (int c = 0; c < n_completed; c++)
			memcpy(tree->levels[completed[c].level] + completed[c].index * JAM_HASH_BYTES,
				   completed[c].hash, JAM_HASH_BYTES);
		tree->n++;
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

/*
 * jam_merkle_root(leaf_inputs) returns MTH(leaf_inputs), the RFC 9162 root
 * of the tree over leaf_inputs (SHA-256 of nothing for none).  It reads
 * the root both from the stored subtrees and from the frontier, as a log
 * does, and insists that they agree.
 */
Datum
jam_merkle_root_sql(PG_FUNCTION_ARGS)
{
	LeafTree	tree;
	uint8		root[JAM_HASH_BYTES];
	uint8		frontier_root[JAM_HASH_BYTES];
	uint8		refetched[JAM_MERKLE_MAX_HEIGHT][JAM_HASH_BYTES];
	int			n_frontier;

	load_leaves(fcinfo, &tree);
	jam_merkle_root(tree.n, fetch_from_tree, &tree, root);
	jam_merkle_frontier_root(tree.n, tree.frontier, frontier_root);
	n_frontier = jam_merkle_frontier_from_fetch(tree.n, fetch_from_tree, &tree, refetched);
	if (memcmp(root, frontier_root, JAM_HASH_BYTES) != 0 ||
		n_frontier != jam_merkle_frontier_length(tree.n) ||
		memcmp(refetched, tree.frontier, (Size) n_frontier * JAM_HASH_BYTES) != 0)
		elog(ERROR, "jam Merkle roots from subtrees and from the frontier differ");
	PG_RETURN_TEXT_P(jam_hash_to_text(root));
}

PG_FUNCTION_INFO_V1(jam_merkle_inclusion_proof_sql);

/*
 * jam_merkle_inclusion_proof(leaf_inputs, seq, tree_size) returns
 * PATH(seq, leaf_inputs[0:tree_size]), the inclusion proof of leaf seq in
 * the tree of the first tree_size leaves; invalid_tree_size unless
 * 1 <= tree_size <= the number of leaves and 0 <= seq < tree_size.
 */
Datum
jam_merkle_inclusion_proof_sql(PG_FUNCTION_ARGS)
{
	LeafTree	leaves;
	uint8		proof[JAM_MERKLE_MAX_INCLUSION][JAM_HASH_BYTES];
	int64		seq;
	int64		tree_size;
	int			n;

	load_leaves(fcinfo, &leaves);
	jam_require_arg(fcinfo, 1, "seq");
	jam_require_arg(fcinfo, 2, "tree_size");
	seq = PG_GETARG_INT64(1);
	tree_size = PG_GETARG_INT64(2);
	check_position("tree size", tree_size, 1, (int64) leaves.n);
	check_position("seq", seq, 0, tree_size - 1);
	n = jam_merkle_inclusion_proof(seq, tree_size, fetch_from_tree, &leaves, proof);
	PG_RETURN_ARRAYTYPE_P(hashes_to_array(proof, n));
}

PG_FUNCTION_INFO_V1(jam_merkle_consistency_proof_sql);

/*
 * jam_merkle_consistency_proof(leaf_inputs, first, second) returns
 * PROOF(first, leaf_inputs[0:second]), the consistency proof between the
 * trees of the first and second leaves (empty when first is 0 or equals
 * second); invalid_tree_size unless 0 <= first <= second <= the number of
 * leaves.
 */
Datum
jam_merkle_consistency_proof_sql(PG_FUNCTION_ARGS)
{
	LeafTree	leaves;
	uint8		proof[MAX_PROOF][JAM_HASH_BYTES];
	int64		first;
	int64		second;
	int			n;

	load_leaves(fcinfo, &leaves);
	jam_require_arg(fcinfo, 1, "first");
	jam_require_arg(fcinfo, 2, "second");
	first = PG_GETARG_INT64(1);
	second = PG_GETARG_INT64(2);
	check_position("second tree size", second, 0, (int64) leaves.n);
	check_position("first tree size", first, 0, second);
	n = jam_merkle_consistency_proof(first, second, fetch_from_tree, &leaves, proof);
	PG_RETURN_ARRAYTYPE_P(hashes_to_array(proof, n));
}

static void
check_seed(bytea *seed)
{
	if (VARSIZE_ANY_EXHDR(seed) != JAM_NOTE_SEED_BYTES)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("seed must be %d bytes", JAM_NOTE_SEED_BYTES),
				 errdetail("An Ed25519 seed is %d bytes; this one has %zu.",
						   JAM_NOTE_SEED_BYTES, VARSIZE_ANY_EXHDR(seed))));
}

PG_FUNCTION_INFO_V1(jam_sign_note);

/*
 * jam_sign_note(text, name, seed) returns text signed as a C2SP signed
 * note by the Ed25519 key of the 32-byte seed under the key name name:
 * text, a blank line, one signature line.  invalid_argument for a name
 * that is not a key name (empty, a space or "+"), a seed that is not 32
 * bytes, or text that is empty, does not end in a newline or holds a
 * control character other than newline.
 */
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
	name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	seed = PG_GETARG_BYTEA_PP(2);
	check_seed(seed);
	PG_RETURN_TEXT_P(cstring_to_text(jam_note_sign(body, name, (const uint8 *) VARDATA_ANY(seed))));
}

PG_FUNCTION_INFO_V1(jam_note_verifier_key_sql);

/*
 * jam_note_verifier_key(name, seed) returns the signed-note verifier key
 * "name+<key id>+<base64 key>" of the Ed25519 key of the 32-byte seed,
 * the key jam_verify_checkpoint takes; invalid_argument as jam_sign_note.
 */
Datum
jam_note_verifier_key_sql(PG_FUNCTION_ARGS)
{
	char	   *name;
	bytea	   *seed;
	uint8		public_key[crypto_sign_PUBLICKEYBYTES];
	uint8		secret[crypto_sign_SECRETKEYBYTES];

	jam_require_arg(fcinfo, 0, "name");
	jam_require_arg(fcinfo, 1, "seed");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	seed = PG_GETARG_BYTEA_PP(1);
	check_seed(seed);
	crypto_sign_seed_keypair(public_key, secret, (const uint8 *) VARDATA_ANY(seed));
	sodium_memzero(secret, sizeof(secret));
	PG_RETURN_TEXT_P(cstring_to_text(jam_note_verifier_key(name, public_key)));
}
