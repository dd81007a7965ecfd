/*
 * progress.c: the progress bar.
 *
 * Only for a person watching: stderr must be a terminal, -q not given, and
 * the transfer over 1 MiB (small ones finish before a bar means anything).
 * Redrawn at most ten times a second with a carriage return, and cleared
 * at the end so that what follows starts on a clean line.
 */
#include "progress.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "jamctl.h"
#include "util.h"

static const char *label;
static int	drawn;
static double last_draw;
static double last_done;

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

void
progress_begin(const char *what)
{
	label = what;
	drawn = 0;
	last_draw = 0;
	last_done = -1;
}

void
progress_update(double dl_total, double dl_now, double ul_total, double ul_now)
{
	/* The upload's bar until it is sent (or for good, when the answer is small), then the download's. */
	int			up = ul_total >= PROGRESS_MIN_BYTES && (ul_now < ul_total || dl_total < PROGRESS_MIN_BYTES);
	double		total = up ? ul_total : dl_total;
	double		done = up ? ul_now : dl_now;
	char		a[32],
				b[32],
				bar[41];
	int			width = 30,
				fill;
	double		t;

	if (!jc.stderr_tty || jc.quiet || total < PROGRESS_MIN_BYTES)
		return;
	t = now_seconds();
	/* At most ten redraws a second, and none when nothing moved (libcurl calls back often). */
	if (drawn && (done == last_done || (done < total && t - last_draw < 0.1)))
		return;
	last_draw = t;
	last_done = done;
	fill = (int) (width * (done / total));
	if (fill > width)
		fill = width;
	memset(bar, '#', (size_t) fill);
	memset(bar + fill, '.', (size_t) (width - fill));
	bar[width] = '\0';
	human_bytes(done, a, sizeof(a));
	human_bytes(total, b, sizeof(b));
	fprintf(stderr, "\r%s [%s] %3d%% %s / %s\033[K", label ? label : up ? "upload" : "download", bar,
			(int) (100.0 * done / total), a, b);
	fflush(stderr);
	drawn = 1;
}

void
progress_end(void)
{
	if (drawn)
	{
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
	drawn = 0;
}
