/* plugin_reload.h: module side of a configuration reload: validate new options, reload, load newly enabled modules. */
#ifndef VIPMTA_CORE_PLUGIN_RELOAD_H
#define VIPMTA_CORE_PLUGIN_RELOAD_H

#include <stddef.h>
#include "config/config.h"

struct plugin_reload_plan;

/* Phase 1, no side effects on the running modules: for every module enabled
 * in `cfg` that is loaded and whose options changed, runs its configure() on
 * a scratch handle (then its shutdown()) to validate the new options; every
 * newly enabled module is opened, checked and configured aside. Changes that
 * wait for a restart (a loaded module disabled or removed, options of a
 * module without a reload callback) are appended to `warnings`. NULL with
 * errors appended when anything is wrong. */
struct plugin_reload_plan *plugin_reload_prepare(const struct vipmta_config *old,
                                                 const struct vipmta_config *cfg,
                                                 struct config_errors *errs,
                                                 struct config_errors *warnings);
/* Phase 2: calls reload(new options) of the changed modules in chain order,
 * then adds the new modules in config order and runs their init(). On any
 * failure undoes all of it (old options reloaded, new modules removed) and
 * returns -1 with errors appended. */
int plugin_reload_apply(struct plugin_reload_plan *plan, struct config_errors *errs);
/* What changed, e.g. "modules +connlog, options reloaded: netacl"; "" when nothing. */
void plugin_reload_describe(const struct plugin_reload_plan *plan, char *buf, size_t size);
/* Frees the plan (new modules not added by apply are shut down and closed). */
void plugin_reload_plan_free(struct plugin_reload_plan *plan);

#endif
