/* plugin_loader.c: finds, opens and checks the enabled modules (libltdl), then runs their lifecycle. */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "plugin_hooks.h"
#include "log/log.h"
#include "plugin_internal.h"
#include "plugin_loader.h"
#include "daemon/daemon_priv.h"

/* Loaded modules, in load (= config) order. */
static struct vipmta_module_ctx **modules;
static size_t module_count;
static size_t module_capacity;
static int ltdl_ready;

typedef const vipmta_module_descriptor *(*plugin_descriptor_fn)(void);

/* Appends `modules[I] ("NAME"): FILE: CHECK: MESSAGE`. */
static void __attribute__((format(printf, 5, 6)))
plugin_loader_fail(struct config_errors *errs, const struct vipmta_module_ctx *m, const char *file,
            const char *check, const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    config_errors_add(errs, "modules[%zu] (\"%s\"): %s: %s: %s", m->index, m->config_name, file, check,
               msg ? msg : "(out of memory)");
    free(msg);
}

static void plugin_loader_ctx_free(struct vipmta_module_ctx *m)
{
    if (!m)
        return;
    if (m->handle)
        lt_dlclose(m->handle);
    free(m->config_name);
    free(m->name);
    free(m->file);
    free(m);
}

/* Refuses `file` (resolved to its real path) when it or its directory can be
 * written by group or others: whoever can write there can run code as us. */
static int plugin_loader_check_permissions(struct vipmta_module_ctx *m, const char *file,
                                    struct config_errors *errs)
{
    struct stat st;
    char *real = realpath(file, NULL);

    if (!real)
        return 0; /* nothing there: libltdl will say so */
    if (stat(real, &st) == 0 && (st.st_mode & (S_IWGRP | S_IWOTH))) {
        plugin_loader_fail(errs, m, real, "permissions",
                    "expected a file not writable by group or others, found mode %04o: "
                    "refusing it; run chmod go-w %s",
                    (unsigned)(st.st_mode & 07777), real);
        free(real);
        return -1;
    }
    if (stat(real, &st) == 0 && !daemon_priv_owner_trusted(st.st_uid)) {
        plugin_loader_fail(errs, m, real, "owner",
                    "expected a file owned by root or by the user vipmta runs as, found uid %u: "
                    "refusing it; run chown root: %s",
                    (unsigned)st.st_uid, real);
        free(real);
        return -1;
    }
    char *slash = strrchr(real, '/');
    char dir[PATH_MAX];
    if (slash == real)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - real), real);
    if (stat(dir, &st) == 0 && (st.st_mode & (S_IWGRP | S_IWOTH))) {
        plugin_loader_fail(errs, m, real, "directory permissions",
                    "expected %s not writable by group or others, found mode %04o: "
                    "refusing it; run chmod go-w %s",
                    dir, (unsigned)(st.st_mode & 07777), dir);
        free(real);
        return -1;
    }
    free(real);
    return 0;
}

/* Before libltdl maps anything from `dir`: checks every file it could pick
 * there (NAME, NAME.la, NAME.so), so no code from a writable file ever runs. */
static int plugin_loader_precheck(struct vipmta_module_ctx *m, const char *base,
                           struct config_errors *errs)
{
    static const char *const exts[] = {"", ".la", ".so"};

    for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
        char path[PATH_MAX];
        if (snprintf(path, sizeof(path), "%s%s", base, exts[i]) >= (int)sizeof(path))
            continue;
        if (plugin_loader_check_permissions(m, path, errs) != 0)
            return -1;
    }
    return 0;
}

/* libltdl reports "file not found" even when a file is there but cannot be
 * loaded. When one of the files it tries exists, finds the real reason: the
 * dynamic linker's error for a shared object (it failed to load, so nothing
 * of it runs; if it loads after all, it is closed at once). 1 with `why` set. */
static int plugin_loader_why_not(const char *base, char *why, size_t size)
{
    static const char *const exts[] = {".la", ".so", ""};
    struct stat st;

    for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
        char path[PATH_MAX];
        if (snprintf(path, sizeof(path), "%s%s", base, exts[i]) >= (int)sizeof(path) ||
            stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        size_t n = strlen(path);
        if (n > 3 && strcmp(path + n - 3, ".la") == 0) {
            snprintf(why, size, "%s: libltdl cannot open the shared object this libtool file "
                     "names (rebuild the module, or reinstall it)", path);
            return 1;
        }
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (h) {
            dlclose(h);
            continue;
        }
        const char *e = dlerror();
        snprintf(why, size, "%s", e ? e : path);
        return 1;
    }
    return 0;
}

/* Check 1: searches the module path in order; the first directory where
 * libltdl opens the module wins. */
