/* sample.h: what the sample Momentum-style modules of this folder share: option registration in conf_setup and the ext_init phases, written against Momentum's documented API only. */
#ifndef SAMPLE_H
#define SAMPLE_H

#ifndef SHARED_MODULE
#define SHARED_MODULE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "module.h"
#include "ec_config.h"
#include "dns_ds.h"
#include "hooks/core/connection_post_bind.h"

/* What an ext_init call asks of a module. */
enum sample_phase {
    SAMPLE_WAIT,  /* INIT at start-up (PRIVILEGED): POSTINIT follows */
    SAMPLE_START, /* POSTINIT, or INIT of a runtime load: build the instance, register hooks */
    SAMPLE_STOP,  /* DESTROY: free the instance's private data */
};

static inline enum sample_phase sample_phase(int flags)
{
    switch (EC_MODULE_INIT_MODE(flags)) {
    case EC_MODULE_INIT_INIT:
        return (flags & EC_MODULE_INIT_PRIVILEGED) ? SAMPLE_WAIT : SAMPLE_START;
    case EC_MODULE_INIT_POSTINIT:
        return SAMPLE_START;
    default:
        return SAMPLE_STOP;
    }
}

/* conf_setup's work: registers the n options of `defs`, their slots into
 * `handles`. 0, or -1 (logged) when one is refused. */
static inline int sample_register(generic_module_infrastructure *self, ec_config_option_def *defs,
                                  int *handles, int n)
{
    for (int i = 0; i < n; i++) {
        handles[i] = ec_config_register_option(&defs[i]);
        if (handles[i] == -1) {
            ec_mod_debug(self, DCRITICAL, "%s: cannot register option %s\n",
                         self->shared.module_name, defs[i].name);
            return -1;
        }
    }
    return 0;
}

/* An integer option's value, fetched and released. */
static inline int sample_int(ec_config_value *val)
{
    int v = val->v->vint;
    ec_config_release_value(val);
    return v;
}

#endif
