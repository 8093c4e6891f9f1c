/* sockopt_options.c: strict parsing of the sockopt module's options and the per-slot/per-domain tables. */
#include "sockopt.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "vipmta_binding.h"

#define PATH_MAX_LEN 512

static const char *const set_keys[] = {"tos",       "traffic_class", "mark",
                                       "keepalive", "user_timeout_ms", "nodelay",
                                       "congestion", "sndbuf",        "rcvbuf",
                                       NULL};
static const char *const keepalive_keys[] = {"idle", "interval", "count", NULL};
static const char *const top_keys[] = {"default", "bindings", "domains", "veto_on_error", NULL};

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

/* "prefix.key", or "key" when prefix is NULL. */
static void join_path(char *buf, size_t size, const char *prefix, const char *key)
{
    int n = prefix ? snprintf(buf, size, "%s.%s", prefix, key) : snprintf(buf, size, "%s", key);
    if (n < 0 || (size_t)n >= size) /* absurdly long names: keep the truncated path */
        buf[size - 1] = '\0';
}

static int get_int(vipmta_module_ctx *m, const json_t *v, const char *path, long long min,
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

static int get_bool(vipmta_module_ctx *m, const json_t *v, const char *path, int *out)
{
    if (!json_is_boolean(v)) {
        vipmta_module_error(m, path, "must be true or false, not %s", json_kind(v));
        return 1;
    }
    *out = json_is_true(v);
    return 0;
}

int sockopt_dscp_tos(const char *name)
{
    char n[8];
    size_t len = strlen(name);
    if (len == 0 || len >= sizeof(n))
        return -1;
    for (size_t i = 0; i <= len; i++)
        n[i] = (char)tolower((unsigned char)name[i]);
    int dscp = -1;
    if (strcmp(n, "ef") == 0)
        dscp = 46;
    else if (strcmp(n, "le") == 0)
        dscp = 1; /* RFC 8622 lower effort */
    else if (len == 3 && n[0] == 'c' && n[1] == 's' && n[2] >= '0' && n[2] <= '7')
        dscp = (n[2] - '0') * 8;
    else if (len == 4 && n[0] == 'a' && n[1] == 'f' && n[2] >= '1' && n[2] <= '4' &&
             n[3] >= '1' && n[3] <= '3')
        dscp = (n[2] - '0') * 8 + (n[3] - '0') * 2;
    return dscp < 0 ? -1 : dscp << 2;
}

static int parse_tos(vipmta_module_ctx *m, const json_t *v, const char *path, int *out)
{
    static const char what[] =
        "must be a DSCP name (cs0-cs7, af11-af43, ef, le) or a number from 0 to 255";
    if (json_is_string(v)) {
        int tos = sockopt_dscp_tos(json_string_value(v));
        if (tos < 0) {
            vipmta_module_error(m, path, "%s, not \"%s\"", what, json_string_value(v));
            return 1;
        }
        *out = tos;
        return 0;
    }
    if (json_is_integer(v)) {
        long long x = json_integer_value(v);
        if (x < 0 || x > 255) {
            vipmta_module_error(m, path, "%s, not %lld", what, x);
            return 1;
        }
        *out = (int)x;
        return 0;
    }
    vipmta_module_error(m, path, "%s, not %s", what, json_kind(v));
    return 1;
}

static int parse_keepalive(vipmta_module_ctx *m, const json_t *v, const char *path,
                           struct sockopt_set *out)
{
    if (json_is_boolean(v)) {
        out->keepalive = json_is_true(v);
        out->present |= SOCKOPT_KEEPALIVE;
        return 0;
    }
    if (!json_is_object(v)) {
        vipmta_module_error(m, path,
                            "must be true, false or an object with \"idle\", \"interval\" and "
                            "\"count\", not %s",
                            json_kind(v));
        return 1;
    }
    int errors = vipmta_module_check_keys(m, v, path, keepalive_keys);
    /* the kernel's limits: MAX_TCP_KEEPIDLE, MAX_TCP_KEEPINTVL, MAX_TCP_KEEPCNT */
    static const struct {
        const char *key;
        long long max;
        unsigned bit;
    } fields[] = {{"idle", 32767, SOCKOPT_KA_IDLE},
                  {"interval", 32767, SOCKOPT_KA_INTERVAL},
                  {"count", 127, SOCKOPT_KA_COUNT}};
    int *dst[] = {&out->ka_idle, &out->ka_interval, &out->ka_count};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        const json_t *f = json_object_get(v, fields[i].key);
        if (!f)
            continue;
        char p[PATH_MAX_LEN];
        long long x;
        join_path(p, sizeof(p), path, fields[i].key);
        if (get_int(m, f, p, 1, fields[i].max, &x)) {
            errors++;
            continue;
        }
        *dst[i] = (int)x;
        out->present |= fields[i].bit;
    }
    out->keepalive = 1;
    out->present |= SOCKOPT_KEEPALIVE;
    return errors;
}

