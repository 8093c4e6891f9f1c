/* control_stats.c: the daemon's counters: per binding slot, vetoes per module, totals, spool sync latency histogram. */
#include "control_stats.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const uint64_t control_stats_sync_bounds_usec[CONTROL_STATS_SYNC_BUCKETS - 1] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000,
};

struct control_stats_module_vetoes {
    char *module;
    uint64_t vetoes;
    struct control_stats_module_vetoes *next;
};

static struct control_stats_binding *bindings;
static int binding_slots;
static struct control_stats_binding scratch;
static struct control_stats_totals totals;
static struct control_stats_module_vetoes *module_vetoes;
static struct timespec started;
static pthread_mutex_t sync_lock = PTHREAD_MUTEX_INITIALIZER;
static struct control_stats_sync sync_hist;

int control_stats_init(int binding_count)
{
    if (started.tv_sec == 0 && started.tv_nsec == 0)
        clock_gettime(CLOCK_MONOTONIC, &started);
    if (binding_count < 1)
        binding_count = 1;
    struct control_stats_binding *grown = calloc((size_t)binding_count, sizeof(*grown));
    if (!grown)
        return -1;
    if (bindings)
        memcpy(grown, bindings,
               (size_t)(binding_slots < binding_count ? binding_slots : binding_count) *
                   sizeof(*grown));
    free(bindings);
    bindings = grown;
    binding_slots = binding_count;
    return 0;
}

void control_stats_free(void)
{
    control_stats_counters_free();
    free(bindings);
    bindings = NULL;
    binding_slots = 0;
    while (module_vetoes) {
        struct control_stats_module_vetoes *next = module_vetoes->next;
        free(module_vetoes->module);
        free(module_vetoes);
        module_vetoes = next;
    }
    memset(&totals, 0, sizeof(totals));
    memset(&scratch, 0, sizeof(scratch));
    pthread_mutex_lock(&sync_lock);
    memset(&sync_hist, 0, sizeof(sync_hist));
    pthread_mutex_unlock(&sync_lock);
    started.tv_sec = started.tv_nsec = 0;
}

struct control_stats_binding *control_stats_binding(ec_binding_slot slot)
{
    if (slot < 0 || slot >= binding_slots)
        return &scratch;
    return &bindings[slot];
}

int control_stats_binding_count(void)
{
    return binding_slots;
}

struct control_stats_totals *control_stats_totals(void)
{
    return &totals;
}

void control_stats_module_veto(const char *module)
{
    if (!module)
        module = "unknown";
    struct control_stats_module_vetoes *m;
    for (m = module_vetoes; m; m = m->next)
        if (strcmp(m->module, module) == 0)
            break;
    if (!m) {
        m = calloc(1, sizeof(*m));
        if (!m)
            return;
        m->module = strdup(module);
        if (!m->module) {
            free(m);
            return;
        }
        m->next = module_vetoes;
        module_vetoes = m;
    }
    m->vetoes++;
}

void control_stats_foreach_module_veto(void (*fn)(const char *module, uint64_t vetoes, void *arg),
                               void *arg)
{
    for (struct control_stats_module_vetoes *m = module_vetoes; m; m = m->next)
        fn(m->module, m->vetoes, arg);
}

void control_stats_sync_observe(uint64_t usec)
{
    size_t b = 0;
    while (b < CONTROL_STATS_SYNC_BUCKETS - 1 && usec > control_stats_sync_bounds_usec[b])
        b++;
    pthread_mutex_lock(&sync_lock);
    sync_hist.buckets[b]++;
    sync_hist.count++;
    sync_hist.sum_usec += usec;
    pthread_mutex_unlock(&sync_lock);
}

void control_stats_sync_snapshot(struct control_stats_sync *out)
{
    pthread_mutex_lock(&sync_lock);
    *out = sync_hist;
    pthread_mutex_unlock(&sync_lock);
}

double control_stats_uptime(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - started.tv_sec) + (double)(now.tv_nsec - started.tv_nsec) / 1e9;
}
