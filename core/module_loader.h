/* module_loader.h: loads the enabled modules with libltdl, checks their ABI, runs their lifecycle. */
#ifndef VIPMTA_MODULE_LOADER_H
#define VIPMTA_MODULE_LOADER_H

#include <stdio.h>
#include "config.h"
#include "vipmta_module.h"

/* Opens every enabled module of `cfg` in config order from cfg->module_path,
 * checks it (file opened, descriptor symbol, magic, ABI major, ABI minor,
 * unique name, file and directory permissions) and calls its configure().
 * Stops at a module's first failed check but goes on with the next module so
 * `vipmta -t` can print every error. 0 when all loaded and configured. */
int module_loader_load(const struct vipmta_config *cfg, struct vipmta_errors *errs);
/* Calls init() of every loaded module in order (hooks registered from here
 * are attributed to the module). 0, or -1 with errors. */
int module_loader_init(struct vipmta_errors *errs);
/* Writes, per module in load order: name, version, file, description and the
 * hooks it registered in chain order (the -M listing). */
void module_loader_describe(FILE *out);
/* Calls shutdown() in reverse order, closes every module, resets hooks. */
void module_loader_unload(void);

/* Loaded modules (for vipmtactl). */
size_t module_loader_count(void);
const vipmta_module_ctx *module_loader_get(size_t i);
const vipmta_module_descriptor *module_loader_descriptor(const vipmta_module_ctx *m);
const char *module_loader_file(const vipmta_module_ctx *m);

#endif
