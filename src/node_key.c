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
#include "storage/proc.h"
#include "utils/builtins.h"

/*
 * The key as read in the current transaction: a batch signs one
 * attestation per package, and reading the row and deriving the key pair
 * each time would cost more than signing.  Wiped when the transaction ends.
 */
static struct
{
	LocalTransactionId lxid;	/* InvalidLocalTransactionId: nothing held */
	char		name[NAMEDATALEN];
	JamNodeKey	key;
	uint8		secret[crypto_sign_SECRETKEYBYTES];
} held = {InvalidLocalTransactionId};
static bool callback_registered = false;

/*
 * The last key pair this backend derived, found again by a digest of its
 * seed.  Deriving the public key from the seed is a scalar multiplication,
 * more than the signature itself, and a processor signs in every
 * transaction; the secret key is the seed followed by its public key
 * (libsodium's layout), so with the public key at hand nothing needs
 * deriving.  Only the digest and the public key stay between
 * transactions, never the seed.
 */
static struct
{
	bool		valid;
	uint8		seed_digest[crypto_generichash_BYTES];
	uint8		public_key[crypto_sign_PUBLICKEYBYTES];
} derived;

StaticAssertDecl(crypto_sign_SECRETKEYBYTES == crypto_sign_SEEDBYTES + crypto_sign_PUBLICKEYBYTES,
				 "an Ed25519 secret key is its seed and its public key");

/*
 * The digest is BLAKE2b keyed with this tag, so that it equals no other
 * value made from the seed (the cosigner key hashes the seed after its own
 * tag).
 */
#define SEED_DIGEST_KEY "jam/node-key-digest/v1"

/* The key pair of key->seed into key->public_key and secret, derived at most once per seed. */
static void
key_pair(JamNodeKey *key, uint8 secret[crypto_sign_SECRETKEYBYTES])
{
	uint8		digest[crypto_generichash_BYTES];

	crypto_generichash(digest, sizeof(digest), key->seed, sizeof(key->seed),
					   (const uint8 *) SEED_DIGEST_KEY, strlen(SEED_DIGEST_KEY));
	if (!derived.valid || sodium_memcmp(digest, derived.seed_digest, sizeof(digest)) != 0)
	{
		crypto_sign_seed_keypair(derived.public_key, secret, key->seed);
		memcpy(derived.seed_digest, digest, sizeof(digest));
		derived.valid = true;
	}
	memcpy(key->public_key, derived.public_key, sizeof(key->public_key));
	memcpy(secret, key->seed, sizeof(key->seed));
	memcpy(secret + sizeof(key->seed), derived.public_key, sizeof(derived.public_key));
}

static void
forget_key(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE)
	{
		sodium_memzero(&held, sizeof(held));
		held.lxid = InvalidLocalTransactionId;
	}
}

static JamStatement select_key = {
	"SELECT seed FROM jam.jam_node_keys WHERE name = $1",
	1, {TEXTOID}
};

static JamStatement insert_key = {
	"INSERT INTO jam.jam_node_keys (name, seed, public_key) VALUES ($1, $2, $3) "
	"ON CONFLICT (name) DO NOTHING",
	3, {TEXTOID, BYTEAOID, BYTEAOID}
};

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
	Datum		name;
	uint8		secret[crypto_sign_SECRETKEYBYTES];
	bool		isnull;
	bytea	   *seed;
	bool		created = false;

	if (held.lxid == MyProc->lxid && strcmp(held.name, jam_node_name) == 0)
	{
		*key = held.key;
		key->name = jam_node_name;
		return true;
	}
	name = CStringGetTextDatum(jam_node_name);

	if (jam_spi_exec(&select_key, &name, NULL, false, 1) == 0)
	{
		Datum		values[3];

		/* Not held: a key made in a subtransaction that rolls back is gone. */
		created = true;

		if (XactReadOnly || RecoveryInProgress())
			return false;

		randombytes_buf(key->seed, sizeof(key->seed));
		crypto_sign_seed_keypair(key->public_key, secret, key->seed);
		values[0] = name;
		values[1] = PointerGetDatum(jam_bytes_to_bytea(key->seed, sizeof(key->seed)));
		values[2] = PointerGetDatum(jam_bytes_to_bytea(key->public_key, sizeof(key->public_key)));
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
	key_pair(key, secret);
	key->name = jam_node_name;

	if (!callback_registered)
	{
		RegisterXactCallback(forget_key, NULL);
		callback_registered = true;
	}
	memcpy(held.secret, secret, sizeof(secret));
	sodium_memzero(secret, sizeof(secret));
	if (created)
		return true;
	held.lxid = MyProc->lxid;
	strlcpy(held.name, jam_node_name, sizeof(held.name));
	held.key = *key;
	return true;
}

/*
 * The node key's Ed25519 secret key (seed and public key), for signing
 * many things in one transaction; false as jam_node_key.  Needs SPI.
 */
bool
jam_node_secret_key(uint8 secret[crypto_sign_SECRETKEYBYTES])
{
	JamNodeKey	key;

	if (!jam_node_key(&key))
		return false;
	memcpy(secret, held.secret, crypto_sign_SECRETKEYBYTES);
	sodium_memzero(key.seed, sizeof(key.seed));
	return true;
}
