/* sockopt_options.c: the sockopt module's options (socket options per scope: default, binding, domain, binding x domain) and their resolution per connection. */
#include "sockopt.h"

#include <ctype.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static const char *const set_keys[] = {"tos",        "traffic_class", "mark",
                                       "keepalive",  "user_timeout_ms", "nodelay",
                                       "congestion", "sndbuf",        "rcvbuf",
                                       NULL};
static const char *const keepalive_keys[] = {"idle", "interval", "count", NULL};
static const char *const global_extra[] = {"veto_on_error", NULL};

/* The integer options: key, range, bit, field. */
static const struct {
    const char *key;
    long long min, max;
    unsigned bit;
    size_t offset;
} int_fields[] = {
    {"traffic_class", 0, 255, SOCKOPT_TRAFFIC_CLASS, offsetof(struct sockopt_set, traffic_class)},
    {"user_timeout_ms", 0, INT32_MAX, SOCKOPT_USER_TIMEOUT,
     offsetof(struct sockopt_set, user_timeout_ms)},
    /* the kernel doubles the buffer sizes and keeps them in an int */
    {"sndbuf", 1, INT32_MAX / 2, SOCKOPT_SNDBUF, offsetof(struct sockopt_set, sndbuf)},
    {"rcvbuf", 1, INT32_MAX / 2, SOCKOPT_RCVBUF, offsetof(struct sockopt_set, rcvbuf)},
    /* the kernel's limits: MAX_TCP_KEEPIDLE, MAX_TCP_KEEPINTVL, MAX_TCP_KEEPCNT */
    {"idle", 1, 32767, SOCKOPT_KA_IDLE, offsetof(struct sockopt_set, ka_idle)},
    {"interval", 1, 32767, SOCKOPT_KA_INTERVAL, offsetof(struct sockopt_set, ka_interval)},
    {"count", 1, 127, SOCKOPT_KA_COUNT, offsetof(struct sockopt_set, ka_count)},
};
#define SOCKOPT_FIRST_KEEPALIVE_FIELD 4

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

/* The integer fields [from, to) of int_fields present in `obj` (at `path`). */
static int parse_int_fields(vipmta_module_ctx *m, const vipmta_value *obj, const char *path,
                            size_t from, size_t to, struct sockopt_set *out)
{
    int errors = 0;
    for (size_t i = from; i < to; i++) {
        long long x;
        int r = vipmta_option_int(m, obj, path, int_fields[i].key, int_fields[i].min,
                                  int_fields[i].max, &x);
        if (r > 0) {
            *(int *)((char *)out + int_fields[i].offset) = (int)x;
            out->present |= int_fields[i].bit;
        }
        errors += r < 0;
    }
    return errors;
}

static int parse_tos(vipmta_module_ctx *m, const vipmta_value *v, struct sockopt_set *out)
{
    static const char what[] =
        "must be a DSCP name (cs0-cs7, af11-af43, ef, le) or a number from 0 to 255";
    int tos = -1;
    if (vipmta_value_type(v) == VIPMTA_VALUE_STRING && (tos = sockopt_dscp_tos(vipmta_value_string(v))) < 0)
        vipmta_module_error(m, "tos", "%s, not \"%s\"", what, vipmta_value_string(v));
    else if (vipmta_value_type(v) == VIPMTA_VALUE_INTEGER) {
        long long x = vipmta_value_integer(v);
        if (x >= 0 && x <= 255)
            tos = (int)x;
        else
            vipmta_module_error(m, "tos", "%s, not %lld", what, x);
    } else if (vipmta_value_type(v) != VIPMTA_VALUE_STRING)
        vipmta_module_error(m, "tos", "%s, not %s", what, vipmta_value_describe(v));
    if (tos < 0)
        return 1;
    out->tos = tos;
    out->present |= SOCKOPT_TOS;
    return 0;
}

