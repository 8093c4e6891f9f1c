/* delivery.h: the delivery engine: connections per (domain, binding), the SMTP client, outcomes. */
#ifndef VIPMTA_DELIVERY_H
#define VIPMTA_DELIVERY_H

#include "config.h"
#include "domain_record.h"

struct event_base;

int delivery_init(struct event_base *base, const struct vipmta_config *cfg,
                  struct vipmta_errors *errs);
/* Ready work exists for (dr, slot): open connections up to the limits.
 * This is the queue's ready callback. */
void delivery_kick(domain_record *dr, ec_binding_slot slot, void *arg);
/* Stops opening connections and closes the open ones (QUIT when idle). */
void delivery_shutdown(void);
/* Reload: `cfg` from now on (the previous one must stay alive). */
void delivery_set_config(const struct vipmta_config *cfg);

#endif
