/* hooks/core/check_outbound_conn_throttle.h: the check_outbound_conn_throttle hook: a module holds new connections of a (domain, binding) until a time (Momentum's names and signature). */
#ifndef VIPMTA_HOOKS_CORE_CHECK_OUTBOUND_CONN_THROTTLE_H
#define VIPMTA_HOOKS_CORE_CHECK_OUTBOUND_CONN_THROTTLE_H

#include "module-hooks.h"
#include "domain_record.h"
#include <sys/time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Runs on the delivery loop before each new outbound connection to `dr`
 * from binding `binding_id`. Return 0 to allow it; non-zero: no new
 * connection for that (domain, binding) before *later (the provider fills
 * it in; left unset, or in the past: 1 s from now). Open connections go on
 * with their work. The first non-zero return stops the chain; the core logs
 * once per episode (when the throttle starts and when it ends), not per
 * check.
 *
 *   typedef int ec_hook_core_check_outbound_conn_throttle_func_t(void *closure,
 *           int binding_id, domain_record *dr, struct timeval *now, struct timeval *later);
 *   int  has_core_check_outbound_conn_throttle_hook(void);
 *   void register_core_check_outbound_conn_throttle_hook_first(ec_hook_core_check_outbound_conn_throttle_func_t *hook, void *closure);
 *   void register_core_check_outbound_conn_throttle_hook_last(ec_hook_core_check_outbound_conn_throttle_func_t *hook, void *closure);
 *   int  call_core_check_outbound_conn_throttle_hook(binding_id, dr, now, later);
 */
#define VIPMTA_HOOK_CORE_CHECK_OUTBOUND_CONN_THROTTLE(X)                                    \
    X(core, int, check_outbound_conn_throttle,                                              \
      (void *closure, int binding_id, domain_record *dr, struct timeval *now, struct timeval *later), \
      (int binding_id, domain_record * dr, struct timeval * now, struct timeval * later),   \
      (EC_HOOK_CLOSURE, binding_id, dr, now, later),                                        \
      if (EC_HOOK_RETVAL != 0) EC_HOOK_RETURN(EC_HOOK_RETVAL))

VIPMTA_HOOK_CORE_CHECK_OUTBOUND_CONN_THROTTLE(VIPMTA_DECLARE_CORE_HOOK)

#ifdef __cplusplus
}
#endif
#endif
