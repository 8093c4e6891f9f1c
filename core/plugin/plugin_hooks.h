/* plugin_hooks.h: the core's hook registry: which chains exist and which module registered what. */
#ifndef VIPMTA_CORE_PLUGIN_HOOKS_H
#define VIPMTA_CORE_PLUGIN_HOOKS_H

#include <stdio.h>
#include "vipmta_hook.h"

/* Registrations made from now on are attributed to `module_name` (NULL: "core"). */
void plugin_hooks_set_registering_module(const char *module_name);
/* Name of the module that registered entry `index` of `chain`. */
const char *plugin_hooks_owner(const struct vipmta_hook_chain *chain, int index);
/* Name of the module whose hook stopped the chain's last call (non-zero return). */
const char *plugin_hooks_last_stop_owner(const struct vipmta_hook_chain *chain);
/* Every hook chain the core defines. */
struct vipmta_hook_chain *const *plugin_hooks_all(size_t *count);
/* Writes "  hook_name (position P of N)" for each entry `module_name` registered. */
void plugin_hooks_describe_module(FILE *out, const char *module_name);
/* Empties every chain (tests, shutdown). */
void plugin_hooks_reset_all(void);
/* Removes every entry `module_name` registered (a module that failed to
 * start during a reload). */
void plugin_hooks_remove_owner(const char *module_name);

#endif
