/* binding_select.h: chooses a message's binding at acceptance (default group, ordered rules, X-Binding). */
#ifndef VIPMTA_CORE_BINDING_SELECT_H
#define VIPMTA_CORE_BINDING_SELECT_H

#include <stddef.h>
#include "config/config.h"
#include "vipmta_binding.h"

struct binding_choice {
    const char *group;        /* the group chosen from (NULL: a binding named directly) */
    ec_binding_slot slot;     /* the binding */
};

/* Rules are tried in config order, first match wins: sender domain, any
 * recipient's domain, the user the client authenticated as (`auth_user`,
 * NULL: none), or the X-Binding header (only honoured when
 * `client_may_relay`; it names a binding or a group). Without a match:
 * default_binding_group, else the `default` binding. A binding named by a
 * rule or X-Binding is the message's even when it cannot be used now (its
 * mail waits for it); from a group, an available member is chosen, else one
 * that waits. Mail never goes to another binding than the configuration
 * says. */
void binding_select(const struct vipmta_config *cfg, const char *sender,
                    const char *const *rcpts, size_t rcpt_count, const char *x_binding,
                    int client_may_relay, const char *auth_user, struct binding_choice *out);

#endif
