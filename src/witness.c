/*
 * witness.c: this node as a C2SP tlog-witness (c2sp.org/tlog-witness) of
 * other logs.
 *
 * An operator registers each log to witness by its origin and verifier
 * key (jam_add_witnessed_log).  A log then sends add-checkpoint requests:
 * "old <size>", a consistency proof from that size, a blank line, and its
 * new signed checkpoint.  The witness checks the log's signature, that the
 * old size is the size it last cosigned, and the proof; then, under the
 * lock of the log's row, records the new size and root (never going
 * backwards: the old size must be the recorded one, and the new one is at
 * least as large) and cosigns, in the transaction that answers.  So two
 * requests racing with different sizes cannot roll the record back, and no
 * cosignature leaves before its record is committed.
 *
 * Outcomes follow the spec: a malformed request is invalid_argument (400),
 * an unknown origin log_not_witnessed (404), a checkpoint without a valid
 * signature of the log invalid_checkpoint_signature (403), a proof that
 * does not verify inconsistent_checkpoint (422); a stale old size (or the
 * same size with another root) is answered, not raised: {"status": 409,
 * "size": <recorded size>}, which the shim sends as text/x.tlog.size.
 */
#include "jam.h"
#include "cosignature.h"
#include "errors.h"
#include "merkle.h"
#include "metrics.h"
#include "note.h"

#include <sodium.h>

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/timestamp.h"

/* The spec's limit on consistency proof lines. */
#define MAX_PROOF_LINES 63

static JamStatement lock_log = {
	"SELECT verifier_key, tree_size, root FROM jam.jam_witnessed_logs WHERE origin = $1 FOR UPDATE",
	1, {TEXTOID}
};

static JamStatement record_log = {
	"UPDATE jam.jam_witnessed_logs SET tree_size = $2, root = $3, updated_at = now() "
	"WHERE origin = $1 AND tree_size <= $2",
	3, {TEXTOID, INT8OID, BYTEAOID}
};

static JamStatement upsert_log = {
	"INSERT INTO jam.jam_witnessed_logs AS l (origin, verifier_key) VALUES ($1, $2) "
	"ON CONFLICT (origin) DO UPDATE SET verifier_key = EXCLUDED.verifier_key "
	"RETURNING jsonb_build_object('origin', origin, 'verifier_key', verifier_key, "
	"'tree_size', tree_size, 'root', encode(root, 'base64'), 'updated_at', updated_at)",
	2, {TEXTOID, TEXTOID}
};

/* An add-checkpoint request, parsed. */
typedef struct AddCheckpoint
{
	int64		old_size;
	int			n_proof;
	uint8		proof[MAX_PROOF_LINES][JAM_HASH_BYTES];
	char	   *note;			/* the checkpoint, its signatures included */
	char	   *body;			/* the checkpoint's text: what is signed and cosigned */
	char	   *origin;
	int64		size;
	uint8		root[JAM_HASH_BYTES];
} AddCheckpoint;

static void
malformed(const char *message)
{
	ereport(ERROR,
			(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
			 errmsg("malformed add-checkpoint request: %s", message)));
}

