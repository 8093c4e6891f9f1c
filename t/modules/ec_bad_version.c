/* ec_bad_version.c: test Momentum-style module whose infrastructure was made for another module ABI major. */
#include "ec_stubs.h"

EC_MODULE_EXPORT
generic_module_infrastructure ec_bad_version = {{
    0xEC000000u | ((uint32_t)(VIPMTA_MODULE_ABI_MAJOR + 1) << 16) | (EC_MODULE_TYPE_GENERIC << 4),
    NULL, NULL, "ec_bad_version.c", "made for another ABI major", NULL,
    NULL, NULL, NULL, NULL, ec_stub_setup, NULL, NULL, ec_stub_ext_init,
}};
