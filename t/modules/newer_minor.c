/* newer_minor.c: test module built for a newer ABI minor version than the core's. */
#include "vipmta_module.h"

static const vipmta_module_descriptor newer_minor_descriptor = {
    .magic = VIPMTA_MODULE_MAGIC,
    .abi_major = VIPMTA_MODULE_ABI_MAJOR,
    .abi_minor = VIPMTA_MODULE_ABI_MINOR + 1,
    .struct_size = sizeof(vipmta_module_descriptor),
    .name = "newer_minor",
    .version = "1.0",
    .description = "ABI minor + 1",
};
VIPMTA_MODULE_EXPORT(newer_minor_descriptor)
