/*
 * blob.h: the S3-compatible blob tier for preimages (issue 14).
 *
 * A preimage at or above jam.blob_offload_threshold bytes lives as an
 * object in the store, keyed by its hash (<prefix>/<first two hex>/<hash>),
 * and its row in jam_preimages holds only the metadata (storage_class
 * 's3', data NULL).  The files:
 *
 *   blob_config.c       the jam.blob_* settings, object keys and URLs, status
 *   blob_credentials.c  the credentials file (never a setting a client can SHOW)
 *   s3_sign.c           SigV4 through libcurl (plain C, unit-tested alone)
 *   blob_store.c        one request to the store: bounded, interruptible, retried
 *   blob_list.c         ListObjectsV2 pages
 *   blob_metrics.c      per-store counters in shared memory
 *   blob_tier.c         put before the row commits, verified read-through
 *   blob_deletes.c      the durable queue of object deletes and its draining
 *   offload.c           jam_offload and the batches that move inline rows out
 *   blob_worker.c       the background worker that drains and offloads
 *   blob_fsck.c         orphan objects and rows whose object is missing
 *
 * The tier needs the 1.2 catalog (the 's3' storage class and the delete
 * queue); on a 1.0 or 1.1 catalog, or with no store configured, every
 * preimage stays inline, as before.
 */
#ifndef JAM_BLOB_H
#define JAM_BLOB_H

#include "jam.h"
#include "s3_sign.h"

#include "datatype/timestamp.h"

/* blob_config.c: the settings. */
extern char *jam_blob_store_endpoint;
extern char *jam_blob_store_bucket;
extern char *jam_blob_store_region;
extern char *jam_blob_store_prefix;
extern char *jam_blob_store_credentials_file;
extern int	jam_blob_offload_threshold;
extern int	jam_blob_store_timeout_ms;
extern int	jam_blob_store_connect_timeout_ms;
extern int	jam_blob_store_retries;
extern int	jam_blob_offload_batch_size;
extern int	jam_blob_offload_interval;
extern int	jam_blob_delete_delay;

/* What every key and label calls the store. */
#define JAM_BLOB_STORE_TYPE "s3"

/* Seconds a client is told to wait when the store is unavailable (503's Retry-After). */
#define JAM_BLOB_RETRY_AFTER_S 5

/* Longest object key: prefix, '/', two hex, '/', the hash. */
#define JAM_BLOB_PREFIX_MAX 200
#define JAM_BLOB_KEY_MAX (JAM_BLOB_PREFIX_MAX + 4 + JAM_HASH_HEX_CHARS + 1)

extern void jam_define_blob_gucs(void);
extern bool jam_blob_store_configured(void);
extern bool jam_blob_catalog(void);
extern bool jam_blob_tier_ready(void);
extern bool jam_blob_offloads(int64 size);
extern void jam_blob_object_key(const char *hash_hex, char *out);
extern char *jam_blob_key_prefix(void);
extern char *jam_blob_bucket_url(void);
extern bool jam_blob_use_path_style(void);
extern void jam_blob_require_store(const char *what);
extern Datum jam_blob_status(void);

/* blob_credentials.c */
extern const S3Credentials *jam_blob_credentials(void);

/* blob_store.c: the store's operations. */
typedef enum JamBlobOp
{
	JAM_BLOB_PUT,
	JAM_BLOB_GET,
	JAM_BLOB_HEAD,
	JAM_BLOB_DELETE,
	JAM_BLOB_LIST,
	JAM_BLOB_OP__COUNT
} JamBlobOp;

extern void jam_blob_store_put(const char *hash_hex, const char *data, Size len);
extern bytea *jam_blob_store_get(const char *hash_hex, int64 size, bool *too_large);
extern bool jam_blob_store_head(const char *hash_hex, int64 *size, char *etag);
extern void jam_blob_store_delete(const char *hash_hex);
extern char *jam_blob_store_list_page(const char *continuation, Size *len);

/* blob_list.c: one ListObjectsV2 page, parsed. */
typedef struct JamBlobListing
{
	int			n_objects;
	char	  **hashes;			/* hex, for keys of the form <prefix>/<xx>/<hash> */
	int64	   *sizes;
	int			n_foreign;		/* other keys under the prefix */
	char	   *next_token;		/* NULL on the last page */
} JamBlobListing;

extern void jam_blob_list_parse(const char *xml, Size len, const char *prefix,
								JamBlobListing *out);

