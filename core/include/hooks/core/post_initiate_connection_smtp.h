/* hooks/core/post_initiate_connection_smtp.h: the post_initiate_connection_smtp hook: after each attempt to initiate an outbound SMTP connection (Momentum's names and signature). */
#ifndef VIPMTA_HOOKS_CORE_POST_INITIATE_CONNECTION_SMTP_H
#define VIPMTA_HOOKS_CORE_POST_INITIATE_CONNECTION_SMTP_H

#include "module-hooks.h"
#include "domain_record.h"
#include <sys/time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Runs on the delivery loop after each attempt to open a connection to a
 * host of `dr` from binding `binding_slot`: `conn_fd` is the socket
 * (connect() in progress), or a negative value, -(CONN_ERROR_* bits), when
 * the attempt failed before connect() completed (socket, bind, a post-bind
 * veto, connect() failing at once); every provider runs.
 *
 *   typedef void ec_hook_core_post_initiate_connection_smtp_func_t(void *closure,
 *           domain_record *dr, int binding_slot, struct timeval *now, int conn_fd);
 *   int  has_core_post_initiate_connection_smtp_hook(void);
 *   void register_core_post_initiate_connection_smtp_hook_first(ec_hook_core_post_initiate_connection_smtp_func_t *hook, void *closure);
 *   void register_core_post_initiate_connection_smtp_hook_last(ec_hook_core_post_initiate_connection_smtp_func_t *hook, void *closure);
 *   void call_core_post_initiate_connection_smtp_hook(dr, binding_slot, now, conn_fd);
 */
#define VIPMTA_HOOK_CORE_POST_INITIATE_CONNECTION_SMTP(X)                                   \
    X(core, post_initiate_connection_smtp,                                                  \
      (void *closure, domain_record *dr, int binding_slot, struct timeval *now, int conn_fd), \
      (domain_record * dr, int binding_slot, struct timeval * now, int conn_fd),            \
      (EC_HOOK_CLOSURE, dr, binding_slot, now, conn_fd))

VIPMTA_HOOK_CORE_POST_INITIATE_CONNECTION_SMTP(VIPMTA_DECLARE_CORE_VOID_HOOK)

#ifdef __cplusplus
}
#endif
#endif