static int parse_congestion(vipmta_module_ctx *m, const json_t *v, const char *path,
                            struct sockopt_set *out)
{
    if (!json_is_string(v)) {
        vipmta_module_error(m, path,
                            "must be the name of a TCP congestion control algorithm "
                            "(e.g. \"cubic\", \"bbr\"), not %s",
                            json_kind(v));
        return 1;
    }
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (len == 0 || len >= SOCKOPT_CONGESTION_MAX) {
        vipmta_module_error(m, path, "must be 1 to %d characters long, not %zu",
                            SOCKOPT_CONGESTION_MAX - 1, len);
        return 1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '_' && c != '-') {
            vipmta_module_error(m, path,
                                "\"%s\" is not a congestion control name (letters, digits, "
                                "'_' and '-' only)",
                                s);
            return 1;
        }
    }
    memcpy(out->congestion, s, len + 1);
    out->present |= SOCKOPT_CONGESTION;
    return 0;
}

int sockopt_set_parse(vipmta_module_ctx *m, const json_t *obj, const char *path,
                      struct sockopt_set *out)
{
    memset(out, 0, sizeof(*out));
    if (!json_is_object(obj)) {
        vipmta_module_error(m, path, "must be an object of socket options, not %s",
                            json_kind(obj));
        return 1;
    }
    int errors = vipmta_module_check_keys(m, obj, path, set_keys);
    char p[PATH_MAX_LEN];
    const json_t *v;
    long long x;

    if ((v = json_object_get(obj, "tos"))) {
        join_path(p, sizeof(p), path, "tos");
        if (parse_tos(m, v, p, &out->tos) == 0)
            out->present |= SOCKOPT_TOS;
        else
            errors++;
    }
    if ((v = json_object_get(obj, "traffic_class"))) {
        join_path(p, sizeof(p), path, "traffic_class");
        if (get_int(m, v, p, 0, 255, &x) == 0) {
            out->traffic_class = (int)x;
            out->present |= SOCKOPT_TRAFFIC_CLASS;
        } else {
            errors++;
        }
    }
    if ((v = json_object_get(obj, "mark"))) {
        join_path(p, sizeof(p), path, "mark");
        if (get_int(m, v, p, 0, UINT32_MAX, &x) == 0) {
            out->mark = (uint32_t)x;
            out->present |= SOCKOPT_MARK;
        } else {
            errors++;
        }
    }
    if ((v = json_object_get(obj, "keepalive"))) {
        join_path(p, sizeof(p), path, "keepalive");
        errors += parse_keepalive(m, v, p, out);
    }
    if ((v = json_object_get(obj, "user_timeout_ms"))) {
        join_path(p, sizeof(p), path, "user_timeout_ms");
        if (get_int(m, v, p, 0, INT32_MAX, &x) == 0) {
            out->user_timeout_ms = (int)x;
            out->present |= SOCKOPT_USER_TIMEOUT;
        } else {
            errors++;
        }
    }
    if ((v = json_object_get(obj, "nodelay"))) {
        join_path(p, sizeof(p), path, "nodelay");
        if (get_bool(m, v, p, &out->nodelay) == 0)
            out->present |= SOCKOPT_NODELAY;
        else
            errors++;
    }
    if ((v = json_object_get(obj, "congestion"))) {
        join_path(p, sizeof(p), path, "congestion");
        errors += parse_congestion(m, v, p, out);
    }
    static const struct {
        const char *key;
        unsigned bit;
    } bufs[] = {{"sndbuf", SOCKOPT_SNDBUF}, {"rcvbuf", SOCKOPT_RCVBUF}};
    int *bufdst[] = {&out->sndbuf, &out->rcvbuf};
    for (size_t i = 0; i < 2; i++) {
        if (!(v = json_object_get(obj, bufs[i].key)))
            continue;
        join_path(p, sizeof(p), path, bufs[i].key);
        /* the kernel doubles the value and keeps it in an int */
        if (get_int(m, v, p, 1, INT32_MAX / 2, &x) == 0) {
            *bufdst[i] = (int)x;
            out->present |= bufs[i].bit;
        } else {
            errors++;
        }
    }
    return errors;
}

