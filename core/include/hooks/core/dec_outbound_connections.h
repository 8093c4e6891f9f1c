/* hooks/core/dec_outbound_connections.h: the dec_outbound_connections hook: an established outbound SMTP connection is about to be torn down (Momentum's names and signature). */
#ifndef VIPMTA_HOOKS_CORE_DEC_OUTBOUND_CONNECTIONS_H
#define VIPMTA_HOOKS_CORE_DEC_OUTBOUND_CONNECTIONS_H

#include "module-hooks.h"
#include "vipmta_connection.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Runs on the delivery loop just before an outbound connection that
 * inc_outbound_connections saw is torn down (its session ended, or the
 * daemon stops); every provider runs.
 *
 *   typedef void ec_hook_core_dec_outbound_connections_func_t(void *closure,
 *           connection_handle *connh);
 *   int  has_core_dec_outbound_connections_hook(void);
 *   void register_core_dec_outbound_connections_hook_first(ec_hook_core_dec_outbound_connections_func_t *hook, void *closure);
 *   void register_core_dec_outbound_connections_hook_last(ec_hook_core_dec_outbound_connections_func_t *hook, void *closure);
 *   void call_core_dec_outbound_connections_hook(connh);
 */
#define VIPMTA_HOOK_CORE_DEC_OUTBOUND_CONNECTIONS(X)                                        \
    X(core, dec_outbound_connections,                                                       \
      (void *closure, connection_handle *connh),                                            \
      (connection_handle * connh),                                                          \
      (EC_HOOK_CLOSURE, connh))

VIPMTA_HOOK_CORE_DEC_OUTBOUND_CONNECTIONS(VIPMTA_DECLARE_CORE_VOID_HOOK)

#ifdef __cplusplus
}
#endif
#endif
