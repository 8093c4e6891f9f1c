/* ec_deprecated.c: test Momentum-style module still setting a callback Momentum 3 deprecated (module_init). */
#include "ec_stubs.h"

EC_MODULE_EXPORT
generic_module_infrastructure ec_deprecated = {{
    EC_MODULE_INIT(EC_MODULE_TYPE_GENERIC, 0), "ec_deprecated.c", "sets module_init", NULL,
    NULL, NULL, ec_stub_old_init, NULL, ec_stub_setup, NULL, NULL, ec_stub_ext_init,
}};
