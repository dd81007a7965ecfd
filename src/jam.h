/*
 * jam.h: declarations shared by the jam extension's source files.
 *
 * Each .c file owns one concern (hashing, preimages, packages, processing,
 * reports, errors, configuration); this header is the narrow surface they
 * share.
 */
#ifndef JAM_H
#define JAM_H

#include "postgres.h"
#include "fmgr.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/hsearch.h"
#include "storage/itemptr.h"

/* Content addresses: BLAKE2b-256, shown as 64 lowercase hex characters. */
#define JAM_HASH_BYTES 32
#define JAM_HASH_HEX_CHARS (JAM_HASH_BYTES * 2)

/* Execution contracts this node can run. */
#define JAM_CONTRACT_VERSION_MIN 1
#define JAM_CONTRACT_VERSION_MAX 1

/* A package may reference at most this many preimages. */
#define JAM_MAX_PREIMAGE_REFS 1024

/* config.c: GUC variables (jam.*). */
extern bool jam_enabled;
extern int	jam_max_preimage_bytes;
extern int	jam_max_payload_bytes;
extern char *jam_allowed_media_types;
extern int	jam_max_pending_packages;
extern bool jam_legacy_list_response;
extern char *jam_node_name;
extern void jam_define_gucs(void);

/* retention.c, retention_worker.c: retention settings and the retention worker. */
extern void jam_define_retention_gucs(void);
extern void jam_retention_worker_register(void);

/* hash.c */
extern void jam_blake2b256(const void *data, size_t len, uint8 out[JAM_HASH_BYTES]);
extern void jam_hex_encode(const uint8 *bytes, size_t len, char *out);
extern text *jam_hash_to_text(const uint8 hash[JAM_HASH_BYTES]);
extern bytea *jam_bytes_to_bytea(const uint8 *bytes, Size len);
extern void jam_parse_hash(text *hash, const char *what, uint8 out[JAM_HASH_BYTES]);
extern char *jam_normalize_hash(text *hash, const char *what);
extern Datum jam_hex_array(PG_FUNCTION_ARGS);

/* checks.c: argument checks shared by the API functions. */
#define JAM_SERVICE_ID_MAX 64		/* bytes in a service id */
extern void jam_check_enabled(void);
extern void jam_require_arg(FunctionCallInfo fcinfo, int argno, const char *name);
extern char *jam_check_service_id(text *service_id);
extern bool jam_is_valid_service_id(const char *s, int len);
extern void jam_check_pagination(int32 limit, int32 offset);
extern void jam_check_status_filter(text *status, const char *const *allowed);

/* The most bytes of a client's text an error message repeats (checks.c). */
#define JAM_SHOWN_INPUT_MAX 64
extern char *jam_shown_input(const char *given);

/* media_type.c */
extern char *jam_check_media_type(text *media_type);

/*
 * catalog.c: the generation of the installed tables.  1.0 kept hashes as
 * hex text (JAM_CATALOG_HEX); 1.1 keeps them as 32 bytes.
 */
typedef enum JamCatalog
{
	JAM_CATALOG_UNKNOWN = -1,
	JAM_CATALOG_HEX = 0,
	JAM_CATALOG_COMPACT = 1
} JamCatalog;

extern JamCatalog jam_catalog(void);
extern bool jam_log_has_package_id(void);
extern bool jam_services_have_counts(void);
extern bool jam_attestations_by_service_attester(void);

/*
 * spi_util.c: prepared statements kept for the life of the backend.
 *
 * Statements speak hex text to C in both catalogs, but for hashes C
 * computes and stores without reading them back.  Where a hash meets a
 * column, the SQL carries a marker that spi_util.c expands per catalog:
 *   @h(x)   a hex text value stored into or compared with a hash column
 *   @x(x)   a hash column read out as hex text
 *   @b(x)   a 32-byte bytea value stored into a hash column (the hot
 *           path's leaf hashes and roots: no hex on the way in)
 *   @ha(x)  a text[] of hex hashes, for a hash array column or = ANY
 *   @xa(x)  a hash array column read out as text[]
 *   @c(x)   SQL about what only the compact catalog has (1.1's tables),
 *           left out for the hex one
 * Each statement is prepared once per catalog it meets.
 */
typedef struct JamStatement
{
	const char *sql;
	int			nargs;
	Oid			argtypes[16];
	SPIPlanPtr	plan[2];		/* by JamCatalog */
	int			plan_options;	/* CURSOR_OPT_* to plan it with (0: as jam_spi_exec decides) */
} JamStatement;

extern char *jam_sql_for_catalog(const char *sql, JamCatalog catalog);

extern int	jam_spi_exec(JamStatement *stmt, Datum *values, const char *nulls,
						 bool read_only, long count);
extern void jam_spi_column(Datum *values, char *nulls, int k, Datum *elems, bool *isnull, int n,
						   Oid elemtype);
