/* ec_message.h: Momentum's message API for vipmta: ec_message, its envelope and size, and the binding change (ec_message_change_binding_slot). */
#ifndef VIPMTA_MOMENTUM_EC_MESSAGE_H
#define VIPMTA_MOMENTUM_EC_MESSAGE_H

#include <stddef.h>
#include "vipmta_message.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ec_message, accept_construct and validate_context are vipmta_message.h's
 * (opaque: read them through the accessors there). */

/* ec_message_get_envelope's flags (values not documented by Momentum;
 * vipmta's): FROM or TO, not both, optionally with COMPLETE. */
#define EC_MSG_ENV_FROM 0x1
#define EC_MSG_ENV_TO 0x2
#define EC_MSG_ENV_COMPLETE 0x4

/* The envelope sender (EC_MSG_ENV_FROM) or recipient (EC_MSG_ENV_TO: a
 * Momentum message has one; vipmta gives the first of a message at
 * acceptance, the one the event is about on the delivery side): its local
 * part into `localpart` (llen octets with the NUL) and its domain into
 * `domain` (dlen), or with EC_MSG_ENV_COMPLETE the whole address into
 * `localpart` (domain untouched, may be NULL). *isnull (may be NULL) is 1
 * for the null sender <>, whose parts are "". Returns 1, or 0 when flags
 * name neither or both, the message has no such address, or a part does
 * not fit its buffer (nothing written then). */
int ec_message_get_envelope(ec_message *mess, int flags, char *localpart, int llen, char *domain,
                            int dlen, int *isnull);
/* The message's size as it will be sent (vipmta_message_size). */
size_t ec_message_get_message_size(ec_message *mess);

/* ec_message_change_binding_slot's special slots (values not documented by
 * Momentum; vipmta's): choose again in the message's group (the
 * binding_group_choose_binding hook, then the core's round-robin; a message
 * without a group keeps its binding), always or only when it has none (a
 * vipmta message always has one: nothing happens). */
#define EC_BINDING_SLOT_REBIND_IF_NOT_BOUND (-2)
#define EC_BINDING_SLOT_REBIND_ALWAYS (-3)
/* Gives the message binding `newslot` (vipmta_message_set_binding: when and
 * what it does), or one of the specials above. Momentum returns nothing: a
 * refusal (unknown slot, not allowed now) is logged. */
void ec_message_change_binding_slot(ec_message *mess, ec_binding_slot newslot);
/* A binding of group `group` for the message, chosen as the core does
 * without modules (weighted round-robin over the bindings that can be used
 * now); EC_BINDING_SLOT_UNBOUND for an unknown group or when none can be
 * used (Momentum: the default binding). It does not assign it: follow with
 * ec_message_change_binding_slot. */
ec_binding_slot ec_message_select_binding_by_group(ec_message *msg, const char *group);

#ifdef __cplusplus
}
#endif
#endif
