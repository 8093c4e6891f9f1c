/* throttle_bucket.c: token buckets on an injected microsecond clock, and the bounded key table (hash + LRU) that holds them. */
#include "throttle.h"

#include <stdlib.h>
#include <string.h>

#define US_PER_S 1000000ull
/* Longer gaps refill a bucket completely anyway; capping keeps the
 * arithmetic below 2^64 (2^40 us * THROTTLE_COUNT_MAX < 2^60). */
#define ELAPSED_CAP_US (1ull << 40)

static uint64_t unit_of(const struct throttle_params *p)
{
    return (uint64_t)p->period_s * US_PER_S;
}

static uint64_t cap_of(const struct throttle_params *p)
{
    return (uint64_t)p->burst * unit_of(p);
}

void throttle_bucket_init(struct throttle_bucket *b, const struct throttle_params *p,
                          uint64_t now_us)
{
    b->level = cap_of(p);
    b->stamp_us = now_us;
}

void throttle_bucket_refill(struct throttle_bucket *b, const struct throttle_params *p,
                            uint64_t now_us)
{
    uint64_t cap = cap_of(p);
    if (now_us > b->stamp_us) {
        uint64_t elapsed = now_us - b->stamp_us;
        if (elapsed > ELAPSED_CAP_US)
            elapsed = ELAPSED_CAP_US;
        b->level += elapsed * p->count;
    }
    /* a clock that went back only restarts the refill from now */
    b->stamp_us = now_us;
    if (b->level > cap)
        b->level = cap;
}

int throttle_bucket_ready(struct throttle_bucket *b, const struct throttle_params *p,
                          uint64_t now_us)
{
    throttle_bucket_refill(b, p, now_us);
    return b->level >= unit_of(p);
}

int throttle_bucket_take(struct throttle_bucket *b, const struct throttle_params *p,
                         uint64_t now_us)
{
    if (!throttle_bucket_ready(b, p, now_us))
        return 0;
    b->level -= unit_of(p);
    return 1;
}

int throttle_bucket_full(struct throttle_bucket *b, const struct throttle_params *p,
                         uint64_t now_us)
{
    throttle_bucket_refill(b, p, now_us);
    return b->level >= cap_of(p);
}

uint32_t throttle_bucket_tokens(struct throttle_bucket *b, const struct throttle_params *p,
                                uint64_t now_us)
{
    throttle_bucket_refill(b, p, now_us);
    return (uint32_t)(b->level / unit_of(p));
}

void throttle_bucket_rescale(struct throttle_bucket *b, const struct throttle_params *from,
                             const struct throttle_params *to, uint64_t now_us)
{
    throttle_bucket_refill(b, from, now_us);
    long double fill = (long double)b->level / (long double)cap_of(from);
    b->level = (uint64_t)(fill * (long double)cap_of(to));
    if (b->level > cap_of(to))
        b->level = cap_of(to);
}

void throttle_entry_use_params(struct throttle_entry *e, const struct throttle_params *p,
                               uint64_t now_us)
{
    if (!e->has_params) {
        e->params = *p;
        e->has_params = 1;
        throttle_bucket_init(&e->bucket, p, now_us);
    } else if (memcmp(&e->params, p, sizeof(*p)) != 0) {
        throttle_bucket_rescale(&e->bucket, &e->params, p, now_us);
        e->params = *p;
    }
}

/* ---- the key table ---- */

static uint64_t key_hash(enum throttle_per kind, int slot, const char *name)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    h = (h ^ (uint64_t)(unsigned)slot) * 1099511628211ull;
    h = (h ^ (uint64_t)kind) * 1099511628211ull;
    return h ^ (h >> 29);
}

struct throttle_table *throttle_table_new(size_t max)
{
    if (max < 2)
        max = 2;
    size_t heads = 16;
    while (heads < max / 2)
        heads <<= 1;
    struct throttle_table *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    if (!(t->heads = calloc(heads, sizeof(*t->heads)))) {
        free(t);
        return NULL;
    }
    t->mask = heads - 1;
    t->max = max;
    return t;
}

