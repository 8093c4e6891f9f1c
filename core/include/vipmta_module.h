/* vipmta_module.h: what a module exports (its descriptor) and the core services it may call. */
#ifndef VIPMTA_MODULE_H
#define VIPMTA_MODULE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "vipmta_abi.h"
#include "vipmta_log.h"

#ifdef __cplusplus
extern "C" {
#endif

struct event_base;

/* The core's handle for one loaded module; opaque to modules. */
typedef struct vipmta_module_ctx vipmta_module_ctx;

/* Lifecycle, in this order:
 *   configure(m, options)  validate options strictly, report every problem
 *                          with vipmta_module_error(), keep what is needed;
 *                          return 0, or non-zero when anything was wrong.
 *                          Called by `vipmta -t` too: no side effects beyond
 *                          memory (open no files, start nothing).
 *   init(m)                register hooks, open files, start timers; non-zero
 *                          fails the start (report with vipmta_module_error).
 *   reload(m, options)     optional: new options, applied atomically (validate
 *                          everything first); non-zero keeps the old ones.
 *   shutdown(m)            optional: release everything; called in reverse
 *                          load order on exit.
 * `options` is the module's `options` object from the config (an empty object
 * when absent). Every callback runs on the event-loop thread. */
typedef struct vipmta_module_descriptor {
    uint32_t magic;          /* VIPMTA_MODULE_MAGIC */
    uint16_t abi_major;      /* VIPMTA_MODULE_ABI_MAJOR at build time */
    uint16_t abi_minor;      /* VIPMTA_MODULE_ABI_MINOR at build time */
    uint32_t struct_size;    /* sizeof(vipmta_module_descriptor) at build time */
    const char *name;        /* unique module name, e.g. "sockopt" */
    const char *version;     /* module version, e.g. "1.0.0" */
    const char *description; /* one line */
    int (*configure)(vipmta_module_ctx *m, const json_t *options);
    int (*init)(vipmta_module_ctx *m);
    int (*reload)(vipmta_module_ctx *m, const json_t *options);
    void (*shutdown)(vipmta_module_ctx *m);
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

/* The module's name as loaded. */
const char *vipmta_module_name(const vipmta_module_ctx *m);
/* The module's position in the config's `modules` list. */
int vipmta_module_index(const vipmta_module_ctx *m);

/* Private data for the module's own use. */
void vipmta_module_set_data(vipmta_module_ctx *m, void *data);
void *vipmta_module_get_data(const vipmta_module_ctx *m);

/* Reports a configuration error. `path` is relative to the module's options
 * ("tos", "bindings.vip1.mark", "rules[2].cidr"; NULL for the options object
 * itself); the core prints it as `modules[I].options.PATH: MESSAGE`. */
void vipmta_module_error(vipmta_module_ctx *m, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reports each key of `object` (at `path`) that is not in the NULL-terminated
 * `allowed` list, naming the allowed ones. Returns the number of errors. */
int vipmta_module_check_keys(vipmta_module_ctx *m, const json_t *object, const char *path,
                             const char *const *allowed);

/* The daemon's event loop (libevent), for timers and asynchronous I/O.
 * Available from init() on; NULL under `vipmta -M`, which runs init only to
 * list the hooks. Single-threaded: use it only from the thread that calls
 * the module's hooks (the loop's own). */
struct event_base *vipmta_event_base(void);

#ifdef __cplusplus
}
#endif
#endif
