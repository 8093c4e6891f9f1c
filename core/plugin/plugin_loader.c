/* plugin_loader.c: checks each enabled module instance (native descriptor or Momentum infrastructure) and runs its lifecycle. */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "plugin_hooks.h"
#include "plugin_internal.h"
#include "plugin_loader.h"
#include "plugin_momentum.h"

/* Loaded instances, in load (= config) order. */
static struct vipmta_module_ctx **modules;
static size_t module_count;
static size_t module_capacity;
static int ltdl_ready;

typedef const vipmta_module_descriptor *(*plugin_descriptor_fn)(void);

static void plugin_loader_ctx_free(struct vipmta_module_ctx *m)
{
    if (!m)
        return;
    plugin_momentum_shutdown(m); /* a Momentum instance never configured */
    plugin_event_release_all(m);
    plugin_api_free_config(m);
    plugin_entry_clear(&m->entry);
    if (m->handle)
        lt_dlclose(m->handle);
    free(m->config_name);
    free(m->name);
    free(m->instance);
    free(m->label);
    free(m->file);
    free(m);
}

/* The config name without a ".so" or ".la" suffix: what the module is called. */
static int plugin_loader_name_matches(const char *config_name, const char *name)
{
    size_t n = strlen(name);
    if (strcmp(config_name, name) == 0)
        return 1;
    return strncmp(config_name, name, n) == 0 &&
           (strcmp(config_name + n, ".so") == 0 || strcmp(config_name + n, ".la") == 0);
}

/* The loaded instance with the same name and instance, or NULL. */
static const struct vipmta_module_ctx *plugin_loader_same(const char *name,
                                                          const char *instance)
{
    for (size_t i = 0; i < module_count; i++) {
        const struct vipmta_module_ctx *o = modules[i];
        if (strcmp(o->name, name) != 0)
            continue;
        if ((!o->instance && !instance) ||
            (o->instance && instance && strcmp(o->instance, instance) == 0))
            return o;
    }
    return NULL;
}

/* Checks 3-7 of a native descriptor: magic, ABI major, ABI minor, size,
 * name (unique, and the one in the config). */
static int plugin_loader_check_native(struct vipmta_module_ctx *m,
                                      const vipmta_module_descriptor *d,
                                      struct config_errors *errs)
{
    const char *file = m->file;
    if (d->magic != VIPMTA_MODULE_MAGIC) {
        plugin_loader_fail(errs, m, file, "magic",
                           "expected 0x%08x, found 0x%08x: not a vipmta module descriptor; build "
                           "it with VIPMTA_MODULE_HEADER() from vipmta_module.h",
                           (unsigned)VIPMTA_MODULE_MAGIC, (unsigned)d->magic);
        return -1;
    }
    if (d->abi_major != VIPMTA_MODULE_ABI_MAJOR) {
        plugin_loader_fail(errs, m, file, "ABI major",
                           "expected %d, found %u: rebuild the module against this vipmta's "
                           "headers (module ABI %d.%d)",
                           VIPMTA_MODULE_ABI_MAJOR, (unsigned)d->abi_major,
                           VIPMTA_MODULE_ABI_MAJOR, VIPMTA_MODULE_ABI_MINOR);
        return -1;
    }
    if (d->abi_minor > VIPMTA_MODULE_ABI_MINOR) {
        plugin_loader_fail(errs, m, file, "ABI minor",
                           "expected at most %d, found %u: the module needs a newer vipmta; "
                           "upgrade vipmta or rebuild the module against this vipmta's headers "
                           "(module ABI %d.%d)",
                           VIPMTA_MODULE_ABI_MINOR, (unsigned)d->abi_minor,
                           VIPMTA_MODULE_ABI_MAJOR, VIPMTA_MODULE_ABI_MINOR);
        return -1;
    }
    if (d->struct_size < PLUGIN_DESCRIPTOR_MIN_SIZE) {
        plugin_loader_fail(errs, m, file, "descriptor size",
                           "expected at least %zu bytes, found %u: rebuild the module against "
                           "this vipmta's headers",
                           (size_t)PLUGIN_DESCRIPTOR_MIN_SIZE, (unsigned)d->struct_size);
        return -1;
    }
    if (!d->name || !*d->name) {
        plugin_loader_fail(errs, m, file, "module name",
                           "expected \"%s\", found none: set the name in VIPMTA_MODULE_HEADER()",
                           m->config_name);
        return -1;
    }
    const struct vipmta_module_ctx *o = plugin_loader_same(d->name, m->instance);
    if (o) {
        plugin_loader_fail(errs, m, file, "module name",
                           "expected a name no other module has, found \"%s\" (already loaded as "
                           "modules[%zu] from %s): give each module its own name",
                           d->name, o->index, o->file);
        return -1;
    }
    if (!plugin_loader_name_matches(m->config_name, d->name)) {
        plugin_loader_fail(errs, m, file, "module name",
                           "expected \"%s\" (the name in the config), found \"%s\": list the "
                           "module as \"%s\" in the config, or rename it in its descriptor",
                           m->config_name, d->name, d->name);
        return -1;
    }
    m->desc = d;
    return (m->name = strdup(d->name)) ? 0 : -1;
}

