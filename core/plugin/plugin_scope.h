/* plugin_scope.h: walks a module entry's option objects scope by scope (global, per binding, per domain, per binding x domain). */
#ifndef VIPMTA_CORE_PLUGIN_SCOPE_H
#define VIPMTA_CORE_PLUGIN_SCOPE_H

#include <jansson.h>
#include "vipmta_options.h"

/* The objects of one `modules` entry (each may be NULL). */
struct plugin_scope_source {
    const json_t *options;
    const json_t *bindings;         /* {"BINDING": {...}} */
    const json_t *domains;          /* {"DOMAIN": {...}} */
    const json_t *binding_domains;  /* {"BINDING": {"DOMAIN": {...}}} */
};

/* Sets where the instance's errors point while a scope is visited: the
 * path below the entry ("options", "bindings.vip1", "domains.example.com",
 * "binding_domains.vip1.example.com"); NULL when the walk is over. */
typedef void (*plugin_scope_where_fn)(vipmta_module_ctx *m, const char *where);

/* Calls fn for the global options and then every scoped object, in config
 * order (see vipmta_module_foreach_scope). Binding slots are looked up in the
 * binding table in force; domains are handed over in lower case. */
int plugin_scope_walk(vipmta_module_ctx *m, const struct plugin_scope_source *src,
                      plugin_scope_where_fn where, vipmta_scope_fn fn, void *arg);

#endif
