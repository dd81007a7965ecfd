/*
 * blob_tier.c: preimages in the blob store.
 *
 * Put: the object is written before the row that says it is in the store
 * (storage_class 's3') commits, so a crash can leave an object no row
 * names (an orphan, which jam_fsck finds) but never a row without its
 * object.  Get: the object is read back and hashed; only bytes whose
 * BLAKE2b-256 is the address are returned, else integrity_error.
 *
 * The only other writer of objects is the delete queue's drain
 * (blob_deletes.c), which must not delete an object a put is about to
 * commit a row for.  Both take a lock on the hash (an advisory lock of
 * jam's own, not one a client's pg_advisory_lock can take): a put holds it
 * shared from before its upload until its transaction ends, when its row
 * is visible; the drain tries it exclusively, skips the hash while a put
 * holds it, and under it deletes the object only if no row of the store
 * names the hash.  So the lock is held across a request to the store, as
 * short as the request's timeouts make it, and only on that one hash.
 */
#include "jam.h"
#include "blob.h"
#include "errors.h"

#include "common/md5.h"
#include "miscadmin.h"
#include "storage/lock.h"

/* field4 of jam's advisory lock tags: user advisory locks use 1 and 2. */
#define JAM_BLOB_LOCK_SPACE 0x4a14

/*
 * Locks hash_hex for this transaction, shared (a put) or exclusive (a
 * delete); with nowait, returns false instead of waiting.
 */
bool
jam_blob_lock(const char *hash_hex, bool exclusive, bool nowait)
{
	LOCKTAG		tag;
	uint8		h[JAM_HASH_BYTES];
	uint32		k1;
	uint32		k2;

	for (int i = 0; i < 8; i++)
	{
		int			hi = hash_hex[2 * i] <= '9' ? hash_hex[2 * i] - '0' : hash_hex[2 * i] - 'a' + 10;
		int			lo = hash_hex[2 * i + 1] <= '9' ? hash_hex[2 * i + 1] - '0' : hash_hex[2 * i + 1] - 'a' + 10;

		h[i] = (uint8) (hi << 4 | lo);
	}
	memcpy(&k1, h, 4);
	memcpy(&k2, h + 4, 4);
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, k1, k2, JAM_BLOB_LOCK_SPACE);
	return LockAcquire(&tag, exclusive ? ExclusiveLock : ShareLock, false, nowait)
		!= LOCKACQUIRE_NOT_AVAIL;
}

/*
 * Writes the object of a preimage about to be recorded as in the store,
 * holding the hash's lock until the transaction ends.
 */
void
jam_blob_upload(const char *hash_hex, const char *data, Size len)
{
	(void) jam_blob_lock(hash_hex, false, false);
	jam_blob_store_put(hash_hex, data, len);
}

/*
 * A put of bytes already recorded as in the store: if the object is gone
 * or is not these bytes (lost, deleted or overwritten behind jam's back;
 * jam_fsck reports the first two), the put writes it again, so that
 * putting the bytes once more repairs the row.  The object is these bytes
 * when it has their size and its ETag is their MD5, as S3 makes it for an
 * object uploaded whole; an ETag of another kind (multipart uploads,
 * SSE-KMS) cannot say, and the object is written again to be sure.  One
 * HEAD per put of bytes already stored, an upload only when needed.
 */
void
jam_blob_ensure_object(const char *hash_hex, int64 size, const char *data)
{
	int64		stored = -1;
	char		etag[JAM_BLOB_ETAG_MAX];
	char		md5[33];
	const char *errstr = NULL;

	(void) jam_blob_lock(hash_hex, false, false);
	if (jam_blob_store_head(hash_hex, &stored, etag) && stored == size &&
		pg_md5_hash(data, size, md5, &errstr) && strcmp(etag, md5) == 0)
		return;
	jam_blob_store_put(hash_hex, data, size);
}

/*
 * The bytes of a preimage in the store, checked: size bytes whose
 * BLAKE2b-256 is hash_hex.  A missing, shorter, longer or altered object
 * raises integrity_error; a store that cannot answer, blob_store_unavailable.
 */
bytea *
jam_blob_fetch(const char *hash_hex, int64 size)
{
	bytea	   *data = NULL;
	bool		too_large = false;
	uint8		digest[JAM_HASH_BYTES];
	char		hex[JAM_HASH_HEX_CHARS + 1];
	const char *why = NULL;

	PG_TRY();
	{
		jam_blob_require_store(psprintf("reading preimage %s", hash_hex));
		data = jam_blob_store_get(hash_hex, size, &too_large);
	}
	PG_CATCH();
	{
		jam_blob_metrics_read(JAM_BLOB_READ_ERROR);
		PG_RE_THROW();
	}
	PG_END_TRY();

	if (data == NULL)
	{
		jam_blob_metrics_read(JAM_BLOB_READ_MISS);
		why = "is missing from the blob store";
	}
	else if (too_large || VARSIZE(data) - VARHDRSZ != size)
		why = psprintf("has %s bytes in the blob store than the " INT64_FORMAT " recorded",
					   too_large ? "more" : "fewer", size);
	else
	{
		jam_blake2b256(VARDATA(data), size, digest);
		jam_hex_encode(digest, JAM_HASH_BYTES, hex);
		hex[JAM_HASH_HEX_CHARS] = '\0';
		if (strcmp(hex, hash_hex) != 0)
			why = psprintf("hashes to %s in the blob store", hex);
	}
	if (why != NULL)
	{
		if (data != NULL)
			jam_blob_metrics_read(JAM_BLOB_READ_ERROR);
		jam_blob_metrics_integrity_error();
		ereport(ERROR,
				(jam_errcode(JAM_ERR_INTEGRITY_ERROR),
				 errmsg("preimage %s %s", hash_hex, why),
				 errdetail("Its bytes were not returned."),
				 errhint("Put the same bytes again to restore the object, "
						 "or find what else jam_fsck() reports.")));
	}
	jam_blob_metrics_read(JAM_BLOB_READ_HIT);
	return data;
}
