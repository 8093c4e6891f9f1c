/* vipmta_options.h: the module kit's option readers (checked getters with path-aware errors) and the per-binding/per-domain scopes of a module's options. */
#ifndef VIPMTA_OPTIONS_H
#define VIPMTA_OPTIONS_H

#include <stddef.h>
#include "vipmta_binding.h"
#include "vipmta_module.h"
#include "vipmta_value.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- paths ----
 * Errors name an option by its path below the options object being read:
 * "tos", "keepalive.idle", "rules[2].cidr". Paths longer than this are cut. */
#define VIPMTA_OPTION_PATH_MAX 512

/* "PREFIX.KEY" (just "KEY" when prefix is NULL or empty) into buf; returns buf. */
const char *vipmta_option_path(char *buf, size_t size, const char *prefix, const char *key);
/* "PREFIX[I]" into buf; returns buf. */
const char *vipmta_option_path_index(char *buf, size_t size, const char *prefix, size_t i);

/* ---- checked readers ----
 * Each reads member `key` of `object` (found at `path`) - or, with key NULL,
 * `object` itself as the value at `path` - and returns:
 *    0  absent (nothing written; optional options simply skip it),
 *    1  read into *out,
 *   -1  wrong; the error was reported at PATH.KEY with vipmta_module_error(),
 *       in the words every module uses ("must be ..., not ..."),
 * so that a parser counts errors with `errors += r < 0`. */

/* An integer from min to max: "must be an integer from MIN to MAX, not X". */
int vipmta_option_int(vipmta_module_ctx *m, const vipmta_value *object, const char *path,
                      const char *key, long long min, long long max, long long *out);
/* true or false: "must be true or false, not X". */
int vipmta_option_bool(vipmta_module_ctx *m, const vipmta_value *object, const char *path,
                       const char *key, int *out);
/* A non-empty string without NUL bytes, `what` saying what it is for the
 * message: "must be WHAT, not X" (X "an empty string" too). *out points into
 * the configuration: copy it to keep it. */
int vipmta_option_string(vipmta_module_ctx *m, const vipmta_value *object, const char *path,
                         const char *key, const char *what, const char **out);
/* One of the NULL-terminated `choices`; *out is its index:
 * "must be \"a\" or \"b\", not \"c\"" ("\"a\", \"b\" or \"c\"" for three). */
int vipmta_option_choice(vipmta_module_ctx *m, const vipmta_value *object, const char *path,
                         const char *key, const char *const *choices, int *out);
/* Shape checks of a value already in hand: 0 when `v` is an object (an
 * array), else reports "must be WHAT, not X" at `path` and returns -1. */
int vipmta_option_object(vipmta_module_ctx *m, const vipmta_value *v, const char *path,
                         const char *what);
int vipmta_option_array(vipmta_module_ctx *m, const vipmta_value *v, const char *path,
                        const char *what);
/* Reports each key of `object` (at `path`) that is not in the NULL-terminated
 * `allowed` list: `unknown key "X" (allowed: a, b)`. A non-object is reported
 * as "must be an object, not X". Returns the number of errors. */
int vipmta_module_check_keys(vipmta_module_ctx *m, const vipmta_value *object, const char *path,
                             const char *const *allowed);

/* ---- scopes ----
 * A `modules` entry may give options per binding, per destination domain and
 * per binding x domain next to its global `options` (Momentum's Binding,
 * Domain and Binding:Domain scopes):
 *   {"name": "sockopt", "options": {...},
 *    "bindings": {"vip1": {...}}, "domains": {"example.com": {...}},
 *    "binding_domains": {"vip1": {"example.com": {...}}}}
 * The core checks the shape (binding names exist, domain names are names,
 * each holds an object) and that the module declared the scope in its
 * descriptor (`scopes`); the module validates what each object holds. */
enum vipmta_scope_kind {
    VIPMTA_SCOPE_GLOBAL = 0,        /* the entry's "options" */
    VIPMTA_SCOPE_BINDING = 1,       /* "bindings": {"NAME": {...}} */
    VIPMTA_SCOPE_DOMAIN = 2,        /* "domains": {"DOMAIN": {...}} */
    VIPMTA_SCOPE_BINDING_DOMAIN = 3 /* "binding_domains": {"NAME": {"DOMAIN": {...}}} */
};

typedef struct vipmta_scope {
    enum vipmta_scope_kind kind;
    ec_binding_slot slot;   /* the binding's slot; EC_BINDING_SLOT_UNBOUND without one */
    const char *binding;    /* the binding's name, NULL without one */
    const char *domain;     /* the domain, lower case; NULL without one */
    const vipmta_value *options;
} vipmta_scope;

/* Returns the number of errors found in `scope->options` (reported with
 * vipmta_module_error), or -1 to stop the walk (out of memory). */
typedef int (*vipmta_scope_fn)(vipmta_module_ctx *m, const vipmta_scope *scope, void *arg);

/* Calls fn for the global options, then each binding's, each domain's and
 * each binding x domain's object, in config order, of the entry being
 * configured or reloaded (outside configure and reload: the entry in force).
 * While fn runs, vipmta_module_error() paths are relative to that object:
 * `modules[I].bindings.vip1.PATH`. The strings in `scope` are valid during the
 * call. Returns the sum of fn's results, or -1 when fn returned -1. */
int vipmta_module_foreach_scope(vipmta_module_ctx *m, vipmta_scope_fn fn, void *arg);

#ifdef __cplusplus
}
#endif
#endif
