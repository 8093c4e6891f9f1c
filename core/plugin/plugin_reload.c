/* plugin_reload.c: module side of a configuration reload: validate new options, reload, load newly enabled modules. */
#include "plugin_reload.h"
#include "log/log.h"
#include "plugin_hooks.h"
#include "plugin_internal.h"
#include "plugin_loader.h"
#include "plugin_momentum.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct reload_entry {
    struct vipmta_module_ctx *m;   /* a loaded instance */
    struct plugin_entry old;       /* its entry before, to undo */
    const struct config_module *cm; /* its entry in the new config */
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

static int plugin_reload_same_instance(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static const struct config_module *plugin_reload_find_enabled(const struct vipmta_config *cfg,
                                                              const char *config_name,
                                                              const char *instance)
{
    for (size_t i = 0; cfg && i < cfg->module_count; i++)
        if (cfg->modules[i].enabled && strcmp(cfg->modules[i].name, config_name) == 0 &&
            plugin_reload_same_instance(cfg->modules[i].instance, instance))
            return &cfg->modules[i];
    return NULL;
}

static struct vipmta_module_ctx *plugin_reload_find_loaded(const struct config_module *cm)
{
    struct vipmta_module_ctx *m;
    for (size_t i = 0; (m = plugin_loader_at(i)); i++)
        if (strcmp(m->config_name, cm->name) == 0 &&
            plugin_reload_same_instance(m->instance, cm->instance))
            return m;
    return NULL;
}

/* The binding slots changed (a binding added, removed or moved): scoped
 * options name bindings, so modules holding some are reloaded. */
static int plugin_reload_bindings_moved(const struct vipmta_config *old,
                                        const struct vipmta_config *cfg)
{
    if (!old || old->binding_count != cfg->binding_count)
        return 1;
    for (size_t i = 0; i < cfg->binding_count; i++)
        if (strcmp(old->bindings[i].name, cfg->bindings[i].name) != 0)
            return 1;
    return 0;
}

/* Runs configure() on a throw-away handle: the module's documented contract
 * (configure has no side effects beyond memory, `vipmta -t` relies on it)
 * makes this a validation that leaves the running instance alone. The
 * handle lives on the heap and registers no hooks (no init window). */
static int plugin_reload_validate_options(struct vipmta_module_ctx *m,
                                          const struct config_module *cm,
                                          struct config_errors *errs)
{
    if (m->ec)
        return plugin_momentum_validate(m, cm, errs);
    if (!m->desc->configure)
        return 0;
    struct vipmta_module_ctx *tmp = calloc(1, sizeof(*tmp));
    if (!tmp) {
        config_errors_add(errs, "modules[%zu] (\"%s\"): out of memory", cm->index, cm->name);
        return -1;
    }
    tmp->config_name = m->config_name;
    tmp->name = m->name;
    tmp->instance = m->instance;
    tmp->label = m->label;
    tmp->index = cm->index;
    tmp->file = m->file;
    tmp->desc = m->desc;
    tmp->debug_level = cm->debug_level;
    tmp->errs = errs;
    plugin_entry_set(&tmp->entry, cm);
    int rc = m->desc->configure(tmp, (const vipmta_value *)tmp->entry.options);
    if (rc != 0 && tmp->reported == 0)
        config_errors_add(errs, "modules[%zu] (\"%s\"): the new options were refused (configure "
                          "returned %d)", cm->index, cm->name, rc);
    tmp->errs = NULL;
    if (m->desc->shutdown)
        m->desc->shutdown(tmp);
    int bad = rc != 0 || tmp->reported != 0;
    plugin_api_free_config(tmp);
    plugin_event_release_all(tmp);
    plugin_entry_clear(&tmp->entry);
    free(tmp);
    return bad ? -1 : 0;
}

/* A loaded instance against the new config: kept, reloaded (added to the
 * plan) or a warning. -1 when its new options are refused. */
static int plugin_reload_plan_one(struct plugin_reload_plan *p, struct vipmta_module_ctx *m,
                                  const struct vipmta_config *old,
                                  const struct vipmta_config *cfg, struct config_errors *errs,
                                  struct config_errors *warnings)
{
    const struct config_module *cm = plugin_reload_find_enabled(cfg, m->config_name, m->instance);
    if (!cm) {
        config_errors_add(warnings, "modules: \"%s\" is no longer enabled: it stays loaded, with "
                          "its current options, until a restart (a loaded module is not "
                          "unloaded live)", m->label);
        return 0;
    }
    struct plugin_entry next = {0};
    plugin_entry_set(&next, cm);
    int same = plugin_entry_equal(&m->entry, &next) &&
               !((next.bindings || next.binding_domains) && plugin_reload_bindings_moved(old, cfg));
    plugin_entry_clear(&next);
    if (same)
        return 0;
    if (!m->ec && !m->desc->reload) {
        config_errors_add(warnings, "modules[%zu].options (\"%s\") changed: the module has no "
                          "reload callback, takes effect after a restart", cm->index, m->label);
        return 0;
    }
    if (plugin_reload_validate_options(m, cm, errs) != 0)
        return -1;
    struct reload_entry *e = &p->reloads[p->reload_count++];
    e->m = m;
    e->cm = cm;
    return 0;
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
    /* loaded instances, in chain order */
    for (size_t i = 0; i < loaded; i++)
        if (plugin_reload_plan_one(p, plugin_loader_at(i), old, cfg, errs, warnings) != 0)
            rc = -1;
    /* newly enabled instances, in config order */
    for (size_t i = 0; i < cfg->module_count; i++) {
        const struct config_module *cm = &cfg->modules[i];
        if (!cm->enabled || plugin_reload_find_loaded(cm))
            continue;
        struct vipmta_module_ctx *m = plugin_loader_open_one(cfg, cm, errs);
        if (!m) {
            rc = -1;
            continue;
        }
        for (size_t j = 0; j < p->added_count; j++) {
            if (strcmp(p->added[j].m->label, m->label) == 0) {
                config_errors_add(errs, "modules[%zu] (\"%s\"): module name \"%s\" is enabled "
                                  "twice: enable each module once", cm->index, cm->name,
                                  m->label);
                plugin_loader_discard(m);
                m = NULL;
                rc = -1;
                break;
            }
        }
        if (m)
            p->added[p->added_count++].m = m;
    }
    /* the order of loaded instances in the chain does not change live */
    size_t prev = 0;
    int reordered = 0;
    for (size_t i = 0; i < loaded; i++) {
        struct vipmta_module_ctx *m = plugin_loader_at(i);
        const struct config_module *cm = plugin_reload_find_enabled(cfg, m->config_name,
                                                                    m->instance);
        if (!cm)
            continue;
        if (cm->index < prev)
            reordered = 1;
        prev = cm->index;
    }
    if (reordered)
        config_errors_add(warnings, "modules: the order of loaded modules changed: their hooks "
                          "keep the current order until a restart");
    if (rc != 0) {
        plugin_reload_plan_free(p);
        return NULL;
    }
    return p;
}

/* Reloads m from its entry `e` (made m's) at config index `index`. */
static int plugin_reload_reload_one(struct vipmta_module_ctx *m, size_t index,
                                    struct config_errors *errs)
{
    size_t kept = m->index;
    int rc;
    m->index = index; /* messages name the entry of the config being applied */
    m->errs = errs;
    m->reported = 0;
    if (m->ec)
        rc = plugin_momentum_reload(m, errs);
    else
        rc = m->desc->reload(m, (const vipmta_value *)m->entry.options);
    m->errs = NULL;
    m->index = kept;
    if (rc != 0 && m->reported == 0 && errs && !m->ec)
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
        if (!e->old.options)
            continue;
        int done = e->done;
        plugin_entry_clear(&e->m->entry);
        e->m->entry = e->old; /* its previous options again */
        memset(&e->old, 0, sizeof(e->old));
        e->done = 0;
        if (done && plugin_reload_reload_one(e->m, e->m->index, NULL) != 0)
            log_write("core", VIPMTA_LOG_ERROR, "reload: module %s: cannot restore its "
                      "previous options (see above); it runs with the new ones", e->m->label);
    }
}

