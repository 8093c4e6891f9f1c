/* binding_table.h: the core's side of the MultiVIP binding table and binding groups. */
#ifndef VIPMTA_CORE_BINDING_TABLE_H
#define VIPMTA_CORE_BINDING_TABLE_H

#include "config/config.h"
#include "vipmta_binding.h"

/* Builds the table from `cfg` (held until the table is freed or replaced:
 * names point into it): slot 0 is `default` (its address from a
 * binding named "default" if the config has one), then the configured
 * bindings in config order. Returns 0, or -1 with errors appended. */
int binding_table_build(struct vipmta_config *cfg, struct config_errors *errs);
/* Suspends (with a warning naming the binding and address) every binding
 * whose source address is not configured on this host; returns how many. */
int binding_table_check_addresses(void);
void binding_table_free(void);

/* Picks a binding from group `group` (round-robin, by weight), skipping
 * suspended ones; EC_BINDING_SLOT_UNBOUND when the group is unknown or all its
 * bindings are suspended. */
ec_binding_slot binding_group_choose(const char *group);
/* Non-zero when `group` names a configured binding group. */
int binding_group_exists(const char *group);

/* Reload (core/reload.c): builds the table for `cfg` aside, keeping the slot
 * of every binding in use and appending new ones; refuses (errors appended,
 * NULL) a binding that is gone or renamed, a bad address, an unknown group
 * member. Nothing changes until binding_table_swap. */
struct binding_table_saved;
struct binding_table_saved *binding_table_prepare(struct vipmta_config *cfg,
                                                  struct config_errors *errs);
/* Puts `s` in force and returns it holding the table it replaced (swap again
 * to undo). */
struct binding_table_saved *binding_table_swap(struct binding_table_saved *s);
void binding_table_saved_free(struct binding_table_saved *s);

#endif
