/* small_size.c: test module whose descriptor claims to be smaller than the core reads. */
#include "vipmta_module.h"

static const vipmta_module_descriptor small_size_descriptor = {
    .magic = VIPMTA_MODULE_MAGIC,
    .abi_major = VIPMTA_MODULE_ABI_MAJOR,
    .abi_minor = VIPMTA_MODULE_ABI_MINOR,
    .struct_size = 16,
    .name = "small_size",
    .version = "1.0",
    .description = "struct_size too small",
};
VIPMTA_MODULE_EXPORT(small_size_descriptor)
