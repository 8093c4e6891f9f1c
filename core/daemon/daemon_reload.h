/* daemon_reload.h: live configuration reload: validate the whole new config, then apply it or keep the old one. */
#ifndef VIPMTA_CORE_DAEMON_RELOAD_H
#define VIPMTA_CORE_DAEMON_RELOAD_H

#include "config/config.h"

/* Reads (*current)->path again, validates all of it (schema, bindings,
 * routes, every changed module option, every newly enabled module) and, when
 * good, applies it to the running subsystems and makes it *current: 0. Else
 * -1 with the reasons in `errs` and nothing changed. Configs replaced stay
 * allocated until daemon_reload_release_all (sessions, lookups and modules in
 * flight may point into them). */
int daemon_reload_config(struct vipmta_config **current, struct config_errors *errs);
/* Frees every config a reload loaded (not the first one: its owner frees it).
 * Call after the subsystems have stopped. */
void daemon_reload_release_all(void);

#endif
