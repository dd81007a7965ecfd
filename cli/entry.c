/*
 * entry.c: jam's log entries, the leaves of its Merkle logs:
 *
 *   u8 kind (1 package, 2 report) || 32 item hash || 32 meta hash ||
 *   u8 status (0 pending, 1 applied, 2 failed) || u64 timestamp (µs, LE)
 *
 * verify --leaf-data reads one to show which package or report a proof is
 * about, and --hash checks that it is the one the user means; receipt
 * --entry builds one from what the server says of a package, so that the
 * user holds the leaf a proof must lead from.
 */
#include "entry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

int
entry_decode(const unsigned char *d, size_t len, struct log_entry *e)
{
	if (len != ENTRY_BYTES || (d[0] != 1 && d[0] != 2) || d[65] > 2)
		return -1;
	e->kind = d[0];
	memcpy(e->item, d + 1, JC_HASH_BYTES);
	memcpy(e->meta, d + 33, JC_HASH_BYTES);
	e->status = d[65];
	e->timestamp_us = 0;
	for (int i = 7; i >= 0; i--)
		e->timestamp_us = (e->timestamp_us << 8) | d[66 + i];
	return 0;
}

json_object *
entry_json(const struct log_entry *e)
{
	static const char *const statuses[] = {"pending", "applied", "failed"};
	json_object *o = json_object_new_object();
	char		hex[JC_HASH_HEX + 1],
				when[64],
				stamp[32];
	time_t		secs = (time_t) (e->timestamp_us / 1000000);
	struct tm	tm;

	json_object_object_add(o, "kind", json_object_new_string(e->kind == 1 ? "package" : "report"));
	to_hex(e->item, JC_HASH_BYTES, hex);
	json_object_object_add(o, "hash", json_object_new_string(hex));
	to_hex(e->meta, JC_HASH_BYTES, hex);
	json_object_object_add(o, "meta_hash", json_object_new_string(hex));
	json_object_object_add(o, "status", json_object_new_string(statuses[e->status]));
	gmtime_r(&secs, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when, sizeof(when), "%s.%06lluZ", stamp, (unsigned long long) (e->timestamp_us % 1000000));
	json_object_object_add(o, "processed_at", json_object_new_string(when));
	return o;
}

void
entry_encode(const struct log_entry *e, unsigned char out[ENTRY_BYTES])
{
	out[0] = (unsigned char) e->kind;
	memcpy(out + 1, e->item, JC_HASH_BYTES);
	memcpy(out + 33, e->meta, JC_HASH_BYTES);
	out[65] = (unsigned char) e->status;
	for (int i = 0; i < 8; i++)
		out[66 + i] = (unsigned char) (e->timestamp_us >> (8 * i));
}

static void
put_str(crypto_generichash_state *st, const char *s)
{
	uint32_t	len = (uint32_t) strlen(s);
	unsigned char b[4] = {len & 0xff, (len >> 8) & 0xff, (len >> 16) & 0xff, len >> 24};

	crypto_generichash_update(st, b, 4);
	crypto_generichash_update(st, (const unsigned char *) s, len);
}

void
entry_meta_hash(const char *service_id, const char *principal, const char *detail,
				unsigned char out[JC_HASH_BYTES])
{
	static const char tag[] = "jam/meta/v1";
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, JC_HASH_BYTES);
	crypto_generichash_update(&st, (const unsigned char *) tag, sizeof(tag) - 1);
	put_str(&st, service_id);
	put_str(&st, principal);
	put_str(&st, detail);
	crypto_generichash_final(&st, out, JC_HASH_BYTES);
}

int
entry_status_code(const char *status)
{
	static const char *const statuses[] = {"pending", "applied", "failed"};

	for (int i = 0; i < 3; i++)
		if (strcmp(status, statuses[i]) == 0)
			return i;
	return -1;
}

/* n decimal digits at *p, advancing it; -1 when they are not there. */
static long
digits(const char **p, int n)
{
	long		v = 0;

	for (int i = 0; i < n; i++, (*p)++)
	{
		if (**p < '0' || **p > '9')
			return -1;
		v = v * 10 + (**p - '0');
	}
	return v;
}

int
entry_parse_time(const char *text, uint64_t *us)
{
	const char *p = text;
	struct tm	tm;
	long		y, mo, d, h, mi, s, frac = 0, off = 0;
	int			frac_digits = 0;
	time_t		t;

	memset(&tm, 0, sizeof(tm));
	if ((y = digits(&p, 4)) < 0 || *p++ != '-' || (mo = digits(&p, 2)) < 0 || *p++ != '-' ||
		(d = digits(&p, 2)) < 0 || (*p != 'T' && *p != ' ') || !*p++ ||
		(h = digits(&p, 2)) < 0 || *p++ != ':' || (mi = digits(&p, 2)) < 0 || *p++ != ':' ||
		(s = digits(&p, 2)) < 0)
		return -1;
	if (*p == '.')
	{
		p++;
		while (*p >= '0' && *p <= '9')
		{
			if (frac_digits == 6)
				return -1;
			frac = frac * 10 + (*p++ - '0');
			frac_digits++;
		}
		if (frac_digits == 0)
			return -1;
		while (frac_digits++ < 6)
			frac *= 10;
	}
	if (*p == 'Z')
		p++;
	else if (*p == '+' || *p == '-')
	{
		int			sign = *p++ == '-' ? -1 : 1;
		long		oh = digits(&p, 2),
					om = 0;

		if (oh < 0)
			return -1;
		if (*p == ':')
			p++;
		if (*p && (om = digits(&p, 2)) < 0)
			return -1;
		off = sign * (oh * 3600 + om * 60);
	}
	else
		return -1;
	if (*p != '\0' || y < 1970)
		return -1;
	tm.tm_year = (int) y - 1900;
	tm.tm_mon = (int) mo - 1;
	tm.tm_mday = (int) d;
	tm.tm_hour = (int) h;
	tm.tm_min = (int) mi;
	tm.tm_sec = (int) s;
	t = timegm(&tm) - off;
	if (t < 0)
		return -1;
	*us = (uint64_t) t * 1000000 + (uint64_t) frac;
	return 0;
}
