/* abi_major.c: test module built for another ABI major version. */
#include "vipmta_module.h"

static const vipmta_module_descriptor abi_major_descriptor = {
    .magic = VIPMTA_MODULE_MAGIC,
    .abi_major = VIPMTA_MODULE_ABI_MAJOR + 1,
    .abi_minor = VIPMTA_MODULE_ABI_MINOR,
    .struct_size = sizeof(vipmta_module_descriptor),
    .name = "abi_major",
    .version = "1.0",
    .description = "ABI major + 1",
};
VIPMTA_MODULE_EXPORT(abi_major_descriptor)