/* Check 2: what the module exports: the native descriptor function, else a
 * Momentum generic_module_infrastructure named after the module. */
static int plugin_loader_identify(struct vipmta_module_ctx *m, struct config_errors *errs)
{
    void *sym = lt_dlsym(m->handle, VIPMTA_MODULE_DESCRIPTOR_SYMBOL);
    if (sym) {
        plugin_descriptor_fn get;
        memcpy(&get, &sym, sizeof(get)); /* object to function pointer, as dlsym requires */
        const vipmta_module_descriptor *d = get();
        if (!d) {
            plugin_loader_fail(errs, m, m->file, "descriptor symbol",
                               "expected %s() to return a descriptor, found NULL: return the "
                               "address of the module's static descriptor",
                               VIPMTA_MODULE_DESCRIPTOR_SYMBOL);
            return -1;
        }
        return plugin_loader_check_native(m, d, errs);
    }
    char base[256];
    snprintf(base, sizeof(base), "%s", m->config_name);
    size_t n = strlen(base);
    if (n > 3 && (strcmp(base + n - 3, ".so") == 0 || strcmp(base + n - 3, ".la") == 0))
        base[n - 3] = '\0';
    if ((sym = lt_dlsym(m->handle, base))) {
        if (plugin_loader_same(base, m->instance)) {
            plugin_loader_fail(errs, m, m->file, "module name",
                               "expected a name no other module has, found \"%s\" (already "
                               "loaded): give each module its own name",
                               base);
            return -1;
        }
        if (!(m->name = strdup(base)))
            return -1;
        return plugin_momentum_check(m, sym, errs);
    }
    plugin_loader_fail(errs, m, m->file, "descriptor symbol",
                       "expected the function %s to be exported, found no such symbol: define "
                       "it with VIPMTA_MODULE_EXPORT(descriptor) (see docs/writing-modules.md), "
                       "or export a Momentum generic_module_infrastructure named \"%s\"",
                       VIPMTA_MODULE_DESCRIPTOR_SYMBOL, base);
    return -1;
}

/* A native module gets options only at the scopes it declared. */
static int plugin_loader_check_scopes(struct vipmta_module_ctx *m, struct config_errors *errs)
{
    static const struct {
        unsigned bit;
        const char *key, *what;
    } scopes[] = {{VIPMTA_SCOPES_BINDING, "bindings", "per-binding"},
                  {VIPMTA_SCOPES_DOMAIN, "domains", "per-domain"},
                  {VIPMTA_SCOPES_BINDING_DOMAIN, "binding_domains", "per binding x domain"}};
    const json_t *given[] = {m->entry.bindings, m->entry.domains, m->entry.binding_domains};
    int rc = 0;
    if (!m->desc)
        return 0;
    for (size_t i = 0; i < sizeof(scopes) / sizeof(scopes[0]); i++) {
        if (!given[i] || (m->desc->scopes & scopes[i].bit))
            continue;
        config_errors_add(errs, "modules[%zu].%s: module \"%s\" takes no %s options (it reads "
                          "\"options\"%s): move them there or remove \"%s\"",
                          m->index, scopes[i].key, m->name, scopes[i].what,
                          m->desc->scopes ? " and the scopes it documents" : " only",
                          scopes[i].key);
        rc = -1;
    }
    return rc;
}

