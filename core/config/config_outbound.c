/* config_outbound.c: the outbound half of the config: bindings, groups, rules, domains, routes. */
#include "config.h"
#include "config_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static const unsigned default_retry[] = {60, 300, 900, 1800, 3600};

static int config_binding_name_ok(const char *name)
{
    if (!*name)
        return 0;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-')
            return 0;
    return 1;
}

int config_binding_exists(const struct vipmta_config *cfg, const char *name)
{
    if (strcmp(name, "default") == 0)
        return 1;
    for (size_t i = 0; i < cfg->binding_count; i++)
        if (strcmp(cfg->bindings[i].name, name) == 0)
            return 1;
    return 0;
}

/* "example.com", "*.example.com" or "*" */
static int config_domain_pattern_ok(const char *pattern)
{
    if (strcmp(pattern, "*") == 0)
        return 1;
    if (pattern[0] == '*' && pattern[1] == '.')
        pattern += 2;
    return config_hostname_ok(pattern);
}

/* A key of "domains" or "routes": a domain name or "*"; lower-cased into *out,
 * unique among the `n` names already in `seen` (case-insensitively). 0 when valid. */
static int config_domain_key(struct config_ctx *c, const char *section, const char *key,
                          const char *path, char **seen, size_t stride, size_t n, char **out)
{
    if (strcmp(key, "*") != 0 && !config_hostname_ok(key)) {
        config_error(c, path, "\"%s\" is not a domain name (or \"*\" for every other domain)", key);
        return -1;
    }
    char *lower = strdup(key);
    if (!lower) {
        config_error(c, path, "out of memory");
        return -1;
    }
    config_lower(lower);
    for (size_t i = 0; i < n; i++) {
        const char *other = *(char *const *)((const char *)seen + i * stride);
        if (other && strcmp(other, lower) == 0) {
            config_error(c, path, "%s lists \"%s\" twice (domain names ignore case)", section, lower);
            free(lower);
            return -1;
        }
    }
    *out = lower;
    return 0;
}

static int config_group_exists(const struct vipmta_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->binding_group_count; i++)
        if (strcmp(cfg->binding_groups[i].name, name) == 0)
            return 1;
    return 0;
}

void config_parse_bindings(struct config_ctx *c, struct vipmta_config *cfg, const json_t *v)
{
    static const char *const keys[] = {"address", "address6", "ehlo", NULL};
    const char *name;
    json_t *b;

    if (!v)
        return;
    if (!json_is_object(v)) {
        config_error(c, "bindings", "expected an object of name: { address, address6, ehlo }, found %s",
                  config_type_name(v));
        return;
    }
    cfg->bindings = calloc(json_object_size(v) + 1, sizeof(*cfg->bindings));
    json_object_foreach((json_t *)v, name, b) {
        char p[CONFIG_PATH_MAX];
        config_path_key(p, "bindings", name);
        if (!config_binding_name_ok(name)) {
            config_error(c, p, "binding names use letters, digits, '_', '.' and '-' only");
            continue;
        }
        if (!json_is_object(b)) {
            config_error(c, p, "expected an object { address, address6, ehlo }, found %s",
                      config_type_name(b));
            continue;
        }
        config_check_keys(c, b, p, keys);
        struct config_binding *cb = &cfg->bindings[cfg->binding_count++];
        cb->name = strdup(name);
        config_get_string(c, b, "address", p, &cb->address);
        config_get_string(c, b, "address6", p, &cb->address6);
        config_get_string(c, b, "ehlo", p, &cb->ehlo);
        unsigned char buf[16];
        char q[CONFIG_PATH_MAX];
        if (cb->address && inet_pton(AF_INET, cb->address, buf) != 1) {
            config_path_key(q, p, "address");
            config_error(c, q, "\"%s\" is not an IPv4 address%s", cb->address,
                      inet_pton(AF_INET6, cb->address, buf) == 1
                          ? " (an IPv6 source address goes in \"address6\")"
                          : " (a literal such as 192.0.2.10; host names are not looked up)");
        }
        if (cb->address6 && inet_pton(AF_INET6, cb->address6, buf) != 1) {
            config_path_key(q, p, "address6");
            config_error(c, q, "\"%s\" is not an IPv6 address%s", cb->address6,
                      inet_pton(AF_INET, cb->address6, buf) == 1
                          ? " (an IPv4 source address goes in \"address\")"
                          : " (a literal such as 2001:db8::10; host names are not looked up)");
        }
        if (cb->ehlo && !config_hostname_ok(cb->ehlo)) {
            config_path_key(q, p, "ehlo");
            config_error(c, q, "\"%s\" is not a host name", cb->ehlo);
        }
        if (strcmp(name, "default") != 0 && !cb->address && !cb->address6)
            config_error(c, p, "a binding needs \"address\" (IPv4) or \"address6\" (IPv6)");
    }
}

