/* plugin_loader_open.c: finds a module's file on module_path, checks who owns and may write it, resolves every symbol at load, opens it with libltdl. */
#include <dlfcn.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "daemon/daemon_priv.h"
#include "plugin_internal.h"

void plugin_loader_fail(struct config_errors *errs, const struct vipmta_module_ctx *m,
                        const char *file, const char *check, const char *fmt, ...)
{
    char msg[2048]; /* a message names two paths at the most */
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    config_errors_add(errs, "modules[%zu] (\"%s\"): %s: %s: %s", m->index, m->config_name, file,
                      check, msg);
}

/* Who may own a module file or its directory: root only while the loader
 * runs as root (whoever else owns it could run code as root); otherwise
 * root, this user or the user vipmta runs as. */
static int plugin_loader_owner_ok(uid_t uid)
{
    return geteuid() == 0 ? uid == 0 : daemon_priv_owner_trusted(uid);
}

static const char *plugin_loader_owners(void)
{
    return geteuid() == 0 ? "root (vipmta runs as root)" : "root or by the user vipmta runs as";
}

/* Refuses `file` (resolved to its real path) when it or its directory can be
 * written by group or others, or belongs to someone who is not trusted:
 * whoever can change them can run code as us. */
int plugin_loader_check_permissions(struct vipmta_module_ctx *m, const char *file,
                                    struct config_errors *errs)
{
    struct stat st;
    char *real = realpath(file, NULL);
    int rc = -1;

    if (!real)
        return 0; /* nothing there: libltdl will say so */
    if (stat(real, &st) == 0 && (st.st_mode & (S_IWGRP | S_IWOTH))) {
        plugin_loader_fail(errs, m, real, "permissions",
                           "expected a file not writable by group or others, found mode %04o: "
                           "refusing it; run chmod go-w %s",
                           (unsigned)(st.st_mode & 07777), real);
        goto out;
    }
    if (stat(real, &st) == 0 && !plugin_loader_owner_ok(st.st_uid)) {
        plugin_loader_fail(errs, m, real, "owner",
                           "expected a file owned by %s, found uid %u: refusing it; run chown "
                           "root: %s",
                           plugin_loader_owners(), (unsigned)st.st_uid, real);
        goto out;
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
        goto out;
    }
    if (stat(dir, &st) == 0 && !plugin_loader_owner_ok(st.st_uid)) {
        plugin_loader_fail(errs, m, real, "directory owner",
                           "expected %s owned by %s, found uid %u: refusing it; run chown root: "
                           "%s",
                           dir, plugin_loader_owners(), (unsigned)st.st_uid, dir);
        goto out;
    }
    rc = 0;
out:
    free(real);
    return rc;
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

static int plugin_loader_regular(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int plugin_loader_ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && strcmp(s + n - t, tail) == 0;
}

/* The shared object a libtool file names: its dlname in DIR, or in DIR/.libs
 * for a library not installed yet. 0 with `out` set. */
static int plugin_loader_from_la(const char *la, char *out, size_t size)
{
    FILE *f = fopen(la, "re");
    char line[PATH_MAX + 32], dlname[PATH_MAX] = "";
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "dlname='%4095[^']'", dlname) == 1)
            break;
    fclose(f);
    if (!dlname[0])
        return -1;
    const char *slash = strrchr(la, '/');
    int dirlen = slash ? (int)(slash - la) : 1;
    const char *dir = slash ? la : ".";
    if (snprintf(out, size, "%.*s/%s", dirlen, dir, dlname) < (int)size &&
        plugin_loader_regular(out))
        return 0;
    if (snprintf(out, size, "%.*s/.libs/%s", dirlen, dir, dlname) < (int)size &&
        plugin_loader_regular(out))
        return 0;
    return -1;
}

/* The shared object libltdl will map for DIR/NAME (it tries NAME.la, then
 * NAME.so, then NAME). 0 with `out` set, -1 when there is none. */
static int plugin_loader_candidate(const char *base, char *out, size_t size)
{
    char path[PATH_MAX];
    if (plugin_loader_ends_with(base, ".la"))
        return plugin_loader_from_la(base, out, size);
    if (snprintf(path, sizeof(path), "%s.la", base) < (int)sizeof(path) &&
        plugin_loader_regular(path) && plugin_loader_from_la(path, out, size) == 0)
        return 0;
    static const char *const exts[] = {".so", ""};
    for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
        if (snprintf(out, size, "%s%s", base, exts[i]) < (int)size && plugin_loader_regular(out))
            return 0;
    }
    return -1;
}

/* Maps `so` with every symbol resolved now (RTLD_NOW): a module calling
 * something the daemon does not export is refused here, naming the symbol,
 * instead of killing the daemon at its first call. The handle (to close
 * once libltdl holds the module) goes in *pre; NULL when the file does not
 * load at all (libltdl reports why). -1 after reporting an unresolved symbol. */
