/* vipmta_module.h: what a module exports (its descriptor) and the core services it may call. */
#ifndef VIPMTA_MODULE_H
#define VIPMTA_MODULE_H

#include <stddef.h>
#include <stdint.h>
#include "vipmta_abi.h"
#include "vipmta_log.h"
#include "vipmta_value.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The core's handle for one module instance (one entry of the config's
 * `modules` list); opaque to modules. */
typedef struct vipmta_module_ctx vipmta_module_ctx;

/* Scopes a module reads options from besides its `options` object (bits of
 * vipmta_module_descriptor.scopes; vipmta_options.h walks them). */
#define VIPMTA_SCOPES_BINDING (1u << 1)         /* the entry's "bindings" */
#define VIPMTA_SCOPES_DOMAIN (1u << 2)          /* "domains" */
#define VIPMTA_SCOPES_BINDING_DOMAIN (1u << 3)  /* "binding_domains" */
#define VIPMTA_SCOPES_ALL                                                                    \
    (VIPMTA_SCOPES_BINDING | VIPMTA_SCOPES_DOMAIN | VIPMTA_SCOPES_BINDING_DOMAIN)

/* Lifecycle, in this order, per instance:
 *   configure(m, options)  validate options strictly, report every problem
 *                          with vipmta_module_error(), keep what is needed;
 *                          return 0, or non-zero when anything was wrong.
 *                          Called by `vipmta -t` too: no side effects beyond
 *                          memory (open no files, start nothing).
 *   init(m)                register hooks (only here), open files, start
 *                          timers; non-zero fails the start (report with
 *                          vipmta_module_error).
 *   reload(m, options)     optional: new options, applied atomically (validate
 *                          everything first); non-zero keeps the old ones.
 *                          Hooks cannot be registered here.
 *   shutdown(m)            optional: release everything; called in reverse
 *                          load order on exit.
 * `options` is the entry's `options` object (an empty object when absent).
 * Every callback runs on the event-loop thread. */
typedef struct vipmta_module_descriptor {
    uint32_t magic;          /* VIPMTA_MODULE_MAGIC */
    uint16_t abi_major;      /* VIPMTA_MODULE_ABI_MAJOR at build time */
    uint16_t abi_minor;      /* VIPMTA_MODULE_ABI_MINOR at build time */
    uint32_t struct_size;    /* sizeof(vipmta_module_descriptor) at build time */
    const char *name;        /* unique module name, e.g. "sockopt" */
    const char *version;     /* module version, e.g. "1.0.0" */
    const char *description; /* one line */
    int (*configure)(vipmta_module_ctx *m, const vipmta_value *options);
    int (*init)(vipmta_module_ctx *m);
    int (*reload)(vipmta_module_ctx *m, const vipmta_value *options);
    void (*shutdown)(vipmta_module_ctx *m);
    /* VIPMTA_SCOPES_* the module reads with vipmta_module_foreach_scope();
     * the core refuses a config entry giving options at any other scope. */
    unsigned scopes;
} vipmta_module_descriptor;

/* Fills the header fields of a descriptor initialiser. */
#define VIPMTA_MODULE_HEADER(mod_name, mod_version, mod_description)                   \
    .magic = VIPMTA_MODULE_MAGIC, .abi_major = VIPMTA_MODULE_ABI_MAJOR,                 \
    .abi_minor = VIPMTA_MODULE_ABI_MINOR, .struct_size = sizeof(vipmta_module_descriptor), \
    .name = (mod_name), .version = (mod_version), .description = (mod_description)

/* The one symbol the loader looks up in every module: a function returning
 * the module's descriptor (a function, not a data symbol, is the portable form). */
#define VIPMTA_MODULE_DESCRIPTOR_SYMBOL "vipmta_module_get_descriptor"
const vipmta_module_descriptor *vipmta_module_get_descriptor(void);

/* Exports `descriptor` (a static const vipmta_module_descriptor) as the module's. */
#define VIPMTA_MODULE_EXPORT(descriptor)                                        \
    __attribute__((visibility("default"))) const vipmta_module_descriptor *     \
    vipmta_module_get_descriptor(void)                                          \
    {                                                                           \
        return &(descriptor);                                                   \
    }

/* The module's name as loaded ("sockopt"). */
const char *vipmta_module_name(const vipmta_module_ctx *m);
/* The entry's "instance" name, NULL when it has none. Log lines and hook
 * listings name an instance NAME:INSTANCE. */
const char *vipmta_module_instance(const vipmta_module_ctx *m);
/* The instance's position in the config's `modules` list. */
int vipmta_module_index(const vipmta_module_ctx *m);

/* Private data for the instance's own use. */
void vipmta_module_set_data(vipmta_module_ctx *m, void *data);
void *vipmta_module_get_data(const vipmta_module_ctx *m);

/* The parsed options: keeps `config` as the instance's (the one kept before
 * is freed with its own free function, after the new one is in place) and
 * returns 0; with `config` NULL (the parse failed and said why) keeps the old
 * one and returns -1. configure and reload are then one line each:
 *     return vipmta_module_keep_config(m, mymod_parse(m, options), mymod_free);
 * The core frees the last one after shutdown(). */
int vipmta_module_keep_config(vipmta_module_ctx *m, void *config, void (*free_config)(void *));
/* The config kept last (NULL before the first). */
void *vipmta_module_config(const vipmta_module_ctx *m);

/* Reports a configuration error. `path` is relative to the options object
 * being read ("tos", "keepalive.idle", "rules[2].cidr"; NULL for the object
 * itself); the core prints it as `modules[I].options.PATH: MESSAGE`, or
 * `modules[I].bindings.NAME.PATH: ...` while vipmta_module_foreach_scope()
 * visits that binding's options. */
void vipmta_module_error(vipmta_module_ctx *m, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif

/* The option readers, scopes (vipmta_options.h) and the event loop
 * (vipmta_event.h) come with the module API. */
#include "vipmta_options.h"
#include "vipmta_event.h"

#endif
