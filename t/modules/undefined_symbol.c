/* undefined_symbol.c: test module calling a function the daemon does not export (built without -z now, so only a loader that resolves every symbol at load notices). */
#include "hooks/core/connection_post_bind.h"
#include "vipmta_module.h"

void vipmta_no_such_function(void);

static int undefined_symbol_post_bind(void *closure, domain_record *dr, int binding_slot, int fd,
                                      struct sockaddr *addr, int addr_len)
{
    (void)closure, (void)dr, (void)binding_slot, (void)fd, (void)addr, (void)addr_len;
    vipmta_no_such_function(); /* resolved only when first called, if loaded lazily */
    return 0;
}

static int undefined_symbol_init(vipmta_module_ctx *m)
{
    register_core_connection_post_bind_hook_first(undefined_symbol_post_bind, m);
    return 0; /* never reached: the loader refuses the file first */
}

static const vipmta_module_descriptor undefined_symbol_descriptor = {
    .init = undefined_symbol_init,
    VIPMTA_MODULE_HEADER("undefined_symbol", "1.0", "calls a function nobody exports"),
};
VIPMTA_MODULE_EXPORT(undefined_symbol_descriptor)
