/*
 * calls.h: running a planned call against Postgres and answering with its
 * result, one function per kind of result.
 */
#ifndef SHIM_CALLS_H
#define SHIM_CALLS_H

#include "plan.h"
#include "shim.h"

void		call_run(struct exchange *x, struct plan *plan);

#endif
