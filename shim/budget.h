/*
 * budget.h: how many bytes of request bodies the shim holds at once.
 *
 * Each worker thread reads its request's body into memory before the
 * request waits for a Postgres connection, so with many threads (one per
 * open connection) the bodies alone could take threads x the body cap.
 * A request takes its share of a fixed budget before it reads (its
 * Content-Length, or a chunked body step by step) and gives it back when
 * answered; a body that does not fit is refused with 503 server_busy, and
 * never read.
 */
#ifndef SHIM_BUDGET_H
#define SHIM_BUDGET_H

void		budget_init(long long bytes);
int			budget_take(long long bytes);
void		budget_give(long long bytes);

#endif
