/*
 * witnessing.c: this node's logs witnessed by others, as a C2SP
 * tlog-witness client.
 *
 * An operator registers witnesses (jam_add_witness: the cosigner's name,
 * verifier key and submission prefix).  jam_witness_checkpoints() then
 * sends each service's current checkpoint to each witness with the
 * add-checkpoint protocol: "old <the size the witness last cosigned>", the
 * consistency proof from there, a blank line, the signed checkpoint.  A
 * 409 tells the size the witness really holds (text/x.tlog.size): the
 * request is made once more from that size.  Each valid cosignature in a
 * 200 is checked against the witness's key and kept (jam_cosignatures);
 * served checkpoints carry them (cosigned.c).  Failures are recorded per
 * witness and service, never raised: one witness down must not keep the
 * others from cosigning.
 *
 * Requests go out over HTTP from the calling backend (libcurl), each
 * bounded by jam.witness_timeout_ms, while it holds no lock: the log's
 * head is read once, and proofs and checkpoints of a given size never
 * change.  Run it from pg_cron, or by hand.
 */
#include "jam.h"
#include "cosignature.h"
#include "errors.h"
#include "metrics.h"
#include "note.h"
#include "witnessing.h"

#include <curl/curl.h>
#include <sodium.h>

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"

int			jam_witness_timeout_ms = 5000;
int			jam_witness_quorum = 0;

/* Answers larger than this are not a witness's: the read stops there. */
#define MAX_ANSWER_BYTES 65536

static JamStatement upsert_witness = {
	"INSERT INTO jam.jam_witnesses AS w (name, verifier_key, public_key, url) VALUES ($1, $2, $3, $4) "
	"ON CONFLICT (name) DO UPDATE SET verifier_key = EXCLUDED.verifier_key, "
	"public_key = EXCLUDED.public_key, url = EXCLUDED.url "
	"RETURNING jsonb_build_object('name', name, 'verifier_key', verifier_key, 'url', url, "
	"'created_at', created_at)",
	4, {TEXTOID, TEXTOID, BYTEAOID, TEXTOID}
};

/* Every (witness, service) to send, with what the witness is known to hold. */
static JamStatement select_work = {
	"SELECT w.name, w.verifier_key, w.url, s.service_id, s.log_size, s.log_root, "
	"coalesce(z.tree_size, 0), EXISTS (SELECT FROM jam.jam_cosignatures c "
	"  WHERE c.service_id = s.service_id AND c.tree_size = s.log_size AND c.witness = w.name) "
	"FROM jam.jam_witnesses w CROSS JOIN jam.jam_services s "
	"LEFT JOIN jam.jam_witness_sizes z ON z.witness = w.name AND z.service_id = s.service_id "
	"WHERE s.log_size > 0 AND ($1::text IS NULL OR s.service_id = $1) "
	"ORDER BY s.service_id, w.name",
	1, {TEXTOID}
};

static JamStatement select_service = {
	"SELECT 1 FROM jam.jam_services WHERE service_id = $1",
	1, {TEXTOID}
};

static JamStatement record_size = {
	"INSERT INTO jam.jam_witness_sizes AS z (witness, service_id, tree_size, last_error, updated_at) "
	"VALUES ($1, $2, $3, $4, now()) ON CONFLICT (witness, service_id) DO UPDATE "
	"SET tree_size = EXCLUDED.tree_size, last_error = EXCLUDED.last_error, updated_at = now()",
	4, {TEXTOID, TEXTOID, INT8OID, TEXTOID}
};

static JamStatement insert_cosignature = {
	"INSERT INTO jam.jam_cosignatures (service_id, tree_size, witness, root, cosigned_at, signature) "
	"VALUES ($1, $2, $3, $4, to_timestamp($5), $6) "
	"ON CONFLICT (service_id, tree_size, witness) DO UPDATE "
	"SET root = EXCLUDED.root, cosigned_at = EXCLUDED.cosigned_at, signature = EXCLUDED.signature",
	6, {TEXTOID, INT8OID, TEXTOID, BYTEAOID, INT8OID, BYTEAOID}
};

static JamStatement select_proof = {
	"SELECT jam.jam_consistency_proof($1, $2, $3)",
	3, {TEXTOID, INT8OID, INT8OID}
};

