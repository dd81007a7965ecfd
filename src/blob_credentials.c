/*
 * blob_credentials.c: the blob store's credentials, from a file.
 *
 * A secret in a setting would be shown by SHOW and pg_settings to whoever
 * may read them, and would sit in postgresql.auto.conf; so only the path
 * is a setting (jam.blob_store_credentials_file, superuser-only), and the
 * file must be readable by the server's OS user alone, as PostgreSQL asks
 * of ssl_key_file: owned by that user with no group or other permission,
 * or owned by root with at most group read.  Its lines are
 *
 *     access_key_id = AKIA...
 *     secret_access_key = ...
 *     session_token = ...          (optional: temporary credentials)
 *
 * (the AWS CLI's aws_access_key_id, aws_secret_access_key and
 * aws_session_token, under an optional [default], are read too, so a
 * shared credentials file of one profile works as it is); '#' and ';'
 * start comments.  Each backend reads the file when it first needs it
 * and again whenever its identity, size or modification time changes, so
 * rotated keys take effect at the next request, with or without a reload
 * (a reload that names another file does too).  The secret never leaves
 * this file's memory but into libcurl's signing.
 */
#include "jam.h"
#include "blob.h"
#include "errors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "utils/memutils.h"

#define CREDENTIALS_FILE_MAX (64 * 1024)

typedef struct CachedCredentials
{
	char	   *path;
	dev_t		dev;
	ino_t		ino;
	off_t		size;
	struct timespec mtime;
	char	   *access_key_id;
	char	   *secret_access_key;
	char	   *session_token;
	S3Credentials creds;
} CachedCredentials;

static CachedCredentials cached;

/* Forgets what was read, wiping the secrets. */
static void
forget(void)
{
	if (cached.path)
		pfree(cached.path);
	if (cached.access_key_id)
		pfree(cached.access_key_id);
	if (cached.secret_access_key)
	{
		sodium_memzero(cached.secret_access_key, strlen(cached.secret_access_key));
		pfree(cached.secret_access_key);
	}
	if (cached.session_token)
	{
		sodium_memzero(cached.session_token, strlen(cached.session_token));
		pfree(cached.session_token);
	}
	memset(&cached, 0, sizeof(cached));
}

static void
refuse(const char *path, const char *why, const char *hint)
{
	ereport(ERROR,
			(jam_errcode(JAM_ERR_BLOB_STORE_UNAVAILABLE),
			 errmsg("the blob store's credentials file \"%s\" %s", path, why),
			 errdetail("Retry after %d seconds.", JAM_BLOB_RETRY_AFTER_S),
			 hint ? errhint("%s", hint) : 0));
}

/* Trims spaces and tabs at both ends, in place. */
static char *
trim(char *s)
{
	char	   *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = '\0';
	return s;
}

/* Parses the file's text into cached (in TopMemoryContext); the text is wiped after. */
static void
parse(const char *path, char *text)
{
	char	   *save = NULL;
	int			lineno = 0;
	bool		other_profile = false;

	for (char *line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save))
	{
		char	   *eq;
		char	   *key;
		char	   *value;
		char	  **slot = NULL;

		lineno++;
		line = trim(line);
		if (*line == '\0' || *line == '#' || *line == ';')
			continue;
		if (*line == '[')
		{
			/* Only one set of credentials is read: the default profile's. */
			other_profile = strcmp(line, "[default]") != 0;
			continue;
		}
		if (other_profile)
			continue;
		eq = strchr(line, '=');
		if (eq == NULL)
			refuse(path, psprintf("has no '=' on line %d", lineno),
				   "Each line is key = value: access_key_id, secret_access_key, session_token.");
		*eq = '\0';
		key = trim(line);
		value = trim(eq + 1);
		if (strcmp(key, "access_key_id") == 0 || strcmp(key, "aws_access_key_id") == 0)
			slot = &cached.access_key_id;
		else if (strcmp(key, "secret_access_key") == 0 || strcmp(key, "aws_secret_access_key") == 0)
			slot = &cached.secret_access_key;
		else if (strcmp(key, "session_token") == 0 || strcmp(key, "aws_session_token") == 0)
			slot = &cached.session_token;
		else
			continue;			/* region, output, ...: settings of other tools */
		if (*slot != NULL)
			pfree(*slot);
		*slot = MemoryContextStrdup(TopMemoryContext, value);
	}
	if (cached.access_key_id == NULL || cached.access_key_id[0] == '\0' ||
		cached.secret_access_key == NULL || cached.secret_access_key[0] == '\0')
		refuse(path, "lacks access_key_id or secret_access_key", NULL);
}

/*
 * The credentials, read from jam.blob_store_credentials_file when first
 * needed or when it changed.  Raises blob_store_unavailable when there is
 * none, or the file is unreadable, open to others, or incomplete.
 */
const S3Credentials *
jam_blob_credentials(void)
{
	const char *path = jam_blob_store_credentials_file;
	struct stat st;
	int			fd;
	char	   *text;
	ssize_t		n;

	if (path == NULL || path[0] == '\0')
		refuse("", "is not set",
			   "Set jam.blob_store_credentials_file to a file of the server's user, mode 0600.");
	if (stat(path, &st) != 0)
		refuse(path, psprintf("cannot be read: %m"), NULL);
	/* Checked at every use, so that a file opened to others stops being used at once. */
	if (!S_ISREG(st.st_mode))
		refuse(path, "is not a regular file", NULL);
	if (st.st_uid == geteuid() ? (st.st_mode & (S_IRWXG | S_IRWXO)) != 0
		: st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IXGRP | S_IRWXO)) != 0)
		refuse(path, "may be read by other users than the server's",
			   "Make it the server's user's with mode 0600 (or root's with 0640).");
	if (cached.path != NULL && strcmp(cached.path, path) == 0 && cached.dev == st.st_dev &&
		cached.ino == st.st_ino && cached.size == st.st_size &&
		cached.mtime.tv_sec == st.st_mtim.tv_sec && cached.mtime.tv_nsec == st.st_mtim.tv_nsec)
		return &cached.creds;

	forget();
	if (st.st_size > CREDENTIALS_FILE_MAX)
		refuse(path, "is too large", NULL);

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		refuse(path, psprintf("cannot be opened: %m"), NULL);
	text = palloc0(st.st_size + 1);
	n = read(fd, text, st.st_size);
	close(fd);
	if (n != st.st_size)
		refuse(path, "changed while it was read", NULL);

	PG_TRY();
	{
		parse(path, text);
	}
	PG_FINALLY();
	{
		sodium_memzero(text, st.st_size);
		pfree(text);
	}
	PG_END_TRY();

	cached.path = MemoryContextStrdup(TopMemoryContext, path);
	cached.dev = st.st_dev;
	cached.ino = st.st_ino;
	cached.size = st.st_size;
	cached.mtime = st.st_mtim;
	cached.creds.access_key_id = cached.access_key_id;
	cached.creds.secret_access_key = cached.secret_access_key;
	cached.creds.session_token = cached.session_token;
	return &cached.creds;
}
