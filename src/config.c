/*
 * config.c: the jam.* configuration parameters.
 *
 * Limits are superuser-settable only: a client must not be able to raise
 * its own caps with SET.
 */
#include "jam.h"

#include "utils/guc.h"
#include "utils/memutils.h"

bool		jam_enabled = true;
int			jam_max_preimage_bytes = 16 * 1024 * 1024;
int			jam_max_payload_bytes = 4 * 1024 * 1024;
char	   *jam_allowed_media_types = NULL;
int			jam_max_pending_packages = 100000;
bool		jam_legacy_list_response = false;
char	   *jam_node_name = NULL;

/*
 * The node name is a signed-note key name and the first part of every log
 * origin: non-empty, printable ASCII, no spaces and no "+".
 */
static bool
check_node_name(char **newval, void **extra, GucSource source)
{
	const char *s = *newval;

	if (s == NULL || *s == '\0')
	{
		GUC_check_errdetail("jam.node_name must not be empty.");
		return false;
	}
	for (; *s != '\0'; s++)
		if (*s <= ' ' || *s >= 0x7f || *s == '+')
		{
			GUC_check_errdetail("jam.node_name may hold printable ASCII other than space and \"+\".");
			return false;
		}
	return true;
}

void
jam_define_gucs(void)
{
	DefineCustomBoolVariable("jam.enabled",
							 "Whether the jam API accepts calls.",
							 "When off, every API function except jam_hash, jam_package_id, jam_error_codes "
							 "and jam_status refuses with the code disabled.",
							 &jam_enabled, true,
							 PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("jam.max_preimage_bytes",
							"Largest preimage jam_put_preimage accepts.",
							NULL,
							&jam_max_preimage_bytes, 16 * 1024 * 1024,
							0, MaxAllocSize / 2,
							PGC_SUSET, GUC_UNIT_BYTE, NULL, NULL, NULL);

	DefineCustomIntVariable("jam.max_payload_bytes",
							"Largest package payload jam_submit_package accepts.",
							NULL,
							&jam_max_payload_bytes, 4 * 1024 * 1024,
							0, MaxAllocSize / 2,
							PGC_SUSET, GUC_UNIT_BYTE, NULL, NULL, NULL);

	DefineCustomStringVariable("jam.allowed_media_types",
							   "Comma-separated media types a preimage may have.",
							   "Entries are type/subtype, type/* or *. Matching ignores case and parameters.",
							   &jam_allowed_media_types, "*",
							   PGC_SUSET, GUC_LIST_INPUT, NULL, NULL, NULL);

	DefineCustomIntVariable("jam.max_pending_packages",
							"Most pending packages one service may have; 0 means no cap.",
							NULL,
							&jam_max_pending_packages, 100000,
							0, INT_MAX,
							PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomBoolVariable("jam.legacy_list_response",
							 "Whether list functions return a plain array instead of an envelope.",
							 NULL,
							 &jam_legacy_list_response, false,
							 PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("jam.node_name",
							   "Name of this node: the attester of its reports, its signing key's name and its logs' origin prefix.",
							   NULL,
							   &jam_node_name, "jam",
							   PGC_SIGHUP, 0, check_node_name, NULL, NULL);

	MarkGUCPrefixReserved("jam");
}
