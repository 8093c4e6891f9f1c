/* throttle.c: the throttle module: lifecycle and the post-bind hook that limits new outbound connections per (binding, domain) and (binding, IP). */
#include "throttle.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "vipmta_binding.h"
#include "hooks/core/connection_post_bind.h"

/* Keys (binding x domain, binding x IP) remembered at most; beyond, the least
 * recently used are forgotten (an idle key first: forgetting it loses nothing). */
#define THROTTLE_MAX_KEYS 65536
#define KEY_LEN (THROTTLE_PREFIX_MAX + THROTTLE_BINDING_NAME_MAX + THROTTLE_NAME_MAX + 16)

/* The hook's non-zero returns (the core logs the value). */
enum throttle_veto {
    VETO_RATE = 1,        /* the (node-local) token bucket is empty */
    VETO_SHARED = 2,      /* the Redis-shared budget is used up (or not yet confirmed) */
    VETO_CONCURRENCY = 3, /* too many connections open for (binding, domain) */
    VETO_BACKEND = 4,     /* Redis unavailable and on_backend_error is "deny" */
};

struct throttle_state {
    vipmta_module_ctx *m;
    struct throttle_config *cfg;
    struct throttle_table *table;
    struct throttle_redis *redis; /* NULL with the local backend (and without an event loop) */
    uint64_t evicted_logged;      /* table->evicted_busy when last logged */
    int64_t evicted_log_s;
};

static uint64_t monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t (*clock_fn)(void) = monotonic_us;

void throttle_clock_set(uint64_t (*fn)(void))
{
    clock_fn = fn ? fn : monotonic_us;
}

static uint64_t now_us(void)
{
    return clock_fn();
}

/* The destination address without the port; 0 for other families. */
static int dest_ip(const struct sockaddr *addr, int addr_len, char *buf, size_t size)
{
    if (!addr)
        return 0;
    if (addr->sa_family == AF_INET && addr_len >= (int)sizeof(struct sockaddr_in))
        return inet_ntop(AF_INET, &((const struct sockaddr_in *)addr)->sin_addr, buf,
                         (socklen_t)size) != NULL;
    if (addr->sa_family == AF_INET6 && addr_len >= (int)sizeof(struct sockaddr_in6))
        return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)addr)->sin6_addr, buf,
                         (socklen_t)size) != NULL;
    return 0;
}

static const char *binding_name(int slot)
{
    const char *name = config_get_binding_name_from_id(slot);
    return name ? name : "?";
}

