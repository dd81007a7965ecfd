/*
 * holders.h: which tenants hold which preimages (holders.c).
 */
#ifndef JAM_HOLDERS_H
#define JAM_HOLDERS_H

#include "jam.h"

extern const char *jam_holders_tenant(void);
extern bool jam_holders_add(const char *tenant, const char *hash_hex, const char *media_type);
extern Datum jam_holders_meta(const char *tenant, const char *hash_hex, bool read_only);
extern char *jam_holders_first_missing(const char *tenant, ArrayType *hashes);

#endif							/* JAM_HOLDERS_H */