/* Defines jam.witness_quorum and jam.witness_timeout_ms; before jam_define_gucs(). */
void
jam_define_witness_gucs(void)
{
	DefineCustomIntVariable("jam.witness_quorum",
							"How many witness cosignatures a checkpoint needs to count as witnessed.",
							"With more than 0, the checkpoint served to tile clients is the latest one that many witnesses cosigned.",
							&jam_witness_quorum, 0, 0, 100, PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("jam.witness_timeout_ms",
							"How long jam_witness_checkpoints waits for a witness's answer.",
							NULL, &jam_witness_timeout_ms, 5000, 100, 600000, PGC_SUSET,
							GUC_UNIT_MS, NULL, NULL, NULL);
}

PG_FUNCTION_INFO_V1(jam_add_witness);

/*
 * jam_add_witness(name, verifier_key, url) registers (or updates) a
 * witness of this node's logs: its cosigner name, its verifier key (a
 * cosignature key, type 0x04, or its plain Ed25519 note key), and its
 * submission prefix (url + "/add-checkpoint" is called).  An operator's call.
 */
Datum
jam_add_witness(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *verifier_key;
	char	   *url;
	JamCosigner cosigner;
	Datum		values[4];
	Datum		doc;

	jam_check_enabled();
	jam_require_arg(fcinfo, 0, "name");
	jam_require_arg(fcinfo, 1, "verifier_key");
	jam_require_arg(fcinfo, 2, "url");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	verifier_key = text_to_cstring(PG_GETARG_TEXT_PP(1));
	url = text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (!jam_cosigner_parse(verifier_key, &cosigner))
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("\"%s\" is not an Ed25519 cosigner verifier key", verifier_key)));
	if (strcmp(cosigner.name, name) != 0)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("the verifier key is named \"%s\", not \"%s\"", cosigner.name, name),
				 errdetail("A witness's name is the name on its cosignature lines.")));
	if ((strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) ||
		strpbrk(url, " \t\r\n") != NULL)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INVALID_ARGUMENT),
				 errmsg("a witness's submission prefix is an http:// or https:// URL")));
	values[0] = CStringGetTextDatum(name);
	values[1] = CStringGetTextDatum(verifier_key);
	values[2] = PointerGetDatum(jam_bytes_to_bytea(cosigner.public_key, 32));
	values[3] = CStringGetTextDatum(url);
	SPI_connect();
	jam_spi_exec(&upsert_witness, values, NULL, false, 1);
	doc = jam_spi_copy_jsonb(1);
	SPI_finish();
	PG_RETURN_DATUM(doc);
}

/* What a witness answered. */
typedef struct Answer
{
	long		status;
	StringInfoData body;
	bool		truncated;
	char		error[CURL_ERROR_SIZE];
} Answer;

static size_t
collect(char *data, size_t size, size_t n, void *ctx)
{
	Answer	   *a = (Answer *) ctx;
	size_t		len = size * n;

	if (a->body.len + len > MAX_ANSWER_BYTES)
	{
		a->truncated = true;
		return 0;
	}
	/* No ereport may cross libcurl's frames: the buffer is bounded above. */
	appendBinaryStringInfo(&a->body, data, (int) len);
	return len;
}

/* POSTs body to url; false with a->error when no HTTP answer came. */
static bool
post(const char *url, const char *body, Answer *a)
{
	static bool curl_ready = false;
	CURL	   *curl;
	struct curl_slist *headers = NULL;
	CURLcode	rc;

	if (!curl_ready)
	{
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			elog(ERROR, "jam could not initialise libcurl");
		curl_ready = true;
	}
	initStringInfo(&a->body);
	a->truncated = false;
	a->status = 0;
	a->error[0] = '\0';
	curl = curl_easy_init();
	if (curl == NULL)
	{
		strlcpy(a->error, "libcurl could not start a request", sizeof(a->error));
		return false;
	}
	headers = curl_slist_append(headers, "Content-Type: text/plain; charset=utf-8");
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long) strlen(body));
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, a);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long) jam_witness_timeout_ms);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, a->error);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	rc = curl_easy_perform(curl);
	if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && a->truncated))
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &a->status);
	else if (a->error[0] == '\0')
		strlcpy(a->error, curl_easy_strerror(rc), sizeof(a->error));
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
	return a->status != 0;
}

/* One witness of one service, as select_work reads them. */
typedef struct Work
{
	char	   *witness;
	char	   *verifier_key;
	char	   *url;
	char	   *service_id;
	int64		size;
	uint8		root[JAM_HASH_BYTES];
	int64		witness_size;
	bool		done;			/* already cosigned at this size */
} Work;

