/* hooks/core/veto_host_connection.h: the veto_host_connection hook: a module refuses one exchanger of a domain (Momentum's names and signature). */
#ifndef VIPMTA_HOOKS_CORE_VETO_HOST_CONNECTION_H
#define VIPMTA_HOOKS_CORE_VETO_HOST_CONNECTION_H

#include "module-hooks.h"
#include "vipmta_connection.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Runs on the delivery loop before each exchanger host (an MX host at one
 * address, or a route's host) of `dr` is tried from binding `binding_slot`.
 * `max_conns` is the domain's max_connections_per_binding, `cur_conns` the
 * connections open now from that binding to this host's address. Return 1
 * (non-zero) to skip this host: the next one is tried; when every host is
 * skipped the domain's mail from that binding is held for veto_retry. The
 * first non-zero return stops the chain. (vipmta_veto's kinds do not apply
 * here.)
 *
 *   typedef int ec_hook_core_veto_host_connection_func_t(void *closure,
 *           host_record *host, domain_record *dr, int binding_slot, int max_conns, int cur_conns);
 *   int  has_core_veto_host_connection_hook(void);
 *   void register_core_veto_host_connection_hook_first(ec_hook_core_veto_host_connection_func_t *hook, void *closure);
 *   void register_core_veto_host_connection_hook_last(ec_hook_core_veto_host_connection_func_t *hook, void *closure);
 *   int  call_core_veto_host_connection_hook(host, dr, binding_slot, max_conns, cur_conns);
 */
#define VIPMTA_HOOK_CORE_VETO_HOST_CONNECTION(X)                                            \
    X(core, int, veto_host_connection,                                                      \
      (void *closure, host_record *host, domain_record *dr, int binding_slot, int max_conns, int cur_conns), \
      (host_record * host, domain_record * dr, int binding_slot, int max_conns, int cur_conns), \
      (EC_HOOK_CLOSURE, host, dr, binding_slot, max_conns, cur_conns),                      \
      if (EC_HOOK_RETVAL != 0) EC_HOOK_RETURN(EC_HOOK_RETVAL))

VIPMTA_HOOK_CORE_VETO_HOST_CONNECTION(VIPMTA_DECLARE_CORE_HOOK)

#ifdef __cplusplus
}
#endif
#endif
