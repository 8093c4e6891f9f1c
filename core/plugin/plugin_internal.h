/* plugin_internal.h: the loader's private state for one module instance, shared by the plugin_ files. */
#ifndef VIPMTA_CORE_PLUGIN_INTERNAL_H
#define VIPMTA_CORE_PLUGIN_INTERNAL_H

#include <jansson.h>
#include <ltdl.h>
#include <stddef.h>

#include "config/config_errors.h"
#include "vipmta_module.h"

/* Bytes of the descriptor the core reads (every field of ABI 2.0). */
#define PLUGIN_DESCRIPTOR_MIN_SIZE                                                  \
    (offsetof(vipmta_module_descriptor, scopes) +                                   \
     sizeof(((vipmta_module_descriptor *)0)->scopes))

struct config_module;
struct plugin_momentum_instance;
struct plugin_event;

/* What an instance reads its options from: its config entry's objects
 * (references held), and the scopes the core accepted for it. */
struct plugin_entry {
    json_t *options;          /* never NULL once set */
    json_t *bindings;         /* NULL when absent */
    json_t *domains;
    json_t *binding_domains;
};

/* The core's handle for one module instance (vipmta_module_ctx is opaque to
 * modules). One per enabled entry of `modules`; instances of the same file
 * share its handle. */
struct vipmta_module_ctx {
    char *config_name;                    /* the name in the config ("good", "good.so") */
    char *name;                           /* the module's name (descriptor, or Momentum symbol) */
    char *instance;                       /* the entry's "instance", NULL when none */
    char *label;                          /* "NAME" or "NAME:INSTANCE": hooks, logs, -M */
    size_t index;                         /* position in the config's modules list */
    char *file;                           /* the shared object libltdl mapped (real path) */
    lt_dlhandle handle;
    const vipmta_module_descriptor *desc; /* a native module's; NULL for a Momentum one */
    struct plugin_momentum_instance *ec;  /* a Momentum module's instance; NULL when native */
    void *data;                           /* vipmta_module_set_data */
    void *config;                         /* vipmta_module_keep_config */
    void (*free_config)(void *);
    struct plugin_entry entry;            /* the entry configure / reload reads */
    const char *error_scope;              /* "bindings.vip1" while that scope is visited */
    int debug_level;                      /* Momentum's 0 (debug) .. 5; -1: the log's level */
    struct config_errors *errs;           /* phase in progress (configure, init); NULL: the log */
    int in_init;                          /* errs belongs to init(), not configure() */
    size_t reported;                      /* errors reported through vipmta_module_error */
    int configured;                       /* configure() was called: shutdown() is owed */
    struct plugin_event *events;          /* timers and watches it created and did not free */
};

struct vipmta_config;

/* ---- plugin_api.c ---- */

/* Takes references to the objects of `cm` as the instance's entry (the old
 * ones are dropped). */
void plugin_entry_set(struct plugin_entry *e, const struct config_module *cm);
void plugin_entry_clear(struct plugin_entry *e);
/* Non-zero when both hold the same options at every scope. */
int plugin_entry_equal(const struct plugin_entry *a, const struct plugin_entry *b);
/* Frees what vipmta_module_keep_config kept. */
void plugin_api_free_config(struct vipmta_module_ctx *m);
/* Writes a line tagged with the instance's label when `level` passes its
 * debug_level (or the log's level). */
void plugin_api_logv(const struct vipmta_module_ctx *m, enum vipmta_log_level level,
                     const char *fmt, va_list ap);

/* ---- plugin_loader_open.c ---- */

/* Appends `modules[I] ("NAME"): FILE: CHECK: MESSAGE`. */
void plugin_loader_fail(struct config_errors *errs, const struct vipmta_module_ctx *m,
                        const char *file, const char *check, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Refuses a file that it or its directory lets others change (mode, owner). */
int plugin_loader_check_permissions(struct vipmta_module_ctx *m, const char *file,
                                    struct config_errors *errs);
/* Finds m's file on module_path, resolves every symbol, opens it (m->handle,
 * m->file). 0, or -1 with the error appended. */
int plugin_loader_open(const struct vipmta_config *cfg, struct vipmta_module_ctx *m,
                       struct config_errors *errs);

/* ---- plugin_loader.c: for the reload (plugin_reload.c) ---- */

/* The loaded instance at `i` (load order), or NULL. */
struct vipmta_module_ctx *plugin_loader_at(size_t i);
/* Opens, checks and configures the instance of `cm` (searching cfg's
 * module_path) without adding it to the loaded ones: NULL with errors. */
struct vipmta_module_ctx *plugin_loader_open_one(const struct vipmta_config *cfg,
                                                 const struct config_module *cm,
                                                 struct config_errors *errs);
/* Adds an opened instance at the end of the load order and runs its init;
 * on failure its hooks are removed, it is not kept (discard it), -1. */
int plugin_loader_adopt(struct vipmta_module_ctx *m, struct config_errors *errs);
/* Shuts down and closes an instance that is not (or no longer) loaded. */
void plugin_loader_discard(struct vipmta_module_ctx *m);
/* Takes a loaded instance out (hooks, load order), shuts it down, closes it. */
void plugin_loader_remove(struct vipmta_module_ctx *m);
/* The loaded instance whose code holds `addr` (a caller's return address),
 * or NULL. */
const struct vipmta_module_ctx *plugin_loader_instance_at(const void *addr);

/* ---- plugin_event.c ---- */

/* Frees every timer and watch `m` left behind (logged). */
void plugin_event_release_all(struct vipmta_module_ctx *m);

#endif
