/*
 * node_key.c: this node's Ed25519 signing key.
 *
 * The key signs checkpoints of the verifiable logs.  It is made on first
 * use from libsodium's random generator and kept in jam_node_keys under
 * the node's name (jam.node_name); no privilege on that table is granted,
 * so only the extension's owner (and superusers) can read the seed.
 */
#include "jam.h"

#include <sodium.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"

static JamStatement select_key = {
	"SELECT seed FROM jam.jam_node_keys WHERE name = $1",
	1, {TEXTOID}
};

static JamStatement insert_key = {
	"INSERT INTO jam.jam_node_keys (name, seed, public_key) VALUES ($1, $2, $3) "
	"ON CONFLICT (name) DO NOTHING",
	3, {TEXTOID, BYTEAOID, BYTEAOID}
};

static bytea *
bytes_to_bytea(const uint8 *bytes, Size len)
{
	bytea	   *out = palloc(VARHDRSZ + len);

	SET_VARSIZE(out, VARHDRSZ + len);
	memcpy(VARDATA(out), bytes, len);
	return out;
}

/*
 * Fills in the node key's seed and public key and returns true; when the
 * node has no key yet, creates it, unless the transaction cannot write (a
 * read-only transaction, a standby), and then returns false.  Needs SPI.
 * Concurrent first uses agree on one key: the loser of the insert race
 * reads the winner's.
 */
bool
jam_node_key(JamNodeKey *key)
{
	Datum		name = CStringGetTextDatum(jam_node_name);
	uint8		secret[crypto_sign_SECRETKEYBYTES];
	bool		isnull;
	bytea	   *seed;

	if (jam_spi_exec(&select_key, &name, NULL, false, 1) == 0)
	{
		Datum		values[3];

		if (XactReadOnly || RecoveryInProgress())
			return false;

		randombytes_buf(key->seed, sizeof(key->seed));
		crypto_sign_seed_keypair(key->public_key, secret, key->seed);
		values[0] = name;
		values[1] = PointerGetDatum(bytes_to_bytea(key->seed, sizeof(key->seed)));
		values[2] = PointerGetDatum(bytes_to_bytea(key->public_key, sizeof(key->public_key)));
		jam_spi_exec(&insert_key, values, NULL, false, 0);
		if (jam_spi_exec(&select_key, &name, NULL, false, 1) == 0)
			elog(ERROR, "jam could not store the node key");
	}

	seed = DatumGetByteaPP(jam_spi_result_datum(1, &isnull));
	if (VARSIZE_ANY_EXHDR(seed) != sizeof(key->seed))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("jam node key \"%s\" is corrupt", jam_node_name)));
	memcpy(key->seed, VARDATA_ANY(seed), sizeof(key->seed));
	crypto_sign_seed_keypair(key->public_key, secret, key->seed);
	sodium_memzero(secret, sizeof(secret));
	key->name = jam_node_name;
	return true;
}