/* blob_metrics.c */
typedef enum JamBlobOutcome
{
	JAM_BLOB_OUTCOME_OK,
	JAM_BLOB_OUTCOME_NOT_FOUND,
	JAM_BLOB_OUTCOME_ERROR,
	JAM_BLOB_OUTCOME__COUNT
} JamBlobOutcome;

typedef enum JamBlobRead
{
	JAM_BLOB_READ_HIT,
	JAM_BLOB_READ_MISS,
	JAM_BLOB_READ_ERROR,
	JAM_BLOB_READ__COUNT
} JamBlobRead;

typedef enum JamBlobDelete
{
	JAM_BLOB_DELETE_DELETED,	/* the object was deleted */
	JAM_BLOB_DELETE_KEPT,		/* a row holds the object again: kept */
	JAM_BLOB_DELETE_FAILED,		/* the store refused or was down: retried later */
	JAM_BLOB_DELETE__COUNT
} JamBlobDelete;

typedef struct JamBlobStats
{
	uint64		requests[JAM_BLOB_OP__COUNT][JAM_BLOB_OUTCOME__COUNT];
	double		seconds[JAM_BLOB_OP__COUNT];
	uint64		bytes_sent;
	uint64		bytes_received;
	uint64		retries;
	uint64		reads[JAM_BLOB_READ__COUNT];
	uint64		integrity_errors;
	uint64		offloaded;
	uint64		offloaded_bytes;
	uint64		deletes[JAM_BLOB_DELETE__COUNT];
} JamBlobStats;

extern const char *const jam_blob_op_label[JAM_BLOB_OP__COUNT];
extern const char *const jam_blob_outcome_label[JAM_BLOB_OUTCOME__COUNT];
extern const char *const jam_blob_read_label[JAM_BLOB_READ__COUNT];
extern const char *const jam_blob_delete_label[JAM_BLOB_DELETE__COUNT];

extern void jam_blob_metrics_init(void);
extern void jam_blob_metrics_request(JamBlobOp op, JamBlobOutcome outcome, int64 usecs,
									 uint64 sent, uint64 received);
extern void jam_blob_metrics_retry(void);
extern void jam_blob_metrics_read(JamBlobRead outcome);
extern void jam_blob_metrics_integrity_error(void);
extern void jam_blob_metrics_offloaded(uint64 n, uint64 bytes);
extern void jam_blob_metrics_delete(JamBlobDelete outcome);
extern bool jam_blob_stats(JamBlobStats *out);
extern void jam_blob_metrics_reset(void);

/* blob_tier.c: preimages in the store. */
extern bool jam_blob_lock(const char *hash_hex, bool exclusive, bool nowait);
extern void jam_blob_upload(const char *hash_hex, const char *data, Size len);
extern void jam_blob_ensure_object(const char *hash_hex, int64 size, const char *data);

/* Room for an ETag as jam_blob_store_head gives it. */
#define JAM_BLOB_ETAG_MAX 80
extern bytea *jam_blob_fetch(const char *hash_hex, int64 size);

/* blob_deletes.c: the delete queue. */
typedef struct JamBlobDrainCounts
{
	int64		deleted;
	int64		kept;
	int64		failed;
	int64		skipped;		/* in use by a put: left for later */
} JamBlobDrainCounts;

extern int	jam_blob_drain_batch(int max, JamBlobDrainCounts *counts);
extern void jam_blob_wake_worker_at_commit(void);

/* offload.c: moving inline preimages to the store. */
typedef struct JamOffloadCounts
{
	int64		offloaded;
	int64		bytes;
	int64		skipped;		/* gone, offloaded by someone else, or corrupt inline bytes */
	int64		batches;
} JamOffloadCounts;

/* A run of batches: what it did, and where the next batch starts (largest first). */
typedef struct JamOffloadRun
{
	JamOffloadCounts counts;
	int64		last_size;
	char		last_hash[JAM_HASH_HEX_CHARS + 1];	/* "" before the first batch */
} JamOffloadRun;

extern int64 jam_offload_batch(JamOffloadRun *run);
extern void jam_offload_run(JamOffloadRun *run, int64 max_batches);

/* blob_worker.c */
extern void jam_blob_worker_init(void);

/* blob_fsck.c: the store's part of jam_fsck. */
extern Datum jam_blob_fsck(bool repair);

#endif							/* JAM_BLOB_H */
