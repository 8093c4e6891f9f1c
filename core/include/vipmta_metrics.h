/* vipmta_metrics.h: counters a module adds to the daemon's metrics endpoint (Prometheus counters labelled with the module instance). */
#ifndef VIPMTA_METRICS_H
#define VIPMTA_METRICS_H

#include <stdint.h>
#include "vipmta_module.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Labels a module may give one series (the core adds `module`). */
#define VIPMTA_METRICS_LABELS_MAX 4
/* Series the daemon keeps over all modules; adding to a new series past
 * this fails with ENOSPC (and is counted in vipmta_module_series_dropped_total). */
#define VIPMTA_METRICS_SERIES_MAX 4096

/* Adds `n` to the counter series `name`{module="LABEL", labels...}, where
 * LABEL is the instance's ("NAME" or "NAME:INSTANCE"). Safe from any thread
 * (signing workers, inbound loops); callable from configure on (the series
 * appear on the endpoint from their first add, and live until the daemon
 * exits, reloads included).
 *  - name: "vipmta_", the module's name, '_', then lower-case letters,
 *    digits and '_', ending in "_total" (the dkim module's
 *    vipmta_dkim_messages_total), at most 128 characters;
 *  - help: one line saying what it counts (the first add of a name sets it);
 *  - labels: NULL, or a NULL-terminated array of key, value pairs, at most
 *    VIPMTA_METRICS_LABELS_MAX: keys [a-z_][a-z0-9_]* other than "module",
 *    values any text up to 256 characters (escaped on output).
 * 0, or -1 with errno EINVAL (a bad name, help or label) or ENOSPC. */
int vipmta_module_counter_add(vipmta_module_ctx *m, const char *name, const char *help,
                              const char *const *labels, uint64_t n);

#ifdef __cplusplus
}
#endif
#endif
