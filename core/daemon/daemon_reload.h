/* daemon_reload.h: live configuration reload: validate the whole new config, then apply it or keep the old one. */
#ifndef VIPMTA_CORE_DAEMON_RELOAD_H
#define VIPMTA_CORE_DAEMON_RELOAD_H

#include "config/config.h"

/* Reads the file of the config in force again, validates all of it (schema,
 * bindings, routes, every changed module option, every newly enabled module)
 * and, when good, applies it to the running subsystems and puts it in force
 * (config_install): 0. Else -1 with the reasons in `errs` and nothing
 * changed. Sessions, connections and lookups in progress finish on the
 * config they started with; it is freed when the last of them ends. */
int daemon_reload_config(struct config_errors *errs);

#endif
