/* plugin_momentum.c: Momentum-style modules: checks of the exported generic_module_infrastructure, instances, conf_setup / ext_init phases, ec_mod_debug. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "dns_ds.h"
#include "ec_config.h"
#include "log/log.h"
#include "module.h"
#include "plugin_hooks.h"
#include "plugin_internal.h"
#include "plugin_momentum.h"
#include "queue/queue_domain.h"

#define PLUGIN_EC_MODULES_MAX 32
#define PLUGIN_EC_INSTANCES_MAX 32

/* One Momentum module (one exported infrastructure) and its instances. */
struct plugin_ec_module {
    generic_module_infrastructure *exported; /* NULL: a free record */
    int singleton;
    int setup_done;                           /* conf_setup succeeded */
    struct vipmta_module_ctx *instances[PLUGIN_EC_INSTANCES_MAX];
    size_t count;
};

struct plugin_momentum_instance {
    struct _module_instance_data inst;  /* self->shared._inst points here */
    struct _ec_config_header header;    /* ext_init's transaction */
    struct plugin_ec_module *module;
    generic_module_infrastructure *self; /* a copy per generation; a singleton's own */
    struct plugin_ec_values *values;
    int started;                          /* ext_init INIT succeeded */
};

static struct plugin_ec_module plugin_ec_modules[PLUGIN_EC_MODULES_MAX];
static __thread struct vipmta_module_ctx *plugin_momentum_running;

struct vipmta_module_ctx *plugin_momentum_current(void)
{
    return plugin_momentum_running;
}

struct vipmta_module_ctx *plugin_momentum_enter(struct vipmta_module_ctx *m)
{
    struct vipmta_module_ctx *was = plugin_momentum_running;
    plugin_momentum_running = m;
    return was;
}

void plugin_momentum_leave(struct vipmta_module_ctx *was)
{
    plugin_momentum_running = was;
}

struct vipmta_module_ctx *plugin_momentum_first_instance(const struct plugin_ec_module *mod)
{
    return mod && mod->count ? mod->instances[0] : NULL;
}

struct plugin_ec_module *plugin_momentum_module_of(const struct vipmta_module_ctx *m)
{
    return m && m->ec ? m->ec->module : NULL;
}

const struct plugin_ec_values *plugin_momentum_values_of(const struct vipmta_module_ctx *m)
{
    return m && m->ec ? m->ec->values : NULL;
}

const char *plugin_momentum_description(const struct vipmta_module_ctx *m)
{
    return m && m->ec ? m->ec->module->exported->shared.module_description : NULL;
}

/* ---- checks ---- */

static struct plugin_ec_module *plugin_momentum_module(generic_module_infrastructure *exported)
{
    struct plugin_ec_module *free_rec = NULL;
    for (size_t i = 0; i < PLUGIN_EC_MODULES_MAX; i++) {
        if (plugin_ec_modules[i].exported == exported)
            return &plugin_ec_modules[i];
        if (!plugin_ec_modules[i].exported && !free_rec)
            free_rec = &plugin_ec_modules[i];
    }
    if (free_rec) {
        memset(free_rec, 0, sizeof(*free_rec));
        free_rec->exported = exported;
    }
    return free_rec;
}

/* The deprecated callbacks a Momentum 3 module leaves NULL. */
static const char *plugin_momentum_deprecated(const shared_module_infrastructure_8 *s)
{
    if (s->module_conf)
        return "module_conf";
    if (s->module_ext_conf)
        return "module_ext_conf";
    if (s->module_init)
        return "module_init";
    if (s->module_post_init)
        return "module_post_init";
    if (s->module_enable)
        return "module_enable";
    if (s->module_can_unload)
        return "module_can_unload";
    return NULL;
}

/* Checks the EC_MODULE_INIT record and the callbacks; the failed check is
 * reported and -1 returned. */
