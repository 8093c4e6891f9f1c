/* binding_choose.h: the binding of a group for one message: the binding_group_choose_binding hook, checked, then the core's choice. */
#ifndef VIPMTA_CORE_BINDING_CHOOSE_H
#define VIPMTA_CORE_BINDING_CHOOSE_H

#include "vipmta_message.h"

/* The binding of group `group` for `msg`: the first slot a
 * binding_group_choose_binding provider returns, when it is a member of the
 * group, can be used now and is not `exclude` (else the refusal is logged,
 * naming the module); otherwise `fallback` when it is not
 * EC_BINDING_SLOT_UNBOUND (the caller's own choice), else the core's
 * weighted round-robin over the group's usable bindings but `exclude`.
 * EC_BINDING_SLOT_UNBOUND when none can be used. While the hook runs,
 * vipmta_message_excluded_binding(msg) is `exclude` and the message cannot
 * be given a binding (vipmta_message_set_binding: EPERM). */
ec_binding_slot binding_choose(ec_message *msg, const char *group, ec_binding_slot exclude,
                               ec_binding_slot fallback);

#endif