static int plugin_loader_open(const struct vipmta_config *cfg, struct vipmta_module_ctx *m,
                       struct config_errors *errs)
{
    lt_dladvise advise;
    char *tried = NULL;         /* "DIR1, DIR2" */
    size_t tried_len = 0;
    char *last_error = NULL;
    int informative = 0;        /* last_error is more than "file not found" */
    int rc = -1;

    if (!*m->config_name || strchr(m->config_name, '/')) {
        config_errors_add(errs, "modules[%zu] (\"%s\"): cannot open module: expected a file name "
                   "without '/', found %s: put the module into a module_path directory and "
                   "list it by its name",
                   m->index, m->config_name, *m->config_name ? "a path" : "an empty name");
        return -1;
    }
    if (lt_dladvise_init(&advise) != 0) {
        config_errors_add(errs, "modules[%zu] (\"%s\"): cannot open module: libltdl: %s", m->index,
                   m->config_name, lt_dlerror());
        return -1;
    }
    if (lt_dladvise_ext(&advise) != 0 || lt_dladvise_local(&advise) != 0) {
        config_errors_add(errs, "modules[%zu] (\"%s\"): cannot open module: libltdl: %s", m->index,
                   m->config_name, lt_dlerror());
        lt_dladvise_destroy(&advise);
        return -1;
    }
    for (size_t d = 0; d < cfg->module_path_count; d++) {
        const char *dir = cfg->module_path[d];
        char base[PATH_MAX];
        if (snprintf(base, sizeof(base), "%s/%s", dir, m->config_name) >= (int)sizeof(base))
            continue;

        size_t add = strlen(dir) + 3;
        char *grown = realloc(tried, tried_len + add);
        if (!grown)
            break;
        tried = grown;
        tried_len += (size_t)sprintf(tried + tried_len, "%s%s", tried_len ? ", " : "", dir);

        if (plugin_loader_precheck(m, base, errs) != 0)
            goto out; /* refused: the error is already there */
        lt_dlhandle h = lt_dlopenadvise(base, advise);
        if (h) {
            m->handle = h;
            break;
        }
        const char *e = lt_dlerror();
        char why[PATH_MAX + 256];
        if ((!e || strcmp(e, "file not found") == 0) && plugin_loader_why_not(base, why, sizeof(why)))
            e = why; /* a file is there: libltdl said "file not found" but it is not */
        int not_found = !e || strcmp(e, "file not found") == 0;
        /* keep the most useful error: a file that exists but fails to load
         * (a missing symbol, a wrong architecture) beats "file not found" */
        if (!informative || !not_found) {
            free(last_error);
            last_error = strdup(e ? e : "file not found");
            informative = !not_found;
        }
    }
    if (!m->handle) {
        config_errors_add(errs, "modules[%zu] (\"%s\"): cannot open module: %s %s (last error: %s)",
                   m->index, m->config_name, informative ? "not loadable from" : "not found in",
                   tried ? tried : "(module_path is empty)", last_error ? last_error : "none");
        goto out;
    }

    /* the shared object actually mapped (for a .la, the .so it names) */
    const lt_dlinfo *info = lt_dlgetinfo(m->handle);
    const char *mapped = info && info->filename ? info->filename : m->config_name;
    m->file = realpath(mapped, NULL);
    if (!m->file)
        m->file = strdup(mapped);
    if (!m->file)
        goto out;
    rc = 0;
out:
    lt_dladvise_destroy(&advise);
    free(tried);
    free(last_error);
    return rc;
}

/* The config name without a ".so" or ".la" suffix: what the descriptor must say. */
static int plugin_loader_name_matches(const char *config_name, const char *name)
{
    size_t n = strlen(name);
    if (strcmp(config_name, name) == 0)
        return 1;
    return strncmp(config_name, name, n) == 0 &&
           (strcmp(config_name + n, ".so") == 0 || strcmp(config_name + n, ".la") == 0);
}

/* Checks 2-7 on an opened module: descriptor symbol, magic, ABI major, ABI
 * minor, descriptor size, name (unique, and the one in the config). */