/* A new instance of `cm`: opened, identified and checked (not configured). */
static struct vipmta_module_ctx *plugin_loader_new(const struct vipmta_config *cfg,
                                                   const struct config_module *cm,
                                                   struct config_errors *errs)
{
    struct vipmta_module_ctx *m = calloc(1, sizeof(*m));
    if (!m || !(m->config_name = strdup(cm->name)) ||
        (cm->instance && !(m->instance = strdup(cm->instance)))) {
        if (m)
            free(m->config_name);
        free(m);
        config_errors_add(errs, "modules[%zu] (\"%s\"): out of memory", cm->index, cm->name);
        return NULL;
    }
    m->index = cm->index;
    m->debug_level = cm->debug_level;
    plugin_entry_set(&m->entry, cm);
    if (plugin_loader_open(cfg, m, errs) != 0 ||
        plugin_loader_check_permissions(m, m->file, errs) != 0 ||
        plugin_loader_identify(m, errs) != 0 || plugin_loader_check_scopes(m, errs) != 0) {
        plugin_loader_ctx_free(m);
        return NULL;
    }
    if (asprintf(&m->label, "%s%s%s", m->name, m->instance ? ":" : "",
                 m->instance ? m->instance : "") < 0) {
        m->label = NULL;
        plugin_loader_ctx_free(m);
        return NULL;
    }
    return m;
}

static int plugin_loader_append(struct vipmta_module_ctx *m)
{
    if (module_count == module_capacity) {
        size_t cap = module_capacity ? module_capacity * 2 : 8;
        struct vipmta_module_ctx **grown = realloc(modules, cap * sizeof(*grown));
        if (!grown)
            return -1;
        modules = grown;
        module_capacity = cap;
    }
    modules[module_count++] = m;
    return 0;
}

/* Runs configure (a Momentum module: conf_setup and its option values);
 * errors the module reports land in `errs`. */
static int plugin_loader_configure(struct vipmta_module_ctx *m, struct config_errors *errs)
{
    int rc = 0;

    m->configured = 1;
    m->errs = errs;
    m->reported = 0;
    if (m->ec)
        rc = plugin_momentum_configure(m, errs);
    else if (m->desc->configure)
        rc = m->desc->configure(m, (const vipmta_value *)m->entry.options);
    m->errs = NULL;
    if (rc != 0 && m->reported == 0 && !m->ec)
        config_errors_add(errs, "modules[%zu] (\"%s\"): configure failed", m->index,
                          m->config_name);
    return rc != 0 || m->reported != 0 ? -1 : 0;
}

static int plugin_loader_ltdl(struct config_errors *errs)
{
    if (ltdl_ready)
        return 0;
    if (lt_dlinit() != 0) {
        config_errors_add(errs, "modules: cannot initialise libltdl: %s", lt_dlerror());
        return -1;
    }
    ltdl_ready = 1;
    return 0;
}

int plugin_loader_load(const struct vipmta_config *cfg, struct config_errors *errs)
{
    int rc = 0;

    if (plugin_loader_ltdl(errs) != 0)
        return -1;
    for (size_t i = 0; i < cfg->module_count; i++) {
        const struct config_module *cm = &cfg->modules[i];
        if (!cm->enabled)
            continue;
        struct vipmta_module_ctx *m = plugin_loader_new(cfg, cm, errs);
        if (!m) {
            rc = -1;
            continue;
        }
        if (plugin_loader_append(m) != 0) {
            config_errors_add(errs, "modules[%zu] (\"%s\"): out of memory", m->index,
                              m->config_name);
            plugin_loader_ctx_free(m);
            rc = -1;
            continue;
        }
        /* kept even when configure fails: shutdown() frees what it allocated */
        if (plugin_loader_configure(m, errs) != 0)
            rc = -1;
        else
            log_write("core", VIPMTA_LOG_DEBUG, "module %s %s loaded from %s", m->label,
                      m->desc && m->desc->version ? m->desc->version : "?", m->file);
    }
    return rc;
}

/* Runs m's init (its hooks are registered under its label). 0, or -1 with
 * the error appended. */
static int plugin_loader_init_one(struct vipmta_module_ctx *m, struct config_errors *errs,
                                  int at_start)
{
    int rc = 0;
    if (m->ec)
        return plugin_momentum_init(m, errs, at_start);
    if (!m->desc->init)
        return 0;
    m->errs = errs;
    m->in_init = 1;
    m->reported = 0;
    plugin_hooks_begin_init(m);
    rc = m->desc->init(m);
    plugin_hooks_end_init();
    m->errs = NULL;
    m->in_init = 0;
    if (rc != 0 || m->reported != 0) {
        config_errors_add(errs, "modules[%zu] (\"%s\"): %s: init failed (returned %d)", m->index,
                          m->config_name, m->file, rc);
        return -1;
    }
    return 0;
}

