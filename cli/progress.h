/*
 * progress.h: a progress bar on stderr for long transfers.
 */
#ifndef JAMCTL_PROGRESS_H
#define JAMCTL_PROGRESS_H

/* Transfers above this size get a bar (when stderr is a terminal and not -q). */
#define PROGRESS_MIN_BYTES (1024.0 * 1024.0)

/* Starts a transfer named label ("upload", "download"). */
void		progress_begin(const char *label);

/* Called as bytes move; either direction may have a total of 0 (unknown). */
void		progress_update(double dl_total, double dl_now, double ul_total, double ul_now);

/* Ends the transfer: the bar, if one was drawn, is cleared. */
void		progress_end(void);

#endif
