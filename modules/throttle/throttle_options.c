/* throttle_options.c: strict parsing of the throttle module's options (rates, limits, backend) and limit matching. */
#include "throttle.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_LEN 64
#define DEFAULT_REDIS_HOST "127.0.0.1"
#define DEFAULT_REDIS_PORT 6379
#define DEFAULT_KEY_PREFIX "vipmta:throttle:"
#define DEFAULT_TIMEOUT_MS 200
#define TIMEOUT_MS_MAX 60000
/* Redis backend batch: about a tenth of a second of the rate, at most this. */
#define BATCH_MAX 100u

static const char *const top_keys[] = {"backend", "redis", "on_backend_error", "limits", NULL};
static const char *const redis_keys[] = {"host", "port", "key_prefix", "timeout_ms", NULL};
static const char *const limit_keys[] = {"binding", "domain",      "per", "rate",
                                         "burst",   "concurrency", NULL};

static const char rate_forms[] = "\"10/s\", \"600/min\" or \"3600/h\"";

int throttle_rate_parse(const char *text, uint32_t *count, uint32_t *period_s, char *err,
                        size_t errsize)
{
    static const struct {
        const char *name;
        uint32_t seconds;
    } units[] = {{"s", 1},      {"sec", 1},       {"second", 1}, {"min", 60},
                 {"minute", 60}, {"h", 3600}, {"hour", 3600}};
    const char *slash = strchr(text, '/');
    size_t ndigits = slash ? (size_t)(slash - text) : 0;
    int digits_ok = ndigits > 0;

    for (size_t i = 0; i < ndigits; i++)
        if (!isdigit((unsigned char)text[i]))
            digits_ok = 0;
    if (!digits_ok || !slash[1]) {
        snprintf(err, errsize, "must be COUNT/UNIT like %s, not \"%s\"", rate_forms, text);
        return -1;
    }
    unsigned long long n = 0;
    for (size_t i = 0; i < ndigits && n <= THROTTLE_COUNT_MAX; i++)
        n = n * 10 + (unsigned)(text[i] - '0');
    if (n < 1 || n > THROTTLE_COUNT_MAX) {
        snprintf(err, errsize, "the count must be from 1 to %u, not %.*s", THROTTLE_COUNT_MAX,
                 (int)ndigits, text);
        return -1;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(slash + 1, units[i].name) == 0) {
            *count = (uint32_t)n;
            *period_s = units[i].seconds;
            return 0;
        }
    }
    snprintf(err, errsize, "unknown unit \"%s\" in \"%s\" (use s, min or h)", slash + 1, text);
    return -1;
}