/* A decimal without leading zeros (but "0"), 0 to 2^63 - 1; -1 otherwise. */
static int64
parse_size(const char *s, size_t len)
{
	int64		v = 0;

	if (len == 0 || len > 19 || (len > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < len; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (PG_INT64_MAX - (s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* Standard padded base64 of exactly 32 bytes. */
static bool
parse_hash(const char *s, size_t len, uint8 out[JAM_HASH_BYTES])
{
	size_t		n;

	return len == 44 &&
		sodium_base642bin(out, JAM_HASH_BYTES, s, len, NULL, &n, NULL,
						  sodium_base64_VARIANT_ORIGINAL) == 0 && n == JAM_HASH_BYTES;
}

/* The next line of text at *p (without its newline); false when no newline ends one. */
static bool
next_line(const char **p, const char **line, size_t *len)
{
	const char *nl = strchr(*p, '\n');

	if (nl == NULL)
		return false;
	*line = *p;
	*len = nl - *p;
	*p = nl + 1;
	return true;
}

/* Parses an add-checkpoint request body as the spec lays it out; raises invalid_argument. */
static void
parse_request(const char *request, AddCheckpoint *out)
{
	const char *p = request;
	const char *line;
	size_t		len;
	const char *split;

	if (!jam_note_valid_text(request, strlen(request)))
		malformed("it must be UTF-8 text without control characters other than newline");
	if (!next_line(&p, &line, &len) || len < 5 || strncmp(line, "old ", 4) != 0 ||
		(out->old_size = parse_size(line + 4, len - 4)) < 0)
		malformed("the first line must be \"old <size>\", the size in decimal without leading zeros");
	out->n_proof = 0;
	for (;;)
	{
		if (!next_line(&p, &line, &len))
			malformed("no blank line before the checkpoint");
		if (len == 0)
			break;
		if (out->n_proof == MAX_PROOF_LINES)
			malformed("more than 63 consistency proof lines");
		if (!parse_hash(line, len, out->proof[out->n_proof++]))
			malformed("a consistency proof line is not one hash in base64");
	}
	out->note = pstrdup(p);
	split = strstr(out->note, "\n\n");
	if (split == NULL)
		malformed("the checkpoint has no blank line before its signatures");
	out->body = pnstrdup(out->note, split + 1 - out->note);

	p = out->body;
	if (!next_line(&p, &line, &len) || len == 0)
		malformed("the checkpoint has no origin line");
	out->origin = pnstrdup(line, len);
	if (!next_line(&p, &line, &len) || (out->size = parse_size(line, len)) < 0)
		malformed("the checkpoint's second line must be its tree size in decimal");
	if (!next_line(&p, &line, &len) || !parse_hash(line, len, out->root))
		malformed("the checkpoint's third line must be its root hash in base64");
	/* Extension lines may follow; the cosignature covers them with the rest. */
}

PG_FUNCTION_INFO_V1(jam_witness_add_checkpoint);

/*
 * jam_witness_add_checkpoint(request) is the tlog-witness add-checkpoint
 * call: it checks the request against the log's recorded state, records
 * the new checkpoint and returns {"status": 200, "cosignatures": "<the
 * signature line>\n"}, or {"status": 409, "size": <recorded size>}.
 */
Datum
jam_witness_add_checkpoint(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_WITNESS_ADD_CHECKPOINT);
	AddCheckpoint req;
	Datum		values[3];
	bool		isnull;
	char	   *verifier_key;
	int64		recorded;
	uint8		recorded_root[JAM_HASH_BYTES];
	bool		has_root;
	const char *name;
	uint8		seed[32];
	uint8		public_key[32];
	char	   *line;
	StringInfoData doc;
	Datum		result;

	jam_check_enabled();
	jam_require_arg(fcinfo, 0, "request");
	parse_request(text_to_cstring(PG_GETARG_TEXT_PP(0)), &req);

	SPI_connect();
	values[0] = CStringGetTextDatum(req.origin);
	if (jam_spi_exec(&lock_log, values, NULL, false, 1) == 0)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_LOG_NOT_WITNESSED),
				 errmsg("this node witnesses no log with origin \"%s\"", req.origin),
				 errhint("An operator registers a log with jam_add_witnessed_log(origin, verifier_key).")));
	verifier_key = TextDatumGetCString(jam_spi_result_datum(1, &isnull));
	recorded = DatumGetInt64(jam_spi_result_datum(2, &isnull));
	{
		Datum		r = jam_spi_result_datum(3, &isnull);

		has_root = !isnull;
		if (has_root)
			memcpy(recorded_root, VARDATA_ANY(DatumGetByteaPP(r)), JAM_HASH_BYTES);
	}

	if (!jam_note_verify(req.note, verifier_key))
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_CHECKPOINT_SIGNATURE),
				 errmsg("the checkpoint carries no valid signature of log \"%s\"", req.origin)));
	if (req.old_size > req.size)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("the old size %lld is larger than the checkpoint's %lld",
						(long long) req.old_size, (long long) req.size)));

	/* A stale old size, or the same size with another root: the recorded size. */
	if (req.old_size != recorded ||
		(req.size == recorded && has_root && memcmp(req.root, recorded_root, JAM_HASH_BYTES) != 0))
	{
		SPI_finish();
		jam_metrics_end(metrics, JAM_OUTCOME_FAILED);
		PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(
												psprintf("{\"status\": 409, \"size\": %lld}",
														 (long long) recorded))));
	}

	if (req.old_size == 0 && req.n_proof > 0)
		malformed("a consistency proof from size 0 must be empty");
	if (req.size == 0)
	{
		uint8		empty[JAM_HASH_BYTES];

		jam_merkle_empty_root(empty);
		if (memcmp(req.root, empty, JAM_HASH_BYTES) != 0)
			ereport(ERROR,
					(jam_errcode(JAM_ERR_INCONSISTENT_CHECKPOINT),
					 errmsg("a checkpoint of size 0 must have the empty tree's root")));
	}
	else if (req.old_size == req.size ? req.n_proof != 0 :
			 req.old_size > 0 &&
			 !jam_merkle_verify_consistency(req.old_size, req.size,
											(const uint8 (*)[JAM_HASH_BYTES]) req.proof, req.n_proof,
											recorded_root, req.root))
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INCONSISTENT_CHECKPOINT),
				 errmsg("the consistency proof from size %lld to %lld does not verify",
						(long long) req.old_size, (long long) req.size),
				 errdetail("The checkpoint is not an extension of the tree this node cosigned for \"%s\".",
						   req.origin)));

	values[1] = Int64GetDatum(req.size);
	values[2] = PointerGetDatum(jam_bytes_to_bytea(req.root, JAM_HASH_BYTES));
	if (jam_spi_exec(&record_log, values, NULL, false, 0) != 1)
		elog(ERROR, "jam witness could not record log \"%s\" at size %lld", req.origin,
			 (long long) req.size);

	if (!jam_node_cosigner_key(&name, seed, public_key))
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("this node has no signing key yet")));
	line = jam_cosign(req.body, name, seed,
					  (uint64) (GetCurrentTimestamp() / USECS_PER_SEC +
								(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY), NULL);
	sodium_memzero(seed, sizeof(seed));

	initStringInfo(&doc);
	appendStringInfoString(&doc, "{\"status\": 200, \"cosignatures\": ");
	escape_json(&doc, line);
	appendStringInfoChar(&doc, '}');
	result = SPI_datumTransfer(DirectFunctionCall1(jsonb_in, CStringGetDatum(doc.data)), false, -1);
	SPI_finish();

	jam_metrics_end(metrics, JAM_OUTCOME_OK);
	PG_RETURN_DATUM(result);
}

