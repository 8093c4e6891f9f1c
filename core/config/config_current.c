/* config_current.c: the configuration in force: one reference-counted config that a reload swaps. */
#include "config_current.h"

#include <stddef.h>

static struct vipmta_config *in_force;

void config_install(struct vipmta_config *cfg)
{
    struct vipmta_config *old = in_force;
    in_force = cfg;
    config_release(old);
}

const struct vipmta_config *config_current(void)
{
    return in_force;
}

struct vipmta_config *config_hold(void)
{
    return config_ref(in_force);
}