/* A copy of `s` in lower case; NULL when out of memory. */
static char *lower_dup(const char *s)
{
    char *d = strdup(s);
    for (char *p = d; p && *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return d;
}

/* A plausible domain name: letters, digits, '-', '_' and non-empty labels. */
static int domain_ok(const char *s)
{
    size_t len = strlen(s), label = 0;
    if (len == 0 || len > THROTTLE_NAME_MAX)
        return 0;
    for (const char *p = s; *p; p++) {
        if (*p == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if (isalnum((unsigned char)*p) || *p == '-' || *p == '_') {
            if (++label > 63)
                return 0;
        } else {
            return 0;
        }
    }
    return label > 0;
}

static const char *const backends[] = {"local", "redis", NULL};
static const char *const on_errors[] = {"allow", "deny", NULL};
static const char *const pers[] = {"domain", "ip", NULL};

static int parse_redis(vipmta_module_ctx *m, const vipmta_value *v, struct throttle_redis_opts *o)
{
    const char *s;
    long long x;
    if (vipmta_option_object(m, v, "redis", NULL) != 0)
        return 1;
    int errors = vipmta_module_check_keys(m, v, "redis", redis_keys);
    const vipmta_value *f = vipmta_value_get(v, "host");
    if (f) {
        unsigned char buf[sizeof(struct in6_addr)];
        s = vipmta_value_string(f);
        if (!s || (inet_pton(AF_INET, s, buf) != 1 && inet_pton(AF_INET6, s, buf) != 1)) {
            if (s)
                vipmta_module_error(m, "redis.host",
                                    "must be an IPv4 or IPv6 address (no host names: resolving "
                                    "one would block the event loop), not \"%s\"",
                                    s);
            else
                vipmta_module_error(m, "redis.host", "must be an IPv4 or IPv6 address, not %s",
                                    vipmta_value_describe(f));
            errors++;
        } else {
            free(o->host);
            if (!(o->host = strdup(s)))
                errors++;
        }
    }
    int r = vipmta_option_int(m, v, "redis", "port", 1, 65535, &x);
    if (r > 0)
        o->port = (int)x;
    errors += r < 0;
    if ((f = vipmta_value_get(v, "key_prefix"))) {
        s = vipmta_value_string(f);
        int ok = s && strlen(s) <= THROTTLE_PREFIX_MAX;
        for (const char *p = s; ok && *p; p++)
            if (!isgraph((unsigned char)*p))
                ok = 0;
        if (!ok) {
            if (s)
                vipmta_module_error(m, "redis.key_prefix",
                                    "must be at most %d printable characters without spaces, "
                                    "not \"%s\"",
                                    THROTTLE_PREFIX_MAX, s);
            else
                vipmta_module_error(m, "redis.key_prefix", "must be a string, not %s",
                                    vipmta_value_describe(f));
            errors++;
        } else {
            free(o->key_prefix);
            if (!(o->key_prefix = strdup(s)))
                errors++;
        }
    }
    r = vipmta_option_int(m, v, "redis", "timeout_ms", 1, TIMEOUT_MS_MAX, &x);
    if (r > 0)
        o->timeout_ms = (int)x;
    errors += r < 0;
    return errors;
}

/* The Redis backend's batch for a limit: connections a node may start on
 * credit, before Redis has confirmed the earlier ones (see the docs). */
static uint32_t limit_batch(const struct throttle_params *p)
{
    uint64_t per_tenth = p->count / ((uint64_t)p->period_s * 10);
    uint64_t cap = p->burst < BATCH_MAX ? p->burst : BATCH_MAX;
    if (per_tenth > cap)
        per_tenth = cap;
    return per_tenth < 1 ? 1 : (uint32_t)per_tenth;
}

static int parse_limit(vipmta_module_ctx *m, const vipmta_value *v, size_t i,
                       struct throttle_limit *lim)
{
    char path[PATH_LEN], fpath[PATH_LEN + 16];
    const vipmta_value *f;
    const char *s;
    long long x;
    int which, r;
    vipmta_option_path_index(path, sizeof(path), "limits", i);
    lim->slot = -1;
    if (vipmta_option_object(m, v, path, NULL) != 0)
        return 1;
    int errors = vipmta_module_check_keys(m, v, path, limit_keys);

    if ((f = vipmta_value_get(v, "binding"))) {
        vipmta_option_path(fpath, sizeof(fpath), path, "binding");
        s = vipmta_value_string(f);
        if (!s || !*s || strlen(s) > THROTTLE_BINDING_NAME_MAX) {
            vipmta_module_error(m, fpath, "must be a binding name or \"*\", not %s",
                                s ? "an empty or overlong string" : vipmta_value_describe(f));
            errors++;
        } else if (strcmp(s, "*") != 0 && !(lim->binding = strdup(s))) {
            errors++;
        }
    }
    if ((f = vipmta_value_get(v, "domain"))) {
        vipmta_option_path(fpath, sizeof(fpath), path, "domain");
        s = vipmta_value_string(f);
        if (s && strcmp(s, "*") == 0) {
            /* any domain */
        } else if (!s || !domain_ok(s)) {
            if (s)
                vipmta_module_error(m, fpath, "must be a domain name or \"*\", not \"%s\"", s);
            else
                vipmta_module_error(m, fpath, "must be a domain name or \"*\", not %s",
                                    vipmta_value_describe(f));
            errors++;
        } else if (!(lim->domain = lower_dup(s))) {
            errors++;
        }
    }
    lim->per = THROTTLE_PER_DOMAIN;
    if ((r = vipmta_option_choice(m, v, path, "per", pers, &which)) > 0)
        lim->per = which ? THROTTLE_PER_IP : THROTTLE_PER_DOMAIN;
    errors += r < 0;
    const vipmta_value *rate = vipmta_value_get(v, "rate");
    if (rate) {
        vipmta_option_path(fpath, sizeof(fpath), path, "rate");
        char err[160];
        if (!(s = vipmta_value_string(rate))) {
            vipmta_module_error(m, fpath, "must be a string like %s, not %s", rate_forms,
                                vipmta_value_describe(rate));
            errors++;
        } else if (throttle_rate_parse(s, &lim->rate.count, &lim->rate.period_s, err,
                                       sizeof(err)) != 0) {
            vipmta_module_error(m, fpath, "%s", err);
            errors++;
        } else {
            lim->has_rate = 1;
            lim->rate.burst = lim->rate.count; /* default: the rate's count */
            snprintf(lim->rate_text, sizeof(lim->rate_text), "%s", s);
        }
    }
    if ((r = vipmta_option_int(m, v, path, "burst", 1, THROTTLE_BURST_MAX, &x)) > 0) {
        if (!rate) {
            vipmta_module_error(m, vipmta_option_path(fpath, sizeof(fpath), path, "burst"),
                                "needs a \"rate\" in the same limit");
            errors++;
        } else {
            lim->rate.burst = (uint32_t)x;
        }
    }
    errors += r < 0;
    if ((r = vipmta_option_int(m, v, path, "concurrency", 1, THROTTLE_CONCURRENCY_MAX, &x)) > 0) {
        if (lim->per == THROTTLE_PER_IP) {
            vipmta_module_error(m, vipmta_option_path(fpath, sizeof(fpath), path, "concurrency"),
                                "is not supported with \"per\": \"ip\" (the core counts open "
                                "connections per binding and domain, not per IP); use a "
                                "\"per\": \"domain\" limit");
            errors++;
        } else {
            lim->concurrency = (uint32_t)x;
        }
    }
    errors += r < 0;
    if (!rate && !vipmta_value_get(v, "concurrency")) {
        vipmta_module_error(m, path, "needs a \"rate\", a \"concurrency\" or both");
        errors++;
    }
    if (lim->has_rate)
        lim->batch = limit_batch(&lim->rate);
    return errors;
}

static const char *name_or_any(const char *s)
{
    return s ? s : "*";
}

/* The first matching limit wins: reports limit i when an earlier valid one
 * (bad[j] == 0) of the same kind matches every connection it would (it could
 * never apply). */
static int check_shadowed(vipmta_module_ctx *m, const struct throttle_config *cfg,
                          const unsigned char *bad, size_t i)
{
    const struct throttle_limit *l = &cfg->limits[i];
    for (size_t j = 0; j < i; j++) {
        const struct throttle_limit *e = &cfg->limits[j];
        if (bad[j] || e->per != l->per)
            continue;
        if ((!e->binding || (l->binding && strcmp(e->binding, l->binding) == 0)) &&
            (!e->domain || (l->domain && strcmp(e->domain, l->domain) == 0))) {
            char path[PATH_LEN];
            snprintf(path, sizeof(path), "limits[%zu]", i);
            vipmta_module_error(m, path,
                                "never applies: limits[%zu] (binding \"%s\", domain \"%s\", "
                                "per %s) comes first and matches every connection this one "
                                "would (the first matching limit wins); put the more specific "
                                "limit first",
                                j, name_or_any(e->binding), name_or_any(e->domain),
                                e->per == THROTTLE_PER_IP ? "ip" : "domain");
            return 1;
        }
    }
    return 0;
}

struct throttle_config *throttle_config_parse(vipmta_module_ctx *m, const vipmta_value *options)
{
    struct throttle_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg) {
        vipmta_module_error(m, NULL, "out of memory");
        return NULL;
    }
    int errors = vipmta_module_check_keys(m, options, NULL, top_keys);
    const vipmta_value *f;
    int which, r;

    cfg->redis.port = DEFAULT_REDIS_PORT;
    cfg->redis.timeout_ms = DEFAULT_TIMEOUT_MS;
    cfg->redis.host = strdup(DEFAULT_REDIS_HOST);
    cfg->redis.key_prefix = strdup(DEFAULT_KEY_PREFIX);
    if (!cfg->redis.host || !cfg->redis.key_prefix)
        errors++;
    if ((r = vipmta_option_choice(m, options, NULL, "backend", backends, &which)) > 0)
        cfg->backend = which ? THROTTLE_BACKEND_REDIS : THROTTLE_BACKEND_LOCAL;
    errors += r < 0;
    if ((f = vipmta_value_get(options, "redis")))
        errors += parse_redis(m, f, &cfg->redis);
    if ((r = vipmta_option_choice(m, options, NULL, "on_backend_error", on_errors, &which)) > 0)
        cfg->deny_on_error = which;
    errors += r < 0;
    const vipmta_value *limits = vipmta_value_get(options, "limits");
    if (!limits) {
        vipmta_module_error(m, "limits", "is required: a list of limits");
        errors++;
    } else if (vipmta_option_array(m, limits, "limits", "an array of limits") != 0) {
        errors++;
    } else if (vipmta_value_size(limits) > 0) {
        cfg->nlimits = vipmta_value_size(limits);
        unsigned char *bad = calloc(cfg->nlimits, 1);
        if (!bad || !(cfg->limits = calloc(cfg->nlimits, sizeof(*cfg->limits)))) {
            vipmta_module_error(m, "limits", "out of memory");
            cfg->nlimits = 0;
            errors++;
        }
        for (size_t i = 0; i < cfg->nlimits; i++) {
            int e = parse_limit(m, vipmta_value_at(limits, i), i, &cfg->limits[i]);
            bad[i] = e != 0;
            if (!e)
                e = check_shadowed(m, cfg, bad, i);
            errors += e;
            cfg->has_kind[cfg->limits[i].per] = 1;
        }
        free(bad);
    }
    if (errors) {
        throttle_config_free(cfg);
        return NULL;
    }
    return cfg;
}

void throttle_config_free(void *p)
{
    struct throttle_config *cfg = p;
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->nlimits; i++) {
        free(cfg->limits[i].binding);
        free(cfg->limits[i].domain);
    }
    free(cfg->limits);
    free(cfg->redis.host);
    free(cfg->redis.key_prefix);
    free(cfg);
}

const struct throttle_limit *throttle_config_match(const struct throttle_config *cfg,
                                                   enum throttle_per per, int slot,
                                                   const char *domain)
{
    for (size_t i = 0; i < cfg->nlimits; i++) {
        const struct throttle_limit *l = &cfg->limits[i];
        if (l->per == per && (!l->binding || l->slot == slot) &&
            (!l->domain || (domain && strcmp(l->domain, domain) == 0)))
            return l;
    }
    return NULL;
}

int throttle_redis_opts_equal(const struct throttle_redis_opts *a,
                              const struct throttle_redis_opts *b)
{
    return strcmp(a->host, b->host) == 0 && a->port == b->port &&
           strcmp(a->key_prefix, b->key_prefix) == 0 && a->timeout_ms == b->timeout_ms;
}
