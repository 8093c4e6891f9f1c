/* hooks/core/log_client_connection_failure.h: the log_client_connection_failure hook: an outbound connection attempt failed (Momentum's names and signature). */
#ifndef VIPMTA_HOOKS_CORE_LOG_CLIENT_CONNECTION_FAILURE_H
#define VIPMTA_HOOKS_CORE_LOG_CLIENT_CONNECTION_FAILURE_H

#include "module-hooks.h"
#include "vipmta_connection.h"
#include <sys/time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Runs on the delivery loop when an outbound connection attempt for `dr`
 * from binding `binding_slot` fails: `err` holds CONN_ERROR_* bits
 * (vipmta_connection.h); `addr` is the host's address, or NULL when the
 * domain's route could not be had (CONN_ERROR_MX_LOOKUP_FAILED,
 * CONN_ERROR_SMTP_NULL_MX). A host skipped by veto_host_connection is no
 * failure. Every provider runs. (Momentum: any thread.)
 *
 *   typedef void ec_hook_core_log_client_connection_failure_func_t(void *closure,
 *           struct sockaddr *addr, int err, domain_record *dr, int binding_slot, struct timeval *now);
 *   int  has_core_log_client_connection_failure_hook(void);
 *   void register_core_log_client_connection_failure_hook_first(ec_hook_core_log_client_connection_failure_func_t *hook, void *closure);
 *   void register_core_log_client_connection_failure_hook_last(ec_hook_core_log_client_connection_failure_func_t *hook, void *closure);
 *   void call_core_log_client_connection_failure_hook(addr, err, dr, binding_slot, now);
 */
#define VIPMTA_HOOK_CORE_LOG_CLIENT_CONNECTION_FAILURE(X)                                   \
    X(core, log_client_connection_failure,                                                  \
      (void *closure, struct sockaddr *addr, int err, domain_record *dr, int binding_slot, struct timeval *now), \
      (struct sockaddr * addr, int err, domain_record * dr, int binding_slot, struct timeval * now), \
      (EC_HOOK_CLOSURE, addr, err, dr, binding_slot, now))

VIPMTA_HOOK_CORE_LOG_CLIENT_CONNECTION_FAILURE(VIPMTA_DECLARE_CORE_VOID_HOOK)

#ifdef __cplusplus
}
#endif
#endif