void sockopt_merge(struct sockopt_set *dst, const struct sockopt_set *over)
{
    unsigned p = over->present;
    if (p & SOCKOPT_TOS)
        dst->tos = over->tos;
    if (p & SOCKOPT_TRAFFIC_CLASS)
        dst->traffic_class = over->traffic_class;
    if (p & SOCKOPT_MARK)
        dst->mark = over->mark;
    if (p & SOCKOPT_KEEPALIVE)
        dst->keepalive = over->keepalive;
    if (p & SOCKOPT_KA_IDLE)
        dst->ka_idle = over->ka_idle;
    if (p & SOCKOPT_KA_INTERVAL)
        dst->ka_interval = over->ka_interval;
    if (p & SOCKOPT_KA_COUNT)
        dst->ka_count = over->ka_count;
    if (p & SOCKOPT_USER_TIMEOUT)
        dst->user_timeout_ms = over->user_timeout_ms;
    if (p & SOCKOPT_NODELAY)
        dst->nodelay = over->nodelay;
    if (p & SOCKOPT_CONGESTION)
        memcpy(dst->congestion, over->congestion, sizeof(dst->congestion));
    if (p & SOCKOPT_SNDBUF)
        dst->sndbuf = over->sndbuf;
    if (p & SOCKOPT_RCVBUF)
        dst->rcvbuf = over->rcvbuf;
    dst->present |= p;
}

static int named_cmp(const void *a, const void *b)
{
    return strcmp(((const struct sockopt_named *)a)->name, ((const struct sockopt_named *)b)->name);
}

/* Parses {"name": OPTS, ...} at `key`. Domain names are lower-cased and must
 * be unique without regard to case. Returns the number of errors; -1 when
 * out of memory. */
static int parse_named(vipmta_module_ctx *m, const json_t *obj, const char *key, int domains,
                       struct sockopt_named **out, size_t *count)
{
    if (!json_is_object(obj)) {
        vipmta_module_error(m, key, "must be an object mapping %s to socket options, not %s",
                            domains ? "domain names" : "binding names", json_kind(obj));
        return 1;
    }
    size_t n = json_object_size(obj);
    *out = calloc(n ? n : 1, sizeof(**out));
    if (!*out)
        return -1;
    int errors = 0;
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)obj, name, v) {
        char p[PATH_MAX_LEN];
        join_path(p, sizeof(p), key, name);
        struct sockopt_named *e = &(*out)[*count];
        if (domains && (name[0] == '\0' || strlen(name) > 253 || strchr(name, '*'))) {
            vipmta_module_error(m, p, "\"%s\" is not a domain name (exact names only, no "
                                      "wildcards)", name);
            errors++;
            continue;
        }
        if (sockopt_set_parse(m, v, p, &e->set)) {
            errors++;
            continue;
        }
        if (!(e->name = strdup(name)))
            return -1;
        if (domains)
            for (char *c = e->name; *c; c++)
                *c = (char)tolower((unsigned char)*c);
        (*count)++;
    }
    if (domains && *count > 1) {
        qsort(*out, *count, sizeof(**out), named_cmp);
        for (size_t i = 1; i < *count; i++)
            if (strcmp((*out)[i - 1].name, (*out)[i].name) == 0) {
                vipmta_module_error(m, key,
                                    "domain \"%s\" is listed more than once (names are "
                                    "case-insensitive)",
                                    (*out)[i].name);
                errors++;
            }
    }
    return errors;
}

