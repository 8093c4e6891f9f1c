/* binding_table.h: the core's side of the MultiVIP binding table and binding groups. */
#ifndef VIPMTA_CORE_BINDING_TABLE_H
#define VIPMTA_CORE_BINDING_TABLE_H

#include <stdint.h>

#include "config/config.h"
#include "vipmta_binding.h"

/* Builds the table from `cfg` (held until the table is freed or replaced:
 * names point into it): slot 0 is `default` (its address from a
 * binding named "default" if the config has one), then the configured
 * bindings in config order. Returns 0, or -1 with errors appended. */
int binding_table_build(struct vipmta_config *cfg, struct config_errors *errs);
/* Suspends every binding whose source address is not configured on this
 * host (and resumes the others), with one warning each appended to
 * `warnings`, naming the binding and the address and saying where its mail
 * goes meanwhile; returns how many are suspended. */
int binding_table_check_addresses(struct config_errors *warnings);
void binding_table_free(void);

/* Non-zero when mail may leave from binding `slot` now: it exists, is in the
 * configuration and its address is on this host. Mail assigned to another
 * binding waits: no connection is made from it, and never from another
 * address instead. */
int binding_available(ec_binding_slot slot);
/* A binding that is not in the configuration but that queued mail names (the
 * mail of a binding removed before a restart): added as an absent binding
 * (suspended for good) so that its mail waits for it and shows up in
 * vipmtactl. Its slot, or EC_BINDING_SLOT_UNBOUND (a known name, out of
 * memory). Pointers from vipmta_binding_by_slot/by_name taken before are no
 * longer valid. */
ec_binding_slot binding_table_add_absent(const char *name);
/* The warning for absent binding `slot` with `waiting` recipients queued on it. */
void binding_table_describe_absent(ec_binding_slot slot, uint64_t waiting,
                                   struct config_errors *warnings);

/* Picks a binding from group `group` (round-robin, by weight), skipping
 * suspended and absent ones; EC_BINDING_SLOT_UNBOUND when the group is unknown
 * or none of its bindings is available. */
ec_binding_slot binding_group_choose(const char *group);
/* The same, never choosing `exclude` (EC_BINDING_SLOT_UNBOUND: none). */
ec_binding_slot binding_group_choose_except(const char *group, ec_binding_slot exclude);
/* Non-zero when `slot` is a member of group `group`. */
int binding_group_has(const char *group, ec_binding_slot slot);
/* Like binding_group_choose, but when no binding of the group is available
 * its first member (the mail then waits for a binding of its group);
 * EC_BINDING_SLOT_UNBOUND only for an unknown or empty group. */
ec_binding_slot binding_group_choose_any(const char *group);
/* Non-zero when `group` names a configured binding group. */
int binding_group_exists(const char *group);

/* Reload (daemon/daemon_reload.c): builds the table for `cfg` aside, keeping the slot
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