extern Datum jam_spi_result_datum(int column, bool *isnull);
extern Datum jam_spi_copy_jsonb(int column);

/* list.c: paginated lists of a table with two optional equality filters. */
struct JamService;
#define JAM_LIST_STATUSES_MAX 3
typedef struct JamList
{
	const char *table;
	const char *item_json;		/* SQL expression of one item's document */
	const char *filter_columns[2];	/* one of them service_id, the other status */

	/*
	 * The total from jam_services' counts (1.5): of a service's rows in all
	 * statuses, and, %s standing for the status filter, in that status; and
	 * the same from a service row's copy in memory (NULL status: all).
	 */
	const char *count_all;
	const char *count_of_status;
	int64		(*count_in_copy) (const struct JamService *svc, const char *status);
	/* The statuses the status filter takes (NULL-terminated), at most JAM_LIST_STATUSES_MAX. */
	const char *const *statuses;
	bool		prepared;

	/*
	 * By variant (list.c's prepare_variants says what each bit means) and,
	 * for a variant with the status filter, by the status's place in
	 * statuses, which the statement names as a constant.
	 */
	JamStatement legacy[16][JAM_LIST_STATUSES_MAX];
	JamStatement envelope[16][JAM_LIST_STATUSES_MAX];
	JamStatement counted[16][JAM_LIST_STATUSES_MAX];	/* by offset, totals from the counts */
} JamList;

/* The most services a token's page is merged from one service at a time (list.c). */
#define JAM_LIST_PER_SERVICE_MAX 64

extern Datum jam_list(JamList *list, text *filters[2], ArrayType *visible,
					  int32 limit, int32 offset, int64 after);
extern int64 jam_list_after(FunctionCallInfo fcinfo);
extern bool jam_list_merges_per_service(ArrayType *visible);

/* xact_hash.c: a hash freed with the current transaction (HASH_STRINGS or HASH_BLOBS keys). */
extern HTAB *jam_transaction_hash(const char *name, long nelem, Size keysize, Size entrysize,
								  int key_kind);

/* json_util.c */
extern Datum jam_with_member(Datum doc, const char *key, Datum value);
extern Datum jam_with_created_flag(Datum doc, bool created);

#include "utils/jsonb.h"
extern void jam_jsonb_push_key(JsonbParseState **state, const char *key);
extern void jam_jsonb_push_string(JsonbParseState **state, const char *key, const char *value);
extern void jam_jsonb_push_integer(JsonbParseState **state, const char *key, int64 value);
extern JsonbValue *jam_jsonb_push_with_member(JsonbParseState **state, Jsonb *object,
											   const char *key, Jsonb *value);
extern JsonbValue *jam_jsonb_push_submitted(JsonbParseState **state, Datum summary,
											bool created, Datum receipt);
extern Datum jam_with_created_and_receipt(Datum summary, bool created, Datum receipt);

/* json_members.c: members pushed in jsonb's own order, which spares its sort. */
typedef struct JamJsonbMember
{
	const char *key;
	JsonbValue	value;			/* a scalar, or jbvBinary for a document */
} JamJsonbMember;

extern void jam_jsonb_push_member(JsonbParseState **state, const JamJsonbMember *m);
extern void jam_jsonb_push_merged(JsonbParseState **state, const JamJsonbMember *a, int n_a,
								  const JamJsonbMember *b, int n_b);
extern void jam_jsonb_push_members_with(JsonbParseState **state, Jsonb *object,
										const JamJsonbMember *extra, int n);
extern JamJsonbMember jam_jsonb_string_member(const char *key, const char *value);
extern JamJsonbMember jam_jsonb_integer_member(const char *key, int64 value);
extern JamJsonbMember jam_jsonb_document_member(const char *key, Jsonb *doc);
extern int	jam_created_and_receipt_members(bool created, Datum receipt, JamJsonbMember out[2]);

/* report.c: reports and attestations. */
typedef struct JamReport
{
	const char *package_id;
	const char *service_id;
	int32		contract_version;
	const char *refine;
	bool		applied;
	bytea	   *output;			/* applied only */
	const char *failure_reason; /* failed only */
	ArrayType  *preimage_hashes;	/* distinct, each already referenced */
	char		report_hash[JAM_HASH_HEX_CHARS + 1];	/* set by jam_store_reports */
	char		refine_hash[JAM_HASH_HEX_CHARS + 1];	/* the refine's definition (replay.c) */
} JamReport;

extern void jam_store_reports(JamReport **reports, int n, Datum *docs);

/* log.c: the per-service verifiable log (RFC 9162 Merkle tree). */
#define JAM_LOG_MAX_HEIGHT 64

