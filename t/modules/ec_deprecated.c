/* ec_deprecated.c: test Momentum-style module still setting a callback Momentum 3 deprecated (module_init). */
#include "module.h"

static int ec_deprecated_old_init(generic_module_infrastructure *self)
{
    (void)self;
    return 0;
}

static int ec_deprecated_setup(generic_module_infrastructure *self, int ignoreme)
{
    (void)self, (void)ignoreme;
    return 0;
}

static int ec_deprecated_init(generic_module_infrastructure *self, ec_config_header *txn,
                              string *output, int flags)
{
    (void)self, (void)txn, (void)output, (void)flags;
    return 0;
}

EC_MODULE_EXPORT
generic_module_infrastructure ec_deprecated = {{
    EC_MODULE_INIT(EC_MODULE_TYPE_GENERIC, 0), "ec_deprecated.c", "sets module_init", NULL,
    NULL, NULL, ec_deprecated_old_init, NULL, ec_deprecated_setup, NULL, NULL, ec_deprecated_init,
}};
