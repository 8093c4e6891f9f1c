/* module_internal.h: the loader's private state, shared by module_loader.c and module_api.c. */
#ifndef VIPMTA_MODULE_INTERNAL_H
#define VIPMTA_MODULE_INTERNAL_H

#include <ltdl.h>
#include <stddef.h>

#include "errors.h"
#include "vipmta_module.h"

/* Bytes of the descriptor the core reads (every field of ABI 1.0, up to shutdown). */
#define MODULE_DESCRIPTOR_MIN_SIZE                                                  \
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
    struct vipmta_errors *errs;           /* phase in progress (configure, init); NULL: the log */
    int in_init;                          /* errs belongs to init(), not configure() */
    size_t reported;                      /* errors reported through vipmta_module_error */
    int configured;                       /* configure() was called: shutdown() is owed */
};

#endif
