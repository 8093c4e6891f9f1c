/* throttle.h: internal interface between the throttle module's files (options, buckets and key table, Redis backend, hook). */
#ifndef VIPMTA_MOD_THROTTLE_H
#define VIPMTA_MOD_THROTTLE_H

#include <stddef.h>
#include <stdint.h>
#include "vipmta_module.h"

/* What a limit counts connections per: (binding, destination domain) or
 * (binding, destination IP). Also the kind of a key in the table. */
enum throttle_per { THROTTLE_PER_DOMAIN = 0, THROTTLE_PER_IP = 1 };
#define THROTTLE_PER_KINDS 2

enum throttle_backend { THROTTLE_BACKEND_LOCAL = 0, THROTTLE_BACKEND_REDIS = 1 };

/* Bounds of the options. */
#define THROTTLE_COUNT_MAX 1000000u   /* the N of "N/s" */
#define THROTTLE_BURST_MAX 1000000u
#define THROTTLE_CONCURRENCY_MAX 100000u
#define THROTTLE_PREFIX_MAX 128       /* redis.key_prefix length */
#define THROTTLE_NAME_MAX 253         /* a domain name (an IP is shorter) */
#define THROTTLE_BINDING_NAME_MAX 255
#define THROTTLE_RATE_TEXT_MAX 32

/* A token bucket's parameters: `count` tokens every `period_s` seconds,
 * holding at most `burst` tokens. */
struct throttle_params {
    uint32_t count;
    uint32_t period_s;
    uint32_t burst;
};

/* One configured limit. */
struct throttle_limit {
    char *binding;        /* NULL for "*" */
    char *domain;         /* lower-case; NULL for "*" */
    int slot;             /* the binding's slot, set by throttle_config_resolve() in init;
                           * -1 until then (a named binding matches nothing while -1) */
    enum throttle_per per;
    int has_rate;         /* rate and burst are set */
    struct throttle_params rate;
    uint32_t concurrency; /* 0: no concurrency cap */
    uint32_t batch;       /* Redis backend: connections one node may start before Redis confirms */
    char rate_text[THROTTLE_RATE_TEXT_MAX]; /* as configured ("10/s"), for log lines */
};

struct throttle_redis_opts {
    char *host;       /* an IP address literal */
    int port;
    char *key_prefix;
    int timeout_ms;   /* connect and reply timeout */
};

/* The parsed module options. */
struct throttle_config {
    enum throttle_backend backend;
    struct throttle_redis_opts redis;
    int deny_on_error;           /* on_backend_error: "deny" */
    struct throttle_limit *limits;
    size_t nlimits;
    int has_kind[THROTTLE_PER_KINDS]; /* some limit of that kind exists */
};

/* ---- throttle.c ---- */

/* The clock of the hook and the buffers (monotonic microseconds). Tests put
 * their own in; NULL puts back the monotonic clock. */
void throttle_clock_set(uint64_t (*now_us)(void));

/* ---- throttle_options.c ---- */

/* Parses "N/s", "N/min" or "N/h" (also "sec", "second", "minute", "hour";
 * N from 1 to THROTTLE_COUNT_MAX). On error returns -1 and puts the message
 * in `err`. */
int throttle_rate_parse(const char *text, uint32_t *count, uint32_t *period_s, char *err,
                        size_t errsize);
/* Parses the module options, reporting every problem. NULL when anything was
 * wrong (or out of memory). Binding names are not checked here (see
 * throttle_config_resolve, in throttle.c); every limit's slot is -1. */
struct throttle_config *throttle_config_parse(vipmta_module_ctx *m, const vipmta_value *options);
void throttle_config_free(void *cfg);
/* The first limit of kind `per` matching (slot, domain), NULL when none. */
const struct throttle_limit *throttle_config_match(const struct throttle_config *cfg,
                                                   enum throttle_per per, int slot,
                                                   const char *domain);
/* Non-zero when both configs use the same Redis server and key prefix. */
int throttle_redis_opts_equal(const struct throttle_redis_opts *a,
                              const struct throttle_redis_opts *b);

/* ---- throttle_bucket.c: token buckets with an explicit clock (microseconds) ---- */

/* Tokens are kept in units of 1/(period_s * 10^6) token, so refills are exact
 * integer arithmetic: every microsecond adds `count` units. */
struct throttle_bucket {
    uint64_t level;    /* units held */
    uint64_t stamp_us; /* time of the last refill */
};

/* A full bucket at `now_us`. */
void throttle_bucket_init(struct throttle_bucket *b, const struct throttle_params *p,
                          uint64_t now_us);
/* Adds what accrued since the last refill (capped at `burst`). */
void throttle_bucket_refill(struct throttle_bucket *b, const struct throttle_params *p,
                            uint64_t now_us);
/* Non-zero when a whole token is available at now_us (refills first). */
int throttle_bucket_ready(struct throttle_bucket *b, const struct throttle_params *p,
                          uint64_t now_us);