typedef struct JamLogHead
{
	int64		size;
	int			n_frontier;
	/* complete subtrees along the right edge, largest first */
	uint8		frontier[JAM_LOG_MAX_HEIGHT][JAM_HASH_BYTES];
	/*
	 * The root, once an append computed it: the next append's previous
	 * root and the head's row both need it, and it costs a hash per level.
	 * Loading or pushing forgets it.
	 */
	bool		root_known;
	uint8		root[JAM_HASH_BYTES];
} JamLogHead;

typedef enum JamLogKind
{
	JAM_LOG_PACKAGE = 1,
	JAM_LOG_REPORT = 2
} JamLogKind;

extern void jam_log_head_load(JamLogHead *head, bytea *frontier);
extern int	jam_log_head_push(JamLogHead *head, const uint8 leaf[JAM_HASH_BYTES], uint8 *completed);
extern void jam_log_head_root(const JamLogHead *head, uint8 out[JAM_HASH_BYTES]);
extern text *jam_log_head_root_text(const JamLogHead *head);
extern bytea *jam_log_head_frontier_bytea(const JamLogHead *head);
typedef struct JamService JamService;
extern Datum jam_log_append(JamService *svc, JamLogKind kind, const char *item_hash,
							const uint8 meta_hash[JAM_HASH_BYTES], const char *status);
extern void jam_log_append_many(JamService *svc, JamLogKind kind, int n, char **item_hashes,
								const uint8 meta_hash[JAM_HASH_BYTES], const char *const *statuses,
								char **package_ids, Datum *receipts);
extern void jam_log_receipts_of(int n, char **item_hashes, JamLogKind kind, Datum *receipts);
extern Datum jam_log_receipt_of(const char *item_hash, JamLogKind kind);

/* log_receipt.c */
#include "datatype/timestamp.h"
extern Datum jam_log_new_receipt(const char *service_id, int64 seq, const char *kind,
								 const uint8 item_hash[JAM_HASH_BYTES],
								 const uint8 leaf_hash[JAM_HASH_BYTES],
								 const uint8 prev_root[JAM_HASH_BYTES],
								 const uint8 new_root[JAM_HASH_BYTES],
								 const char *status, TimestampTz processed_at);
extern void jam_log_meta_hash(const char *service_id, const char *principal,
							  const char *detail, uint8 out[JAM_HASH_BYTES]);

/*
 * service.c: the per-service row, locked by every write to the service
 * (xact_rows.c: jam_service_lock).
 */
struct JamService
{
	char	   *service_id;
	char	   *tenant;			/* NULL: the service belongs to no tenant */
	int64		pending_count;
	ItemPointerData row;		/* the row version this copy was read from or last written to */
	/* Packages and reports by outcome: read and written when counted (1.5). */
	bool		counted;
	int64		applied_count;
	int64		failed_count;
	int64		applied_report_count;
	int64		failed_report_count;
	Oid			refine_function;
	JamLogHead	log;
};

extern Oid	jam_service_refine_function(const char *service_id);

/* node_key.c: the node's Ed25519 key, which signs checkpoints. */
typedef struct JamNodeKey
{
	const char *name;
	uint8		seed[32];
	uint8		public_key[32];
} JamNodeKey;

extern bool jam_node_key(JamNodeKey *key);
extern bool jam_node_secret_key(uint8 secret[64]);

/* checkpoint.c: a service log's head as a signed note. */
extern char *jam_checkpoint_note(const char *service_id, int64 size,
								 const uint8 root[JAM_HASH_BYTES]);

/* encoding.c: the deterministic package encoding and its hash. */
typedef struct JamPackageFields
{
	const char *service_id;
	int32		contract_version;
	int32		weight_hint;
	const char *payload;
	Size		payload_len;
	int			n_preimages;
	uint8	   *preimage_hashes;	/* n_preimages * JAM_HASH_BYTES */
} JamPackageFields;

extern void jam_package_hash(const JamPackageFields *pkg, uint8 out[JAM_HASH_BYTES]);

/* refine.c: execution contracts. */
typedef struct JamRefineResult
{
	bool		ok;
	bytea	   *output;
	char	   *failure_reason;
} JamRefineResult;

extern JamRefineResult jam_refine(int32 contract_version, Oid refine_fn,
								  bytea *payload, int n_inputs, bytea **inputs);
extern bool jam_refine_running(void);

/* replay.c: the definition hash of a refine. */
extern bool jam_refine_definition_hash(Oid fn, const char *name, uint8 out[JAM_HASH_BYTES]);

/* attempts.c: refines started but not returned, per package. */
extern int	jam_max_refine_attempts;
extern void jam_attempts_init(void);
extern int	jam_attempts_start(const char *package_hex);
extern void jam_attempts_done(const char *package_hex);

/* check_cache.c: the CHECK constraints of jam's tables, parsed once a backend. */
extern void jam_check_cache_init(void);

#endif							/* JAM_H */
