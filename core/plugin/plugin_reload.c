/* plugin_reload.c: module side of a configuration reload: validate new options, reload, load newly enabled modules. */
#include "plugin_reload.h"
#include "log/log.h"
#include "plugin_internal.h"
#include "plugin_loader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct reload_entry {
    struct vipmta_module_ctx *m;   /* a loaded module */
    const json_t *old_options;     /* to undo */
    const json_t *new_options;
    size_t new_index;              /* its position in the new config (for messages) */
    int done;                      /* reload() succeeded */
};

struct added_entry {
    struct vipmta_module_ctx *m;   /* opened and configured, not loaded yet */
    int adopted;
};

struct plugin_reload_plan {
    struct reload_entry *reloads;  /* in chain (load) order */
    size_t reload_count;
    struct added_entry *added;     /* in config order */
    size_t added_count;
};

static const struct config_module *plugin_reload_find_enabled(const struct vipmta_config *cfg,
                                                const char *config_name)
{
    for (size_t i = 0; cfg && i < cfg->module_count; i++)
        if (cfg->modules[i].enabled && strcmp(cfg->modules[i].name, config_name) == 0)
            return &cfg->modules[i];
    return NULL;
}

static struct vipmta_module_ctx *plugin_reload_find_loaded(const char *config_name)
{
    struct vipmta_module_ctx *m;
    for (size_t i = 0; (m = plugin_loader_at(i)); i++)
        if (strcmp(m->config_name, config_name) == 0)
            return m;
    return NULL;
}

/* Runs configure() on a throw-away handle: the module's documented contract
 * (configure has no side effects beyond memory, `vipmta -t` relies on it)
 * makes this a validation that leaves the running instance alone. */
static int plugin_reload_validate_options(struct vipmta_module_ctx *m, const struct config_module *cm,
                            struct config_errors *errs)
{
    struct vipmta_module_ctx tmp;

    if (!m->desc->configure)
        return 0;
    memset(&tmp, 0, sizeof(tmp));
    tmp.config_name = m->config_name;
    tmp.name = m->name;
    tmp.index = cm->index;
    tmp.file = m->file;
    tmp.desc = m->desc;
    tmp.errs = errs;
    int rc = m->desc->configure(&tmp, cm->options);
    if (rc != 0 && tmp.reported == 0)
        config_errors_add(errs, "modules[%zu] (\"%s\"): the new options were refused (configure "
                   "returned %d)", cm->index, cm->name, rc);
    tmp.errs = NULL;
    if (m->desc->shutdown)
        m->desc->shutdown(&tmp);
    return rc != 0 || tmp.reported != 0 ? -1 : 0;
}

struct plugin_reload_plan *plugin_reload_prepare(const struct vipmta_config *old,
                                                 const struct vipmta_config *cfg,
                                                 struct config_errors *errs,
                                                 struct config_errors *warnings)
{
    struct plugin_reload_plan *p = calloc(1, sizeof(*p));
    size_t loaded = plugin_loader_count();
    int rc = 0;

    if (!p || !(p->reloads = calloc(loaded ? loaded : 1, sizeof(*p->reloads))) ||
        !(p->added = calloc(cfg->module_count ? cfg->module_count : 1, sizeof(*p->added)))) {
        if (p)
            free(p->reloads);
        free(p);
        config_errors_add(errs, "modules: out of memory");
        return NULL;
    }
    /* loaded modules, in chain order */
    for (size_t i = 0; i < loaded; i++) {
        struct vipmta_module_ctx *m = plugin_loader_at(i);
        const struct config_module *cm = plugin_reload_find_enabled(cfg, m->config_name);
        const struct config_module *was = plugin_reload_find_enabled(old, m->config_name);
        if (!cm) {
            config_errors_add(warnings, "modules: \"%s\" is no longer enabled: it stays loaded, with "
                       "its current options, until a restart (a loaded module is not unloaded "
                       "live)", m->config_name);
            continue;
        }
        if (was && json_equal(was->options, cm->options))
            continue;
        if (!m->desc->reload) {
            config_errors_add(warnings, "modules[%zu].options (\"%s\") changed: the module has no "
                       "reload callback, takes effect after a restart", cm->index,
                       m->config_name);
            continue;
        }
        if (plugin_reload_validate_options(m, cm, errs) != 0) {
            rc = -1;
            continue;
        }
        struct reload_entry *e = &p->reloads[p->reload_count++];
        e->m = m;
        e->old_options = was ? was->options : NULL;
        e->new_options = cm->options;
        e->new_index = cm->index;
    }
    /* newly enabled modules, in config order */
    for (size_t i = 0; i < cfg->module_count; i++) {
        const struct config_module *cm = &cfg->modules[i];
        if (!cm->enabled || plugin_reload_find_loaded(cm->name))
            continue;
        struct vipmta_module_ctx *m = plugin_loader_open_one(cfg, cm, errs);
        if (!m) {
            rc = -1;
            continue;
        }
        for (size_t j = 0; j < p->added_count; j++) {
            if (strcmp(p->added[j].m->name, m->name) == 0) {
                config_errors_add(errs, "modules[%zu] (\"%s\"): module name \"%s\" is enabled twice: "
                           "enable each module once", cm->index, cm->name, m->name);
                plugin_loader_discard(m);
                m = NULL;
                rc = -1;
                break;
            }
        }
        if (m)
            p->added[p->added_count++].m = m;
    }
    /* the order of loaded modules in the chain does not change live */
    size_t prev = 0;
    int reordered = 0;
    for (size_t i = 0; i < loaded; i++) {
        const struct config_module *cm = plugin_reload_find_enabled(cfg, plugin_loader_at(i)->config_name);
        if (!cm)
            continue;
        if (cm->index < prev)
            reordered = 1;
        prev = cm->index;
    }
    if (reordered)
        config_errors_add(warnings, "modules: the order of loaded modules changed: their hooks keep "
                   "the current order until a restart");
    if (rc != 0) {
        plugin_reload_plan_free(p);
        return NULL;
    }
    return p;
}

