/* ec_stubs.h: the callbacks of the broken Momentum-style test modules (their infrastructure is what is wrong). */
#ifndef EC_STUBS_H
#define EC_STUBS_H

#include "module.h"

static inline int ec_stub_setup(generic_module_infrastructure *self, int ignoreme)
{
    (void)self, (void)ignoreme;
    return 0;
}

static inline int ec_stub_ext_init(generic_module_infrastructure *self, ec_config_header *txn,
                            string *output, int flags)
{
    (void)self, (void)txn, (void)output, (void)flags;
    return 0;
}

static inline int ec_stub_old_init(generic_module_infrastructure *self)
{
    (void)self;
    return 0;
}

#endif
