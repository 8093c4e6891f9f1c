/* route_cache.c: the routing answer cache: per key, for the answer's TTL, bounded in size. */
#include "route_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define ROUTE_CACHE_BUCKETS 4096
#define ROUTE_CACHE_MAX 16384 /* answers kept at most */

struct route_cache_entry {
    char *key;
    time_t expires; /* monotonic seconds */
    enum route_status status;
    char error[256];
    struct route_target *targets;
    size_t count;
    struct route_cache_entry *next;
};

static struct route_cache_entry **cache;
static size_t cache_count;

static time_t route_cache_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

static size_t route_cache_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)tolower((unsigned char)*s);
        h *= 1099511628211ULL;
    }
    return (size_t)(h % ROUTE_CACHE_BUCKETS);
}

static void route_cache_entry_free(struct route_cache_entry *e)
{
    free(e->key);
    free(e->targets);
    free(e);
}

int route_cache_init(void)
{
    route_cache_free();
    cache = calloc(ROUTE_CACHE_BUCKETS, sizeof(*cache));
    return cache ? 0 : -1;
}

void route_cache_free(void)
{
    for (size_t b = 0; cache && b < ROUTE_CACHE_BUCKETS; b++) {
        while (cache[b]) {
            struct route_cache_entry *e = cache[b];
            cache[b] = e->next;
            route_cache_entry_free(e);
        }
    }
    free(cache);
    cache = NULL;
    cache_count = 0;
}

/* Drops expired entries; when `force`, also others until a tenth is free. */
static void route_cache_sweep(int force)
{
    time_t now = route_cache_now();
    for (size_t b = 0; b < ROUTE_CACHE_BUCKETS; b++) {
        struct route_cache_entry **pp = &cache[b];
        while (*pp) {
            struct route_cache_entry *e = *pp;
            if (e->expires <= now ||
                (force && cache_count > ROUTE_CACHE_MAX - ROUTE_CACHE_MAX / 10)) {
                *pp = e->next;
                route_cache_entry_free(e);
                cache_count--;
            } else {
                pp = &e->next;
            }
        }
    }
}

int route_cache_answer(const char *key, route_cb cb, void *arg)
{
    if (!cache)
        return 0;
    time_t now = route_cache_now();
    struct route_cache_entry **pp = &cache[route_cache_hash(key)];
    while (*pp) {
        struct route_cache_entry *e = *pp;
        if (strcasecmp(e->key, key) != 0) {
            pp = &e->next;
            continue;
        }
        if (e->expires <= now) {
            *pp = e->next;
            route_cache_entry_free(e);
            cache_count--;
            return 0;
        }
        struct route_result res;
        memset(&res, 0, sizeof(res));
        res.status = e->status;
        memcpy(res.error, e->error, sizeof(res.error));
        res.targets = e->targets;
        res.count = e->count;
        cb(arg, &res);
        return 1;
    }
    return 0;
}

void route_cache_store(const char *key, const struct route_result *res, uint32_t ttl)
{
    if (!cache || ttl == 0)
        return;
    if (cache_count >= ROUTE_CACHE_MAX)
        route_cache_sweep(0);
    if (cache_count >= ROUTE_CACHE_MAX)
        route_cache_sweep(1);
    struct route_cache_entry *e = calloc(1, sizeof(*e));
    if (!e)
        return;
    e->key = strdup(key);
    if (res->count) {
        e->targets = malloc(res->count * sizeof(*e->targets));
        if (e->targets)
            memcpy(e->targets, res->targets, res->count * sizeof(*e->targets));
    }
    if (!e->key || (res->count && !e->targets)) {
        route_cache_entry_free(e);
        return;
    }
    e->count = res->count;
    e->status = res->status;
    memcpy(e->error, res->error, sizeof(e->error));
    e->expires = route_cache_now() + (time_t)ttl;
    size_t b = route_cache_hash(key);
    e->next = cache[b];
    cache[b] = e;
    cache_count++;
}
