/* binding_choose.c: times the choice of a message's binding in a group (binding_choose: the binding_group_choose_binding chain, then the core's round-robin) with 0, 1 and 4 providers, against the core's choice alone. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "binding/binding_choose.h"
#include "binding/binding_table.h"
#include "config/config.h"
#include "config/config_errors.h"
#include "plugin/plugin_hooks.h"
#include "plugin/plugin_internal.h"
#include "plugin/plugin_message.h"

#define MAX_PROVIDERS 8

static int (*mod_max)(void);
static void (*mod_register)(int n);
static unsigned long (*mod_calls)(int i);
static void (*mod_reset_calls)(void);

static ec_message msg;
static volatile long sink; /* keeps every result used */
static unsigned long counts[4]; /* choices per binding slot (1..3), checked */

enum mode { M_CHOOSE, M_CORE, M_COUNT };

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* One timed run of `iters` choices; ns per message. M_CHOOSE: what the core
 * does for a message whose binding comes from a group (acceptance, a move);
 * M_CORE: the core's weighted round-robin alone (no hook: the reference). */
static __attribute__((noinline)) double run(enum mode m, long iters)
{
    long acc = 0;
    double t0 = now_ns();
    if (m == M_CHOOSE) {
        for (long k = 0; k < iters; k++) {
            ec_binding_slot s = binding_choose(&msg, "pool", EC_BINDING_SLOT_UNBOUND,
                                               EC_BINDING_SLOT_UNBOUND);
            counts[s >= 1 && s <= 3 ? s : 0]++;
            acc += s;
        }
    } else {
        for (long k = 0; k < iters; k++) {
            ec_binding_slot s = binding_group_choose_except("pool", EC_BINDING_SLOT_UNBOUND);
            counts[s >= 1 && s <= 3 ? s : 0]++;
            acc += s;
        }
    }
    double t1 = now_ns();
    sink += acc;
    return (t1 - t0) / (double)iters;
}

static void *need(void *so, const char *name)
{
    void *p = dlsym(so, name);
    if (!p) {
        fprintf(stderr, "binding_choose: %s: %s\n", name, dlerror());
        exit(2);
    }
    return p;
}

static void setup(int n)
{
    static struct vipmta_module_ctx bench = {.label = "bench"};
    plugin_hooks_reset_all();
    plugin_hooks_begin_init(&bench);
    mod_register(n);
    plugin_hooks_end_init();
    if (plugin_hook_core_binding_group_choose_binding.count != n) {
        fprintf(stderr, "binding_choose: chain holds %d providers, expected %d\n",
                plugin_hook_core_binding_group_choose_binding.count, n);
        exit(1);
    }
    mod_reset_calls();
}

int main(int argc, char **argv)
{
    const char *so_path = NULL, *counts_arg = "0 1 4";
    long iters = 5000000;
    int runs = 7, opt;
    while ((opt = getopt(argc, argv, "s:i:r:c:")) != -1) {
        switch (opt) {
        case 's': so_path = optarg; break;
        case 'i': iters = atol(optarg); break;
        case 'r': runs = atoi(optarg); break;
        case 'c': counts_arg = optarg; break;
        default:
            fprintf(stderr, "usage: binding_choose -s PROVIDERS.so [-i ITERATIONS] [-r RUNS] "
                            "[-c \"0 1 4\"]\n");
            return 2;
        }
    }
    if (!so_path || iters <= 0 || runs <= 0)
        return 2;
    void *so = dlopen(so_path, RTLD_NOW | RTLD_LOCAL);
    if (!so) {
        fprintf(stderr, "binding_choose: %s\n", dlerror());
        return 2;
    }
    mod_max = (int (*)(void))need(so, "bench_providers_max");
    mod_register = (void (*)(int))need(so, "bench_providers_register");
    mod_calls = (unsigned long (*)(int))need(so, "bench_providers_calls");
    mod_reset_calls = (void (*)(void))need(so, "bench_providers_reset_calls");

    /* three bindings on loopback addresses (usable on this host) in one group */
    static const char conf[] =
        "{\"bindings\": {\"vip1\": {\"address\": \"127.0.0.2\"}, \"vip2\": {\"address\": "
        "\"127.0.0.3\"}, \"vip3\": {\"address\": \"127.0.0.4\"}},"
        " \"binding_groups\": {\"pool\": [\"vip1\", \"vip2\", \"vip3\"]},"
        " \"default_binding_group\": \"pool\", \"spool_dir\": \".\"}";
    struct config_errors errs = {0};
    struct vipmta_config *cfg = config_load_string(conf, "bench.json", &errs);
    if (!cfg || binding_table_build(cfg, &errs) != 0) {
        config_errors_print(&errs, stderr, "binding_choose: ");
        return 1;
    }
    plugin_message_init_queued(&msg, "0123456789abcdef", "a@bench.test", "b@example.test", 1,
                               "pool", 1024, NULL, 0);

    printf("%-10s %12s %12s %8s %14s\n", "providers", "choose ns", "core ns", "ratio",
           "chain ns/msg");
    for (const char *p = counts_arg; *p;) {
        char *end;
        long n = strtol(p, &end, 10);
        if (end == p)
            break;
        p = end;
        while (*p == ' ' || *p == ',')
            p++;
        if (n < 0 || n > MAX_PROVIDERS || n > mod_max())
            return 2;
        setup((int)n);
        double best[M_COUNT] = {1e30, 1e30};
        run(M_CHOOSE, iters / 10);
        run(M_CORE, iters / 10);
        for (int r = 0; r < runs; r++)
            for (int k = 0; k < M_COUNT; k++) {
                enum mode m = (enum mode)((k + r) % M_COUNT);
                double ns = run(m, iters);
                if (ns < best[m])
                    best[m] = ns;
            }
        unsigned long want = (unsigned long)(iters / 10) + (unsigned long)iters * (unsigned long)runs;
        for (int i = 0; i < n; i++)
            if (mod_calls(i) != want) {
                fprintf(stderr, "binding_choose: provider %d called %lu times, expected %lu\n", i,
                        mod_calls(i), want);
                return 1;
            }
        printf("%-10ld %12.1f %12.1f %8.2f %14.1f\n", n, best[M_CHOOSE], best[M_CORE],
               best[M_CHOOSE] / best[M_CORE], best[M_CHOOSE] - best[M_CORE]);
        fflush(stdout);
    }
    if (!counts[1] || !counts[2] || !counts[3] || counts[0]) {
        fprintf(stderr, "binding_choose: the choices did not spread over vip1..vip3 (%lu %lu %lu, "
                        "unbound %lu)\n", counts[1], counts[2], counts[3], counts[0]);
        return 1;
    }
    plugin_message_release(&msg);
    plugin_hooks_reset_all();
    return 0;
}