static int parse_keepalive(vipmta_module_ctx *m, const vipmta_value *v, struct sockopt_set *out)
{
    if (vipmta_value_type(v) == VIPMTA_VALUE_BOOL) {
        out->keepalive = vipmta_value_bool(v);
        out->present |= SOCKOPT_KEEPALIVE;
        return 0;
    }
    if (vipmta_option_object(m, v, "keepalive",
                             "true, false or an object with \"idle\", \"interval\" and "
                             "\"count\"") != 0)
        return 1;
    int errors = vipmta_module_check_keys(m, v, "keepalive", keepalive_keys);
    errors += parse_int_fields(m, v, "keepalive", SOCKOPT_FIRST_KEEPALIVE_FIELD,
                               sizeof(int_fields) / sizeof(int_fields[0]), out);
    out->keepalive = 1;
    out->present |= SOCKOPT_KEEPALIVE;
    return errors;
}

static int parse_congestion(vipmta_module_ctx *m, const vipmta_value *obj,
                            struct sockopt_set *out)
{
    const char *s;
    int r = vipmta_option_string(m, obj, NULL, "congestion",
                                 "the name of a TCP congestion control algorithm (e.g. "
                                 "\"cubic\", \"bbr\")",
                                 &s);
    if (r <= 0)
        return r < 0;
    size_t len = strlen(s);
    if (len >= SOCKOPT_CONGESTION_MAX) {
        vipmta_module_error(m, "congestion", "must be 1 to %d characters long, not %zu",
                            SOCKOPT_CONGESTION_MAX - 1, len);
        return 1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '_' && c != '-') {
            vipmta_module_error(m, "congestion",
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

int sockopt_set_parse(vipmta_module_ctx *m, const vipmta_value *obj, const char *const *extra,
                      struct sockopt_set *out)
{
    const char *keys[sizeof(set_keys) / sizeof(set_keys[0]) + 4];
    size_t n = 0;
    for (size_t i = 0; set_keys[i]; i++)
        keys[n++] = set_keys[i];
    for (size_t i = 0; extra && extra[i] && n + 1 < sizeof(keys) / sizeof(keys[0]); i++)
        keys[n++] = extra[i];
    keys[n] = NULL;
    memset(out, 0, sizeof(*out));
    int errors = vipmta_module_check_keys(m, obj, NULL, keys);
    const vipmta_value *v;
    long long mark;
    int r;

    if ((v = vipmta_value_get(obj, "tos")))
        errors += parse_tos(m, v, out);
    if ((r = vipmta_option_int(m, obj, NULL, "mark", 0, UINT32_MAX, &mark)) > 0) {
        out->mark = (uint32_t)mark;
        out->present |= SOCKOPT_MARK;
    }
    errors += r < 0;
    if ((v = vipmta_value_get(obj, "keepalive")))
        errors += parse_keepalive(m, v, out);
    if ((r = vipmta_option_bool(m, obj, NULL, "nodelay", &out->nodelay)) > 0)
        out->present |= SOCKOPT_NODELAY;
    errors += r < 0;
    errors += parse_congestion(m, obj, out);
    errors += parse_int_fields(m, obj, NULL, 0, SOCKOPT_FIRST_KEEPALIVE_FIELD, out);
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

/* Domains first by slot (pairs), then by name. */
static int scoped_cmp(const void *a, const void *b)
{
    const struct sockopt_scoped *x = a, *y = b;
    if (x->slot != y->slot)
        return x->slot < y->slot ? -1 : 1;
    return strcmp(x->domain, y->domain);
}

/* Appends a scoped set (domain or binding x domain). -1 when out of memory. */
static int add_scoped(struct sockopt_scoped **list, size_t *count, int slot, const char *domain,
                      const struct sockopt_set *set)
{
    struct sockopt_scoped *grown = realloc(*list, (*count + 1) * sizeof(**list));
    if (!grown)
        return -1;
    *list = grown;
    struct sockopt_scoped *e = &grown[*count];
    e->slot = slot;
    e->set = *set;
    if (!(e->domain = strdup(domain)))
        return -1;
    (*count)++;
    return 0;
}

/* One scope of the entry into cfg (the global options come first). */
static int sockopt_scope(vipmta_module_ctx *m, const vipmta_scope *s, void *arg)
{
    struct sockopt_config *cfg = arg;
    struct sockopt_set set;
    int errors = sockopt_set_parse(m, s->options,
                                   s->kind == VIPMTA_SCOPE_GLOBAL ? global_extra : NULL, &set);
    int r = 0;
    switch (s->kind) {
    case VIPMTA_SCOPE_GLOBAL:
        cfg->dflt = set;
        errors += vipmta_option_bool(m, s->options, NULL, "veto_on_error",
                                     &cfg->veto_on_error) < 0;
        for (int i = 0; i < cfg->nslots; i++)
            cfg->slots[i] = set;
        break;
    case VIPMTA_SCOPE_BINDING:
        if (s->slot >= 0 && s->slot < cfg->nslots)
            sockopt_merge(&cfg->slots[s->slot], &set);
        cfg->nbindings++;
        break;
    case VIPMTA_SCOPE_DOMAIN:
        r = add_scoped(&cfg->domains, &cfg->ndomains, EC_BINDING_SLOT_UNBOUND, s->domain, &set);
        break;
    case VIPMTA_SCOPE_BINDING_DOMAIN:
        r = add_scoped(&cfg->pairs, &cfg->npairs, s->slot, s->domain, &set);
        break;
    }
    if (r < 0) {
        vipmta_module_error(m, NULL, "out of memory");
        return -1;
    }
    return errors;
}

void sockopt_config_free(void *p)
{
    struct sockopt_config *cfg = p;
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->ndomains; i++)
        free(cfg->domains[i].domain);
    for (size_t i = 0; i < cfg->npairs; i++)
        free(cfg->pairs[i].domain);
    free(cfg->domains);
    free(cfg->pairs);
    free(cfg->slots);
    free(cfg);
}

struct sockopt_config *sockopt_config_parse(vipmta_module_ctx *m)
{
    struct sockopt_config *cfg = calloc(1, sizeof(*cfg));
    int n = vipmta_binding_count();
    if (cfg) {
        cfg->nslots = n < 1 ? 1 : n;
        cfg->slots = calloc((size_t)cfg->nslots, sizeof(*cfg->slots));
    }
    if (!cfg || !cfg->slots) {
        vipmta_module_error(m, NULL, "out of memory");
        sockopt_config_free(cfg);
        return NULL;
    }
    if (vipmta_module_foreach_scope(m, sockopt_scope, cfg) != 0) {
        sockopt_config_free(cfg);
        return NULL;
    }
    if (cfg->ndomains)
        qsort(cfg->domains, cfg->ndomains, sizeof(*cfg->domains), scoped_cmp);
    if (cfg->npairs)
        qsort(cfg->pairs, cfg->npairs, sizeof(*cfg->pairs), scoped_cmp);
    return cfg;
}

static const struct sockopt_set *find_scoped(const struct sockopt_scoped *list, size_t count,
                                             int slot, const char *domain)
{
    if (!count || !domain)
        return NULL;
    struct sockopt_scoped key = {.slot = slot, .domain = (char *)domain};
    const struct sockopt_scoped *e = bsearch(&key, list, count, sizeof(key), scoped_cmp);
    return e ? &e->set : NULL;
}

const struct sockopt_set *sockopt_config_resolve(const struct sockopt_config *cfg, int slot,
                                                 const char *domain, struct sockopt_set *buf)
{
    const struct sockopt_set *s = slot >= 0 && slot < cfg->nslots ? &cfg->slots[slot]
                                                                   : &cfg->dflt;
    const struct sockopt_set *dom =
        find_scoped(cfg->domains, cfg->ndomains, EC_BINDING_SLOT_UNBOUND, domain);
    const struct sockopt_set *pair = find_scoped(cfg->pairs, cfg->npairs, slot, domain);
    if (!dom && !pair)
        return s;
    *buf = *s;
    if (dom)
        sockopt_merge(buf, dom);
    if (pair)
        sockopt_merge(buf, pair);
    return buf;
}
