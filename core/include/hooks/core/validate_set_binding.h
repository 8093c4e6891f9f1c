/* hooks/core/validate_set_binding.h: the validate_set_binding hook: modules set a message's binding at acceptance (the role Momentum's validation callback has). */
#ifndef VIPMTA_HOOKS_CORE_VALIDATE_SET_BINDING_H
#define VIPMTA_HOOKS_CORE_VALIDATE_SET_BINDING_H

#include "module-hooks.h"
#include "vipmta_message.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Runs once per message at the end of DATA, on the loop that received it,
 * after the core chose the binding (rules, X-Binding, groups and
 * binding_group_choose_binding) and before final_validation2. A provider
 * sets the binding with ec_message_change_binding_slot(msg, slot) (or
 * vipmta_message_set_binding) and returns EC_HOOK_CONT to let the next
 * provider run, or EC_HOOK_DONE to stop the chain (the binding stays as it
 * is then). post_validate_set_binding runs after the chain when the
 * message's binding changed. (Momentum has validate_set_binding as a
 * callback of its validation framework; vipmta makes it a core hook.)
 *
 *   typedef int ec_hook_core_validate_set_binding_func_t(void *closure,
 *           ec_message *msg);
 *   int  has_core_validate_set_binding_hook(void);
 *   void register_core_validate_set_binding_hook_first(ec_hook_core_validate_set_binding_func_t *hook, void *closure);
 *   void register_core_validate_set_binding_hook_last(ec_hook_core_validate_set_binding_func_t *hook, void *closure);
 *   int  call_core_validate_set_binding_hook(msg);
 */
#define VIPMTA_HOOK_CORE_VALIDATE_SET_BINDING(X)                                            \
    X(core, int, validate_set_binding,                                                      \
      (void *closure, ec_message *msg),                                                     \
      (ec_message * msg),                                                                   \
      (EC_HOOK_CLOSURE, msg),                                                               \
      if (EC_HOOK_RETVAL != EC_HOOK_CONT) EC_HOOK_RETURN(EC_HOOK_RETVAL))

VIPMTA_HOOK_CORE_VALIDATE_SET_BINDING(VIPMTA_DECLARE_CORE_HOOK)

#ifdef __cplusplus
}
#endif
#endif
