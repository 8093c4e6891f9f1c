/* control_stats_counters.c: the counter series modules add (vipmta_module_counter_add): a hash table safe from any thread, and sorted snapshots for the metrics endpoint. */
#include "control_stats.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CONTROL_STATS_COUNTER_BUCKETS 1024

struct control_stats_counter_node {
    struct control_stats_counter_node *next; /* hash chain */
    uint64_t hash;
    struct control_stats_series series;
    char *strings[2 + 2 * VIPMTA_METRICS_LABELS_MAX + 1]; /* what series points to, to free */
};

static pthread_mutex_t counters_lock = PTHREAD_MUTEX_INITIALIZER;
static struct control_stats_counter_node *counter_heads[CONTROL_STATS_COUNTER_BUCKETS];
static size_t counter_count;
static uint64_t counters_dropped;

static uint64_t control_stats_counter_hash(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return (h ^ 0xff) * 1099511628211u; /* a separator, so "ab","c" differs from "a","bc" */
}

static int control_stats_counter_same(const struct control_stats_series *s, const char *module,
                                      const char *name, size_t nlabels,
                                      const char *const *keys, const char *const *values)
{
    if (strcmp(s->name, name) != 0 || strcmp(s->module, module) != 0 || s->nlabels != nlabels)
        return 0;
    for (size_t i = 0; i < nlabels; i++)
        if (strcmp(s->keys[i], keys[i]) != 0 || strcmp(s->values[i], values[i]) != 0)
            return 0;
    return 1;
}

/* A new node holding copies of everything (NULL when out of memory). */
static struct control_stats_counter_node *
control_stats_counter_node_new(const char *module, const char *name, const char *help,
                               size_t nlabels, const char *const *keys,
                               const char *const *values)
{
    struct control_stats_counter_node *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    size_t k = 0;
    int ok = (n->strings[k++] = strdup(module)) && (n->strings[k++] = strdup(name)) &&
             (n->strings[k++] = strdup(help));
    for (size_t i = 0; ok && i < nlabels; i++)
        ok = (n->strings[k++] = strdup(keys[i])) && (n->strings[k++] = strdup(values[i]));
    if (!ok) {
        for (size_t i = 0; i < k; i++)
            free(n->strings[i]);
        free(n);
        return NULL;
    }
    n->series.module = n->strings[0];
    n->series.name = n->strings[1];
    n->series.help = n->strings[2];
    n->series.nlabels = nlabels;
    for (size_t i = 0; i < nlabels; i++) {
        n->series.keys[i] = n->strings[3 + 2 * i];
        n->series.values[i] = n->strings[4 + 2 * i];
    }
    return n;
}

int control_stats_counter_add(const char *module, const char *name, const char *help,
                              size_t nlabels, const char *const *keys,
                              const char *const *values, uint64_t n)
{
    if (nlabels > VIPMTA_METRICS_LABELS_MAX) {
        errno = EINVAL;
        return -1;
    }
    uint64_t h = control_stats_counter_hash(14695981039346656037u, module);
    h = control_stats_counter_hash(h, name);
    for (size_t i = 0; i < nlabels; i++)
        h = control_stats_counter_hash(control_stats_counter_hash(h, keys[i]), values[i]);
    size_t b = (size_t)(h % CONTROL_STATS_COUNTER_BUCKETS);
    int rc = 0;
    pthread_mutex_lock(&counters_lock);
    struct control_stats_counter_node *node = counter_heads[b];
    while (node && !(node->hash == h && control_stats_counter_same(&node->series, module, name,
                                                                   nlabels, keys, values)))
        node = node->next;
    if (!node) {
        if (counter_count >= VIPMTA_METRICS_SERIES_MAX) {
            counters_dropped++;
            errno = ENOSPC;
            rc = -1;
        } else if (!(node = control_stats_counter_node_new(module, name, help, nlabels, keys,
                                                           values))) {
            errno = ENOMEM;
            rc = -1;
        } else {
            node->hash = h;
            node->next = counter_heads[b];
            counter_heads[b] = node;
            counter_count++;
        }
    }
    if (node)
        node->series.value += n;
    pthread_mutex_unlock(&counters_lock);
    return rc;
}

static int control_stats_series_order(const void *a, const void *b)
{
    const struct control_stats_series *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c == 0)
        c = strcmp(x->module, y->module);
    for (size_t i = 0; c == 0 && i < x->nlabels && i < y->nlabels; i++) {
        c = strcmp(x->keys[i], y->keys[i]);
        if (c == 0)
            c = strcmp(x->values[i], y->values[i]);
    }
    if (c == 0)
        c = (x->nlabels > y->nlabels) - (x->nlabels < y->nlabels);
    return c;
}

struct control_stats_series *control_stats_counters_snapshot(size_t *count, uint64_t *dropped)
{
    pthread_mutex_lock(&counters_lock);
    struct control_stats_series *out = malloc((counter_count + 1) * sizeof(*out));
    size_t n = 0;
    for (size_t b = 0; out && b < CONTROL_STATS_COUNTER_BUCKETS; b++)
        for (struct control_stats_counter_node *node = counter_heads[b]; node; node = node->next)
            out[n++] = node->series; /* the strings stay until control_stats_counters_free */
    *dropped = counters_dropped;
    pthread_mutex_unlock(&counters_lock);
    *count = n;
    if (out && n > 1)
        qsort(out, n, sizeof(*out), control_stats_series_order);
    return out;
}

void control_stats_counters_free(void)
{
    pthread_mutex_lock(&counters_lock);
    for (size_t b = 0; b < CONTROL_STATS_COUNTER_BUCKETS; b++) {
        while (counter_heads[b]) {
            struct control_stats_counter_node *next = counter_heads[b]->next;
            for (size_t i = 0; i < sizeof(counter_heads[b]->strings) / sizeof(char *); i++)
                free(counter_heads[b]->strings[i]);
            free(counter_heads[b]);
            counter_heads[b] = next;
        }
    }
    counter_count = 0;
    counters_dropped = 0;
    pthread_mutex_unlock(&counters_lock);
}