int plugin_loader_init(struct config_errors *errs)
{
    for (size_t i = 0; i < module_count; i++)
        if (plugin_loader_init_one(modules[i], errs, 1) != 0)
            return -1;
    return 0;
}

void plugin_loader_describe(FILE *out)
{
    for (size_t i = 0; i < module_count; i++) {
        const struct vipmta_module_ctx *m = modules[i];
        const char *version = m->desc ? m->desc->version : NULL;
        const char *description = m->desc ? m->desc->description
                                          : plugin_momentum_description(m);
        fprintf(out, "%s %s %s\n", m->label, version ? version : "(no version)", m->file);
        fprintf(out, "    %s\n", description ? description : "(no description)");
        plugin_hooks_describe_module(out, m);
    }
}

/* Shuts an instance down once (its configure was called). */
static void plugin_loader_shutdown(struct vipmta_module_ctx *m)
{
    if (!m->configured)
        return;
    m->configured = 0;
    if (m->ec)
        plugin_momentum_shutdown(m);
    else if (m->desc && m->desc->shutdown)
        m->desc->shutdown(m);
}

void plugin_loader_unload(void)
{
    for (size_t i = module_count; i-- > 0;)
        plugin_loader_shutdown(modules[i]);
    /* providers point into the modules' code: empty the chains before closing */
    plugin_hooks_reset_all();
    for (size_t i = module_count; i-- > 0;)
        plugin_loader_ctx_free(modules[i]);
    free(modules);
    modules = NULL;
    module_count = module_capacity = 0;
}

size_t plugin_loader_count(void)
{
    return module_count;
}

const vipmta_module_ctx *plugin_loader_get(size_t i)
{
    return i < module_count ? modules[i] : NULL;
}

const vipmta_module_descriptor *plugin_loader_descriptor(const vipmta_module_ctx *m)
{
    return m ? m->desc : NULL;
}

const char *plugin_loader_file(const vipmta_module_ctx *m)
{
    return m ? m->file : NULL;
}

const char *plugin_loader_label(const vipmta_module_ctx *m)
{
    return m ? m->label : NULL;
}

const struct vipmta_module_ctx *plugin_loader_instance_at(const void *addr)
{
    Dl_info info;
    if (!addr || !dladdr(addr, &info) || !info.dli_fname)
        return NULL;
    char *real = realpath(info.dli_fname, NULL);
    const struct vipmta_module_ctx *found = NULL;
    for (size_t i = 0; real && i < module_count && !found; i++)
        if (modules[i]->file && strcmp(modules[i]->file, real) == 0)
            found = modules[i];
    free(real);
    return found;
}

/* ---- reload (core/plugin/plugin_reload.c): one instance at a time ---- */

struct vipmta_module_ctx *plugin_loader_at(size_t i)
{
    return i < module_count ? modules[i] : NULL;
}

struct vipmta_module_ctx *plugin_loader_open_one(const struct vipmta_config *cfg,
                                                 const struct config_module *cm,
                                                 struct config_errors *errs)
{
    if (plugin_loader_ltdl(errs) != 0)
        return NULL;
    struct vipmta_module_ctx *m = plugin_loader_new(cfg, cm, errs);
    if (!m)
        return NULL;
    if (plugin_loader_configure(m, errs) != 0) {
        plugin_loader_discard(m);
        return NULL;
    }
    return m;
}

void plugin_loader_discard(struct vipmta_module_ctx *m)
{
    if (!m)
        return;
    plugin_loader_shutdown(m);
    plugin_hooks_remove_owner(m);
    plugin_loader_ctx_free(m);
}

int plugin_loader_adopt(struct vipmta_module_ctx *m, struct config_errors *errs)
{
    if (plugin_loader_append(m) != 0) {
        config_errors_add(errs, "modules[%zu] (\"%s\"): out of memory", m->index, m->config_name);
        return -1;
    }
    if (plugin_loader_init_one(m, errs, 0) != 0) {
        module_count--; /* not kept: the caller discards it */
        plugin_hooks_remove_owner(m);
        return -1;
    }
    return 0;
}

void plugin_loader_remove(struct vipmta_module_ctx *m)
{
    for (size_t i = 0; i < module_count; i++) {
        if (modules[i] != m)
            continue;
        memmove(modules + i, modules + i + 1, (module_count - i - 1) * sizeof(*modules));
        module_count--;
        break;
    }
    plugin_loader_discard(m);
}
