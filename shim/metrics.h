/*
 * metrics.h: the shim's own request metrics, and the Prometheus text page
 * of GET /metrics (these plus the extension's jam_metrics() rows).
 */
#ifndef SHIM_METRICS_H
#define SHIM_METRICS_H

#include <libpq-fe.h>
#include <stddef.h>

#include "buf.h"
#include "conns.h"
#include "events.h"
#include "pool.h"
#include "routes.h"

void		metrics_observe(route_id route, unsigned method, int status, double seconds, size_t bytes);
void		metrics_in_flight(int delta);
int			metrics_get_in_flight(void);
void		metrics_render_shim(struct buf *out, const struct pool_stats *ps, double uptime_seconds,
								const char *version);
int			metrics_render_extension(struct buf *out, const PGresult *rows);
void		metrics_render_extension_status(struct buf *out, int up);
void		metrics_render_connections(struct buf *out, const struct conns_stats *cs);
void		metrics_render_events(struct buf *out, const struct events_stats *es);

#endif