static int plugin_loader_check_descriptor(struct vipmta_module_ctx *m, struct config_errors *errs)
{
    const char *file = m->file;
    void *sym = lt_dlsym(m->handle, VIPMTA_MODULE_DESCRIPTOR_SYMBOL);
    plugin_descriptor_fn get;

    if (!sym) {
        plugin_loader_fail(errs, m, file, "descriptor symbol",
                    "expected the function %s to be exported, found no such symbol: "
                    "define it with VIPMTA_MODULE_EXPORT(descriptor) (see docs/writing-modules.md)",
                    VIPMTA_MODULE_DESCRIPTOR_SYMBOL);
        return -1;
    }
    memcpy(&get, &sym, sizeof(get)); /* object to function pointer, as dlsym requires */
    const vipmta_module_descriptor *d = get();
    if (!d) {
        plugin_loader_fail(errs, m, file, "descriptor symbol",
                    "expected %s() to return a descriptor, found NULL: return the address of "
                    "the module's static descriptor",
                    VIPMTA_MODULE_DESCRIPTOR_SYMBOL);
        return -1;
    }
    if (d->magic != VIPMTA_MODULE_MAGIC) {
        plugin_loader_fail(errs, m, file, "magic",
                    "expected 0x%08x, found 0x%08x: not a vipmta module descriptor; build it "
                    "with VIPMTA_MODULE_HEADER() from vipmta_module.h",
                    (unsigned)VIPMTA_MODULE_MAGIC, (unsigned)d->magic);
        return -1;
    }
    if (d->abi_major != VIPMTA_MODULE_ABI_MAJOR) {
        plugin_loader_fail(errs, m, file, "ABI major",
                    "expected %d, found %u: rebuild the module against this vipmta's headers "
                    "(module ABI %d.%d)",
                    VIPMTA_MODULE_ABI_MAJOR, (unsigned)d->abi_major, VIPMTA_MODULE_ABI_MAJOR,
                    VIPMTA_MODULE_ABI_MINOR);
        return -1;
    }
    if (d->abi_minor > VIPMTA_MODULE_ABI_MINOR) {
        plugin_loader_fail(errs, m, file, "ABI minor",
                    "expected at most %d, found %u: the module needs a newer vipmta; upgrade "
                    "vipmta or rebuild the module against this vipmta's headers (module ABI %d.%d)",
                    VIPMTA_MODULE_ABI_MINOR, (unsigned)d->abi_minor, VIPMTA_MODULE_ABI_MAJOR,
                    VIPMTA_MODULE_ABI_MINOR);
        return -1;
    }
    if (d->struct_size < PLUGIN_DESCRIPTOR_MIN_SIZE) {
        plugin_loader_fail(errs, m, file, "descriptor size",
                    "expected at least %zu bytes, found %u: rebuild the module against this "
                    "vipmta's headers",
                    (size_t)PLUGIN_DESCRIPTOR_MIN_SIZE, (unsigned)d->struct_size);
        return -1;
    }
    if (!d->name || !*d->name) {
        plugin_loader_fail(errs, m, file, "module name",
                    "expected \"%s\", found none: set the name in VIPMTA_MODULE_HEADER()",
                    m->config_name);
        return -1;
    }
    for (size_t i = 0; i < module_count; i++) {
        if (strcmp(modules[i]->name, d->name) == 0) {
            plugin_loader_fail(errs, m, file, "module name",
                        "expected a name no other module has, found \"%s\" (already loaded as "
                        "modules[%zu] from %s): give each module its own name",
                        d->name, modules[i]->index, modules[i]->file);
            return -1;
        }
    }
    if (!plugin_loader_name_matches(m->config_name, d->name)) {
        plugin_loader_fail(errs, m, file, "module name",
                    "expected \"%s\" (the name in the config), found \"%s\": list the module "
                    "as \"%s\" in the config, or rename it in its descriptor",
                    m->config_name, d->name, d->name);
        return -1;
    }
    m->name = strdup(d->name);
    if (!m->name) {
        plugin_loader_fail(errs, m, file, "module name", "out of memory");
        return -1;
    }
    m->desc = d;
    return 0;
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

/* Runs configure(); errors the module reports land in `errs`. */
static int plugin_loader_configure(struct vipmta_module_ctx *m, const json_t *options,
                            struct config_errors *errs)
{
    int rc = 0;

    m->configured = 1;
    if (!m->desc->configure)
        return 0;
    m->errs = errs;
    m->reported = 0;
    rc = m->desc->configure(m, options);
    m->errs = NULL;
    if (rc != 0 && m->reported == 0)
        config_errors_add(errs, "modules[%zu] (\"%s\"): configure failed", m->index, m->config_name);
    return rc != 0 || m->reported != 0 ? -1 : 0;
}

int plugin_loader_load(const struct vipmta_config *cfg, struct config_errors *errs)
{
    int rc = 0;

    if (!ltdl_ready) {
        if (lt_dlinit() != 0) {
            config_errors_add(errs, "modules: cannot initialise libltdl: %s", lt_dlerror());
            return -1;
        }
        ltdl_ready = 1;
    }
    for (size_t i = 0; i < cfg->module_count; i++) {
        const struct config_module *cm = &cfg->modules[i];
        if (!cm->enabled)
            continue;
        struct vipmta_module_ctx *m = calloc(1, sizeof(*m));
        if (!m || !(m->config_name = strdup(cm->name))) {
            free(m);
            config_errors_add(errs, "modules[%zu] (\"%s\"): out of memory", cm->index, cm->name);
            rc = -1;
            continue;
        }
        m->index = cm->index;
        if (plugin_loader_open(cfg, m, errs) != 0 || plugin_loader_check_permissions(m, m->file, errs) != 0 ||
            plugin_loader_check_descriptor(m, errs) != 0) {
            plugin_loader_ctx_free(m);
            rc = -1;
            continue;
        }
        if (plugin_loader_append(m) != 0) {
            config_errors_add(errs, "modules[%zu] (\"%s\"): out of memory", m->index, m->config_name);
            plugin_loader_ctx_free(m);
            rc = -1;
            continue;
        }
        /* kept even when configure fails: shutdown() frees what it allocated */
        if (plugin_loader_configure(m, cm->options, errs) != 0)
            rc = -1;
        else
            log_write("core", VIPMTA_LOG_DEBUG, "module %s %s loaded from %s", m->name,
                      m->desc->version ? m->desc->version : "?", m->file);
    }
    return rc;
}

/* Runs m's init (its hooks are registered under its name). 0, or -1 with
 * the error appended. */
static int plugin_loader_init_one(struct vipmta_module_ctx *m, struct config_errors *errs)
{
    if (!m->desc->init)
        return 0;
    m->errs = errs;
    m->in_init = 1;
    m->reported = 0;
    plugin_hooks_set_registering_module(m->name);
    int rc = m->desc->init(m);
    plugin_hooks_set_registering_module(NULL);
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
        if (plugin_loader_init_one(modules[i], errs) != 0)
            return -1;
    return 0;
}

void plugin_loader_describe(FILE *out)
{
    for (size_t i = 0; i < module_count; i++) {
        const struct vipmta_module_ctx *m = modules[i];
        fprintf(out, "%s %s %s\n", m->name, m->desc->version ? m->desc->version : "(no version)",
                m->file);
        fprintf(out, "    %s\n",
                m->desc->description ? m->desc->description : "(no description)");
        plugin_hooks_describe_module(out, m->name);
    }
}

void plugin_loader_unload(void)
{
    for (size_t i = module_count; i-- > 0;) {
        struct vipmta_module_ctx *m = modules[i];
        if (m->configured && m->desc->shutdown)
            m->desc->shutdown(m);
    }
    /* hook entries point into the modules' code: empty the chains before closing */
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

/* ---- reload (core/plugin/plugin_reload.c): one module at a time ---- */

struct vipmta_module_ctx *plugin_loader_at(size_t i)
{
    return i < module_count ? modules[i] : NULL;
}

struct vipmta_module_ctx *plugin_loader_open_one(const struct vipmta_config *cfg,
                                                 const struct config_module *cm,
                                                 struct config_errors *errs)
{
    if (!ltdl_ready) {
        if (lt_dlinit() != 0) {
            config_errors_add(errs, "modules: cannot initialise libltdl: %s", lt_dlerror());
            return NULL;
        }
        ltdl_ready = 1;
    }
    struct vipmta_module_ctx *m = calloc(1, sizeof(*m));
    if (!m || !(m->config_name = strdup(cm->name))) {
        free(m);
        config_errors_add(errs, "modules[%zu] (\"%s\"): out of memory", cm->index, cm->name);
        return NULL;
    }
    m->index = cm->index;
    if (plugin_loader_open(cfg, m, errs) != 0 || plugin_loader_check_permissions(m, m->file, errs) != 0 ||
        plugin_loader_check_descriptor(m, errs) != 0) {
        plugin_loader_ctx_free(m);
        return NULL;
    }
    if (plugin_loader_configure(m, cm->options, errs) != 0) {
        plugin_loader_discard(m);
        return NULL;
    }
    return m;
}

void plugin_loader_discard(struct vipmta_module_ctx *m)
{
    if (!m)
        return;
    if (m->configured && m->desc && m->desc->shutdown)
        m->desc->shutdown(m);
    plugin_loader_ctx_free(m);
}

int plugin_loader_adopt(struct vipmta_module_ctx *m, struct config_errors *errs)
{
    if (plugin_loader_append(m) != 0) {
        config_errors_add(errs, "modules[%zu] (\"%s\"): out of memory", m->index, m->config_name);
        return -1;
    }
    if (plugin_loader_init_one(m, errs) != 0) {
        module_count--; /* not kept: the caller discards it */
        plugin_hooks_remove_owner(m->name);
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
    plugin_hooks_remove_owner(m->name);
    plugin_loader_discard(m);
}
