/* ec_config.h: Momentum's configuration functions for vipmta: option registration, scoped fetches with fallback, values, and the binding lookups. */
#ifndef VIPMTA_MOMENTUM_EC_CONFIG_H
#define VIPMTA_MOMENTUM_EC_CONFIG_H

#include "configuration.h"
#include "vipmta_binding.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Registers `option` (static: it must live as long as the process) for the
 * module whose conf_setup is running; returns its slot (save it), the same
 * one when the same definition comes again, or -1 (logged: a bad name,
 * type or fallback, or outside conf_setup). */
int ec_config_register_option(ec_config_option_def *option);
/* A value of the option holding nothing (zeros, NULL); release it. */
ec_config_value *ec_config_null_value(int option_slot);
/* The only way to give back a fetched value. Any thread. */
void ec_config_release_value(void *tofree);
/* The configuration in force (a reference; release it with
 * ec_config_release_scope_instance). */
ec_config_header *ec_config_fetch_globalconf(void);
void ec_config_release_scope_instance(void *tofree);

/* Fetches, with the fallback of the option's definition, the most specific
 * value set for the given binding and/or domain, else its default (else a
 * value holding nothing); NULL only for a bad slot. Momentum documents their
 * names, not their parameters; vipmta's:
 *  - `transaction`: the header ext_init received (it names the instance),
 *    or NULL: the instance whose callback runs, else the module's first
 *    instance (pass the header when a module runs as several instances);
 *  - `from`: ignored (Momentum: "generally NULL");
 *  - `binding`: a binding slot; `domain`: a domain name (any case).
 * Release each value with ec_config_release_value(). Any thread. */
ec_config_value *ec_config_option_fetch(ec_config_header *transaction, int option_slot,
                                        ec_config_header *from);
ec_config_value *ec_config_option_fetch_module(ec_config_header *transaction, int option_slot,
                                               generic_module_infrastructure *self);
ec_config_value *ec_config_option_fetch_module_at_init(ec_config_header *transaction,
                                                       int option_slot,
                                                       generic_module_infrastructure *self);
ec_config_value *ec_config_option_fetch_binding(ec_config_header *transaction, int option_slot,
                                                ec_config_header *from, int binding);
ec_config_value *ec_config_option_fetch_domain(ec_config_header *transaction, int option_slot,
                                               ec_config_header *from, const char *domain);
ec_config_value *ec_config_option_fetch_binding_domain(ec_config_header *transaction,
                                                       int option_slot, ec_config_header *from,
                                                       int binding, const char *domain);

/* The name of the group binding `slot` belongs to (its first), or NULL.
 * caller_scope: "virtually always NULL". */
const char *config_get_binding_group(generic_module_infrastructure *caller_scope, int slot);

#ifdef __cplusplus
}
#endif
#endif
