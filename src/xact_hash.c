/*
 * xact_hash.c: hash tables that live as long as the current transaction.
 *
 * Several modules keep per-transaction state (claims and cursors, claim
 * hint candidates, rows to write at commit, entries to announce) in a
 * hash in TopTransactionContext, which the transaction's end frees; each
 * module forgets its pointer in its own transaction callback.
 */
#include "jam.h"

#include "utils/hsearch.h"
#include "utils/memutils.h"

/*
 * A hash of entrysize-byte entries whose first keysize bytes are the key,
 * compared as a C string (HASH_STRINGS) or as bytes (HASH_BLOBS), freed
 * with the current transaction.
 */
HTAB *
jam_transaction_hash(const char *name, long nelem, Size keysize, Size entrysize, int key_kind)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.hcxt = TopTransactionContext;
	ctl.keysize = keysize;
	ctl.entrysize = entrysize;
	return hash_create(name, nelem, &ctl, HASH_ELEM | key_kind | HASH_CONTEXT);
}
