/* plugin_loader.h: loads the enabled modules with libltdl, checks their ABI, runs their lifecycle. */
#ifndef VIPMTA_CORE_PLUGIN_LOADER_H
#define VIPMTA_CORE_PLUGIN_LOADER_H

#include <stdio.h>
#include "config/config.h"
#include "vipmta_module.h"

/* Opens every enabled module instance of `cfg` in config order from
 * cfg->module_path, checks it (file and directory owner and permissions,
 * every symbol resolved, descriptor symbol or Momentum infrastructure,
 * magic, ABI major, ABI minor, size, unique name, scopes) and calls its
 * configure() (a Momentum module: conf_setup and its option values).
 * Stops at a module's first failed check but goes on with the next module so
 * `vipmta -t` can print every error. 0 when all loaded and configured. */
int plugin_loader_load(const struct vipmta_config *cfg, struct config_errors *errs);
/* Calls init() of every loaded instance in order (a Momentum module:
 * ext_init INIT, POSTINIT); hooks registered there are attributed to the
 * instance. 0, or -1 with errors. */
int plugin_loader_init(struct config_errors *errs);
/* Writes, per module in load order: name, version, file, description and the
 * hooks it registered in chain order (the -M listing). */
void plugin_loader_describe(FILE *out);
/* Calls shutdown() in reverse order, closes every module, resets hooks. */
void plugin_loader_unload(void);

/* Loaded modules (for vipmtactl). */
size_t plugin_loader_count(void);
const vipmta_module_ctx *plugin_loader_get(size_t i);
const vipmta_module_descriptor *plugin_loader_descriptor(const vipmta_module_ctx *m);
const char *plugin_loader_file(const vipmta_module_ctx *m);
/* "NAME", or "NAME:INSTANCE" for an entry with an instance name: how hooks,
 * log lines and vetoes name it. */
const char *plugin_loader_label(const vipmta_module_ctx *m);

#endif
