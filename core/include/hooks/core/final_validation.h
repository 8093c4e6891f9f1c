/* hooks/core/final_validation.h: the final_validation hook: the end-of-DATA message hook that observes and adds header fields (Momentum's names and signature). */
#ifndef VIPMTA_HOOKS_CORE_FINAL_VALIDATION_H
#define VIPMTA_HOOKS_CORE_FINAL_VALIDATION_H

#include "module-hooks.h"
#include "vipmta_message.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Runs once per message at the end of DATA, after the final_validation2
 * chain when it neither rejected nor deferred the message (and after every
 * message it suspended was resumed with EC_HOOK_CONT), on the event-loop
 * thread that received it, before the message is spooled. Every provider
 * runs. A provider may read the message, add header fields and suspend it
 * (vipmta_message_suspend; a resume with EC_HOOK_DONE or EC_HOOK_RETRY
 * still rejects or defers it).
 *
 *   typedef void ec_hook_core_final_validation_func_t(void *closure,
 *           ec_message *msg, accept_construct *ac, validate_context *ctx);
 *   int  has_core_final_validation_hook(void);
 *   void register_core_final_validation_hook_first(ec_hook_core_final_validation_func_t *hook, void *closure);
 *   void register_core_final_validation_hook_last(ec_hook_core_final_validation_func_t *hook, void *closure);
 *   void call_core_final_validation_hook(msg, ac, ctx);
 */
#define VIPMTA_HOOK_CORE_FINAL_VALIDATION(X)                                                 \
    X(core, final_validation,                                                               \
      (void *closure, ec_message *msg, accept_construct *ac, validate_context *ctx),         \
      (ec_message * msg, accept_construct * ac, validate_context * ctx),                    \
      (EC_HOOK_CLOSURE, msg, ac, ctx))

VIPMTA_HOOK_CORE_FINAL_VALIDATION(VIPMTA_DECLARE_CORE_VOID_HOOK)

#ifdef __cplusplus
}
#endif
#endif