void sockopt_config_free(struct sockopt_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->nbindings; i++)
        free(cfg->bindings[i].name);
    for (size_t i = 0; i < cfg->ndomains; i++)
        free(cfg->domains[i].name);
    free(cfg->bindings);
    free(cfg->domains);
    free(cfg);
}

struct sockopt_config *sockopt_config_parse(vipmta_module_ctx *m, const json_t *options)
{
    if (!json_is_object(options)) {
        vipmta_module_error(m, NULL, "must be an object, not %s", json_kind(options));
        return NULL;
    }
    struct sockopt_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg) {
        vipmta_module_error(m, NULL, "out of memory");
        return NULL;
    }
    int errors = vipmta_module_check_keys(m, options, NULL, top_keys);
    int r;
    const json_t *v;
    if ((v = json_object_get(options, "default")))
        errors += sockopt_set_parse(m, v, "default", &cfg->dflt);
    if ((v = json_object_get(options, "bindings"))) {
        if ((r = parse_named(m, v, "bindings", 0, &cfg->bindings, &cfg->nbindings)) < 0)
            goto oom;
        errors += r;
    }
    if ((v = json_object_get(options, "domains"))) {
        if ((r = parse_named(m, v, "domains", 1, &cfg->domains, &cfg->ndomains)) < 0)
            goto oom;
        errors += r;
    }
    if ((v = json_object_get(options, "veto_on_error")))
        errors += get_bool(m, v, "veto_on_error", &cfg->veto_on_error);
    if (errors) {
        sockopt_config_free(cfg);
        return NULL;
    }
    return cfg;
oom:
    vipmta_module_error(m, NULL, "out of memory");
    sockopt_config_free(cfg);
    return NULL;
}

const struct sockopt_set *sockopt_config_domain(const struct sockopt_config *cfg,
                                                const char *domain)
{
    if (!cfg->ndomains || !domain)
        return NULL;
    struct sockopt_named key = {.name = (char *)domain};
    const struct sockopt_named *e =
        bsearch(&key, cfg->domains, cfg->ndomains, sizeof(key), named_cmp);
    return e ? &e->set : NULL;
}

struct sockopt_set *sockopt_config_slots(vipmta_module_ctx *m, const struct sockopt_config *cfg,
                                         int *nslots)
{
    int n = vipmta_binding_count();
    if (n < 1)
        n = 1;
    struct sockopt_set *slots = calloc((size_t)n, sizeof(*slots));
    if (!slots) {
        vipmta_module_error(m, NULL, "out of memory");
        return NULL;
    }
    for (int i = 0; i < n; i++)
        slots[i] = cfg->dflt;
    int errors = 0;
    for (size_t i = 0; i < cfg->nbindings; i++) {
        const vipmta_binding *b = vipmta_binding_by_name(cfg->bindings[i].name);
        if (!b || b->slot < 0 || b->slot >= n) {
            char p[PATH_MAX_LEN];
            join_path(p, sizeof(p), "bindings", cfg->bindings[i].name);
            vipmta_module_error(m, p, "no binding named \"%s\" in the configuration",
                                cfg->bindings[i].name);
            errors++;
            continue;
        }
        sockopt_merge(&slots[b->slot], &cfg->bindings[i].set);
    }
    if (errors) {
        free(slots);
        return NULL;
    }
    *nslots = n;
    return slots;
}
