/*
 * auth.h: tokens as capabilities, and what the API functions ask of them.
 *
 * A caller presents a token with jam_authenticate(token) in the statement
 * (or transaction) that calls the API; the capability it grants lasts until
 * the transaction ends.  Callers through the shim's role (members of
 * jam_api) must present one when jam.auth_required is on; every other role
 * is governed by its GRANTs, and is restricted further by a token only when
 * it presents one.
 */
#ifndef JAM_AUTH_H
#define JAM_AUTH_H

#include "postgres.h"
#include "utils/array.h"
#include "utils/timestamp.h"

/* Scopes, as bits; jam:admin implies every other scope. */
#define JAM_SCOPE_READ		0x01
#define JAM_SCOPE_SUBMIT	0x02
#define JAM_SCOPE_PROCESS	0x04
#define JAM_SCOPE_ADMIN		0x08

/* A token id: 16 lowercase hex characters, the public half of a token. */
#define JAM_TOKEN_ID_CHARS 16

typedef struct JamCapability
{
	char		token_id[JAM_TOKEN_ID_CHARS + 1];
	char	   *name;
	int			scopes;
	int			n_services;		/* -1: every service */
	char	  **services;
	char	   *tenant;			/* NULL: no tenant, sees every tenant's services */
} JamCapability;

extern PGDLLEXPORT Datum jam_authenticate(PG_FUNCTION_ARGS);
extern bool jam_auth_required;

/* auth.c */
extern void jam_define_auth_gucs(void);
extern const JamCapability *jam_auth_current(void);
extern const char *jam_auth_token_id(void);
extern const char *jam_auth_tenant(void);
extern void jam_auth_require(int scope, const char *what);
extern void jam_auth_require_service(int scope, const char *service_id);
extern bool jam_auth_sees_service(const char *service_id);
extern ArrayType *jam_auth_visible_services(void);
extern bool jam_auth_anonymous(void);
extern void jam_auth_check_claim(const char *service_id, const char *service_tenant);

/* tokens.c: token strings and the token table. */
extern bool jam_token_parse(const char *token, char id[JAM_TOKEN_ID_CHARS + 1],
							uint8 secret_hash[32]);
extern int	jam_scopes_from_array(ArrayType *scopes);
extern char *jam_check_token_id(text *arg);

/* auth_cache.c: what changes to tokens and quotas invalidate, across backends. */
extern void jam_auth_cache_init(void);
extern uint64 jam_auth_generation(void);
extern bool jam_auth_lookup_token(const char *token_id, const uint8 secret_hash[32],
								  JamCapability *cap, bool *revoked, bool *expired);

#endif							/* JAM_AUTH_H */
