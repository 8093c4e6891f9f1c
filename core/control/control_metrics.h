/* control_metrics.h: the Prometheus metrics endpoint (GET /metrics over HTTP on the daemon's loop). */
#ifndef VIPMTA_CORE_CONTROL_METRICS_H
#define VIPMTA_CORE_CONTROL_METRICS_H

#include "config/config.h"

struct event_base;

/* Listens on cfg->metrics.address:port when enabled (nothing to do otherwise).
 * 0, or -1 with the reason (naming metrics.address / metrics.port) in `errs`. */
int control_metrics_start(struct event_base *base, const struct vipmta_config *cfg,
                  struct config_errors *errs);
/* Closes the listener and any open scrape connection. */
void control_metrics_stop(void);

#endif
