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

/* What a JSON value is, for "must be X, not Y" messages. */
static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    case JSON_NULL: return "null";
    }
    return "unknown";
}

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

/* Reads an integer option into *out; 1 (reported) when not in [min, max]. */
static int get_uint(vipmta_module_ctx *m, const json_t *v, const char *path, long long min,
                    long long max, long long *out)
{
    if (!json_is_integer(v)) {
        vipmta_module_error(m, path, "must be an integer from %lld to %lld, not %s", min, max,
                            json_kind(v));
        return 1;
    }
    long long x = json_integer_value(v);
    if (x < min || x > max) {
        vipmta_module_error(m, path, "must be an integer from %lld to %lld, not %lld", min, max,
                            x);
        return 1;
    }
    *out = x;
    return 0;
}

/* One of two words; returns 0 or 1 (the index) through *out. */
static int get_choice(vipmta_module_ctx *m, const json_t *v, const char *path, const char *a,
                      const char *b, int *out)
{
    if (json_is_string(v) && strcmp(json_string_value(v), a) == 0) {
        *out = 0;
        return 0;
    }
    if (json_is_string(v) && strcmp(json_string_value(v), b) == 0) {
        *out = 1;
        return 0;
    }
    if (json_is_string(v))
        vipmta_module_error(m, path, "must be \"%s\" or \"%s\", not \"%s\"", a, b,
                            json_string_value(v));
    else
        vipmta_module_error(m, path, "must be \"%s\" or \"%s\", not %s", a, b, json_kind(v));
    return 1;
}

static int parse_redis(vipmta_module_ctx *m, const json_t *v, struct throttle_redis_opts *o)
{
    if (!json_is_object(v)) {
        vipmta_module_error(m, "redis", "must be an object, not %s", json_kind(v));
        return 1;
    }
    int errors = vipmta_module_check_keys(m, v, "redis", redis_keys);
    const json_t *f;
    long long x;

    if ((f = json_object_get(v, "host"))) {
        unsigned char buf[sizeof(struct in6_addr)];
        if (!json_is_string(f) || (inet_pton(AF_INET, json_string_value(f), buf) != 1 &&
                                   inet_pton(AF_INET6, json_string_value(f), buf) != 1)) {
            if (json_is_string(f))
                vipmta_module_error(m, "redis.host",
                                    "must be an IPv4 or IPv6 address (no host names: resolving "
                                    "one would block the event loop), not \"%s\"",
                                    json_string_value(f));
            else
                vipmta_module_error(m, "redis.host", "must be an IPv4 or IPv6 address, not %s",
                                    json_kind(f));
            errors++;
        } else {
            free(o->host);
            if (!(o->host = strdup(json_string_value(f))))
                errors++;
        }
    }
    if ((f = json_object_get(v, "port"))) {
        if (get_uint(m, f, "redis.port", 1, 65535, &x) == 0)
            o->port = (int)x;
        else
            errors++;
    }
    if ((f = json_object_get(v, "key_prefix"))) {
        const char *s = json_is_string(f) ? json_string_value(f) : NULL;
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
                                    json_kind(f));
            errors++;
        } else {
            free(o->key_prefix);
            if (!(o->key_prefix = strdup(s)))
                errors++;
        }
    }
    if ((f = json_object_get(v, "timeout_ms"))) {
        if (get_uint(m, f, "redis.timeout_ms", 1, TIMEOUT_MS_MAX, &x) == 0)
            o->timeout_ms = (int)x;
        else
            errors++;
    }
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

static int parse_limit(vipmta_module_ctx *m, const json_t *v, size_t i,
                       struct throttle_limit *lim)
{
    char path[PATH_LEN], fpath[PATH_LEN + 16];
    snprintf(path, sizeof(path), "limits[%zu]", i);
    lim->slot = -1;
    if (!json_is_object(v)) {
        vipmta_module_error(m, path, "must be an object, not %s", json_kind(v));
        return 1;
    }
    int errors = vipmta_module_check_keys(m, v, path, limit_keys);
    const json_t *f;
    long long x;