static int plugin_momentum_check_record(struct vipmta_module_ctx *m,
                                        const shared_module_infrastructure_8 *s,
                                        struct config_errors *errs)
{
    uint32_t v = s->module_api_version;
    unsigned major = (v >> 16) & 0xFFu, minor = (v >> 8) & 0xFFu, type = (v >> 4) & 0xFu;
    const char *dep = plugin_momentum_deprecated(s);
    if ((v >> 24) != 0xECu) {
        plugin_loader_fail(errs, m, m->file, "EC_MODULE_INIT",
                           "expected 0xec in the top byte of module_api_version, found 0x%08x: "
                           "not a module infrastructure made with EC_MODULE_INIT() from "
                           "vipmta's module.h; rebuild it against vipmta's Momentum headers "
                           "(pkg-config --cflags vipmta-momentum)",
                           (unsigned)v);
        return -1;
    }
    if (major != VIPMTA_MODULE_ABI_MAJOR) {
        plugin_loader_fail(errs, m, m->file, "ABI major",
                           "expected %d, found %u: rebuild the module against this vipmta's "
                           "headers (module ABI %d.%d)",
                           VIPMTA_MODULE_ABI_MAJOR, major, VIPMTA_MODULE_ABI_MAJOR,
                           VIPMTA_MODULE_ABI_MINOR);
        return -1;
    }
    if (minor > VIPMTA_MODULE_ABI_MINOR) {
        plugin_loader_fail(errs, m, m->file, "ABI minor",
                           "expected at most %d, found %u: the module needs a newer vipmta; "
                           "upgrade vipmta or rebuild the module against this vipmta's headers "
                           "(module ABI %d.%d)",
                           VIPMTA_MODULE_ABI_MINOR, minor, VIPMTA_MODULE_ABI_MAJOR,
                           VIPMTA_MODULE_ABI_MINOR);
        return -1;
    }
    if (type != EC_MODULE_TYPE_GENERIC && type != EC_MODULE_TYPE_SINGLETON) {
        plugin_loader_fail(errs, m, m->file, "module type",
                           "expected EC_MODULE_TYPE_GENERIC or EC_MODULE_TYPE_SINGLETON in "
                           "EC_MODULE_INIT(), found %u",
                           type);
        return -1;
    }
    if (!s->module_config_setup || !s->module_ext_init) {
        plugin_loader_fail(errs, m, m->file, "callbacks",
                           "expected conf_setup and ext_init (Momentum requires both), found "
                           "no %s: define it in the infrastructure",
                           !s->module_config_setup ? "conf_setup" : "ext_init");
        return -1;
    }
    if (dep) {
        plugin_loader_fail(errs, m, m->file, "callbacks",
                           "expected the deprecated callbacks to be NULL, found %s set: move "
                           "its work to conf_setup or ext_init (Momentum 3 no longer calls it)",
                           dep);
        return -1;
    }
    if (type == EC_MODULE_TYPE_SINGLETON && m->instance) {
        plugin_loader_fail(errs, m, m->file, "instance",
                           "expected no \"instance\" for a singleton module "
                           "(EC_MODULE_TYPE_SINGLETON), found \"%s\": remove it, a singleton "
                           "runs once",
                           m->instance);
        return -1;
    }
    return 0;
}

int plugin_momentum_check(struct vipmta_module_ctx *m, void *sym, struct config_errors *errs)
{
    generic_module_infrastructure *exported = sym;
    if (plugin_momentum_check_record(m, &exported->shared, errs) != 0)
        return -1;
    struct plugin_ec_module *mod = plugin_momentum_module(exported);
    struct plugin_momentum_instance *inst = calloc(1, sizeof(*inst));
    if (!mod || !inst || mod->count == PLUGIN_EC_INSTANCES_MAX) {
        free(inst);
        plugin_loader_fail(errs, m, m->file, "instances", "too many Momentum modules or "
                           "instances (at most %d each)", PLUGIN_EC_INSTANCES_MAX);
        return -1;
    }
    mod->singleton = ((exported->shared.module_api_version >> 4) & 0xFu) ==
                     EC_MODULE_TYPE_SINGLETON;
    if (mod->singleton && mod->count) {
        free(inst);
        plugin_loader_fail(errs, m, m->file, "module name",
                           "expected a singleton module once, found it listed again (already "
                           "loaded as modules[%zu]): list it once",
                           mod->instances[0]->index);
        return -1;
    }
    if (mod->singleton) {
        inst->self = exported;
    } else if ((inst->self = malloc(sizeof(*inst->self)))) {
        memcpy(inst->self, exported, sizeof(*inst->self));
    } else {
        free(inst);
        return -1;
    }
    inst->inst.ctx = m;
    inst->header.ctx = m;
    inst->module = mod;
    inst->self->shared._inst = &inst->inst;
    mod->instances[mod->count++] = m;
    m->ec = inst;
    return 0;
}

/* ---- lifecycle ---- */

/* Calls ext_init(self, flags) as instance m; its output (an error text)
 * lands in `out`. */
static int plugin_momentum_ext_init(struct vipmta_module_ctx *m,
                                    generic_module_infrastructure *self, int flags, string *out)
{
    struct vipmta_module_ctx *kept = plugin_momentum_running;
    plugin_momentum_running = m;
    int rc = self->shared.module_ext_init(self, &m->ec->header, out, flags);
    plugin_momentum_running = kept;
    return rc;
}

