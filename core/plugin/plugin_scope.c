/* plugin_scope.c: walks a module entry's option objects scope by scope, setting where errors point for each. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "plugin_scope.h"

#define PLUGIN_SCOPE_WHERE_MAX 600

/* One visit: the path below the entry while fn runs, then back. */
static int plugin_scope_visit(vipmta_module_ctx *m, plugin_scope_where_fn where,
                              const char *path, const vipmta_scope *s, vipmta_scope_fn fn,
                              void *arg)
{
    where(m, path);
    int r = fn(m, s, arg);
    where(m, NULL);
    return r;
}

/* The slot of a binding named in the entry (the config checked it exists). */
static ec_binding_slot plugin_scope_slot(const char *binding)
{
    const vipmta_binding *b = vipmta_binding_by_name(binding);
    return b ? b->slot : EC_BINDING_SLOT_UNBOUND;
}

/* `domains` of one level: each {"DOMAIN": {...}}, in lower case. */
static int plugin_scope_domains(vipmta_module_ctx *m, const json_t *domains, const char *prefix,
                                vipmta_scope *s, plugin_scope_where_fn where, vipmta_scope_fn fn,
                                void *arg)
{
    const char *key;
    json_t *v;
    int sum = 0;
    json_object_foreach((json_t *)domains, key, v) {
        char domain[256], path[PLUGIN_SCOPE_WHERE_MAX];
        size_t n = 0;
        for (; key[n] && n + 1 < sizeof(domain); n++)
            domain[n] = (char)tolower((unsigned char)key[n]);
        domain[n] = '\0';
        snprintf(path, sizeof(path), "%s.%s", prefix, key);
        s->domain = domain;
        s->options = (const vipmta_value *)v;
        int r = plugin_scope_visit(m, where, path, s, fn, arg);
        if (r < 0)
            return -1;
        sum += r;
    }
    return sum;
}

int plugin_scope_walk(vipmta_module_ctx *m, const struct plugin_scope_source *src,
                      plugin_scope_where_fn where, vipmta_scope_fn fn, void *arg)
{
    vipmta_scope s = {VIPMTA_SCOPE_GLOBAL, EC_BINDING_SLOT_UNBOUND, NULL, NULL,
                      (const vipmta_value *)src->options};
    const char *key;
    json_t *v;
    int sum = plugin_scope_visit(m, where, "options", &s, fn, arg), r = 0;
    if (sum < 0)
        return -1;
    s.kind = VIPMTA_SCOPE_BINDING;
    json_object_foreach((json_t *)src->bindings, key, v) {
        char path[PLUGIN_SCOPE_WHERE_MAX];
        snprintf(path, sizeof(path), "bindings.%s", key);
        s.binding = key;
        s.slot = plugin_scope_slot(key);
        s.options = (const vipmta_value *)v;
        if ((r = plugin_scope_visit(m, where, path, &s, fn, arg)) < 0)
            return -1;
        sum += r;
    }
    s.kind = VIPMTA_SCOPE_DOMAIN;
    s.binding = NULL;
    s.slot = EC_BINDING_SLOT_UNBOUND;
    if ((r = plugin_scope_domains(m, src->domains, "domains", &s, where, fn, arg)) < 0)
        return -1;
    sum += r;
    s.kind = VIPMTA_SCOPE_BINDING_DOMAIN;
    json_object_foreach((json_t *)src->binding_domains, key, v) {
        char prefix[PLUGIN_SCOPE_WHERE_MAX];
        snprintf(prefix, sizeof(prefix), "binding_domains.%s", key);
        s.binding = key;
        s.slot = plugin_scope_slot(key);
        if ((r = plugin_scope_domains(m, v, prefix, &s, where, fn, arg)) < 0)
            return -1;
        sum += r;
    }
    return sum;
}