/* An info line about a vetoed connection, at most once per key and second. */
static void veto_log(struct throttle_state *st, struct throttle_entry *e, const char *domain,
                     uint64_t now, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void veto_log(struct throttle_state *st, struct throttle_entry *e, const char *domain,
                     uint64_t now, const char *fmt, ...)
{
    int64_t sec = (int64_t)(now / 1000000u);
    if (e->last_log_s == sec)
        return;
    e->last_log_s = sec;
    if (!vipmta_module_log_enabled(st->m, VIPMTA_LOG_INFO))
        return;
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    if (e->kind == THROTTLE_PER_DOMAIN)
        vipmta_module_log(st->m, VIPMTA_LOG_INFO,
                          "binding \"%s\" domain %s: %s; connection vetoed (mail deferred)",
                          binding_name(e->slot), e->name, why);
    else
        vipmta_module_log(st->m, VIPMTA_LOG_INFO,
                          "binding \"%s\" ip %s (domain %s): %s; connection vetoed (mail "
                          "deferred)",
                          binding_name(e->slot), e->name, domain, why);
}

/* Sends the charge of n connections for e to Redis. */
static void charge(struct throttle_state *st, struct throttle_entry *e, uint32_t n)
{
    char key[KEY_LEN];
    snprintf(key, sizeof(key), "%s%s:%s:%s", st->cfg->redis.key_prefix, binding_name(e->slot),
             e->kind == THROTTLE_PER_DOMAIN ? "domain" : "ip", e->name);
    if (throttle_redis_charge(st->redis, key, &e->params, n, e) == 0)
        e->inflight = n;
}

/* A charge came back (or failed): learn whether the shared bucket is empty,
 * and send the connections started meanwhile. */
static void charge_done(void *user, void *arg, int ok, long long tokens, long long wait_us)
{
    struct throttle_state *st = user;
    struct throttle_entry *e = arg;
    (void)tokens;
    e->inflight = 0;
    if (!ok) { /* outage: not charged; accounting is node-local until it ends */
        e->pending = 0;
        return;
    }
    e->blocked_until_us = wait_us > 0 ? now_us() + (uint64_t)wait_us : 0;
    if (e->pending && st->redis && throttle_redis_up(st->redis)) {
        uint32_t n = e->pending;
        e->pending = 0;
        charge(st, e, n);
    }
    e->pending = 0;
}

/* Whether a connection may start under `lim` for key e; 0 or the veto. */
static int rate_check(struct throttle_state *st, struct throttle_entry *e,
                      const struct throttle_limit *lim, uint64_t now)
{
    throttle_entry_use_params(e, &lim->rate, now);
    if (!throttle_bucket_ready(&e->bucket, &e->params, now))
        return VETO_RATE;
    if (st->redis) {
        if (!throttle_redis_up(st->redis))
            return st->cfg->deny_on_error ? VETO_BACKEND : 0;
        if (now < e->blocked_until_us || e->inflight + e->pending >= lim->batch)
            return VETO_SHARED;
    }
    return 0;
}

static void rate_commit(struct throttle_state *st, struct throttle_entry *e, uint64_t now)
{
    throttle_bucket_take(&e->bucket, &e->params, now);
    if (st->redis && throttle_redis_up(st->redis)) {
        if (e->inflight == 0)
            charge(st, e, 1);
        else
            e->pending++;
    }
}

static void rate_veto_log(struct throttle_state *st, struct throttle_entry *e,
                          const struct throttle_limit *lim, const char *domain, uint64_t now,
                          int veto)
{
    switch (veto) {
    case VETO_RATE:
        veto_log(st, e, domain, now, "over %s (burst %u)", lim->rate_text, lim->rate.burst);
        break;
    case VETO_SHARED:
        if (now < e->blocked_until_us)
            veto_log(st, e, domain, now, "shared budget %s (burst %u) used up in redis",
                     lim->rate_text, lim->rate.burst);
        else
            veto_log(st, e, domain, now,
                     "shared budget %s (burst %u): waiting for redis to confirm %u "
                     "connection(s)",
                     lim->rate_text, lim->rate.burst, e->inflight + e->pending);
        break;
    default: /* VETO_BACKEND: the outage warning says it once */
        break;
    }
}

static uint32_t connections_open(const domain_record *dr, int slot)
{
    if (slot < 0 || slot >= vipmta_binding_count())
        return 0;
    return vipmta_domain_connections(dr, slot);
}

static void table_full_log(struct throttle_state *st, uint64_t now)
{
    int64_t sec = (int64_t)(now / 1000000u);
    if (st->table->evicted_busy == st->evicted_logged || sec - st->evicted_log_s < 60)
        return;
    vipmta_module_log(st->m, VIPMTA_LOG_WARNING,
                      "key table full (%d keys): forgot %llu busy key(s) so far, their "
                      "buckets restart full",
                      THROTTLE_MAX_KEYS, (unsigned long long)st->table->evicted_busy);
    st->evicted_logged = st->table->evicted_busy;
    st->evicted_log_s = sec;
}

static int throttle_post_bind(void *closure, domain_record *dr, int binding_slot, int fd,
                              struct sockaddr *addr, int addr_len)
{
    struct throttle_state *st = closure;
    const struct throttle_config *cfg = st->cfg;
    (void)fd;
    if (!dr || !dr->domain || !st->table)
        return 0;

    const struct throttle_limit *ld = NULL, *li = NULL;
    char ip[INET6_ADDRSTRLEN];
    if (cfg->has_kind[THROTTLE_PER_DOMAIN])
        ld = throttle_config_match(cfg, THROTTLE_PER_DOMAIN, binding_slot, dr->domain);
    if (cfg->has_kind[THROTTLE_PER_IP] && dest_ip(addr, addr_len, ip, sizeof(ip)))
        li = throttle_config_match(cfg, THROTTLE_PER_IP, binding_slot, dr->domain);
    if (!ld && !li)
        return 0;

    uint64_t now = now_us();
    /* the domain entry stays valid while the IP one is looked up (see throttle_table_get) */
    struct throttle_entry *ed =
        ld ? throttle_table_get(st->table, THROTTLE_PER_DOMAIN, binding_slot, dr->domain, now)
           : NULL;
    struct throttle_entry *ei =
        li ? throttle_table_get(st->table, THROTTLE_PER_IP, binding_slot, ip, now) : NULL;
    table_full_log(st, now);

    if (ed && ld->concurrency) {
        uint32_t open = connections_open(dr, binding_slot);
        if (open > ld->concurrency) {
            veto_log(st, ed, dr->domain, now,
                     "%u connections open counting this one, concurrency %u", open,
                     ld->concurrency);
            return VETO_CONCURRENCY;
        }
    }
    int veto;
    if (ed && ld->has_rate && (veto = rate_check(st, ed, ld, now)) != 0) {
        rate_veto_log(st, ed, ld, dr->domain, now, veto);
        return veto;
    }
    if (ei && li->has_rate && (veto = rate_check(st, ei, li, now)) != 0) {
        rate_veto_log(st, ei, li, dr->domain, now, veto);
        return veto;
    }
    if (ed && ld->has_rate)
        rate_commit(st, ed, now);
    if (ei && li->has_rate)
        rate_commit(st, ei, now);
    return 0;
}

/* Resolves the limits' binding names to slots; reports unknown ones. */
static int resolve_bindings(vipmta_module_ctx *m, struct throttle_config *cfg)
{
    int errors = 0;
    for (size_t i = 0; i < cfg->nlimits; i++) {
        struct throttle_limit *l = &cfg->limits[i];
        if (!l->binding)
            continue;
        const vipmta_binding *b = vipmta_binding_by_name(l->binding);
        if (b) {
            l->slot = b->slot;
            continue;
        }
        char known[512] = "";
        size_t used = 0;
        for (int s = 0; s < vipmta_binding_count() && used < sizeof(known); s++) {
            const vipmta_binding *k = vipmta_binding_by_slot(s);
            if (k && k->name) {
                int n = snprintf(known + used, sizeof(known) - used, "%s\"%s\"",
                                 used ? ", " : "", k->name);
                used = n < 0 ? sizeof(known) : used + (size_t)n;
            }
        }
        char path[64];
        snprintf(path, sizeof(path), "limits[%zu].binding", i);
        vipmta_module_error(m, path, "no binding named \"%s\" (the bindings are: %s)",
                            l->binding, known[0] ? known : "none");
        errors++;
    }
    return errors;
}

static const char *on_error_name(const struct throttle_config *cfg)
{
    return cfg->deny_on_error ? "deny" : "allow";
}

/* Starts the Redis client for cfg into *out: 0, or -1 (reported). Without an
 * event loop (vipmta -M runs init to list the hooks) nothing is started and
 * *out stays NULL: hooks are never called there. */
static int redis_start(struct throttle_state *st, const struct throttle_config *cfg,
                       struct throttle_redis **out)
{
    *out = NULL;
    if (!vipmta_event_loop_available()) {
        vipmta_module_log(st->m, VIPMTA_LOG_DEBUG,
                          "no event loop (not the daemon): redis %s:%d not contacted",
                          cfg->redis.host, cfg->redis.port);
        return 0;
    }
    *out = throttle_redis_new(st->m, &cfg->redis, cfg->deny_on_error, charge_done, st);
    if (!*out) {
        vipmta_module_error(st->m, NULL, "out of memory starting the redis client");
        return -1;
    }
    return 0;
}

static void log_ready(struct throttle_state *st, const char *what)
{
    const struct throttle_config *cfg = st->cfg;
    if (cfg->backend == THROTTLE_BACKEND_REDIS)
        vipmta_module_log(st->m, VIPMTA_LOG_INFO,
                          "%s: %zu limit(s), backend redis %s:%d (key prefix \"%s\", timeout "
                          "%d ms), on_backend_error=%s",
                          what, cfg->nlimits, cfg->redis.host, cfg->redis.port,
                          cfg->redis.key_prefix, cfg->redis.timeout_ms, on_error_name(cfg));
    else
        vipmta_module_log(st->m, VIPMTA_LOG_INFO, "%s: %zu limit(s), backend local", what,
                          cfg->nlimits);
}

static int throttle_configure(vipmta_module_ctx *m, const vipmta_value *options)
{
    struct throttle_config *cfg = throttle_config_parse(m, options);
    if (!cfg)
        return 1;
    struct throttle_state *st = calloc(1, sizeof(*st));
    if (!st) {
        throttle_config_free(cfg);
        vipmta_module_error(m, NULL, "out of memory");
        return 1;
    }
    st->m = m;
    st->cfg = cfg;
    st->evicted_log_s = -60;
    vipmta_module_set_data(m, st);
    return 0;
}

static int throttle_init(vipmta_module_ctx *m)
{
    struct throttle_state *st = vipmta_module_get_data(m);
    if (!st)
        return 1;
    if (resolve_bindings(m, st->cfg))
        return 1;
    if (!(st->table = throttle_table_new(THROTTLE_MAX_KEYS))) {
        vipmta_module_error(m, NULL, "out of memory");
        return 1;
    }
    if (st->cfg->backend == THROTTLE_BACKEND_REDIS && redis_start(st, st->cfg, &st->redis) != 0)
        return 1;
    register_core_connection_post_bind_hook_last(throttle_post_bind, st);
    log_ready(st, "ready");
    return 0;
}

static void forget_redis_state(struct throttle_entry *e, void *arg)
{
    (void)arg;
    e->inflight = e->pending = 0;
    e->blocked_until_us = 0;
}

static int throttle_reload(vipmta_module_ctx *m, const vipmta_value *options)
{
    struct throttle_state *st = vipmta_module_get_data(m);
    if (!st || !st->table)
        return 1;
    struct throttle_config *cfg = throttle_config_parse(m, options);
    if (!cfg)
        return 1;
    if (resolve_bindings(m, cfg)) {
        throttle_config_free(cfg);
        return 1;
    }
    const struct throttle_config *old = st->cfg;
    int same_redis = cfg->backend == old->backend &&
                     (cfg->backend == THROTTLE_BACKEND_LOCAL ||
                      throttle_redis_opts_equal(&cfg->redis, &old->redis));
    if (!same_redis) {
        struct throttle_redis *r = NULL;
        if (cfg->backend == THROTTLE_BACKEND_REDIS && redis_start(st, cfg, &r) != 0) {
            throttle_config_free(cfg);
            return 1;
        }
        throttle_redis_free(st->redis); /* completes its charges (not ok) */
        st->redis = r;
        throttle_table_foreach(st->table, forget_redis_state, NULL);
    } else if (st->redis) {
        throttle_redis_set_deny(st->redis, cfg->deny_on_error);
    }
    throttle_config_free(st->cfg);
    st->cfg = cfg; /* entries pick up changed rates on their next use */
    log_ready(st, "reloaded");
    return 0;
}

static void throttle_shutdown(vipmta_module_ctx *m)
{
    struct throttle_state *st = vipmta_module_get_data(m);
    if (!st)
        return;
    throttle_redis_free(st->redis); /* before the table: its charges point at entries */
    throttle_table_free(st->table);
    throttle_config_free(st->cfg);
    free(st);
    vipmta_module_set_data(m, NULL);
}

static const vipmta_module_descriptor throttle_descriptor = {
    VIPMTA_MODULE_HEADER("throttle", "1.0.0",
                         "limits new outbound connections per (binding, domain) and (binding, "
                         "IP): rates and concurrency, local or shared through Redis"),
    .configure = throttle_configure,
    .init = throttle_init,
    .reload = throttle_reload,
    .shutdown = throttle_shutdown,
};

VIPMTA_MODULE_EXPORT(throttle_descriptor)