/* Takes one token when available: 1, else 0 (refills first). */
int throttle_bucket_take(struct throttle_bucket *b, const struct throttle_params *p,
                         uint64_t now_us);
/* Non-zero when the bucket is full at now_us (forgetting it loses nothing). */
int throttle_bucket_full(struct throttle_bucket *b, const struct throttle_params *p,
                         uint64_t now_us);
/* Whole tokens held at now_us. */
uint32_t throttle_bucket_tokens(struct throttle_bucket *b, const struct throttle_params *p,
                                uint64_t now_us);
/* Switches the bucket to new parameters, keeping how full it is (as a
 * fraction of burst). */
void throttle_bucket_rescale(struct throttle_bucket *b, const struct throttle_params *from,
                             const struct throttle_params *to, uint64_t now_us);

/* One key: (kind, binding slot, domain or IP text) with its bucket and the
 * Redis backend's accounting. */
struct throttle_entry {
    struct throttle_entry *hnext;            /* hash chain */
    struct throttle_entry *lru_prev, *lru_next; /* most recently used first */
    uint64_t hash;
    enum throttle_per kind;
    int slot;
    int has_params;                /* params and bucket are set */
    struct throttle_params params; /* of the limit that last applied */
    struct throttle_bucket bucket;
    uint64_t last_used_us;
    int64_t last_log_s;            /* second of the last over-limit log line (-1: never) */
    /* Redis backend */
    uint32_t inflight;             /* connections charged in the request on its way (0: none) */
    uint32_t pending;              /* connections started, to charge when that request returns */
    uint64_t blocked_until_us;     /* the shared bucket is empty until then (estimate) */
    char name[];                   /* domain name or IP address text */
};

struct throttle_table {
    struct throttle_entry **heads;
    size_t mask;          /* number of hash heads - 1 */
    size_t count;
    size_t max;           /* evict beyond this */
    struct throttle_entry *lru_head, *lru_tail;
    uint64_t evicted_busy; /* entries evicted while not idle (table full) */
};

/* A table holding at most `max` keys (at least 2). NULL when out of memory. */
struct throttle_table *throttle_table_new(size_t max);
void throttle_table_free(struct throttle_table *t);
/* The entry for the key, created when missing (NULL only when out of memory
 * or the name is too long). Marks it most recently used. Creating may evict:
 * first an idle entry (full bucket, nothing owed to Redis) from the cold end,
 * and when the table is full the least recently used entry that has no Redis
 * request on its way; never the most recently used one, so an entry just
 * returned stays valid across the next call. */
struct throttle_entry *throttle_table_get(struct throttle_table *t, enum throttle_per kind,
                                          int slot, const char *name, uint64_t now_us);
/* The entry for the key, NULL when missing (does not touch the LRU order). */
struct throttle_entry *throttle_table_find(const struct throttle_table *t,
                                           enum throttle_per kind, int slot, const char *name);
/* Calls fn on every entry. */
void throttle_table_foreach(struct throttle_table *t, void (*fn)(struct throttle_entry *, void *),
                            void *arg);
/* Sets the entry's parameters for this call: a new entry gets a full bucket,
 * a changed limit rescales it. */
void throttle_entry_use_params(struct throttle_entry *e, const struct throttle_params *p,
                               uint64_t now_us);

/* ---- throttle_redis.c: the asynchronous Redis client (hiredis on the core's event loop) ---- */

struct throttle_redis;

/* Result of one charge: ok (0: failed, the backend is in trouble), the whole
 * tokens left in the shared bucket (may be negative) and the microseconds
 * until it holds one token again (0 when it holds one now). */
typedef void (*throttle_redis_done_fn)(void *user, void *arg, int ok, long long tokens,
                                       long long wait_us);

/* Starts connecting (asynchronously, on the core's event loop: there must be
 * one). `deny_on_error` is only for the outage log line. NULL when out of
 * memory. */
struct throttle_redis *throttle_redis_new(vipmta_module_ctx *m,
                                          const struct throttle_redis_opts *opts,
                                          int deny_on_error, throttle_redis_done_fn done,
                                          void *user);
/* Disconnects; every charge on its way completes (not ok) first. */
void throttle_redis_free(struct throttle_redis *r);
/* For the outage log line after a reload. */
void throttle_redis_set_deny(struct throttle_redis *r, int deny_on_error);
/* Non-zero unless an outage is known (connect failure, lost connection,
 * timeout or error reply, until the next good reply). */
int throttle_redis_up(const struct throttle_redis *r);
/* Charges `n` connections to the bucket at `key` (created full with p).
 * 0 when sent (done() will be called exactly once, later), -1 when not
 * connected (done() is not called). */
int throttle_redis_charge(struct throttle_redis *r, const char *key,
                          const struct throttle_params *p, uint32_t n, void *arg);

#endif
