/*
 * trace.c: traceparent validation and trace/span id generation.
 */
#include "trace.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

/* Whether n characters are all lowercase hex digits. */
static int
is_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* Whether n characters are all '0'. */
static int
all_zero(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != '0')
			return 0;
	return 1;
}

/*
 * Validates a traceparent header strictly: "00-" 32 hex "-" 16 hex "-" 2
 * hex, lowercase, exactly 55 characters, neither id all zeros.  (Version 00
 * is the only one this shim speaks; later versions would allow trailing
 * fields, which a version-00 parser must not guess at.)  Returns 0 and the
 * parts when valid, -1 otherwise.
 */
int
trace_parse(const char *h, char trace_id[33], char parent_id[17], char flags[3])
{
	if (h == NULL || strlen(h) != 55)
		return -1;
	if (h[0] != '0' || h[1] != '0' || h[2] != '-' || h[35] != '-' || h[52] != '-')
		return -1;
	if (!is_lower_hex(h + 3, 32) || !is_lower_hex(h + 36, 16) || !is_lower_hex(h + 53, 2))
		return -1;
	if (all_zero(h + 3, 32) || all_zero(h + 36, 16))
		return -1;
	memcpy(trace_id, h + 3, 32);
	trace_id[32] = '\0';
	memcpy(parent_id, h + 36, 16);
	parent_id[16] = '\0';
	memcpy(flags, h + 53, 2);
	flags[2] = '\0';
	return 0;
}

/*
 * Random bytes from the kernel's CSPRNG, fetched a few hundred at a time
 * per thread: one getrandom call serves about ten requests.
 */
static void
random_bytes(unsigned char *out, size_t n)
{
	static __thread unsigned char pool[256];
	static __thread size_t avail;

	while (n > 0)
	{
		if (avail == 0)
		{
			size_t		got = 0;

			while (got < sizeof(pool))
			{
				ssize_t		r = getrandom(pool + got, sizeof(pool) - got, 0);

				if (r > 0)
					got += (size_t) r;
			}
			avail = sizeof(pool);
		}
		size_t		take = n < avail ? n : avail;

		memcpy(out, pool + sizeof(pool) - avail, take);
		/* Bytes handed out are not kept. */
		memset(pool + sizeof(pool) - avail, 0, take);
		avail -= take;
		out += take;
		n -= take;
	}
}

/* n random bytes as 2n lowercase hex characters, never all zeros. */
static void
random_hex(char *out, size_t nbytes)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char bytes[16];

	do
	{
		random_bytes(bytes, nbytes);
		for (size_t i = 0; i < nbytes; i++)
		{
			out[2 * i] = hex[bytes[i] >> 4];
			out[2 * i + 1] = hex[bytes[i] & 15];
		}
		out[2 * nbytes] = '\0';
	} while (all_zero(out, 2 * nbytes));
}

/* Starts this request's span: continues a valid incoming trace or begins one. */
void
trace_begin(struct trace *t, const char *incoming)
{
	if (trace_parse(incoming, t->trace_id, t->parent_id, t->flags) < 0)
	{
		random_hex(t->trace_id, 16);
		t->parent_id[0] = '\0';
		strcpy(t->flags, "00");
	}
	random_hex(t->span_id, 8);
	snprintf(t->header, sizeof(t->header), "00-%s-%s-%s", t->trace_id, t->span_id, t->flags);
}
