/* module-hooks.h: Momentum-compatible name for the hook declaration machinery. */
#ifndef VIPMTA_MODULE_HOOKS_H
#define VIPMTA_MODULE_HOOKS_H
#include "vipmta_hook.h"
#endif
