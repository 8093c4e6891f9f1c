/* hook_dispatch_mod.c: the hook functions of bench/hook_dispatch.c, in their own shared object like a module's, so no call can be inlined. */
#include <sys/socket.h>
#include "hooks/core/connection_post_bind.h"

#define BENCH_HOOKS 16

/* What the driver's plain loop walks: the same {function, closure} pairs the
 * chain holds. */
struct bench_pair {
    ec_hook_core_connection_post_bind_func_t *fn;
    void *closure;
};

/* One call counter per hook: each call is checked, and the store keeps every
 * hook a real function with an effect. */
static unsigned long calls[BENCH_HOOKS];

/* Sixteen distinct functions (distinct call targets, as distinct modules
 * would be), each counting its call and looking at one argument. */
#define BENCH_HOOK(i)                                                                      \
    static int bench_hook_##i(void *closure, domain_record *dr, int slot, int fd,         \
                              struct sockaddr *addr, int addr_len)                          \
    {                                                                                        \
        (void)dr;                                                                            \
        (void)slot;                                                                          \
        (void)addr;                                                                          \
        (void)addr_len;                                                                      \
        ++*(unsigned long *)closure;                                                         \
        return fd < 0;                                                                       \
    }
BENCH_HOOK(0) BENCH_HOOK(1) BENCH_HOOK(2) BENCH_HOOK(3) BENCH_HOOK(4) BENCH_HOOK(5)
BENCH_HOOK(6) BENCH_HOOK(7) BENCH_HOOK(8) BENCH_HOOK(9) BENCH_HOOK(10) BENCH_HOOK(11)
BENCH_HOOK(12) BENCH_HOOK(13) BENCH_HOOK(14) BENCH_HOOK(15)

static ec_hook_core_connection_post_bind_func_t *const hooks[BENCH_HOOKS] = {
    bench_hook_0,  bench_hook_1,  bench_hook_2,  bench_hook_3, bench_hook_4,  bench_hook_5,
    bench_hook_6,  bench_hook_7,  bench_hook_8,  bench_hook_9, bench_hook_10, bench_hook_11,
    bench_hook_12, bench_hook_13, bench_hook_14, bench_hook_15};

int bench_hooks_max(void);
void bench_hooks_register(int n);
void bench_hooks_pairs(struct bench_pair *out, int n);
unsigned long bench_hooks_calls(int i);
void bench_hooks_reset_calls(void);

int bench_hooks_max(void)
{
    return BENCH_HOOKS;
}

/* Registers hooks 0..n-1 at the back of the chain, as a module's init does. */
void bench_hooks_register(int n)
{
    for (int i = 0; i < n && i < BENCH_HOOKS; i++)
        register_core_connection_post_bind_hook_last(hooks[i], &calls[i]);
}

/* The same n pairs, in the same order, for the plain loop. */
void bench_hooks_pairs(struct bench_pair *out, int n)
{
    for (int i = 0; i < n && i < BENCH_HOOKS; i++) {
        out[i].fn = hooks[i];
        out[i].closure = &calls[i];
    }
}

unsigned long bench_hooks_calls(int i)
{
    return i >= 0 && i < BENCH_HOOKS ? calls[i] : 0;
}

void bench_hooks_reset_calls(void)
{
    for (int i = 0; i < BENCH_HOOKS; i++)
        calls[i] = 0;
}
