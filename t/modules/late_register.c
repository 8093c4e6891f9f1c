/* late_register.c: test module registering hooks where it must not (configure, reload, inside a hook, with a closure on the stack) and twice where it may (init). */
#include "hooks/core/connection_post_bind.h"
#include "vipmta_module.h"

static int late_register_calls;

static int late_register_other(void *closure, domain_record *dr, int binding_slot, int fd,
                               struct sockaddr *addr, int addr_len)
{
    (void)closure, (void)dr, (void)binding_slot, (void)fd, (void)addr, (void)addr_len;
    return 0;
}

/* Counts its calls and tries to register another hook from inside the chain. */
static int late_register_post_bind(void *closure, domain_record *dr, int binding_slot, int fd,
                                   struct sockaddr *addr, int addr_len)
{
    (void)closure, (void)dr, (void)binding_slot, (void)fd, (void)addr, (void)addr_len;
    late_register_calls++;
    register_core_connection_post_bind_hook_last(late_register_other, closure);
    return late_register_calls;
}

/* The way a ported Momentum module might: register while reading options,
 * with a closure that lives on the stack. */
static int late_register_configure(vipmta_module_ctx *m, const vipmta_value *options)
{
    int on_the_stack = 0;
    (void)options;
    (void)m;
    register_core_connection_post_bind_hook_last(late_register_other, &on_the_stack);
    return 0;
}

/* Registers the same provider twice: kept once. */
static int late_register_init(vipmta_module_ctx *m)
{
    late_register_calls = 0;
    register_core_connection_post_bind_hook_last(late_register_post_bind, m);
    register_core_connection_post_bind_hook_last(late_register_post_bind, m);
    return 0;
}

static const vipmta_module_descriptor late_register_descriptor = {
    .reload = late_register_configure, /* a reload is no time to register either */
    .init = late_register_init,
    .configure = late_register_configure,
    VIPMTA_MODULE_HEADER("late_register", "1.0", "registers hooks where it must not"),
};
VIPMTA_MODULE_EXPORT(late_register_descriptor)
