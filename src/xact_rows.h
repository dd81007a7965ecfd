/*
 * xact_rows.h: the service rows and preimage refcounts a transaction
 * changes, kept in memory and written once before it commits.
 */
#ifndef JAM_XACT_ROWS_H
#define JAM_XACT_ROWS_H

#include "jam.h"

extern JamService *jam_service_lock(const char *service_id);
extern void jam_service_changed(const char *service_id, Oid refine_function, const char *tenant);
extern int	jam_reference_preimages(ArrayType *distinct_hashes, int64 *largest);
extern int	jam_reference_preimages_counted(ArrayType *distinct_hashes, const int64 *counts,
											int64 *largest);
extern bool jam_preimage_referenced(const char *hash);
extern bool jam_xact_rows_flush(void);
extern JamService **jam_xact_unwritten_services(int *n);
extern const JamService *jam_xact_unwritten_service(const char *service_id);
extern bool jam_xact_unwritten_head(const char *service_id, int64 *size, uint8 *root);
extern int64 jam_xact_unwritten_references(const char *hash);
extern bool jam_xact_rows_held(void);

#endif							/* JAM_XACT_ROWS_H */
