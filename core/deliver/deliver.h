/* deliver.h: the delivery engine: connections per (domain, binding), the SMTP client, outcomes. */
#ifndef VIPMTA_CORE_DELIVER_H
#define VIPMTA_CORE_DELIVER_H

#include "config/config.h"
#include "domain_record.h"

struct event_base;

/* Starts the engine on `base`. Each connection holds the config in force
 * when it opens (limits, EHLO name) until it ends. 0, or -1 with errors. */
int deliver_init(struct event_base *base, struct config_errors *errs);
/* Ready work exists for (dr, slot): open connections up to the limits.
 * This is the queue's ready callback. */
void deliver_kick(domain_record *dr, ec_binding_slot slot, void *arg);
/* Stops opening connections and closes the open ones (QUIT when idle). */
void deliver_shutdown(void);

#endif
