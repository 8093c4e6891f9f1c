/* config_modules.c: the `modules` list: each entry's name, instance, enabled, debug_level, options and its per-binding/per-domain scopes. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "config_internal.h"
#include "config_schema.h"

static const char *const config_module_keys[] = {
    "name", "instance", "enabled", "debug_level", "options", "bindings", "domains",
    "binding_domains", NULL};

/* Momentum's module debug levels, in order (their numbers are the index). */
static const char *const config_debug_levels[] = {"debug", "info",  "notice",
                                                  "warning", "error", "critical", NULL};

/* "PARENT.KEY" as module option paths are written (no quotes: domain names
 * read as they are, "modules[0].domains.example.com"). */
static void config_module_path(char *out, const char *parent, const char *key)
{
    int n = snprintf(out, CONFIG_PATH_MAX, "%s.%s", parent, key);
    if (n < 0 || n >= CONFIG_PATH_MAX)
        out[CONFIG_PATH_MAX - 1] = '\0';
}

/* "default, vip1, vip2" for the unknown-binding message. */
static void config_module_binding_list(const struct vipmta_config *cfg, char *out, size_t size)
{
    size_t used = (size_t)snprintf(out, size, "default");
    for (size_t i = 0; i < cfg->binding_count && used < size; i++)
        if (strcmp(cfg->bindings[i].name, "default") != 0)
            used += (size_t)snprintf(out + used, size - used, ", %s", cfg->bindings[i].name);
}

/* Every value of `obj` must be an object of options. */
static int config_module_want_object(struct config_ctx *c, const json_t *v, const char *path)
{
    if (json_is_object(v))
        return 0;
    config_error(c, path, "expected an object of options, found %s", config_type_name(v));
    return -1;
}

/* {"NAME": {options}} with binding names; `then` checks each value. */
static void config_module_bindings(struct config_ctx *c, const struct vipmta_config *cfg,
                                   const json_t *v, const char *path,
                                   void (*then)(struct config_ctx *, const json_t *, const char *))
{
    const char *key;
    json_t *item;
    if (!json_is_object(v)) {
        config_error(c, path, "expected an object mapping binding names to options, found %s",
                     config_type_name(v));
        return;
    }
    json_object_foreach((json_t *)v, key, item) {
        char p[CONFIG_PATH_MAX];
        config_module_path(p, path, key);
        if (!config_binding_exists(cfg, key)) {
            char known[400];
            config_module_binding_list(cfg, known, sizeof(known));
            config_error(c, p, "no binding named \"%s\" in the configuration (the bindings are: %s)",
                         key, known);
            continue;
        }
        then(c, item, p);
    }
}

static void config_module_options_object(struct config_ctx *c, const json_t *v, const char *path)
{
    config_module_want_object(c, v, path);
}

/* {"DOMAIN": {options}}: exact domain names, unique without regard to case. */
static void config_module_domains(struct config_ctx *c, const json_t *v, const char *path)
{
    const char *key;
    json_t *item;
    void *iter;
    if (!json_is_object(v)) {
        config_error(c, path, "expected an object mapping domain names to options, found %s",
                     config_type_name(v));
        return;
    }
    json_object_foreach((json_t *)v, key, item) {
        char p[CONFIG_PATH_MAX];
        config_module_path(p, path, key);
        if (!config_hostname_ok(key)) {
            config_error(c, p, "expected a domain name (exact names, no wildcards), found \"%s\"",
                         key);
            continue;
        }
        config_module_want_object(c, item, p);
        /* a later key equal but for case */
        for (iter = json_object_iter_next((json_t *)v, json_object_key_to_iter(key)); iter;
             iter = json_object_iter_next((json_t *)v, iter)) {
            if (strcasecmp(json_object_iter_key(iter), key) == 0) {
                char lower[256];
                snprintf(lower, sizeof(lower), "%s", key);
                config_lower(lower);
                config_error(c, path, "domain \"%s\" is listed more than once (names are "
                             "case-insensitive)", lower);
            }
        }
    }
}

/* debug_level: one of Momentum's levels, any case; -1 when absent. */
static int config_module_debug_level(struct config_ctx *c, const json_t *item, const char *path)
{
    const json_t *v = json_object_get(item, "debug_level");
    char p[CONFIG_PATH_MAX];
    if (!v)
        return -1;
    config_path_key(p, path, "debug_level");
    if (json_is_string(v))
        for (int i = 0; config_debug_levels[i]; i++)
            if (strcasecmp(json_string_value(v), config_debug_levels[i]) == 0)
                return i;
    config_error(c, p, "expected \"debug\", \"info\", \"notice\", \"warning\", \"error\" or "
                 "\"critical\", found %s%s%s",
                 json_is_string(v) ? "\"" : "", json_is_string(v) ? json_string_value(v)
                                                                  : config_type_name(v),
                 json_is_string(v) ? "\"" : "");
    return -1;
}