    if ((f = json_object_get(v, "binding"))) {
        snprintf(fpath, sizeof(fpath), "%s.binding", path);
        const char *s = json_is_string(f) ? json_string_value(f) : NULL;
        if (!s || !*s || strlen(s) > THROTTLE_BINDING_NAME_MAX) {
            vipmta_module_error(m, fpath, "must be a binding name or \"*\", not %s",
                                s ? "an empty or overlong string" : json_kind(f));
            errors++;
        } else if (strcmp(s, "*") != 0 && !(lim->binding = strdup(s))) {
            errors++;
        }
    }
    if ((f = json_object_get(v, "domain"))) {
        snprintf(fpath, sizeof(fpath), "%s.domain", path);
        const char *s = json_is_string(f) ? json_string_value(f) : NULL;
        if (s && strcmp(s, "*") == 0) {
            /* any domain */
        } else if (!s || !domain_ok(s)) {
            if (s)
                vipmta_module_error(m, fpath, "must be a domain name or \"*\", not \"%s\"", s);
            else
                vipmta_module_error(m, fpath, "must be a domain name or \"*\", not %s",
                                    json_kind(f));
            errors++;
        } else if (!(lim->domain = lower_dup(s))) {
            errors++;
        }
    }
    lim->per = THROTTLE_PER_DOMAIN;
    if ((f = json_object_get(v, "per"))) {
        snprintf(fpath, sizeof(fpath), "%s.per", path);
        int which;
        if (get_choice(m, f, fpath, "domain", "ip", &which) == 0)
            lim->per = which ? THROTTLE_PER_IP : THROTTLE_PER_DOMAIN;
        else
            errors++;
    }
    const json_t *rate = json_object_get(v, "rate");
    if (rate) {
        snprintf(fpath, sizeof(fpath), "%s.rate", path);
        char err[160];
        if (!json_is_string(rate)) {
            vipmta_module_error(m, fpath, "must be a string like %s, not %s", rate_forms,
                                json_kind(rate));
            errors++;
        } else if (throttle_rate_parse(json_string_value(rate), &lim->rate.count,
                                       &lim->rate.period_s, err, sizeof(err)) != 0) {
            vipmta_module_error(m, fpath, "%s", err);
            errors++;
        } else {
            lim->has_rate = 1;
            lim->rate.burst = lim->rate.count; /* default: the rate's count */
            snprintf(lim->rate_text, sizeof(lim->rate_text), "%s", json_string_value(rate));
        }
    }
    if ((f = json_object_get(v, "burst"))) {
        snprintf(fpath, sizeof(fpath), "%s.burst", path);
        if (get_uint(m, f, fpath, 1, THROTTLE_BURST_MAX, &x) != 0) {
            errors++;
        } else if (!rate) {
            vipmta_module_error(m, fpath, "needs a \"rate\" in the same limit");
            errors++;
        } else {
            lim->rate.burst = (uint32_t)x;
        }
    }
    if ((f = json_object_get(v, "concurrency"))) {
        snprintf(fpath, sizeof(fpath), "%s.concurrency", path);
        if (get_uint(m, f, fpath, 1, THROTTLE_CONCURRENCY_MAX, &x) != 0) {
            errors++;
        } else if (lim->per == THROTTLE_PER_IP) {
            vipmta_module_error(m, fpath,
                                "is not supported with \"per\": \"ip\" (the core counts open "
                                "connections per binding and domain, not per IP); use a "
                                "\"per\": \"domain\" limit");
            errors++;
        } else {
            lim->concurrency = (uint32_t)x;
        }
    }
    if (!rate && !json_object_get(v, "concurrency")) {
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

struct throttle_config *throttle_config_parse(vipmta_module_ctx *m, const json_t *options)
{
    if (!json_is_object(options)) {
        vipmta_module_error(m, NULL, "must be an object, not %s", json_kind(options));
        return NULL;
    }
    struct throttle_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg) {
        vipmta_module_error(m, NULL, "out of memory");
        return NULL;
    }
    int errors = vipmta_module_check_keys(m, options, NULL, top_keys);
    const json_t *f;
    int which;

    cfg->redis.port = DEFAULT_REDIS_PORT;
    cfg->redis.timeout_ms = DEFAULT_TIMEOUT_MS;
    cfg->redis.host = strdup(DEFAULT_REDIS_HOST);
    cfg->redis.key_prefix = strdup(DEFAULT_KEY_PREFIX);
    if (!cfg->redis.host || !cfg->redis.key_prefix)
        errors++;
    if ((f = json_object_get(options, "backend"))) {
        if (get_choice(m, f, "backend", "local", "redis", &which) == 0)
            cfg->backend = which ? THROTTLE_BACKEND_REDIS : THROTTLE_BACKEND_LOCAL;
        else
            errors++;
    }
    if ((f = json_object_get(options, "redis")))
        errors += parse_redis(m, f, &cfg->redis);
    if ((f = json_object_get(options, "on_backend_error"))) {
        if (get_choice(m, f, "on_backend_error", "allow", "deny", &which) == 0)
            cfg->deny_on_error = which;
        else
            errors++;
    }
    const json_t *limits = json_object_get(options, "limits");
    if (!limits) {
        vipmta_module_error(m, "limits", "is required: a list of limits");
        errors++;
    } else if (!json_is_array(limits)) {
        vipmta_module_error(m, "limits", "must be an array of limits, not %s", json_kind(limits));
        errors++;
    } else if (json_array_size(limits) > 0) {
        cfg->nlimits = json_array_size(limits);
        unsigned char *bad = calloc(cfg->nlimits, 1);
        if (!bad || !(cfg->limits = calloc(cfg->nlimits, sizeof(*cfg->limits)))) {
            vipmta_module_error(m, "limits", "out of memory");
            cfg->nlimits = 0;
            errors++;
        }
        for (size_t i = 0; i < cfg->nlimits; i++) {
            int e = parse_limit(m, json_array_get(limits, i), i, &cfg->limits[i]);
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

void throttle_config_free(struct throttle_config *cfg)
{
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
