/*
 * witnessing.h: this node's logs and their witnesses' cosignatures
 * (witnessing.c asks for them, cosigned.c serves them).
 */
#ifndef JAM_WITNESSING_H
#define JAM_WITNESSING_H

#include "jam.h"

extern int	jam_witness_quorum;
extern int	jam_witness_timeout_ms;
extern void jam_define_witness_gucs(void);

extern char *jam_cosigned_checkpoint(const char *service_id, int64 size, const uint8 root[JAM_HASH_BYTES],
									 int *n_cosignatures);
extern bool jam_witnessed_head(const char *service_id, int quorum, int64 below, int64 *size,
							   uint8 root[JAM_HASH_BYTES]);

#endif							/* JAM_WITNESSING_H */
