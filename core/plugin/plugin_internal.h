/* plugin_internal.h: the loader's private state, shared by module_loader.c and module_api.c. */
#ifndef VIPMTA_CORE_PLUGIN_INTERNAL_H
#define VIPMTA_CORE_PLUGIN_INTERNAL_H

#include <ltdl.h>
#include <stddef.h>

#include "config/config_errors.h"
#include "vipmta_module.h"

/* Bytes of the descriptor the core reads (every field of ABI 1.0, up to shutdown). */
#define PLUGIN_DESCRIPTOR_MIN_SIZE                                                  \
    (offsetof(vipmta_module_descriptor, shutdown) +                                 \
     sizeof(((vipmta_module_descriptor *)0)->shutdown))

/* The core's handle for one module (vipmta_module_ctx is opaque to modules). */
struct vipmta_module_ctx {
    char *config_name;                    /* the name in the config ("good", "good.so") */
    char *name;                           /* the descriptor's name, copied (hooks, logs, -M) */
    size_t index;                         /* position in the config's modules list */
    char *file;                           /* the shared object libltdl mapped (real path) */
    lt_dlhandle handle;
    const vipmta_module_descriptor *desc;
    void *data;                           /* vipmta_module_set_data */
    struct config_errors *errs;           /* phase in progress (configure, init); NULL: the log */
    int in_init;                          /* errs belongs to init(), not configure() */
    size_t reported;                      /* errors reported through vipmta_module_error */
    int configured;                       /* configure() was called: shutdown() is owed */
};

struct vipmta_config;
struct config_module;

/* For the reload (core/module_reload.c). The loaded module at `i` (load
 * order), or NULL. */
struct vipmta_module_ctx *plugin_loader_at(size_t i);
/* Opens, checks and configures the module of `cm` (searching cfg's
 * module_path) without adding it to the loaded ones: NULL with errors. */
struct vipmta_module_ctx *plugin_loader_open_one(const struct vipmta_config *cfg,
                                                 const struct config_module *cm,
                                                 struct config_errors *errs);
/* Adds an opened module at the end of the load order and runs its init();
 * on failure its hooks are removed, it is not kept (discard it), -1. */
int plugin_loader_adopt(struct vipmta_module_ctx *m, struct config_errors *errs);
/* Shuts down and closes a module that is not (or no longer) loaded. */
void plugin_loader_discard(struct vipmta_module_ctx *m);
/* Takes a loaded module out (hooks, load order), shuts it down, closes it. */
void plugin_loader_remove(struct vipmta_module_ctx *m);

#endif
