/* plugin_api.c: the core services modules call: identity, private data, kept options, option errors, scopes, logging. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "log/log.h"
#include "plugin_internal.h"
#include "plugin_scope.h"

const char *vipmta_module_name(const vipmta_module_ctx *m)
{
    if (!m)
        return "(no module)";
    return m->name ? m->name : m->config_name;
}

const char *vipmta_module_instance(const vipmta_module_ctx *m)
{
    return m ? m->instance : NULL;
}

int vipmta_module_index(const vipmta_module_ctx *m)
{
    return m ? (int)m->index : -1;
}

void vipmta_module_set_data(vipmta_module_ctx *m, void *data)
{
    if (m)
        m->data = data;
}

void *vipmta_module_get_data(const vipmta_module_ctx *m)
{
    return m ? m->data : NULL;
}

int vipmta_module_keep_config(vipmta_module_ctx *m, void *config, void (*free_config)(void *))
{
    if (!m || !config)
        return -1;
    void *old = m->config;
    void (*old_free)(void *) = m->free_config;
    m->config = config;
    m->free_config = free_config;
    if (old && old_free)
        old_free(old);
    return 0;
}

void *vipmta_module_config(const vipmta_module_ctx *m)
{
    return m ? m->config : NULL;
}

void plugin_api_free_config(struct vipmta_module_ctx *m)
{
    if (m->config && m->free_config)
        m->free_config(m->config);
    m->config = NULL;
    m->free_config = NULL;
}

/* "modules[I].options", "modules[I].bindings.vip1", then ".PATH" or "[N]..." */
static void plugin_api_option_prefix(const vipmta_module_ctx *m, const char *path, char *buf,
                                     size_t size)
{
    const char *scope = m->error_scope ? m->error_scope : "options";
    if (!path || !*path)
        snprintf(buf, size, "modules[%zu].%s", m->index, scope);
    else
        snprintf(buf, size, "modules[%zu].%s%s%s", m->index, scope, path[0] == '[' ? "" : ".",
                 path);
}

void vipmta_module_error(vipmta_module_ctx *m, const char *path, const char *fmt, ...)
{
    char prefix[1100];
    char *msg = NULL;
    va_list ap;

    if (!m || !fmt)
        return;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    if (m->in_init && !m->error_scope && (!path || !*path)) /* not about an option */
        snprintf(prefix, sizeof(prefix), "modules[%zu] (\"%s\"): init", m->index,
                 m->config_name);
    else
        plugin_api_option_prefix(m, path, prefix, sizeof(prefix));
    m->reported++;
    if (m->errs)
        config_errors_add(m->errs, "%s: %s", prefix,
                          msg ? msg : "(out of memory formatting the error)");
    else /* outside configure and init (reload, hooks): the log is the only place to say it */
        log_write(m->label, VIPMTA_LOG_ERROR, "%s: %s", prefix,
                  msg ? msg : "(out of memory formatting the error)");
    free(msg);
}

/* ---- scopes ---- */

static void plugin_api_set_scope(vipmta_module_ctx *m, const char *where)
{
    m->error_scope = where && strcmp(where, "options") != 0 ? where : NULL;
}

int vipmta_module_foreach_scope(vipmta_module_ctx *m, vipmta_scope_fn fn, void *arg)
{
    if (!m || !fn)
        return 0;
    struct plugin_scope_source src = {m->entry.options, m->entry.bindings, m->entry.domains,
                                      m->entry.binding_domains};
    const char *kept = m->error_scope;
    int r = plugin_scope_walk(m, &src, plugin_api_set_scope, fn, arg);
    m->error_scope = kept;
    return r;
}

void plugin_entry_set(struct plugin_entry *e, const struct config_module *cm)
{
    struct plugin_entry old = *e;
    e->options = json_incref(cm->options);
    e->bindings = json_incref(cm->bindings);
    e->domains = json_incref(cm->domains);
    e->binding_domains = json_incref(cm->binding_domains);
    plugin_entry_clear(&old);
}

void plugin_entry_clear(struct plugin_entry *e)
{
    json_decref(e->options);
    json_decref(e->bindings);
    json_decref(e->domains);
    json_decref(e->binding_domains);
    memset(e, 0, sizeof(*e));
}

static int plugin_entry_same(const json_t *a, const json_t *b)
{
    return (!a && !b) || (a && b && json_equal((json_t *)a, (json_t *)b));
}

int plugin_entry_equal(const struct plugin_entry *a, const struct plugin_entry *b)
{
    return plugin_entry_same(a->options, b->options) &&
           plugin_entry_same(a->bindings, b->bindings) &&
           plugin_entry_same(a->domains, b->domains) &&
           plugin_entry_same(a->binding_domains, b->binding_domains);
}

/* ---- logging ---- */

/* A vipmta level on Momentum's scale (0 debug .. 5 critical), which
 * debug_level uses. */
static int plugin_api_momentum_level(enum vipmta_log_level level)
{
    static const int scale[] = {4, 3, 2, 1, 0}; /* error, warning, notice, info, debug */
    return (unsigned)level < sizeof(scale) / sizeof(scale[0]) ? scale[level] : 0;
}

void plugin_api_logv(const struct vipmta_module_ctx *m, enum vipmta_log_level level,
                     const char *fmt, va_list ap)
{
    if (m && m->debug_level >= 0) {
        if (plugin_api_momentum_level(level) < m->debug_level)
            return;
        log_emitv(m->label, level, fmt, ap); /* its own level, whatever the log's */
        return;
    }
    log_writev(m ? m->label : "(no module)", level, fmt, ap);
}

void vipmta_module_log(const struct vipmta_module_ctx *m, enum vipmta_log_level level,
                       const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    plugin_api_logv(m, level, fmt, ap);
    va_end(ap);
}

int vipmta_module_log_enabled(const struct vipmta_module_ctx *m, enum vipmta_log_level level)
{
    if (m && m->debug_level >= 0)
        return plugin_api_momentum_level(level) >= m->debug_level;
    return vipmta_log_enabled(level);
}
