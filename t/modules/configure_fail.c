/* configure_fail.c: test module whose configure() rejects its options (reported, or silently). */
#include "vipmta_module.h"

static int configure_fail_configure(vipmta_module_ctx *m, const vipmta_value *options)
{
    /* {"silent": true}: fail without saying why (the core must still say something) */
    if (vipmta_value_bool(vipmta_value_get(options, "silent")))
        return -1;
    vipmta_module_error(m, "tos", "must be a DSCP name or 0-255, not %s", "\"fast\"");
    return -1;
}

static const vipmta_module_descriptor configure_fail_descriptor = {
    VIPMTA_MODULE_HEADER("configure_fail", "1.0", "configure fails"),
    .configure = configure_fail_configure,
};
VIPMTA_MODULE_EXPORT(configure_fail_descriptor)