void config_parse_binding_groups(struct config_ctx *c, struct vipmta_config *cfg, const json_t *v)
{
    const char *name;
    json_t *list;

    if (!v)
        return;
    if (!json_is_object(v)) {
        config_error(c, "binding_groups", "expected an object of name: [bindings], found %s",
                  config_type_name(v));
        return;
    }
    cfg->binding_groups = calloc(json_object_size(v) + 1, sizeof(*cfg->binding_groups));
    json_object_foreach((json_t *)v, name, list) {
        char p[CONFIG_PATH_MAX];
        config_path_key(p, "binding_groups", name);
        if (!json_is_array(list) || json_array_size(list) == 0) {
            config_error(c, p, "expected a non-empty list of binding names or {\"binding\", \"weight\"}, "
                      "found %s", json_is_array(list) ? "an empty list" : config_type_name(list));
            continue;
        }
        if (!config_binding_name_ok(name))
            config_error(c, p, "group names use letters, digits, '_', '.' and '-' only");
        else if (config_binding_exists(cfg, name))
            config_error(c, p, "a group may not have the name of a binding (\"%s\" is a binding%s)",
                      name, strcmp(name, "default") == 0 ? ": the implicit slot 0" : "");
        struct config_binding_group *g = &cfg->binding_groups[cfg->binding_group_count++];
        g->name = strdup(name);
        g->members = calloc(json_array_size(list), sizeof(*g->members));
        size_t i;
        json_t *item;
        json_array_foreach(list, i, item) {
            static const char *const keys[] = {"binding", "weight", NULL};
            char q[CONFIG_PATH_MAX];
            config_path_index(q, p, i);
            struct config_group_member *m = &g->members[g->member_count];
            m->weight = 1;
            if (json_is_string(item)) {
                config_want_string(c, item, q, &m->binding);
            } else if (json_is_object(item)) {
                config_check_keys(c, item, q, keys);
                unsigned long long w = 1;
                int bad = config_get_string(c, item, "binding", q, &m->binding) != 0;
                config_get_uint(c, item, "weight", q, 1, 1000000, &w);
                m->weight = (unsigned)w;
                if (!m->binding && !bad)
                    config_error(c, q, "missing \"binding\" (a name defined under \"bindings\")");
            } else {
                config_error(c, q, "expected a binding name or {\"binding\", \"weight\"}, found %s",
                          config_type_name(item));
            }
            if (!m->binding)
                continue;
            if (!config_binding_exists(cfg, m->binding)) {
                config_error(c, q, "unknown binding \"%s\" (define it under \"bindings\")",
                          m->binding);
                free(m->binding);
                m->binding = NULL;
                continue;
            }
            g->member_count++;
        }
    }
}