static int plugin_loader_resolve_now(struct vipmta_module_ctx *m, const char *so, void **pre,
                                     struct config_errors *errs)
{
    *pre = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (*pre)
        return 0;
    const char *e = dlerror();
    const char *undefined = e ? strstr(e, "undefined symbol: ") : NULL;
    if (!undefined)
        return 0;
    char *real = realpath(so, NULL);
    plugin_loader_fail(errs, m, real ? real : so, "symbols",
                       "expected every symbol to resolve when the module loads, found %s: it "
                       "calls a function the daemon does not export (the public ABI is "
                       "core/plugin/vipmta.dynlist) or one of a library it is not linked "
                       "with; rebuild it against this vipmta's headers and link what it uses",
                       undefined);
    free(real);
    return -1;
}

/* libltdl reports "file not found" even when a file is there but cannot be
 * loaded. When one of the files it tries exists, finds the real reason: the
 * dynamic linker's error for a shared object. 1 with `why` set. */
static int plugin_loader_why_not(const char *base, char *why, size_t size)
{
    static const char *const exts[] = {".la", ".so", ""};

    for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
        char path[PATH_MAX];
        if (snprintf(path, sizeof(path), "%s%s", base, exts[i]) >= (int)sizeof(path) ||
            !plugin_loader_regular(path))
            continue;
        if (plugin_loader_ends_with(path, ".la")) {
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

/* One directory of module_path: 1 opened, 0 not there (last_error updated),
 * -1 refused (reported). */
static int plugin_loader_open_in(struct vipmta_module_ctx *m, const char *base,
                                 lt_dladvise advise, char **last_error, int *informative,
                                 struct config_errors *errs)
{
    char so[PATH_MAX];
    void *pre = NULL;

    if (plugin_loader_precheck(m, base, errs) != 0)
        return -1;
    if (plugin_loader_candidate(base, so, sizeof(so)) == 0 &&
        plugin_loader_resolve_now(m, so, &pre, errs) != 0)
        return -1;
    lt_dlhandle h = lt_dlopenadvise(base, advise);
    if (pre)
        dlclose(pre); /* libltdl's handle keeps the (fully resolved) object */
    if (h) {
        m->handle = h;
        return 1;
    }
    const char *e = lt_dlerror();
    char why[PATH_MAX + 256];
    if ((!e || strcmp(e, "file not found") == 0) && plugin_loader_why_not(base, why, sizeof(why)))
        e = why; /* a file is there: libltdl said "file not found" but it is not */
    int not_found = !e || strcmp(e, "file not found") == 0;
    /* keep the most useful error: a file that exists but fails to load
     * (a wrong architecture, a missing library) beats "file not found" */
    if (!*informative || !not_found) {
        free(*last_error);
        *last_error = strdup(e ? e : "file not found");
        *informative = !not_found;
    }
    return 0;
}

/* Check 1: searches the module path in order; the first directory where
 * libltdl opens the module wins. */
int plugin_loader_open(const struct vipmta_config *cfg, struct vipmta_module_ctx *m,
                       struct config_errors *errs)
{
    lt_dladvise advise;
    char *tried = NULL;         /* "DIR1, DIR2" */
    size_t tried_len = 0;
    char *last_error = NULL;
    int informative = 0;        /* last_error is more than "file not found" */
    int rc = -1, r = 0;

    if (!*m->config_name || strchr(m->config_name, '/')) {
        config_errors_add(errs, "modules[%zu] (\"%s\"): cannot open module: expected a file name "
                          "without '/', found %s: put the module into a module_path directory "
                          "and list it by its name",
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
    for (size_t d = 0; d < cfg->module_path_count && r == 0; d++) {
        const char *dir = cfg->module_path[d];
        char base[PATH_MAX];
        if (snprintf(base, sizeof(base), "%s/%s", dir, m->config_name) >= (int)sizeof(base))
            continue;
        char *grown = realloc(tried, tried_len + strlen(dir) + 3);
        if (!grown)
            break;
        tried = grown;
        tried_len += (size_t)sprintf(tried + tried_len, "%s%s", tried_len ? ", " : "", dir);
        r = plugin_loader_open_in(m, base, advise, &last_error, &informative, errs);
    }
    if (r < 0)
        goto out; /* refused: the error is already there */
    if (!m->handle) {
        config_errors_add(errs, "modules[%zu] (\"%s\"): cannot open module: %s %s (last error: %s)",
                          m->index, m->config_name,
                          informative ? "not loadable from" : "not found in",
                          tried ? tried : "(module_path is empty)",
                          last_error ? last_error : "none");
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
