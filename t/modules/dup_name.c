/* dup_name.c: test module whose descriptor claims the name "good". */
#include "vipmta_module.h"

static const vipmta_module_descriptor dup_name_descriptor = {
    VIPMTA_MODULE_HEADER("good", "1.0", "claims another module's name"),
};
VIPMTA_MODULE_EXPORT(dup_name_descriptor)
