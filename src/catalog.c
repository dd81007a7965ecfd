/*
 * catalog.c: which catalog the library is running against.
 *
 * Version 1.1 stores hashes as 32 raw bytes; 1.0 stored them as 64 hex
 * characters.  A server may run this library before ALTER EXTENSION jam
 * UPDATE has converted the tables, so every statement jam runs is written
 * once, with markers where a hash crosses between the API's hex text and a
 * column (spi_util.c expands them for the catalog at hand).  The answer is
 * read from the column type itself, which is exactly what the statements
 * depend on, and is read again whenever a relation's cache entry is
 * invalidated, as the ALTER TABLEs of an update do.
 */
#include "jam.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"

static JamCatalog known = JAM_CATALOG_UNKNOWN;
static int	log_names_packages = -1;	/* jam_log_has_package_id(); -1: not read */
static int	services_count = -1;	/* jam_services_have_counts(); -1: not read */
static int	attestations_by_service_attester = -1;	/* jam_attestations_by_service_attester() */
static bool callback_registered = false;

static void
forget_catalog(Datum arg, Oid relid)
{
	known = JAM_CATALOG_UNKNOWN;
	log_names_packages = -1;
	services_count = -1;
	attestations_by_service_attester = -1;
}

static void
register_callback(void)
{
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(forget_catalog, (Datum) 0);
		callback_registered = true;
	}
}

/*
 * The catalog generation of the current database's jam tables: compact
 * (1.1 and later) when jam_work_packages.id is bytea.  A database without
 * the tables counts as compact, the version CREATE EXTENSION installs.
 */
JamCatalog
jam_catalog(void)
{
	Oid			ns;
	Oid			rel;
	AttrNumber	att;

	if (known != JAM_CATALOG_UNKNOWN)
		return known;
	register_callback();
	ns = get_namespace_oid("jam", true);
	rel = OidIsValid(ns) ? get_relname_relid("jam_work_packages", ns) : InvalidOid;
	att = OidIsValid(rel) ? get_attnum(rel, "id") : InvalidAttrNumber;
	if (att != InvalidAttrNumber && get_atttype(rel, att) == TEXTOID)
		known = JAM_CATALOG_HEX;
	else
		known = JAM_CATALOG_COMPACT;
	return known;
}

/*
 * Whether jam_log_entries has the package_id column that 1.3 adds, where
 * a report's entry names its package for its event.  Read again when the
 * table's cache entry is invalidated, as the update's ALTER TABLE does.
 */
bool
jam_log_has_package_id(void)
{
	if (log_names_packages < 0)
	{
		Oid			ns = get_namespace_oid("jam", true);
		Oid			rel = OidIsValid(ns) ? get_relname_relid("jam_log_entries", ns) : InvalidOid;

		register_callback();
		log_names_packages = OidIsValid(rel) && get_attnum(rel, "package_id") != InvalidAttrNumber;
	}
	return log_names_packages == 1;
}

/*
 * Whether jam_services has the counts of applied and failed packages and
 * reports that 1.5 adds, from which a list's total is read.  Read again
 * when the table's cache entry is invalidated, as the update's ALTER TABLE
 * does.
 */
bool
jam_services_have_counts(void)
{
	if (services_count < 0)
	{
		Oid			ns = get_namespace_oid("jam", true);
		Oid			rel = OidIsValid(ns) ? get_relname_relid("jam_services", ns) : InvalidOid;

		register_callback();
		services_count = OidIsValid(rel) &&
			get_attnum(rel, "failed_report_count") != InvalidAttrNumber;
	}
	return services_count == 1;
}

/*
 * Whether jam_attestations has the index on (service_id, attester, id)
 * that 1.7 adds, through which a page of one attester's attestations of
 * one service is walked.  Read again when the table's cache entry is
 * invalidated, as building an index on it does.
 */
bool
jam_attestations_by_service_attester(void)
{
	if (attestations_by_service_attester < 0)
	{
		Oid			ns = get_namespace_oid("jam", true);

		register_callback();
		attestations_by_service_attester = OidIsValid(ns) &&
			OidIsValid(get_relname_relid("jam_attestations_service_attester_idx", ns));
	}
	return attestations_by_service_attester == 1;
}