PG_FUNCTION_INFO_V1(jam_add_witnessed_log);

/*
 * jam_add_witnessed_log(origin, verifier_key) registers (or re-keys) a log
 * this node witnesses: its checkpoints' origin line and the signed-note
 * verifier key of its Ed25519 key.  The recorded size stays as it was (0
 * for a new log).  An operator's call.
 */
Datum
jam_add_witnessed_log(PG_FUNCTION_ARGS)
{
	char	   *origin;
	char	   *verifier_key;
	char	   *key_name;
	uint8		public_key[32];
	Datum		values[2];
	Datum		doc;

	jam_check_enabled();
	jam_require_arg(fcinfo, 0, "origin");
	jam_require_arg(fcinfo, 1, "verifier_key");
	origin = text_to_cstring(PG_GETARG_TEXT_PP(0));
	verifier_key = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (origin[0] == '\0' || strchr(origin, '\n') != NULL || !jam_note_valid_text(origin, strlen(origin)))
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("an origin is one non-empty line of UTF-8 without control characters")));
	if (!jam_note_parse_verifier_key(verifier_key, &key_name, public_key))
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("\"%s\" is not an Ed25519 signed-note verifier key", verifier_key)));
	values[0] = CStringGetTextDatum(origin);
	values[1] = CStringGetTextDatum(verifier_key);
	SPI_connect();
	jam_spi_exec(&upsert_log, values, NULL, false, 1);
	doc = jam_spi_copy_jsonb(1);
	SPI_finish();
	PG_RETURN_DATUM(doc);
}
