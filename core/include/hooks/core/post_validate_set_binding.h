/* hooks/core/post_validate_set_binding.h: the post_validate_set_binding hook: after validate_set_binding changed a message's binding (Momentum's names and signature). */
#ifndef VIPMTA_HOOKS_CORE_POST_VALIDATE_SET_BINDING_H
#define VIPMTA_HOOKS_CORE_POST_VALIDATE_SET_BINDING_H

#include "module-hooks.h"
#include "vipmta_message.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Runs after the validate_set_binding chain, and only when the message's
 * binding changed there, on the loop that received the message; every
 * provider runs.
 *
 *   typedef void ec_hook_core_post_validate_set_binding_func_t(void *closure,
 *           ec_message *m);
 *   int  has_core_post_validate_set_binding_hook(void);
 *   void register_core_post_validate_set_binding_hook_first(ec_hook_core_post_validate_set_binding_func_t *hook, void *closure);
 *   void register_core_post_validate_set_binding_hook_last(ec_hook_core_post_validate_set_binding_func_t *hook, void *closure);
 *   void call_core_post_validate_set_binding_hook(m);
 */
#define VIPMTA_HOOK_CORE_POST_VALIDATE_SET_BINDING(X)                                       \
    X(core, post_validate_set_binding,                                                      \
      (void *closure, ec_message *m),                                                       \
      (ec_message * m),                                                                     \
      (EC_HOOK_CLOSURE, m))

VIPMTA_HOOK_CORE_POST_VALIDATE_SET_BINDING(VIPMTA_DECLARE_CORE_VOID_HOOK)

#ifdef __cplusplus
}
#endif
#endif
