/* plugin_hooks.h: the core's hook registry: the chains, who registered what, and the rules of registration. */
#ifndef VIPMTA_CORE_PLUGIN_HOOKS_H
#define VIPMTA_CORE_PLUGIN_HOOKS_H

#include <stdio.h>
#include "vipmta_hook.h"
#include "hooks/core/connection_post_bind.h"
#include "vipmta_tls.h"

struct vipmta_module_ctx;

#define PLUGIN_HOOK_NAME_MAX 96

/* One hook's chain (opaque to modules as struct vipmta_hook). */
struct vipmta_hook {
    struct vipmta_hook_provider *providers;       /* in chain order */
    const struct vipmta_module_ctx **owner_ids;   /* the instance that registered providers[i] */
    const void **tags;                            /* its generation (Momentum modules), or NULL */
    unsigned char *wrapped;                       /* providers[i] is as_instance around a wrap */
    vipmta_hook_fn as_instance;                   /* core hooks: calls a Momentum instance's
                                                   * provider as that instance (its fetches
                                                   * read its options) */
    const char **owners;                          /* its label ("core" when none) */
    int count;
    int capacity;
    const char *name;                             /* "core_connection_post_bind" */
    unsigned long proto_hash;                     /* declared hooks: their providers' prototype */
    int last_stop;                                /* provider that stopped the last call, -1 */
    char declared_name[PLUGIN_HOOK_NAME_MAX];     /* storage of `name` for declared hooks */
};

/* Every hook the core offers, one line each: its X-macro from its public
 * header (core/include/hooks/core/, vipmta_tls.h), which declares it with
 * VIPMTA_DECLARE_CORE_HOOK (given X) or VIPMTA_DECLARE_CORE_VOID_HOOK (given
 * XV: providers that return nothing). plugin_hooks.c defines them from this
 * list. */
#define PLUGIN_CORE_HOOKS(X, XV)                                                             \
    VIPMTA_HOOK_CORE_CONNECTION_POST_BIND(X)                                                 \
    VIPMTA_HOOK_VIPMTA_OUTBOUND_TLS(X)

/* The chains of the core's hooks: plugin_hook_<scope>_<name>. */
#define PLUGIN_DECLARE_CORE_CHAIN(hs, ht, hn, htargs, hdargs, hcargs, hret)                  \
    extern struct vipmta_hook plugin_hook_##hs##_##hn;
#define PLUGIN_DECLARE_CORE_VOID_CHAIN(hs, hn, htargs, hdargs, hcargs)                      \
    extern struct vipmta_hook plugin_hook_##hs##_##hn;
PLUGIN_CORE_HOOKS(PLUGIN_DECLARE_CORE_CHAIN, PLUGIN_DECLARE_CORE_VOID_CHAIN)

/* Opens the registration window for instance `m` (its init, conf_setup or
 * ext_init runs now, on this thread): what is registered until
 * plugin_hooks_end_init() is attributed to it. */
void plugin_hooks_begin_init(const struct vipmta_module_ctx *m);
/* The same, the providers tagged with `generation` (a Momentum instance's
 * infrastructure of one config generation). */
void plugin_hooks_begin_generation(const struct vipmta_module_ctx *m, const void *generation);
void plugin_hooks_end_init(void);
/* Label of the instance that registered provider `index` of `chain`. */
const char *plugin_hooks_owner(const struct vipmta_hook *chain, int index);
/* Label of the instance whose provider stopped the chain's last call. */
const char *plugin_hooks_last_stop_owner(const struct vipmta_hook *chain);
/* Every chain: the core's, then those modules declared. */
struct vipmta_hook *const *plugin_hooks_all(size_t *count);
/* Writes "    hook NAME (position P of N)" for each provider `m` registered. */
void plugin_hooks_describe_module(FILE *out, const struct vipmta_module_ctx *m);
/* Empties every chain (tests, unload). */
void plugin_hooks_reset_all(void);
/* Removes every provider `m` registered (an instance that failed to start,
 * or one that goes). */
void plugin_hooks_remove_owner(const struct vipmta_module_ctx *m);
/* Removes the providers `m` registered in generation `generation`. */
void plugin_hooks_remove_generation(const struct vipmta_module_ctx *m, const void *generation);
/* Non-zero while a hook runs on this thread. */
int plugin_hooks_dispatching(void);

#endif
