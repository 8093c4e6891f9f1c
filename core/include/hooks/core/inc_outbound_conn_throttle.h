/* hooks/core/inc_outbound_conn_throttle.h: the inc_outbound_conn_throttle hook: a new outbound connection was initiated (Momentum's names and signature). */
#ifndef VIPMTA_HOOKS_CORE_INC_OUTBOUND_CONN_THROTTLE_H
#define VIPMTA_HOOKS_CORE_INC_OUTBOUND_CONN_THROTTLE_H

#include "module-hooks.h"
#include "domain_record.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Runs on the delivery loop when a new outbound connection to `dr` from
 * binding `binding_id` is initiated (check_outbound_conn_throttle let it
 * go); every provider runs.
 *
 *   typedef void ec_hook_core_inc_outbound_conn_throttle_func_t(void *closure,
 *           int binding_id, domain_record *dr);
 *   int  has_core_inc_outbound_conn_throttle_hook(void);
 *   void register_core_inc_outbound_conn_throttle_hook_first(ec_hook_core_inc_outbound_conn_throttle_func_t *hook, void *closure);
 *   void register_core_inc_outbound_conn_throttle_hook_last(ec_hook_core_inc_outbound_conn_throttle_func_t *hook, void *closure);
 *   void call_core_inc_outbound_conn_throttle_hook(binding_id, dr);
 */
#define VIPMTA_HOOK_CORE_INC_OUTBOUND_CONN_THROTTLE(X)                                      \
    X(core, inc_outbound_conn_throttle,                                                     \
      (void *closure, int binding_id, domain_record *dr),                                   \
      (int binding_id, domain_record * dr),                                                 \
      (EC_HOOK_CLOSURE, binding_id, dr))

VIPMTA_HOOK_CORE_INC_OUTBOUND_CONN_THROTTLE(VIPMTA_DECLARE_CORE_VOID_HOOK)

#ifdef __cplusplus
}
#endif
#endif
