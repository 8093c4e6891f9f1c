/* binding_choose_mod.c: the binding_group_choose_binding providers of bench/binding_choose.c, in their own shared object like a module's, so no call can be inlined. */
#include "hooks/core/binding_group_choose_binding.h"

#define BENCH_PROVIDERS 8

/* One call counter per provider: each call is checked afterwards. */
static unsigned long calls[BENCH_PROVIDERS];

/* Distinct functions that look at the message and the group, count the call
 * and decline (EC_BINDING_SLOT_UNBOUND), as a provider that has no opinion
 * about this message does: the whole chain runs, then the core chooses. */
#define BENCH_PROVIDER(i)                                                                  \
    static int bench_provider_##i(void *closure, ec_message *msg, const char *group)      \
    {                                                                                        \
        ++*(unsigned long *)closure;                                                         \
        return msg && group[0] == '\0' ? 0 : EC_BINDING_SLOT_UNBOUND;                       \
    }
BENCH_PROVIDER(0) BENCH_PROVIDER(1) BENCH_PROVIDER(2) BENCH_PROVIDER(3)
BENCH_PROVIDER(4) BENCH_PROVIDER(5) BENCH_PROVIDER(6) BENCH_PROVIDER(7)

static ec_hook_core_binding_group_choose_binding_func_t *const providers[BENCH_PROVIDERS] = {
    bench_provider_0, bench_provider_1, bench_provider_2, bench_provider_3,
    bench_provider_4, bench_provider_5, bench_provider_6, bench_provider_7};

int bench_providers_max(void);
void bench_providers_register(int n);
unsigned long bench_providers_calls(int i);
void bench_providers_reset_calls(void);

int bench_providers_max(void)
{
    return BENCH_PROVIDERS;
}

/* Registers providers 0..n-1 at the back of the chain, as a module's init does. */
void bench_providers_register(int n)
{
    for (int i = 0; i < n && i < BENCH_PROVIDERS; i++)
        register_core_binding_group_choose_binding_hook_last(providers[i], &calls[i]);
}

unsigned long bench_providers_calls(int i)
{
    return i >= 0 && i < BENCH_PROVIDERS ? calls[i] : 0;
}

void bench_providers_reset_calls(void)
{
    for (int i = 0; i < BENCH_PROVIDERS; i++)
        calls[i] = 0;
}