int plugin_reload_apply(struct plugin_reload_plan *p, struct config_errors *errs)
{
    for (size_t i = 0; i < p->reload_count; i++) {
        struct reload_entry *e = &p->reloads[i];
        e->old = e->m->entry; /* kept for the undo */
        memset(&e->m->entry, 0, sizeof(e->m->entry));
        plugin_entry_set(&e->m->entry, e->cm);
        e->m->debug_level = e->cm->debug_level;
        if (plugin_reload_reload_one(e->m, e->cm->index, errs) != 0) {
            plugin_reload_undo(p);
            return -1;
        }
        e->done = 1;
    }
    for (size_t i = 0; i < p->added_count; i++) {
        struct vipmta_module_ctx *m = p->added[i].m;
        /* private data on domain records is keyed by the index: an instance
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
        log_write("core", VIPMTA_LOG_INFO, "reload: module %s %s loaded from %s", m->label,
                  m->desc && m->desc->version ? m->desc->version : "?", m->file);
    }
    return 0;
}

void plugin_reload_describe(const struct plugin_reload_plan *p, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < p->added_count && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s+%s", i ? " " : "modules ",
                                p->added[i].m ? p->added[i].m->label : "?");
    for (size_t i = 0; i < p->reload_count && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%s",
                                i ? ", " : len ? ", options reloaded: " : "options reloaded: ",
                                p->reloads[i].m->label);
}

void plugin_reload_plan_free(struct plugin_reload_plan *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->added_count; i++)
        if (!p->added[i].adopted)
            plugin_loader_discard(p->added[i].m);
    for (size_t i = 0; i < p->reload_count; i++)
        plugin_entry_clear(&p->reloads[i].old);
    free(p->added);
    free(p->reloads);
    free(p);
}
