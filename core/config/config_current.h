/* config_current.h: the configuration in force: one reference-counted config that a reload swaps. */
#ifndef VIPMTA_CORE_CONFIG_CURRENT_H
#define VIPMTA_CORE_CONFIG_CURRENT_H

#include "config.h"

/* There is one configuration in force. Code that finishes its work before
 * returning to the event loop reads it with config_current(); anything that
 * keeps using a configuration across callbacks (an SMTP session, an outbound
 * connection, a route lookup) takes its own reference with config_hold() at
 * its start and config_release()s it at its end, so it finishes on the
 * configuration it started with. A reload installs the new one; the old one
 * is freed when its last holder lets go. No subsystem keeps a pointer of
 * its own to "the" configuration. */

/* Puts `cfg` in force, taking over the caller's reference, and releases the
 * one it replaces (NULL: none in force any more, at exit). Loop thread. */
void config_install(struct vipmta_config *cfg);
/* The configuration in force (NULL before the first config_install). Valid
 * until the caller returns to the event loop. */
const struct vipmta_config *config_current(void);
/* A reference to the configuration in force, released with config_release(). */
struct vipmta_config *config_hold(void);

#endif
