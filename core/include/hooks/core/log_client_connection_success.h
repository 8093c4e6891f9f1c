/* hooks/core/log_client_connection_success.h: the log_client_connection_success hook: an outbound connection attempt succeeded (Momentum's names and signature). */
#ifndef VIPMTA_HOOKS_CORE_LOG_CLIENT_CONNECTION_SUCCESS_H
#define VIPMTA_HOOKS_CORE_LOG_CLIENT_CONNECTION_SUCCESS_H

#include "module-hooks.h"
#include "vipmta_connection.h"
#include <sys/time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Runs on the delivery loop when an outbound connection to `addr` from
 * binding `binding_slot` for `dr` is established (TCP connected); every
 * provider runs. (Momentum: any thread.)
 *
 *   typedef void ec_hook_core_log_client_connection_success_func_t(void *closure,
 *           struct sockaddr *addr, domain_record *dr, int binding_slot, struct timeval *now);
 *   int  has_core_log_client_connection_success_hook(void);
 *   void register_core_log_client_connection_success_hook_first(ec_hook_core_log_client_connection_success_func_t *hook, void *closure);
 *   void register_core_log_client_connection_success_hook_last(ec_hook_core_log_client_connection_success_func_t *hook, void *closure);
 *   void call_core_log_client_connection_success_hook(addr, dr, binding_slot, now);
 */
#define VIPMTA_HOOK_CORE_LOG_CLIENT_CONNECTION_SUCCESS(X)                                   \
    X(core, log_client_connection_success,                                                  \
      (void *closure, struct sockaddr *addr, domain_record *dr, int binding_slot, struct timeval *now), \
      (struct sockaddr * addr, domain_record * dr, int binding_slot, struct timeval * now), \
      (EC_HOOK_CLOSURE, addr, dr, binding_slot, now))

VIPMTA_HOOK_CORE_LOG_CLIENT_CONNECTION_SUCCESS(VIPMTA_DECLARE_CORE_VOID_HOOK)

#ifdef __cplusplus
}
#endif
#endif
