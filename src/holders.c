/*
 * holders.c: which tenants hold which preimages (jam_preimage_holders).
 *
 * Identical bytes are stored once, whoever puts them; but a tenant must not
 * learn what another tenant stored.  Had a put answered "created": false
 * for bytes another tenant had put, or a get served them by hash, tenants
 * could probe each other's content (the deduplication side channel).  So a
 * tenant's token sees a preimage only once that tenant holds it, by putting
 * it: a put answers "created": true for a tenant that did not hold the
 * bytes yet, gets and metas of preimages the tenant does not hold are
 * preimage_not_found, and a package may reference only preimages its
 * tenant holds (missing_preimage otherwise, as if they were not stored).
 * What a tenant sees of a preimage is its own: the media type it gave and
 * when it first put the bytes; the refcount, which counts every tenant's
 * references, is shown as null.  Callers without a tenant (operators,
 * tokens without a tenant) see every preimage as stored.
 *
 * The holders table came with 1.1; on a 1.0 catalog every caller sees
 * every preimage, as 1.0 did.
 */
#include "jam.h"
#include "auth.h"
#include "holders.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

static JamStatement add_holder = {
	"INSERT INTO jam.jam_preimage_holders (hash, tenant, media_type) VALUES (@h($1), $2, $3) "
	"ON CONFLICT (hash, tenant) DO NOTHING",
	3, {TEXTOID, TEXTOID, TEXTOID}
};

static JamStatement holder_meta = {
	"SELECT jsonb_build_object('hash', @x(p.hash), 'size', p.size, 'media_type', h.media_type, "
	"'refcount', NULL, 'storage_class', p.storage_class, 'created_at', h.created_at) "
	"FROM jam.jam_preimages p JOIN jam.jam_preimage_holders h ON h.hash = p.hash AND h.tenant = $2 "
	"WHERE p.hash = @h($1)",
	2, {TEXTOID, TEXTOID}
};

/* The first of $1, in its order, that tenant $2 does not hold. */
static JamStatement first_not_held = {
	"SELECT u.h FROM unnest($1::text[]) WITH ORDINALITY AS u(h, i) "
	"WHERE NOT EXISTS (SELECT 1 FROM jam.jam_preimage_holders h "
	"                  WHERE h.hash = @h(u.h) AND h.tenant = $2) "
	"ORDER BY u.i LIMIT 1",
	2, {TEXTARRAYOID, TEXTOID}
};

/* The caller's tenant when holders decide what it sees, else NULL. */
const char *
jam_holders_tenant(void)
{
	const char *tenant = jam_auth_tenant();

	if (tenant == NULL || jam_catalog() != JAM_CATALOG_COMPACT)
		return NULL;
	return tenant;
}

/*
 * Records that the caller's tenant holds the preimage (put with media_type)
 * and returns whether it did not before.  Needs SPI; tenant callers only.
 */
bool
jam_holders_add(const char *tenant, const char *hash_hex, const char *media_type)
{
	Datum		values[3] = {CStringGetTextDatum(hash_hex), CStringGetTextDatum(tenant),
	CStringGetTextDatum(media_type)};

	return jam_spi_exec(&add_holder, values, NULL, false, 0) == 1;
}

/*
 * The preimage's meta as the tenant sees it, or (Datum) 0 when the tenant
 * does not hold it.  Needs SPI.
 */
Datum
jam_holders_meta(const char *tenant, const char *hash_hex, bool read_only)
{
	Datum		values[2] = {CStringGetTextDatum(hash_hex), CStringGetTextDatum(tenant)};

	if (jam_spi_exec(&holder_meta, values, NULL, read_only, 1) == 0)
		return (Datum) 0;
	return jam_spi_copy_jsonb(1);
}

/* The first of hashes (a text[]) the tenant does not hold, or NULL. Needs SPI. */
char *
jam_holders_first_missing(const char *tenant, ArrayType *hashes)
{
	Datum		values[2] = {PointerGetDatum(hashes), CStringGetTextDatum(tenant)};

	if (jam_spi_exec(&first_not_held, values, NULL, false, 1) == 0)
		return NULL;
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}
