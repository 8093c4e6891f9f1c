/* deliver.h: the delivery engine: connections per (domain, binding), the SMTP client, outcomes. */
#ifndef VIPMTA_CORE_DELIVER_H
#define VIPMTA_CORE_DELIVER_H

#include "config/config.h"
#include "domain_record.h"

struct event_base;

int deliver_init(struct event_base *base, const struct vipmta_config *cfg,
                  struct config_errors *errs);
/* Ready work exists for (dr, slot): open connections up to the limits.
 * This is the queue's ready callback. */
void deliver_kick(domain_record *dr, ec_binding_slot slot, void *arg);
/* Stops opening connections and closes the open ones (QUIT when idle). */
void deliver_shutdown(void);
/* Reload: `cfg` from now on (the previous one must stay alive). */
void deliver_set_config(const struct vipmta_config *cfg);

#endif