/* The add-checkpoint request from old to the work's size. Needs SPI. */
static char *
request_body(const Work *w, int64 old)
{
	StringInfoData b;
	Datum		values[3];
	bool		isnull;

	initStringInfo(&b);
	appendStringInfo(&b, "old %lld\n", (long long) old);
	if (old > 0 && old < w->size)
	{
		ArrayType  *proof;
		Datum	   *elems;
		int			n;

		values[0] = CStringGetTextDatum(w->service_id);
		values[1] = Int64GetDatum(old);
		values[2] = Int64GetDatum(w->size);
		jam_spi_exec(&select_proof, values, NULL, false, 1);
		proof = DatumGetArrayTypeP(jam_spi_result_datum(1, &isnull));
		deconstruct_array(proof, TEXTOID, -1, false, TYPALIGN_INT, &elems, NULL, &n);
		for (int i = 0; i < n; i++)
		{
			uint8		hash[JAM_HASH_BYTES];
			char		b64[sodium_base64_ENCODED_LEN(JAM_HASH_BYTES, sodium_base64_VARIANT_ORIGINAL)];

			jam_parse_hash(DatumGetTextPP(elems[i]), "proof hash", hash);
			sodium_bin2base64(b64, sizeof(b64), hash, JAM_HASH_BYTES, sodium_base64_VARIANT_ORIGINAL);
			appendStringInfo(&b, "%s\n", b64);
		}
	}
	appendStringInfo(&b, "\n%s", jam_checkpoint_note(w->service_id, w->size, w->root));
	return b.data;
}

/*
 * Keeps the first cosignature in a 200's body that the witness's key
 * verifies over the checkpoint; lines of other keys are ignored, as the
 * spec says.  False when there is none.  Needs SPI.
 */
static bool
keep_cosignature(const Work *w, const char *answer)
{
	JamCosigner cosigner;
	char	   *body = jam_note_checkpoint_body(psprintf("%s/%s", jam_node_name, w->service_id),
												(uint64) w->size, w->root);
	uint8		raw[JAM_COSIGNATURE_BYTES];

	if (!jam_cosigner_parse(w->verifier_key, &cosigner))
		return false;
	for (const char *line = answer; *line;)
	{
		const char *end = strchr(line, '\n');
		size_t		len = end ? (size_t) (end - line) : strlen(line);

		if (jam_cosignature_line_verify(body, line, len, &cosigner, raw))
		{
			Datum		values[6];

			values[0] = CStringGetTextDatum(w->service_id);
			values[1] = Int64GetDatum(w->size);
			values[2] = CStringGetTextDatum(w->witness);
			values[3] = PointerGetDatum(jam_bytes_to_bytea(w->root, JAM_HASH_BYTES));
			values[4] = Int64GetDatum((int64) jam_cosignature_timestamp(raw));
			values[5] = PointerGetDatum(jam_bytes_to_bytea(raw, JAM_COSIGNATURE_BYTES));
			jam_spi_exec(&insert_cosignature, values, NULL, false, 0);
			return true;
		}
		line += len + (end ? 1 : 0);
	}
	return false;
}

static void
record(const Work *w, int64 size, const char *error)
{
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', error ? ' ' : 'n'};

	values[0] = CStringGetTextDatum(w->witness);
	values[1] = CStringGetTextDatum(w->service_id);
	values[2] = Int64GetDatum(size);
	values[3] = error ? CStringGetTextDatum(error) : (Datum) 0;
	jam_spi_exec(&record_size, values, nulls, false, 0);
}

/* The first line of a witness's answer, for an error message. */
static char *
first_line(const Answer *a)
{
	return pnstrdup(a->body.data, Min(strcspn(a->body.data, "\n"), 200));
}

/*
 * Sends the work's checkpoint to its witness (again from the size a 409
 * names, once) and keeps the cosignature; appends the outcome to out.
 * Needs SPI.
 */
