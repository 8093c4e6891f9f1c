/* init_fail.c: test module whose init() fails after reporting why. */
#include "vipmta_module.h"

static int init_fail_init(vipmta_module_ctx *m)
{
    vipmta_module_error(m, NULL, "cannot start: no such thing");
    return -1;
}

static const vipmta_module_descriptor init_fail_descriptor = {
    VIPMTA_MODULE_HEADER("init_fail", "1.0", "init fails"),
    .init = init_fail_init,
};
VIPMTA_MODULE_EXPORT(init_fail_descriptor)