static void plugin_momentum_failed(struct vipmta_module_ctx *m, const char *what, int rc,
                                   const string *out, struct config_errors *errs)
{
    const char *why = out->buffer && *out->buffer ? out->buffer : NULL;
    size_t n = why ? strlen(why) : 0;
    while (n && (why[n - 1] == '\n' || why[n - 1] == '\r'))
        n--;
    if (errs)
        config_errors_add(errs, "modules[%zu] (\"%s\"): %s: %s failed (returned %d)%s%.*s",
                          m->index, m->config_name, m->file, what, rc, why ? ": " : "", (int)n,
                          why ? why : "");
    else
        log_write(m->label, VIPMTA_LOG_ERROR, "%s failed (returned %d)%s%.*s", what, rc,
                  why ? ": " : "", (int)n, why ? why : "");
}

int plugin_momentum_configure(struct vipmta_module_ctx *m, struct config_errors *errs)
{
    struct plugin_momentum_instance *inst = m->ec;
    struct plugin_ec_module *mod = inst->module;
    if (!mod->setup_done) {
        struct vipmta_module_ctx *kept = plugin_momentum_running;
        plugin_momentum_running = m;
        plugin_ec_config_setup(mod);
        plugin_hooks_begin_generation(m, mod->singleton ? NULL : inst->self);
        int rc = inst->self->shared.module_config_setup(inst->self, 0);
        plugin_hooks_end_init();
        plugin_ec_config_setup(NULL);
        plugin_momentum_running = kept;
        if (rc != 0 || m->reported) {
            if (!m->reported)
                config_errors_add(errs, "modules[%zu] (\"%s\"): %s: conf_setup failed "
                                  "(returned %d)", m->index, m->config_name, m->file, rc);
            return -1;
        }
        mod->setup_done = 1;
    }
    if (!(inst->values = plugin_ec_config_read(m, &m->entry)))
        return -1;
    return 0;
}

int plugin_momentum_init(struct vipmta_module_ctx *m, struct config_errors *errs, int at_start)
{
    struct plugin_momentum_instance *inst = m->ec;
    string out = {0};
    /* Momentum's start-up sequence: INIT with PRIVILEGED (POSTINIT follows),
     * then POSTINIT; an instance started by a reload gets INIT alone */
    int flags = EC_MODULE_INIT_INIT | (at_start ? EC_MODULE_INIT_PRIVILEGED : 0);
    plugin_hooks_begin_generation(m, inst->module->singleton ? NULL : inst->self);
    int rc = plugin_momentum_ext_init(m, inst->self, flags, &out);
    const char *phase = "ext_init(EC_MODULE_INIT_INIT)";
    if (rc == 0) {
        inst->started = 1;
        if (at_start) {
            phase = "ext_init(EC_MODULE_INIT_POSTINIT)";
            rc = plugin_momentum_ext_init(m, inst->self, EC_MODULE_INIT_POSTINIT, &out);
        }
    }
    plugin_hooks_end_init();
    if (rc != 0)
        plugin_momentum_failed(m, phase, rc, &out, errs);
    free(out.buffer);
    return rc == 0 ? 0 : -1;
}

int plugin_momentum_validate(struct vipmta_module_ctx *m, const struct config_module *cm,
                             struct config_errors *errs)
{
    struct plugin_entry e = {0};
    size_t kept = m->index;
    plugin_entry_set(&e, cm);
    m->index = cm->index;
    m->errs = errs;
    m->reported = 0;
    struct plugin_ec_values *v = plugin_ec_config_read(m, &e);
    m->errs = NULL;
    m->index = kept;
    plugin_entry_clear(&e);
    plugin_ec_config_values_free(v);
    return v ? 0 : -1;
}