static void
witness_one(const Work *w, StringInfo out)
{
	int64		old = w->witness_size;
	const char *outcome = "failed";
	char	   *error = NULL;
	long		status = 0;
	char	   *url = psprintf("%s/add-checkpoint", w->url);

	for (int attempt = 0; attempt < 2; attempt++)
	{
		Answer		a;

		if (old > w->size)
		{
			error = psprintf("the witness holds a tree of %lld entries, larger than this log's %lld",
							 (long long) old, (long long) w->size);
			break;
		}
		if (!post(url, request_body(w, old), &a))
		{
			error = psprintf("no answer from %s: %s", url, a.error);
			break;
		}
		status = a.status;
		if (a.status == 200)
		{
			if (keep_cosignature(w, a.body.data))
			{
				outcome = "cosigned";
				error = NULL;
			}
			else
				error = pstrdup("the answer holds no cosignature the witness's key verifies");
			break;
		}
		if (a.status == 409)
		{
			int64		held;
			char		trailing;

			/* text/x.tlog.size: the size the witness last cosigned, and a newline. */
			if (sscanf(a.body.data, "%lld%c", (long long *) &held, &trailing) != 2 ||
				trailing != '\n' || held < 0)
			{
				error = psprintf("a 409 without a tree size: %s", first_line(&a));
				break;
			}
			error = psprintf("the witness holds size %lld, not %lld", (long long) held, (long long) old);
			old = held;
			continue;
		}
		error = psprintf("HTTP %ld: %s", a.status, first_line(&a));
		break;
	}
	record(w, strcmp(outcome, "cosigned") == 0 ? w->size : old, error);

	appendStringInfo(out, "%s{\"witness\": ", out->len > 1 ? ", " : "");
	escape_json(out, w->witness);
	appendStringInfoString(out, ", \"service_id\": ");
	escape_json(out, w->service_id);
	appendStringInfo(out, ", \"tree_size\": %lld, \"outcome\": \"%s\", \"http_status\": ",
					 (long long) w->size, outcome);
	if (status)
		appendStringInfo(out, "%ld", status);
	else
		appendStringInfoString(out, "null");
	appendStringInfoString(out, ", \"error\": ");
	if (error)
		escape_json(out, error);
	else
		appendStringInfoString(out, "null");
	appendStringInfoChar(out, '}');
}

PG_FUNCTION_INFO_V1(jam_witness_checkpoints);

/*
 * jam_witness_checkpoints(service_id DEFAULT NULL) asks every registered
 * witness to cosign the current checkpoint of the service (or of every
 * service with entries) and returns what happened, one element per
 * witness and service: {witness, service_id, tree_size, outcome
 * (cosigned, up_to_date, failed), http_status, error}.  An operator's call.
 */
Datum
jam_witness_checkpoints(PG_FUNCTION_ARGS)
{
	JamMetricsCall metrics = jam_metrics_begin(JAM_OP_WITNESS_CHECKPOINTS);
	char	   *service_id = NULL;
	Datum		values[1];
	char		nulls[1] = {'n'};
	int			rows;
	Work	   *work;
	StringInfoData out;
	Datum		doc;

	jam_check_enabled();
	if (!PG_ARGISNULL(0))
	{
		service_id = jam_check_service_id(PG_GETARG_TEXT_PP(0));
		values[0] = CStringGetTextDatum(service_id);
		nulls[0] = ' ';
	}
	SPI_connect();
	if (service_id && jam_spi_exec(&select_service, values, NULL, false, 1) == 0)
		ereport(ERROR,
				(jam_errcode(JAM_ERR_SERVICE_NOT_FOUND),
				 errmsg("service \"%s\" not found", service_id)));
	rows = jam_spi_exec(&select_work, values, nulls, false, 0);
	work = palloc0(sizeof(Work) * Max(rows, 1));
	for (int i = 0; i < rows; i++)
	{
		HeapTuple	row = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		work[i].witness = SPI_getvalue(row, desc, 1);
		work[i].verifier_key = SPI_getvalue(row, desc, 2);
		work[i].url = SPI_getvalue(row, desc, 3);
		work[i].service_id = SPI_getvalue(row, desc, 4);
		work[i].size = DatumGetInt64(SPI_getbinval(row, desc, 5, &isnull));
		memcpy(work[i].root, VARDATA_ANY(DatumGetByteaPP(SPI_getbinval(row, desc, 6, &isnull))),
			   JAM_HASH_BYTES);
		work[i].witness_size = DatumGetInt64(SPI_getbinval(row, desc, 7, &isnull));
		work[i].done = DatumGetBool(SPI_getbinval(row, desc, 8, &isnull));
	}

	initStringInfo(&out);
	appendStringInfoChar(&out, '[');
	for (int i = 0; i < rows; i++)
	{
		CHECK_FOR_INTERRUPTS();
		if (work[i].done)
		{
			appendStringInfo(&out, "%s{\"witness\": ", out.len > 1 ? ", " : "");
			escape_json(&out, work[i].witness);
			appendStringInfoString(&out, ", \"service_id\": ");
			escape_json(&out, work[i].service_id);
			appendStringInfo(&out, ", \"tree_size\": %lld, \"outcome\": \"up_to_date\", "
							 "\"http_status\": null, \"error\": null}", (long long) work[i].size);
			continue;
		}
		witness_one(&work[i], &out);
	}
	appendStringInfoChar(&out, ']');
	doc = SPI_datumTransfer(DirectFunctionCall1(jsonb_in, CStringGetDatum(out.data)), false, -1);
	SPI_finish();

	jam_metrics_end(metrics, JAM_OUTCOME_OK);
	PG_RETURN_DATUM(doc);
}
