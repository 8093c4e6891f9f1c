/* ec_bad_version.c: test Momentum-style module whose infrastructure was made for another module ABI major. */
#include "module.h"

static int ec_bad_version_setup(generic_module_infrastructure *self, int ignoreme)
{
    (void)self, (void)ignoreme;
    return 0;
}

static int ec_bad_version_init(generic_module_infrastructure *self, ec_config_header *txn,
                               string *output, int flags)
{
    (void)self, (void)txn, (void)output, (void)flags;
    return 0;
}

EC_MODULE_EXPORT
generic_module_infrastructure ec_bad_version = {{
    0xEC000000u | ((uint32_t)(VIPMTA_MODULE_ABI_MAJOR + 1) << 16) | (EC_MODULE_TYPE_GENERIC << 4),
    NULL, NULL, "ec_bad_version.c", "made for another ABI major", NULL,
    NULL, NULL, NULL, NULL, ec_bad_version_setup, NULL, NULL, ec_bad_version_init,
}};