int plugin_momentum_reload(struct vipmta_module_ctx *m, struct config_errors *errs)
{
    struct plugin_momentum_instance *inst = m->ec;
    struct plugin_ec_values *old_values = inst->values, *values = plugin_ec_config_read(m, &m->entry);
    generic_module_infrastructure *old_self = inst->self, *self = old_self;
    string out = {0};
    if (!values)
        return -1;
    if (!inst->module->singleton) { /* a new generation: its own self, its own hooks */
        if (!(self = malloc(sizeof(*self)))) {
            plugin_ec_config_values_free(values);
            return -1;
        }
        memcpy(self, inst->module->exported, sizeof(*self));
        self->shared._inst = &inst->inst;
    }
    inst->values = values;
    plugin_hooks_begin_generation(m, inst->module->singleton ? NULL : self);
    int rc = plugin_momentum_ext_init(m, self, EC_MODULE_INIT_INIT, &out);
    plugin_hooks_end_init();
    if (rc != 0) {
        plugin_momentum_failed(m, "ext_init(EC_MODULE_INIT_INIT)", rc, &out, errs);
        if (self != old_self) {
            plugin_hooks_remove_generation(m, self);
            free(self);
        }
        inst->values = old_values;
        plugin_ec_config_values_free(values);
        free(out.buffer);
        return -1;
    }
    if (self != old_self) { /* the old generation ends */
        plugin_hooks_remove_generation(m, old_self);
        inst->self = self;
        plugin_momentum_ext_init(m, old_self, EC_MODULE_INIT_DESTROY, &out);
        free(old_self);
    }
    plugin_ec_config_values_free(old_values);
    free(out.buffer);
    return 0;
}

void plugin_momentum_shutdown(struct vipmta_module_ctx *m)
{
    struct plugin_momentum_instance *inst = m->ec;
    if (!inst)
        return;
    struct plugin_ec_module *mod = inst->module;
    string out = {0};
    if (inst->started && !mod->singleton)
        plugin_momentum_ext_init(m, inst->self, EC_MODULE_INIT_DESTROY, &out);
    free(out.buffer);
    if (mod->singleton)
        inst->self->shared._inst = NULL;
    else
        free(inst->self);
    plugin_ec_config_values_free(inst->values);
    for (size_t i = 0; i < mod->count; i++) {
        if (mod->instances[i] != m)
            continue;
        memmove(mod->instances + i, mod->instances + i + 1,
                (mod->count - i - 1) * sizeof(*mod->instances));
        mod->count--;
        break;
    }
    if (!mod->count) { /* its definitions go with its code */
        plugin_ec_config_forget(mod);
        memset(mod, 0, sizeof(*mod));
    }
    free(inst);
    m->ec = NULL;
}

/* ---- services ---- */

static void plugin_momentum_emit(const char *label, enum vipmta_log_level level, const char *fmt,
                                 ...) __attribute__((format(printf, 3, 4)));
static void plugin_momentum_emit(const char *label, enum vipmta_log_level level, const char *fmt,
                                 ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_emitv(label, level, fmt, ap);
    va_end(ap);
}

void ec_mod_vdebug(generic_module_infrastructure *mod, int level, const char *fmt, va_list arg)
{
    static const enum vipmta_log_level levels[] = {VIPMTA_LOG_DEBUG, VIPMTA_LOG_INFO,
                                                   VIPMTA_LOG_NOTICE, VIPMTA_LOG_WARNING,
                                                   VIPMTA_LOG_ERROR, VIPMTA_LOG_ERROR};
    const struct vipmta_module_ctx *m = mod && mod->shared._inst ? mod->shared._inst->ctx : NULL;
    int threshold = m && m->debug_level >= 0 ? m->debug_level : DERROR;
    char msg[2048];
    if (level < threshold)
        return;
    if (level < DDEBUG)
        level = DDEBUG;
    if (level > DCRITICAL)
        level = DCRITICAL;
    vsnprintf(msg, sizeof(msg), fmt, arg);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    plugin_momentum_emit(m ? m->label : "module", levels[level], "%s%s",
                         level == DCRITICAL ? "critical: " : "", msg);
}

void ec_mod_debug(generic_module_infrastructure *mod, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ec_mod_vdebug(mod, level, fmt, ap);
    va_end(ap);
}

string *stringprintf(string *str, const char *format, ...)
{
    va_list ap;
    char *add = NULL;
    if (!str || !format)
        return str;
    va_start(ap, format);
    int n = vasprintf(&add, format, ap);
    va_end(ap);
    if (n < 0)
        return str;
    size_t need = (size_t)(str->len > 0 ? str->len : 0) + (size_t)n + 1;
    if (need > (size_t)str->allocd) {
        char *grown = realloc(str->buffer, need);
        if (!grown) {
            free(add);
            return str;
        }
        str->buffer = grown;
        str->allocd = (int)need;
    }
    memcpy(str->buffer + (str->len > 0 ? str->len : 0), add, (size_t)n + 1);
    str->len += n;
    free(add);
    return str;
}

domain_record *dns_get_domain(const char *domain)
{
    return domain ? queue_domain_find(domain) : NULL;
}

const char *config_get_binding_group(generic_module_infrastructure *caller_scope, int slot)
{
    (void)caller_scope;
    const vipmta_binding *b = vipmta_binding_by_slot(slot);
    return b ? b->group : NULL;
}
