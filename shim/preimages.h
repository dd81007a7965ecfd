/*
 * preimages.h: the answers of GET and HEAD /jam/preimages/{hash}
 * (preimages.c): streamed bytes, or the headers alone.
 */
#ifndef SHIM_PREIMAGES_H
#define SHIM_PREIMAGES_H

#include <libpq-fe.h>

#include "plan.h"
#include "shim.h"

int			preimage_stream(struct exchange *x, struct plan *p);
void		preimage_answer_get(struct exchange *x, struct plan *p, PGresult *res);
void		preimage_answer_head(struct exchange *x, struct plan *p, PGresult *res);

#endif
