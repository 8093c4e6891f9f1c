/* hooks/core/final_validation2.h: the final_validation2 hook: the end-of-DATA message hook that may reject or defer (Momentum's names and signature). */
#ifndef VIPMTA_HOOKS_CORE_FINAL_VALIDATION2_H
#define VIPMTA_HOOKS_CORE_FINAL_VALIDATION2_H

#include "module-hooks.h"
#include "vipmta_message.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Runs once per message at the end of DATA, on the event-loop thread that
 * received it, before the message is spooled (its envelope is the commit
 * point): the reply to the client (250, or the 5xx/4xx) follows the outcome.
 * The binding is chosen by then (vipmta_message_binding). A provider reads
 * the message (vipmta_message_read, vipmta_message_get_headers), may add
 * header fields (vipmta_message_add_header) and returns
 *   EC_HOOK_CONT   go on (the next provider runs);
 *   EC_HOOK_DONE   reject: 550 5.7.1, or the reply set with
 *                  vipmta_validate_set_reply(ctx, "5xx x.y.z text");
 *   EC_HOOK_RETRY  defer: 451 4.7.1, or the reply set ("4xx x.y.z text").
 * The first DONE or RETRY stops the chain; nothing is spooled then and the
 * line logged names the module. Work that must not block the loop suspends
 * the message (vipmta_message_suspend) and returns EC_HOOK_CONT.
 * final_validation (the void hook) runs after this chain when it neither
 * rejected nor deferred.
 *
 *   typedef int ec_hook_core_final_validation2_func_t(void *closure,
 *           ec_message *msg, accept_construct *ac, validate_context *ctx);
 *   int  has_core_final_validation2_hook(void);
 *   void register_core_final_validation2_hook_first(ec_hook_core_final_validation2_func_t *hook, void *closure);
 *   void register_core_final_validation2_hook_last(ec_hook_core_final_validation2_func_t *hook, void *closure);
 *   int  call_core_final_validation2_hook(msg, ac, ctx);
 */
#define VIPMTA_HOOK_CORE_FINAL_VALIDATION2(X)                                                \
    X(core, int, final_validation2,                                                         \
      (void *closure, ec_message *msg, accept_construct *ac, validate_context *ctx),         \
      (ec_message * msg, accept_construct * ac, validate_context * ctx),                    \
      (EC_HOOK_CLOSURE, msg, ac, ctx),                                                      \
      if (EC_HOOK_RETVAL != EC_HOOK_CONT) EC_HOOK_RETURN(EC_HOOK_RETVAL))

VIPMTA_HOOK_CORE_FINAL_VALIDATION2(VIPMTA_DECLARE_CORE_HOOK)

#ifdef __cplusplus
}
#endif
#endif
