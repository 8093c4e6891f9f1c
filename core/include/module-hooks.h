/* module-hooks.h: Momentum's name for the hook declaration machinery (EC_DECLARE_HOOK, EC_HOOK_CLOSURE, EC_HOOK_RETVAL, EC_HOOK_RETURN). */
#ifndef VIPMTA_MODULE_HOOKS_H
#define VIPMTA_MODULE_HOOKS_H
#include "vipmta_hook.h"
#endif
