/* control_metrics_render.h: renders a snapshot of the daemon's counters as Prometheus text exposition format 0.0.4. */
#ifndef VIPMTA_CORE_CONTROL_METRICS_RENDER_H
#define VIPMTA_CORE_CONTROL_METRICS_RENDER_H

#include "control_stats.h"
#include "spool/spool.h"
#include "tls/tls.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct control_metrics_binding_sample {
    const char *name;
    int slot;
    int suspended;
    struct control_stats_binding counters; /* counters.open: its connections open now */
};

struct control_metrics_module_sample {
    const char *module;
    uint64_t vetoes;
};

struct control_metrics_domain_sample {
    const char *domain;
    uint32_t active;      /* recipients ready now */
    uint32_t delayed;     /* recipients waiting for their next attempt */
    uint32_t connections; /* open outbound connections */
    uint32_t deliveries;
    uint32_t transients;
    uint32_t failures;
    uint32_t attempts;
};

/* Everything one scrape shows; the render reads nothing else. */
struct control_metrics_snapshot {
    const char *version;
    double uptime_seconds;
    struct control_stats_totals totals;
    const struct control_metrics_binding_sample *bindings;
    size_t binding_count;
    const struct control_metrics_module_sample *modules;
    size_t module_count;
    const struct control_metrics_domain_sample *domains; /* the ones shown */
    size_t domain_count;
    size_t domains_omitted;                      /* known domains left out by the cap */
    uint64_t queue_recipients;                   /* over every domain, shown or not */
    struct control_stats_sync sync;
    const uint64_t *sync_bounds_usec;            /* CONTROL_STATS_SYNC_BUCKETS - 1 upper bounds */
    const struct tls_stats_row *tls_rows;        /* connections by TLS version, cipher, verified */
    size_t tls_row_count;
    struct tls_stats_totals tls;                 /* handshake failures, AUTH outcomes */
    const struct control_stats_series *series;   /* modules' counters, sorted by name */
    size_t series_count;
    uint64_t series_dropped;                     /* adds refused: the series table was full */
    struct spool_memory_stats spool_memory;      /* bodies kept in memory */
};

/* Writes `v` as a label value: \ " and newline escaped (no quotes added). */
void control_metrics_write_label_value(FILE *f, const char *v);
/* Orders `d` for the per-domain cap: most queued (active + delayed) first, then
 * by name; returns how many to show (at most `max`). */
size_t control_metrics_select_domains(struct control_metrics_domain_sample *d, size_t count, size_t max);
/* Renders `s` into a malloc'd NUL-terminated text (*out, *len); 0, or -1 on out of memory. */
int control_metrics_render(const struct control_metrics_snapshot *s, char **out, size_t *len);

#endif
