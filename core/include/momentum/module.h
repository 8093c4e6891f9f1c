/* module.h: Momentum's module API for vipmta: generic_module_infrastructure, EC_MODULE_INIT/EXPORT, ext_init phases, module_private_data, ec_mod_debug and the D* levels. */
#ifndef VIPMTA_MOMENTUM_MODULE_H
#define VIPMTA_MOMENTUM_MODULE_H

#include <stdarg.h>
#include "shared_module.h"
#include "vipmta_abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/* As Momentum documents it: the member `shared` only. */
struct _generic_module_infrastructure {
    shared_module_infrastructure_8 shared;
};

/* Momentum's modules read and write `self->module_private_data` (a void *,
 * the one member a module may change), which the documented struct lacks.
 * vipmta keeps it in `shared._proxy` (which it does not otherwise use), so
 * the documented {{ ... }} initialiser stays complete: every instance of a
 * non-singleton module gets its own copy of the exported struct, hence its
 * own private data (NULL to start with). */
#define module_private_data shared._proxy

/* Module types (values not documented by Momentum; vipmta's): a generic
 * module may run as several instances (`"instance"` in the config entry),
 * a singleton once. */
#define EC_MODULE_TYPE_GENERIC 1
#define EC_MODULE_TYPE_SINGLETON 2

/* EC_MODULE_INIT(type, flags): the first three members. vipmta records in
 * module_api_version a marker (0xEC in the top byte), the module ABI the
 * module was built against (major, minor), the type and the flags (0..15);
 * the loader checks them as it checks a native descriptor. */
#define VIPMTA_EC_MODULE_API_VERSION(type, flags)                                            \
    (0xEC000000u | ((uint32_t)VIPMTA_MODULE_ABI_MAJOR << 16) |                               \
     ((uint32_t)VIPMTA_MODULE_ABI_MINOR << 8) | (((uint32_t)(type)&0xFu) << 4) |             \
     ((uint32_t)(flags)&0xFu))
#define EC_MODULE_INIT(type, flags)                                                          \
    VIPMTA_EC_MODULE_API_VERSION(type, flags), (module_instance_data *)0, (void *)0

/* Put before the exported generic_module_infrastructure: the loader finds
 * it under the module's name (the name in the config). */
#define EC_MODULE_EXPORT __attribute__((visibility("default")))

/* ext_init's flags (values not documented by Momentum; vipmta's). As
 * Momentum does, vipmta calls ext_init at start-up with EC_MODULE_INIT_INIT
 * and EC_MODULE_INIT_PRIVILEGED, then with EC_MODULE_INIT_POSTINIT (vipmta
 * has dropped root by then: PRIVILEGED says "start-up, POSTINIT follows");
 * an instance a reload starts (new, or a new generation after its options
 * changed) gets EC_MODULE_INIT_INIT alone, and the generation it replaces
 * EC_MODULE_INIT_DESTROY, as does every non-singleton instance at shutdown. */
#define EC_MODULE_INIT_INIT 1
#define EC_MODULE_INIT_POSTINIT 2
#define EC_MODULE_INIT_DESTROY 3
#define EC_MODULE_INIT_PRIVILEGED 0x100
#define EC_MODULE_INIT_MODE(flags) ((flags)&0xFF)

/* Debug levels (Momentum's Debug_Flags table: 0 to 5). */
#define DDEBUG 0
#define DINFO 1
#define DNOTICE 2
#define DWARNING 3
#define DERROR 4
#define DCRITICAL 5

/* Logs on behalf of the instance `mod` when `level` is at or above its
 * debug_level (the config entry's "debug_level", default "error" as in
 * Momentum), tagged with the instance's name; a trailing newline is dropped.
 * Any thread. */
void ec_mod_debug(generic_module_infrastructure *mod, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ec_mod_vdebug(generic_module_infrastructure *mod, int level, const char *fmt, va_list arg);

/* Momentum's growable string (misc/ec_string.h), as ext_init's `output` and
 * the control callback's `response`. */
typedef struct _io_object io_object;
struct _ec_string {
    int len;
    int allocd;
    char *buffer;
    int type;
    io_object *backing;
};
/* Appends printf-style text to `str` (whose buffer the core allocated or
 * NULL); returns str. An error written to ext_init's output is shown to the
 * operator when ext_init fails. */
string *stringprintf(string *str, const char *format, ...) __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif
#endif
