/*
 * token.c: the bearer token.
 *
 * Never from argv (it would show in ps and shell history; opts.c refuses
 * --token): from a file named by --token-file or JAM_TOKEN_FILE, or from
 * JAM_TOKEN.  A file may end in a newline (echo adds one); the token
 * itself must be one line of printable ASCII, since it goes into an HTTP
 * header where a line break would start another header.
 */
#include "token.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "jamctl.h"
#include "util.h"

static int	loaded;
static char *token;
static char source[600];

static char *
from_file(const char *path, const char *via)
{
	size_t		len;
	char	   *t = (char *) read_file(path, &len);

	snprintf(source, sizeof(source), "%s %s", via, path);
	if (!t)
		jc_die(JC_USAGE, "token_file", "cannot read the token file %s (%s): %s", path, via, strerror(errno));
	while (len > 0 && (t[len - 1] == '\n' || t[len - 1] == '\r' || t[len - 1] == ' ' || t[len - 1] == '\t'))
		t[--len] = '\0';
	return t;
}

const char *
token_get(void)
{
	const char *env;

	if (loaded)
		return token;
	loaded = 1;
	if (jc.token_file)
		token = from_file(jc.token_file, "--token-file");
	else if ((env = getenv("JAM_TOKEN")) != NULL && env[0] != '\0')
	{
		token = xstrdup(env);
		snprintf(source, sizeof(source), "JAM_TOKEN");
	}
	else if ((env = getenv("JAM_TOKEN_FILE")) != NULL && env[0] != '\0')
		token = from_file(env, "JAM_TOKEN_FILE");
	if (token)
	{
		if (token[0] == '\0')
			jc_die(JC_USAGE, "token_file", "the token from %s is empty", source);
		for (const unsigned char *p = (const unsigned char *) token; *p; p++)
			if (*p <= 0x20 || *p >= 0x7f)
				jc_die(JC_USAGE, "token_file", "the token from %s is not one line of printable characters",
					   source);
	}
	return token;
}

const char *
token_source(void)
{
	return source[0] ? source : "nowhere";
}
