/* hooks/core/binding_group_choose_binding.h: the binding_group_choose_binding hook: a module picks the binding of a group for a message (Momentum's names and signature). */
#ifndef VIPMTA_HOOKS_CORE_BINDING_GROUP_CHOOSE_BINDING_H
#define VIPMTA_HOOKS_CORE_BINDING_GROUP_CHOOSE_BINDING_H

#include "module-hooks.h"
#include "vipmta_message.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Runs whenever the core picks a binding of a group for a message: at
 * acceptance (a binding rule, X-Binding or default_binding_group named a
 * group) on the loop that received it, and when mail must move (its binding
 * can no longer be used, or a post-bind veto asked for another binding) on
 * the delivery loop; with several inbound loops both may run at once: a
 * provider keeping state (a round-robin position) locks it. `msg` is the
 * message (at acceptance) or a queued message seen through one of its
 * recipients; vipmta_message_binding(msg) is its binding so far and
 * vipmta_message_excluded_binding(msg) the one it must leave (a veto), else
 * EC_BINDING_SLOT_UNBOUND. Return a slot of `binding_group`, or
 * EC_BINDING_SLOT_UNBOUND to let the next provider, then the core's
 * weighted round-robin, decide: the first slot other than
 * EC_BINDING_SLOT_UNBOUND wins. A slot that is not a member of the group,
 * cannot be used now, or is the excluded one is refused (logged, naming the
 * module) and the core decides. Keep it fast.
 *
 *   typedef int ec_hook_core_binding_group_choose_binding_func_t(void *closure,
 *           ec_message *msg, const char *binding_group);
 *   int  has_core_binding_group_choose_binding_hook(void);
 *   void register_core_binding_group_choose_binding_hook_first(ec_hook_core_binding_group_choose_binding_func_t *hook, void *closure);
 *   void register_core_binding_group_choose_binding_hook_last(ec_hook_core_binding_group_choose_binding_func_t *hook, void *closure);
 *   int  call_core_binding_group_choose_binding_hook(msg, binding_group);
 */
#define VIPMTA_HOOK_CORE_BINDING_GROUP_CHOOSE_BINDING(X)                                    \
    X(core, int, binding_group_choose_binding,                                              \
      (void *closure, ec_message *msg, const char *binding_group),                          \
      (ec_message * msg, const char * binding_group),                                       \
      (EC_HOOK_CLOSURE, msg, binding_group),                                                \
      if (EC_HOOK_RETVAL != EC_BINDING_SLOT_UNBOUND) EC_HOOK_RETURN(EC_HOOK_RETVAL))

VIPMTA_HOOK_CORE_BINDING_GROUP_CHOOSE_BINDING(VIPMTA_DECLARE_CORE_HOOK)

#ifdef __cplusplus
}
#endif
#endif