/* The scopes of one entry: bindings, domains, binding_domains. */
static void config_module_scopes(struct config_ctx *c, const struct vipmta_config *cfg,
                                 const json_t *item, const char *path, struct config_module *m)
{
    char p[CONFIG_PATH_MAX];
    json_t *v;
    if ((v = json_object_get(item, "bindings"))) {
        config_module_path(p, path, "bindings");
        config_module_bindings(c, cfg, v, p, config_module_options_object);
        m->bindings = json_incref(v);
    }
    if ((v = json_object_get(item, "domains"))) {
        config_module_path(p, path, "domains");
        config_module_domains(c, v, p);
        m->domains = json_incref(v);
    }
    if ((v = json_object_get(item, "binding_domains"))) {
        config_module_path(p, path, "binding_domains");
        config_module_bindings(c, cfg, v, p, config_module_domains);
        m->binding_domains = json_incref(v);
    }
}

/* Instance names: letters, digits, '_', '-' and '.' (they appear in log
 * lines as NAME:INSTANCE). */
static int config_module_instance_ok(const char *s)
{
    if (!*s || strlen(s) > 64)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.')
            return 0;
    return 1;
}

static int config_module_same(const struct config_module *a, const struct config_module *b)
{
    if (strcmp(a->name, b->name) != 0)
        return 0;
    if (!a->instance || !b->instance)
        return a->instance == b->instance;
    return strcmp(a->instance, b->instance) == 0;
}

static void config_module_entry(struct config_ctx *c, struct vipmta_config *cfg,
                                const json_t *item, size_t i)
{
    char p[CONFIG_PATH_MAX], q[CONFIG_PATH_MAX];
    config_path_index(p, "modules", i);
    if (!json_is_object(item)) {
        config_error(c, p, "expected {\"name\", \"enabled\", \"options\"}, found %s",
                     config_type_name(item));
        return;
    }
    config_check_keys(c, item, p, config_module_keys);
    struct config_module *m = &cfg->modules[cfg->module_count];
    memset(m, 0, sizeof(*m));
    m->enabled = 1;
    m->index = i;
    int bad_name = config_get_string(c, item, "name", p, &m->name) != 0;
    config_get_string(c, item, "instance", p, &m->instance);
    if (m->instance && !config_module_instance_ok(m->instance)) {
        config_path_key(q, p, "instance");
        config_error(c, q, "expected a name of letters, digits, '_', '-' and '.' (at most 64), "
                     "found \"%s\"", m->instance);
    }
    config_get_bool(c, item, "enabled", p, &m->enabled);
    m->debug_level = config_module_debug_level(c, item, p);
    json_t *opts = json_object_get(item, "options");
    if (opts && !json_is_object(opts)) {
        config_path_key(q, p, "options");
        config_error(c, q, "expected an object, found %s", config_type_name(opts));
        opts = NULL;
    }
    m->options = opts ? json_incref(opts) : json_object();
    config_module_scopes(c, cfg, item, p, m);
    if (!m->name || !*m->name) {
        config_path_key(q, p, "name");
        if (m->name)
            config_error(c, q, "expected the module's file name without .so (\"netacl\"), "
                         "found an empty string");
        else if (!bad_name)
            config_error(c, p, "missing \"name\" (the module's file name without .so)");
        config_free_module(m);
        return;
    }
    for (size_t j = 0; j < cfg->module_count; j++) {
        if (!config_module_same(&cfg->modules[j], m))
            continue;
        if (m->instance)
            config_error(c, p, "module \"%s\" instance \"%s\" is listed twice (first as "
                         "modules[%zu]): give each instance its own \"instance\" name",
                         m->name, m->instance, cfg->modules[j].index);
        else
            config_error(c, p, "module \"%s\" is listed twice (first as modules[%zu])%s",
                         m->name, cfg->modules[j].index,
                         ": to run it twice, give each entry an \"instance\" name");
    }
    cfg->module_count++;
}

void config_parse_modules(struct config_ctx *c, struct vipmta_config *cfg, const json_t *v)
{
    size_t i;
    json_t *item;
    if (v && !json_is_array(v))
        config_error(c, "modules", "expected a list of {\"name\", \"enabled\", \"options\"}, "
                     "found %s", config_type_name(v));
    else if (v && !(cfg->modules = calloc(json_array_size(v) + 1, sizeof(*cfg->modules))))
        config_error(c, "modules", "out of memory");
    else if (v)
        json_array_foreach(v, i, item)
            config_module_entry(c, cfg, item, i);
}

void config_free_module(struct config_module *m)
{
    free(m->name);
    free(m->instance);
    json_decref(m->options);
    json_decref(m->bindings);
    json_decref(m->domains);
    json_decref(m->binding_domains);
    memset(m, 0, sizeof(*m));
}

void config_free_modules(struct vipmta_config *cfg)
{
    for (size_t i = 0; i < cfg->module_count; i++)
        config_free_module(&cfg->modules[i]);
    free(cfg->modules);
}