void throttle_table_free(struct throttle_table *t)
{
    if (!t)
        return;
    struct throttle_entry *e = t->lru_head;
    while (e) {
        struct throttle_entry *next = e->lru_next;
        free(e);
        e = next;
    }
    free(t->heads);
    free(t);
}

static void lru_unlink(struct throttle_table *t, struct throttle_entry *e)
{
    if (e->lru_prev)
        e->lru_prev->lru_next = e->lru_next;
    else
        t->lru_head = e->lru_next;
    if (e->lru_next)
        e->lru_next->lru_prev = e->lru_prev;
    else
        t->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push_head(struct throttle_table *t, struct throttle_entry *e)
{
    e->lru_prev = NULL;
    e->lru_next = t->lru_head;
    if (t->lru_head)
        t->lru_head->lru_prev = e;
    t->lru_head = e;
    if (!t->lru_tail)
        t->lru_tail = e;
}

static void entry_remove(struct throttle_table *t, struct throttle_entry *e)
{
    struct throttle_entry **pp = &t->heads[e->hash & t->mask];
    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    lru_unlink(t, e);
    t->count--;
    free(e);
}

/* Forgetting an idle entry changes nothing: a new one starts the same way. */
static int entry_idle(struct throttle_entry *e, uint64_t now_us)
{
    return e->inflight == 0 && e->pending == 0 && now_us >= e->blocked_until_us &&
           (!e->has_params || throttle_bucket_full(&e->bucket, &e->params, now_us));
}

/* Makes room for one more entry. Never evicts the most recently used entry
 * (the caller may hold it: the hook looks up a domain key, then an IP key). */
static void table_evict(struct throttle_table *t, uint64_t now_us)
{
    /* a little housekeeping on every insert: up to two idle entries from the cold end */
    for (int i = 0; i < 2 && t->lru_tail && t->lru_tail != t->lru_head &&
                    entry_idle(t->lru_tail, now_us);
         i++)
        entry_remove(t, t->lru_tail);
    if (t->count < t->max)
        return;
    /* full: the least recently used entry without a Redis request on its way */
    for (struct throttle_entry *e = t->lru_tail; e && e != t->lru_head; e = e->lru_prev) {
        if (e->inflight == 0) {
            if (!entry_idle(e, now_us))
                t->evicted_busy++;
            entry_remove(t, e);
            return;
        }
    }
}

struct throttle_entry *throttle_table_find(const struct throttle_table *t,
                                           enum throttle_per kind, int slot, const char *name)
{
    uint64_t h = key_hash(kind, slot, name);
    for (struct throttle_entry *e = t->heads[h & t->mask]; e; e = e->hnext)
        if (e->hash == h && e->kind == kind && e->slot == slot && strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

struct throttle_entry *throttle_table_get(struct throttle_table *t, enum throttle_per kind,
                                          int slot, const char *name, uint64_t now_us)
{
    struct throttle_entry *e = throttle_table_find(t, kind, slot, name);
    if (e) {
        if (e != t->lru_head) {
            lru_unlink(t, e);
            lru_push_head(t, e);
        }
        e->last_used_us = now_us;
        return e;
    }
    size_t len = strlen(name);
    if (len > THROTTLE_NAME_MAX)
        return NULL;
    table_evict(t, now_us);
    if (!(e = calloc(1, sizeof(*e) + len + 1)))
        return NULL;
    memcpy(e->name, name, len + 1);
    e->hash = key_hash(kind, slot, name);
    e->kind = kind;
    e->slot = slot;
    e->last_used_us = now_us;
    e->last_log_s = -1;
    e->hnext = t->heads[e->hash & t->mask];
    t->heads[e->hash & t->mask] = e;
    lru_push_head(t, e);
    t->count++;
    return e;
}

void throttle_table_foreach(struct throttle_table *t, void (*fn)(struct throttle_entry *, void *),
                            void *arg)
{
    for (struct throttle_entry *e = t->lru_head; e;) {
        struct throttle_entry *next = e->lru_next;
        fn(e, arg);
        e = next;
    }
}
