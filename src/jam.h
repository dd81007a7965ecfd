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

/* hash.c */
extern void jam_blake2b256(const void *data, size_t len, uint8 out[JAM_HASH_BYTES]);
extern void jam_hex_encode(const uint8 *bytes, size_t len, char *out);
extern text *jam_hash_to_text(const uint8 hash[JAM_HASH_BYTES]);
extern void jam_parse_hash(text *hash, const char *what, uint8 out[JAM_HASH_BYTES]);
extern char *jam_normalize_hash(text *hash, const char *what);

/* checks.c: argument checks shared by the API functions. */
extern void jam_check_enabled(void);
extern void jam_require_arg(FunctionCallInfo fcinfo, int argno, const char *name);
extern char *jam_check_service_id(text *service_id);
extern void jam_check_pagination(int32 limit, int32 offset);
extern void jam_check_status_filter(text *status, const char *const *allowed);

/* media_type.c */
extern char *jam_check_media_type(text *media_type);

/* spi_util.c: prepared statements kept for the life of the backend. */
typedef struct JamStatement
{
	const char *sql;
	int			nargs;
	Oid			argtypes[12];
	SPIPlanPtr	plan;
} JamStatement;

extern int	jam_spi_exec(JamStatement *stmt, Datum *values, const char *nulls,
						 bool read_only, long count);
extern Datum jam_spi_result_datum(int column, bool *isnull);
extern Datum jam_spi_copy_jsonb(int column);

/* list.c: paginated lists of a table with two optional equality filters. */
typedef struct JamList
{
	const char *table;
	const char *item_json;		/* SQL expression of one item's document */
	const char *filter_columns[2];
	bool		prepared;
	JamStatement legacy[4];
	JamStatement envelope[4];
} JamList;

extern Datum jam_list(JamList *list, text *filters[2], int32 limit, int32 offset);

/* json_util.c */
extern Datum jam_with_created_flag(Datum doc, bool created);

/* preimage.c: refcounts, owned by the preimage store. */
extern int	jam_reference_preimages(ArrayType *distinct_hashes);

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
} JamReport;

extern Datum jam_store_report(const JamReport *report);

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

#endif							/* JAM_H */
