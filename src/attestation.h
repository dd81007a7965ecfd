/*
 * attestation.h: signed attestations of reports (attestation.c).
 */
#ifndef JAM_ATTESTATION_H
#define JAM_ATTESTATION_H

#include "jam.h"

extern bytea *jam_attestation_node_signature(const char *package_hex, const char *report_hex,
											  const char *service_id);

#endif							/* JAM_ATTESTATION_H */