static int plugin_reload_reload_one(struct vipmta_module_ctx *m, const json_t *options, size_t index,
                      struct config_errors *errs)
{
    size_t kept = m->index;
    m->index = index; /* messages name the entry of the config being applied */
    m->errs = errs;
    m->reported = 0;
    int rc = m->desc->reload(m, options);
    m->errs = NULL;
    m->index = kept;
    if (rc != 0 && m->reported == 0 && errs)
        config_errors_add(errs, "modules[%zu] (\"%s\"): reload failed (returned %d)", index,
                   m->config_name, rc);
    return rc != 0 || m->reported != 0 ? -1 : 0;
}

/* Undoes what apply did, newest first. */
static void plugin_reload_undo(struct plugin_reload_plan *p)
{
    for (size_t i = p->added_count; i-- > 0;) {
        if (!p->added[i].adopted)
            continue;
        plugin_loader_remove(p->added[i].m);
        p->added[i].m = NULL;
        p->added[i].adopted = 0;
    }
    for (size_t i = p->reload_count; i-- > 0;) {
        struct reload_entry *e = &p->reloads[i];
        if (!e->done)
            continue;
        e->done = 0;
        if (!e->old_options || plugin_reload_reload_one(e->m, e->old_options, e->m->index, NULL) != 0)
            log_write("core", VIPMTA_LOG_ERROR, "reload: module %s: cannot restore its previous "
                      "options (see above); it runs with the new ones", e->m->name);
    }
}

int plugin_reload_apply(struct plugin_reload_plan *p, struct config_errors *errs)
{
    for (size_t i = 0; i < p->reload_count; i++) {
        struct reload_entry *e = &p->reloads[i];
        if (plugin_reload_reload_one(e->m, e->new_options, e->new_index, errs) != 0) {
            plugin_reload_undo(p);
            return -1;
        }
        e->done = 1;
    }
    for (size_t i = 0; i < p->added_count; i++) {
        struct vipmta_module_ctx *m = p->added[i].m;
        /* private data on domain records is keyed by the index: a module
         * already loaded keeps its own, so a new one must not take it */
        size_t top = 0;
        int clash = 0;
        struct vipmta_module_ctx *o;
        for (size_t j = 0; (o = plugin_loader_at(j)); j++) {
            if (o->index == m->index)
                clash = 1;
            if (o->index + 1 > top)
                top = o->index + 1;
        }
        for (size_t j = 0; j < p->added_count; j++)
            if (p->added[j].m && p->added[j].m->index + 1 > top)
                top = p->added[j].m->index + 1;
        if (clash)
            m->index = top;
        if (plugin_loader_adopt(m, errs) != 0) {
            plugin_reload_undo(p);
            return -1;
        }
        p->added[i].adopted = 1;
        log_write("core", VIPMTA_LOG_INFO, "reload: module %s %s loaded from %s", m->name,
                  m->desc->version ? m->desc->version : "?", m->file);
    }
    return 0;
}

void plugin_reload_describe(const struct plugin_reload_plan *p, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < p->added_count && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s+%s", i ? " " : "modules ",
                                p->added[i].m ? p->added[i].m->name : "?");
    for (size_t i = 0; i < p->reload_count && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%s",
                                i ? ", " : len ? ", options reloaded: " : "options reloaded: ",
                                p->reloads[i].m->name);
}

void plugin_reload_plan_free(struct plugin_reload_plan *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->added_count; i++)
        if (!p->added[i].adopted)
            plugin_loader_discard(p->added[i].m);
    free(p->added);
    free(p->reloads);
    free(p);
}