void config_parse_binding_rules(struct config_ctx *c, struct vipmta_config *cfg, const json_t *v)
{
    static const char *const keys[] = {"sender_domain", "recipient_domain", "header",
                                       "auth_user", "binding_group", "binding", NULL};
    if (!v)
        return;
    if (!json_is_array(v)) {
        config_error(c, "binding_rules", "expected a list of rules, found %s", config_type_name(v));
        return;
    }
    cfg->binding_rules = calloc(json_array_size(v) + 1, sizeof(*cfg->binding_rules));
    size_t i;
    json_t *r;
    json_array_foreach(v, i, r) {
        char p[CONFIG_PATH_MAX];
        config_path_index(p, "binding_rules", i);
        if (!json_is_object(r)) {
            config_error(c, p, "expected an object, found %s", config_type_name(r));
            continue;
        }
        if (config_check_keys(c, r, p, keys) != 0)
            continue;
        struct config_binding_rule *rule = &cfg->binding_rules[cfg->binding_rule_count];
        int matchers = !!json_object_get(r, "sender_domain") +
                       !!json_object_get(r, "recipient_domain") + !!json_object_get(r, "header") +
                       !!json_object_get(r, "auth_user");
        int targets = !!json_object_get(r, "binding_group") + !!json_object_get(r, "binding");
        if (matchers != 1) {
            config_error(c, p, "a rule needs exactly one of \"sender_domain\", \"recipient_domain\", "
                      "\"header\", \"auth_user\"");
            continue;
        }
        char *header = NULL;
        if (json_object_get(r, "header")) {
            rule->kind = RULE_HEADER;
            config_get_string(c, r, "header", p, &header);
            if (header && strcasecmp(header, "X-Binding") != 0) {
                char q[CONFIG_PATH_MAX];
                config_path_key(q, p, "header");
                config_error(c, q, "only \"X-Binding\" is supported, found \"%s\"", header);
            }
            free(header);
            if (targets) {
                config_error(c, p, "a header rule takes no target: the header's value names the "
                          "binding or group");
                continue;
            }
        } else {
            rule->kind = json_object_get(r, "sender_domain")      ? RULE_SENDER_DOMAIN
                         : json_object_get(r, "recipient_domain") ? RULE_RECIPIENT_DOMAIN
                                                                  : RULE_AUTH_USER;
            const char *mkey = rule->kind == RULE_SENDER_DOMAIN      ? "sender_domain"
                               : rule->kind == RULE_RECIPIENT_DOMAIN ? "recipient_domain"
                                                                     : "auth_user";
            config_get_string(c, r, mkey, p, &rule->match);
            if (rule->kind == RULE_AUTH_USER) {
                if (rule->match && !*rule->match) {
                    char q[CONFIG_PATH_MAX];
                    config_path_key(q, p, mkey);
                    config_error(c, q, "expected a user name of the credentials file, or \"*\" "
                              "for any authenticated client, found an empty string");
                }
            } else if (rule->match && !config_domain_pattern_ok(rule->match)) {
                char q[CONFIG_PATH_MAX];
                config_path_key(q, p, mkey);
                config_error(c, q, "\"%s\" is not a domain pattern (\"example.com\", "
                          "\"*.example.com\" or \"*\")", rule->match);
            }
            if (rule->kind != RULE_AUTH_USER)
                config_lower(rule->match);
            if (targets != 1) {
                config_error(c, p, "a rule needs exactly one of \"binding_group\", \"binding\"");
                free(rule->match);
                rule->match = NULL;
                continue;
            }
            config_get_string(c, r, "binding_group", p, &rule->binding_group);
            config_get_string(c, r, "binding", p, &rule->binding);
            char q[CONFIG_PATH_MAX];
            if (rule->binding_group && !config_group_exists(cfg, rule->binding_group)) {
                config_path_key(q, p, "binding_group");
                config_error(c, q, "unknown binding group \"%s\" (define it under \"binding_groups\")",
                          rule->binding_group);
            }
            if (rule->binding && !config_binding_exists(cfg, rule->binding)) {
                config_path_key(q, p, "binding");
                config_error(c, q, "unknown binding \"%s\" (define it under \"bindings\")",
                          rule->binding);
            }
        }
        cfg->binding_rule_count++;
    }
}

void config_check_default_group(struct config_ctx *c, struct vipmta_config *cfg)
{
    if (cfg->default_binding_group && !config_group_exists(cfg, cfg->default_binding_group))
        config_error(c, "default_binding_group", "unknown binding group \"%s\" (define it under "
                  "\"binding_groups\")", cfg->default_binding_group);
}

static void config_parse_limits(struct config_ctx *c, const json_t *o, const char *p,
                             struct config_domain *d)
{
    static const char *const keys[] = {"max_connections_per_binding", "max_connections",
                                       "messages_per_connection", "connect_timeout",
                                       "command_timeout", "data_timeout", "retry_schedule",
                                       "max_queue_lifetime", "veto_retry", "tls", NULL};
    struct config_domain_limits *l = &d->limits;
    unsigned long long v;

