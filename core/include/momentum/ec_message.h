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

#ifdef __cplusplus
}
#endif
#endif
