/* plugin_momentum.h: the loader's side of Momentum-style modules (a generic_module_infrastructure instead of a native descriptor). */
#ifndef VIPMTA_CORE_PLUGIN_MOMENTUM_H
#define VIPMTA_CORE_PLUGIN_MOMENTUM_H

#include "config/config_errors.h"

struct vipmta_module_ctx;
struct config_module;

/* Checks the exported generic_module_infrastructure `sym` (its EC_MODULE_INIT
 * record: magic, ABI, type; the callbacks Momentum requires or deprecates)
 * and sets up the instance m->ec. 0, or -1 with the error appended. */
int plugin_momentum_check(struct vipmta_module_ctx *m, void *sym, struct config_errors *errs);
/* conf_setup (once per module, its options are registered there; a
 * singleton's hooks too), then the instance's option values from its entry,
 * checked against the registered options. 0, or -1 with errors appended. */
int plugin_momentum_configure(struct vipmta_module_ctx *m, struct config_errors *errs);
/* ext_init as Momentum starts an instance: at start-up INIT with
 * EC_MODULE_INIT_PRIVILEGED then POSTINIT; an instance a reload adds, INIT
 * alone. 0, or -1 with the error appended. */
int plugin_momentum_init(struct vipmta_module_ctx *m, struct config_errors *errs, int at_start);
/* Checks the option values of `cm` without keeping them (a reload's first
 * phase). 0, or -1 with errors appended. */
int plugin_momentum_validate(struct vipmta_module_ctx *m, const struct config_module *cm,
                             struct config_errors *errs);
/* A reload: the values of m->entry replace the old ones, then a new
 * generation of the instance starts (ext_init INIT) and the old one ends
 * (DESTROY). On failure the old values and generation stay: -1. */
int plugin_momentum_reload(struct vipmta_module_ctx *m, struct config_errors *errs);
/* ext_init DESTROY (non-singletons), then everything of m->ec is freed. */
void plugin_momentum_shutdown(struct vipmta_module_ctx *m);
/* module_description of the module. */
const char *plugin_momentum_description(const struct vipmta_module_ctx *m);

/* Names `m` as the instance whose code runs on this thread (a hook of a
 * Momentum instance, through plugin_hooks.c): its fetches read its options.
 * Returns the one named before, for plugin_momentum_leave. */
struct vipmta_module_ctx *plugin_momentum_enter(struct vipmta_module_ctx *m);
void plugin_momentum_leave(struct vipmta_module_ctx *was);

/* ---- shared by plugin_momentum*.c (which include the Momentum headers) ---- */

/* What the opaque types of the Momentum headers are in vipmta: both name
 * the instance (module_instance_data in self->shared._inst, the header in
 * ext_init's `transaction`). */
struct _module_instance_data {
    struct vipmta_module_ctx *ctx;
};
struct _ec_config_header {
    struct vipmta_module_ctx *ctx;
};

struct plugin_ec_module;      /* one module (file): its options, its instances */
struct plugin_ec_values;      /* one instance's option values */
struct plugin_entry;

/* The instance whose callback runs on this thread (NULL between callbacks). */
struct vipmta_module_ctx *plugin_momentum_current(void);
/* The first loaded instance of `mod`, NULL when none. */
struct vipmta_module_ctx *plugin_momentum_first_instance(const struct plugin_ec_module *mod);
/* The module record of an instance. */
struct plugin_ec_module *plugin_momentum_module_of(const struct vipmta_module_ctx *m);
/* The values an instance reads. */
const struct plugin_ec_values *plugin_momentum_values_of(const struct vipmta_module_ctx *m);

/* plugin_momentum_config.c: options registered while `mod`'s conf_setup
 * runs belong to it (NULL: registration closes). */
void plugin_ec_config_setup(struct plugin_ec_module *mod);
/* Drops every option `mod` registered (its last instance went). */
void plugin_ec_config_forget(const struct plugin_ec_module *mod);
/* Reads and checks the option values of entry `e` for instance m (errors
 * through vipmta_module_error). NULL when anything was wrong. */
struct plugin_ec_values *plugin_ec_config_read(struct vipmta_module_ctx *m,
                                               const struct plugin_entry *e);
void plugin_ec_config_values_free(struct plugin_ec_values *v);

#endif
