/*
 * media_type.c: checking a preimage's media type against
 * jam.allowed_media_types.
 *
 * A media type is type "/" subtype (RFC 6838 restricted names), optionally
 * followed by ";" parameters.  The type and subtype are compared without
 * regard to case and stored lowercased; parameters are kept as given.
 */
#include "jam.h"
#include "errors.h"

#include "lib/stringinfo.h"
#include "utils/builtins.h"

#define MEDIA_TYPE_MAX 255
#define RESTRICTED_NAME_MAX 127

static bool
is_restricted_name_char(char c, bool first)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return !first && strchr("!#$&-^_.+", c) != NULL;
}

/* Length of the restricted name at s, or 0 if there is none. */
static int
restricted_name_length(const char *s)
{
	int			n = 0;

	while (s[n] != '\0' && n <= RESTRICTED_NAME_MAX && is_restricted_name_char(s[n], n == 0))
		n++;
	return n > RESTRICTED_NAME_MAX ? 0 : n;
}

static void
raise_invalid(const char *given, const char *why)
{
	ereport(ERROR,
			(jam_errcode(JAM_ERR_INVALID_MEDIA_TYPE),
			 errmsg("invalid media type \"%s\"", jam_shown_input(given)),
			 errdetail("%s", why),
			 errhint("A media type looks like \"application/octet-stream\" or \"text/plain; charset=utf-8\".")));
}

/* Does the allow-list entry (already trimmed) accept the lowercase essence? */
static bool
entry_accepts(const char *entry, int entry_len, const char *essence, int type_len)
{
	if ((entry_len == 1 && entry[0] == '*') ||
		(entry_len == 3 && strncmp(entry, "*/*", 3) == 0))
		return true;
	if (entry_len == type_len + 2 && entry[entry_len - 1] == '*' && entry[entry_len - 2] == '/')
		return pg_strncasecmp(entry, essence, type_len) == 0;
	return entry_len == (int) strlen(essence) && pg_strncasecmp(entry, essence, entry_len) == 0;
}

static bool
allowed_by_config(const char *essence, int type_len)
{
	const char *p = jam_allowed_media_types ? jam_allowed_media_types : "";

	while (*p != '\0')
	{
		const char *end = strchr(p, ',');
		const char *stop = end ? end : p + strlen(p);
		const char *a = p;
		const char *b = stop;

		while (a < b && isspace((unsigned char) *a))
			a++;
		while (b > a && isspace((unsigned char) b[-1]))
			b--;
		if (b > a && entry_accepts(a, (int) (b - a), essence, type_len))
			return true;
		if (end == NULL)
			break;
		p = end + 1;
	}
	return false;
}

/*
 * Validates media_type, checks it against the allow-list and returns its
 * normalized form (lowercase type/subtype, trimmed parameters).
 */
char *
jam_check_media_type(text *media_type)
{
	char	   *given = text_to_cstring(media_type);
	const char *s = given;
	int			type_len,
				subtype_len;
	StringInfoData essence;
	const char *params;

	/*
	 * A control character (a line break above all) has no place in a media
	 * type, and would reach HTTP headers and logs: refused wherever it is,
	 * even where it might pass for white space.
	 */
	for (const char *c = given; *c != '\0'; c++)
		if ((unsigned char) *c < 0x20 || (unsigned char) *c == 0x7f)
			raise_invalid(given, psprintf("It holds the control character 0x%02x at position %d.",
										  (unsigned char) *c, (int) (c - given) + 1));
	while (*s == ' ')
		s++;
	if (strlen(s) > MEDIA_TYPE_MAX)
		raise_invalid(given, "A media type has at most 255 characters.");

	type_len = restricted_name_length(s);
	if (type_len == 0 || s[type_len] != '/')
		raise_invalid(given, "It does not start with a type followed by \"/\".");
	subtype_len = restricted_name_length(s + type_len + 1);
	if (subtype_len == 0)
		raise_invalid(given, "It has no subtype after \"/\".");

	params = s + type_len + 1 + subtype_len;
	while (*params == ' ')
		params++;
	if (*params != '\0' && *params != ';')
		raise_invalid(given, "Only parameters introduced by \";\" may follow the subtype.");
	for (const char *c = params; *c != '\0'; c++)
		if ((unsigned char) *c < 0x20 || (unsigned char) *c >= 0x7f)
			raise_invalid(given, "Parameters must be printable ASCII.");

	initStringInfo(&essence);
	for (int i = 0; i < type_len + 1 + subtype_len; i++)
		appendStringInfoChar(&essence, pg_ascii_tolower((unsigned char) s[i]));

	if (!allowed_by_config(essence.data, type_len))
		ereport(ERROR,
				(jam_errcode(JAM_ERR_MEDIA_TYPE_NOT_ALLOWED),
				 errmsg("media type \"%s\" is not allowed", essence.data),
				 errdetail("jam.allowed_media_types is \"%s\".",
						   jam_allowed_media_types ? jam_allowed_media_types : "")));

	if (*params == ';')
	{
		const char *first = params + 1;
		const char *last = params + strlen(params);

		while (*first == ' ')
			first++;
		while (last > first && last[-1] == ' ')
			last--;
		if (last > first)
		{
			appendStringInfoString(&essence, "; ");
			appendBinaryStringInfo(&essence, first, (int) (last - first));
		}
	}
	return essence.data;
}
