/*
 * token.h: where the bearer token comes from.
 */
#ifndef JAMCTL_TOKEN_H
#define JAMCTL_TOKEN_H

/*
 * The token, from --token-file, else JAM_TOKEN, else JAM_TOKEN_FILE; NULL
 * when none is given.  Read once, on the first request that needs it.
 */
const char *token_get(void);

/* Where the token came from, for messages: "--token-file FILE", "JAM_TOKEN", ... */
const char *token_source(void);

#endif
