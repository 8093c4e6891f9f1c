/* hooks/core/connection_post_bind.h: the connection_post_bind hook (Momentum's names and signature). */
#ifndef VIPMTA_HOOKS_CORE_CONNECTION_POST_BIND_H
#define VIPMTA_HOOKS_CORE_CONNECTION_POST_BIND_H

#include <sys/socket.h>
#include "module-hooks.h"
#include "domain_record.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Runs after an outbound socket is bound to its binding's source address and
 * before connect(), on the delivery loop's thread. `fd` is bound,
 * non-blocking and not yet connected; `addr` is what connect() will receive.
 * Return 0 to let the connection proceed; the first non-zero return stops
 * the chain, the core closes the socket without connecting and retries the
 * mail later (a transient failure).
 *
 *   typedef int ec_hook_core_connection_post_bind_func_t(void *closure,
 *           domain_record *dr, int binding_slot, int fd,
 *           struct sockaddr *addr, int addr_len);
 *   int  has_core_connection_post_bind_hook(void);
 *   void register_core_connection_post_bind_hook_first(ec_hook_core_connection_post_bind_func_t *hook, void *closure);
 *   void register_core_connection_post_bind_hook_last(ec_hook_core_connection_post_bind_func_t *hook, void *closure);
 *   int  call_core_connection_post_bind_hook(dr, binding_slot, fd, addr, addr_len);
 */
#define VIPMTA_HOOK_CORE_CONNECTION_POST_BIND(X)                                             \
    X(core, int, connection_post_bind,                                                      \
      (void *closure, domain_record *dr, int binding_slot, int fd, struct sockaddr *addr,    \
       int addr_len),                                                                       \
      (domain_record * dr, int binding_slot, int fd, struct sockaddr *addr, int addr_len),  \
      (EC_HOOK_CLOSURE, dr, binding_slot, fd, addr, addr_len),                              \
      if (EC_HOOK_RETVAL != 0) EC_HOOK_RETURN(EC_HOOK_RETVAL))

VIPMTA_HOOK_CORE_CONNECTION_POST_BIND(VIPMTA_DECLARE_CORE_HOOK)

#ifdef __cplusplus
}
#endif
#endif