    config_check_keys(c, o, p, keys);
#define CFG_LIMIT(key, min, max)                                  \
    do {                                                          \
        v = l->key;                                               \
        if (config_get_uint(c, o, #key, p, min, max, &v) == 0)       \
            l->key = (unsigned)v;                                 \
    } while (0)
    CFG_LIMIT(max_connections_per_binding, 1, 100000);
    CFG_LIMIT(max_connections, 0, 1000000);
    CFG_LIMIT(messages_per_connection, 1, 1000000);
    CFG_LIMIT(connect_timeout, 1, 3600);
    CFG_LIMIT(command_timeout, 1, 3600);
    CFG_LIMIT(data_timeout, 1, 7200);
    CFG_LIMIT(max_queue_lifetime, 1, 365u * 86400u);
    CFG_LIMIT(veto_retry, 1, 3600);
#undef CFG_LIMIT
    enum config_tls_policy policy = l->tls;
    if (config_parse_tls_policy(c, o, p, &policy) == 0 && policy != CONFIG_TLS_POLICY_UNSET)
        l->tls = policy;
    json_t *rs = json_object_get(o, "retry_schedule");
    if (!rs)
        return;
    char q[CONFIG_PATH_MAX];
    config_path_key(q, p, "retry_schedule");
    if (!json_is_array(rs) || json_array_size(rs) == 0) {
        config_error(c, q, "expected a non-empty list of seconds, found %s", config_type_name(rs));
        return;
    }
    unsigned *sched = calloc(json_array_size(rs), sizeof(*sched));
    size_t i;
    json_t *item;
    json_array_foreach(rs, i, item) {
        char e[CONFIG_PATH_MAX];
        config_path_index(e, q, i);
        if (!json_is_integer(item) || json_integer_value(item) < 1 ||
            json_integer_value(item) > 30 * 86400) {
            if (json_is_integer(item))
                config_error(c, e, "expected seconds from 1 to 2592000, found %" JSON_INTEGER_FORMAT,
                          json_integer_value(item));
            else
                config_error(c, e, "expected seconds from 1 to 2592000, found %s",
                          config_type_name(item));
            continue;
        }
        sched[i] = (unsigned)json_integer_value(item);
    }
    free(d->retry_schedule);
    d->retry_schedule = sched;
    l->retry_schedule = sched;
    l->retry_count = (unsigned)json_array_size(rs);
}

static void config_domain_defaults(struct config_domain *d)
{
    d->name = strdup("*");
    d->limits = (struct config_domain_limits){
        .max_connections_per_binding = 32,
        .max_connections = 0,
        .messages_per_connection = 100,
        .connect_timeout = 60,
        .command_timeout = 300,
        .data_timeout = 600,
        .retry_schedule = default_retry,
        .retry_count = sizeof(default_retry) / sizeof(default_retry[0]),
        .max_queue_lifetime = 432000,
        .veto_retry = 5,
        .tls = CONFIG_TLS_POLICY_OPPORTUNISTIC,
    };
}

void config_parse_domains(struct config_ctx *c, struct vipmta_config *cfg, const json_t *v)
{
    size_t n = json_is_object(v) ? json_object_size(v) : 0;
    cfg->domains = calloc(n + 1, sizeof(*cfg->domains));
    config_domain_defaults(&cfg->domains[0]);
    cfg->domain_count = 1;
    if (!v)
        return;
    if (!json_is_object(v)) {
        config_error(c, "domains", "expected an object of domain: { limits }, found %s",
                  config_type_name(v));
        return;
    }
    json_t *star = json_object_get(v, "*");
    if (star) {
        char p[CONFIG_PATH_MAX];
        config_path_key(p, "domains", "*");
        if (json_is_object(star))
            config_parse_limits(c, star, p, &cfg->domains[0]);
        else
            config_error(c, p, "expected an object, found %s", config_type_name(star));
    }
    const char *name;
    json_t *o;
    json_object_foreach((json_t *)v, name, o) {
        if (strcmp(name, "*") == 0)
            continue;
        char p[CONFIG_PATH_MAX];
        config_path_key(p, "domains", name);
        if (!json_is_object(o)) {
            config_error(c, p, "expected an object, found %s", config_type_name(o));
            continue;
        }
        char *lower = NULL;
        if (config_domain_key(c, "domains", name, p, &cfg->domains[0].name, sizeof(cfg->domains[0]),
                           cfg->domain_count, &lower) != 0)
            continue;
        struct config_domain *d = &cfg->domains[cfg->domain_count++];
        d->name = lower;
        d->limits = cfg->domains[0].limits; /* inherit "*" */
        config_parse_limits(c, o, p, d);
    }
}

/* "host:port" or "[v6]:port"; 0 when valid. */
int config_parse_hostport(const char *s, char *host, size_t hostlen, unsigned *port)
{
    const char *colon;
    size_t hlen;

    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -1;
        hlen = (size_t)(close - s - 1);
        if (hlen == 0 || hlen >= hostlen)
            return -1;
        memcpy(host, s + 1, hlen);
        host[hlen] = '\0';
        unsigned char buf[16];
        if (inet_pton(AF_INET6, host, buf) != 1)
            return -1;
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -1;
        hlen = (size_t)(colon - s);
        if (hlen == 0 || hlen >= hostlen || memchr(s, ':', hlen))
            return -1;
        memcpy(host, s, hlen);
        host[hlen] = '\0';
        if (!config_hostname_ok(host))
            return -1;
    }
    char *end;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (colon[1] < '0' || colon[1] > '9' || *end || p < 1 || p > 65535)
        return -1;
    *port = (unsigned)p;
    return 0;
}

void config_parse_routes(struct config_ctx *c, struct vipmta_config *cfg, const json_t *v)
{
    const char *name;
    json_t *r;

    if (!v)
        return;
    if (!json_is_object(v)) {
        config_error(c, "routes", "expected an object of domain: \"host:port\" or [\"host:port\", ...], "
                  "found %s", config_type_name(v));
        return;
    }
    cfg->routes = calloc(json_object_size(v) + 1, sizeof(*cfg->routes));
    json_object_foreach((json_t *)v, name, r) {
        static const char *const keys[] = {"hosts", "tls", "auth", NULL};
        char p[CONFIG_PATH_MAX];
        config_path_key(p, "routes", name);
        const json_t *obj = json_is_object(r) ? r : NULL;
        char hp[CONFIG_PATH_MAX];
        snprintf(hp, sizeof(hp), "%s", p);
        if (obj) {
            /* {"hosts": ..., "tls": ..., "auth": {...}} */
            config_check_keys(c, obj, p, keys);
            r = json_object_get(obj, "hosts");
            config_path_key(hp, p, "hosts");
            if (!r) {
                config_error(c, p, "missing \"hosts\" (\"host:port\" or a list of them)");
                continue;
            }
        }
        size_t n = json_is_array(r) ? json_array_size(r) : json_is_string(r) ? 1 : 0;
        if (n == 0) {
            config_error(c, hp, "expected \"host:port\" or a non-empty list of them%s, found %s",
                      obj ? "" : " (or {\"hosts\", \"tls\", \"auth\"})", config_type_name(r));
            continue;
        }
        char *lower = NULL;
        if (config_domain_key(c, "routes", name, p, &cfg->routes[0].domain, sizeof(cfg->routes[0]),
                           cfg->route_count, &lower) != 0)
            continue;
        struct config_route *route = &cfg->routes[cfg->route_count++];
        route->domain = lower;
        route->tls = CONFIG_TLS_POLICY_UNSET;
        if (obj) {
            config_parse_tls_policy(c, obj, p, &route->tls);
            config_parse_route_auth(c, obj, p, route);
        }
        route->hosts = calloc(n, sizeof(char *));
        for (size_t i = 0; i < n; i++) {
            json_t *item = json_is_array(r) ? json_array_get(r, i) : r;
            char q[CONFIG_PATH_MAX], host[256];
            unsigned port;
            if (json_is_array(r))
                config_path_index(q, hp, i);
            else
                snprintf(q, sizeof(q), "%s", hp);
            char *s = NULL;
            if (config_want_string(c, item, q, &s) != 0)
                continue;
            if (config_parse_hostport(s, host, sizeof(host), &port) != 0) {
                config_error(c, q, "\"%s\" is not host:port (a port from 1 to 65535 is required; "
                          "IPv6 as [::1]:25)", s);
                free(s);
                continue;
            }
            route->hosts[route->host_count++] = s;
        }
    }
}
