/* bad_magic.c: test module whose descriptor has the wrong magic number. */
#include "vipmta_module.h"

static const vipmta_module_descriptor bad_magic_descriptor = {
    .magic = 0xdeadbeefu,
    .abi_major = VIPMTA_MODULE_ABI_MAJOR,
    .abi_minor = VIPMTA_MODULE_ABI_MINOR,
    .struct_size = sizeof(vipmta_module_descriptor),
    .name = "bad_magic",
    .version = "1.0",
    .description = "wrong magic",
};
VIPMTA_MODULE_EXPORT(bad_magic_descriptor)
