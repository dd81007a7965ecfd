/*
 * stream.h: GET /jam/events, the Server-Sent Events of what commits to
 * the services' logs (see stream.c).
 */
#ifndef SHIM_STREAM_H
#define SHIM_STREAM_H

#include "plan.h"
#include "shim.h"

void		stream_serve(struct exchange *x, struct plan *plan);

#endif
