/* control_stats.h: the daemon's counters (per binding, vetoes per module, totals, spool sync latency) for vipmtactl and metrics. */
#ifndef VIPMTA_CORE_CONTROL_STATS_H
#define VIPMTA_CORE_CONTROL_STATS_H

#include "vipmta_binding.h"
#include "vipmta_metrics.h"

#include <stddef.h>
#include <stdint.h>

/* Counters of one binding slot since start, and its open connections. Written
 * on the event loop only. */
struct control_stats_binding {
    uint64_t connections;      /* outbound sockets bound and handed to the post-bind chain */
    uint64_t connect_failures; /* sockets that failed before an SMTP session (bind, connect) */
    uint64_t vetoes;           /* connections vetoed by a post-bind hook (every kind) */
    uint64_t vetoes_permanent; /* of those, permanent (vipmta_veto) */
    uint64_t vetoes_other_binding; /* of those, asking for another binding */
    uint64_t moved_out;        /* messages moved to another binding after such a veto */
    uint64_t delivered;        /* recipients delivered (2xx) */
    uint64_t deferred;         /* recipient attempts deferred (4xx, no connection, veto) */
    uint64_t bounced;          /* recipients failed permanently (5xx, expiry) */
    uint64_t open;             /* outbound connections open now (a gauge, kept by deliver.c) */
};

/* Daemon-wide counters since start. Written on the event loop only. */
struct control_stats_totals {
    uint64_t sessions;            /* inbound SMTP sessions accepted */
    uint64_t messages_accepted;   /* messages answered 250 (on disk) */
    uint64_t recipients_accepted; /* their recipients */
    uint64_t messages_rejected;   /* DATA answered with a 4xx/5xx (size, spool error) */
};

/* Spool sync rounds by duration: bucket i counts rounds of at most
 * control_stats_sync_bounds_usec[i] microseconds; the last bucket is +Inf. */
#define CONTROL_STATS_SYNC_BUCKETS 14
extern const uint64_t control_stats_sync_bounds_usec[CONTROL_STATS_SYNC_BUCKETS - 1];
struct control_stats_sync {
    uint64_t buckets[CONTROL_STATS_SYNC_BUCKETS]; /* not cumulative */
    uint64_t count;
    uint64_t sum_usec;
};

/* Sizes the per-binding table for `binding_count` slots (again on reload:
 * counters of slots that stay are kept). 0, or -1 on out of memory. */
int control_stats_init(int binding_count);
void control_stats_free(void);
/* The counters of `slot`; a shared scratch record for out-of-range slots, so
 * callers never check. */
struct control_stats_binding *control_stats_binding(ec_binding_slot slot);
/* Slots in the table. */
int control_stats_binding_count(void);
struct control_stats_totals *control_stats_totals(void);
/* Counts a veto by `module` (its name; NULL counts as "unknown"). */
void control_stats_module_veto(const char *module);
/* Calls fn for every module that vetoed at least once. */
void control_stats_foreach_module_veto(void (*fn)(const char *module, uint64_t vetoes, void *arg),
                               void *arg);
/* Records one spool sync round; safe from any thread. */
void control_stats_sync_observe(uint64_t usec);
/* A consistent copy of the sync histogram. */
void control_stats_sync_snapshot(struct control_stats_sync *out);
/* One counter series a module added (control_stats_counters.c). */
struct control_stats_series {
    const char *name;
    const char *help;
    const char *module; /* the instance's label */
    size_t nlabels;
    const char *keys[VIPMTA_METRICS_LABELS_MAX];
    const char *values[VIPMTA_METRICS_LABELS_MAX];
    uint64_t value;
};
/* Adds n to the series (module, name, labels), made on its first add;
 * safe from any thread. 0, or -1 with errno ENOSPC (VIPMTA_METRICS_SERIES_MAX
 * series exist: counted as dropped), ENOMEM or EINVAL (too many labels).
 * The caller checked the names. */
int control_stats_counter_add(const char *module, const char *name, const char *help,
                              size_t nlabels, const char *const *keys,
                              const char *const *values, uint64_t n);
/* Every series, sorted by name, module and labels (malloc'd; free() it; its
 * strings stay valid until control_stats_counters_free), their number, and
 * the adds refused because the table was full. NULL when out of memory. */
struct control_stats_series *control_stats_counters_snapshot(size_t *count, uint64_t *dropped);
/* Forgets every series (at exit). */
void control_stats_counters_free(void);
/* Seconds since control_stats_init first ran (the daemon's uptime). */
double control_stats_uptime(void);

#endif
