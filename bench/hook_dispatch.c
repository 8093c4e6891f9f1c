/* hook_dispatch.c: times call_core_connection_post_bind_hook against a plain loop over the same function pointers, for several chain lengths. */
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "plugin/plugin_hooks.h"
#include "plugin/plugin_internal.h"
#include "hooks/core/connection_post_bind.h"

#define MAX_HOOKS 16

struct bench_pair {
    ec_hook_core_connection_post_bind_func_t *fn;
    void *closure;
};

/* From the shared object (bench/hook_dispatch_mod.c). */
static int (*mod_max)(void);
static void (*mod_register)(int n);
static void (*mod_pairs)(struct bench_pair *out, int n);
static unsigned long (*mod_calls)(int i);
static void (*mod_reset_calls)(void);

/* The reference: an array of the same {function, closure} pairs, walked by a
 * plain loop with the chain's semantics (stop at the first non-zero). */
static struct bench_pair plain[MAX_HOOKS];
static int plain_n;

static inline __attribute__((always_inline)) int plain_loop(domain_record *dr, int slot, int fd,
                                                            struct sockaddr *addr, int addr_len)
{
    int ret = 0;
    for (int i = 0, n = plain_n; i < n; i++) {
        ret = plain[i].fn(plain[i].closure, dr, slot, fd, addr, addr_len);
        if (ret)
            return ret;
    }
    return ret;
}

/* The same loop behind a call, like the core's function. */
static __attribute__((noinline)) int plain_function(domain_record *dr, int slot, int fd,
                                                    struct sockaddr *addr, int addr_len)
{
    return plain_loop(dr, slot, fd, addr, addr_len);
}

static domain_record dr = {.domain = "bench.test"};
static struct sockaddr_in dst;
static volatile long sink; /* keeps every result used */

enum mode { M_HOOK, M_PLAIN, M_PLAIN_FN, M_OUTBOUND, M_COUNT };
static const char *const mode_names[M_COUNT] = {"hook", "plain", "plainfn", "outbound"};

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* One timed run of `iters` dispatches in mode m; ns per dispatch. Arguments
 * are what outbound.c passes: the domain record, the slot, a bound fd, the
 * destination and its length. */
static __attribute__((noinline)) double run(enum mode m, long iters)
{
    struct sockaddr *a = (struct sockaddr *)&dst;
    int len = (int)sizeof(dst);
    long acc = 0;
    double t0 = now_ns();
    switch (m) {
    case M_HOOK:
        for (long k = 0; k < iters; k++)
            acc += call_core_connection_post_bind_hook(&dr, 1, 7, a, len);
        break;
    case M_PLAIN:
        for (long k = 0; k < iters; k++)
            acc += plain_loop(&dr, 1, 7, a, len);
        break;
    case M_PLAIN_FN:
        for (long k = 0; k < iters; k++)
            acc += plain_function(&dr, 1, 7, a, len);
        break;
    case M_OUTBOUND: /* exactly what deliver_connect() does */
        for (long k = 0; k < iters; k++)
            if (has_core_connection_post_bind_hook())
                acc += call_core_connection_post_bind_hook(&dr, 1, 7, a, len);
        break;
    default:
        break;
    }
    double t1 = now_ns();
    sink += acc;
    return (t1 - t0) / (double)iters;
}

static void *need(void *so, const char *name)
{
    void *p = dlsym(so, name);
    if (!p) {
        fprintf(stderr, "hook_dispatch: %s: %s\n", name, dlerror());
        exit(2);
    }
    return p;
}

static void usage(void)
{
    fprintf(stderr, "usage: hook_dispatch -s HOOKS.so [-i ITERATIONS] [-r RUNS] [-c \"0 1 4 16\"]\n"
                    "       hook_dispatch -s HOOKS.so -m hook|plain|plainfn|outbound -n HOOKS "
                    "[-i ITERATIONS]   (one mode, for perf)\n");
    exit(2);
}

/* Sets up a chain of n hooks and the plain array of the same n pairs. */
static void setup(int n)
{
    static struct vipmta_module_ctx bench = {.label = "bench"};
    plugin_hooks_reset_all();
    plugin_hooks_begin_init(&bench); /* registered as a module's init does */
    mod_register(n);
    plugin_hooks_end_init();
    memset(plain, 0, sizeof(plain));
    mod_pairs(plain, n);
    plain_n = n;
    const struct vipmta_hook *c = &plugin_hook_core_connection_post_bind;
    if (c->count != n) {
        fprintf(stderr, "hook_dispatch: chain holds %d hooks, expected %d\n", c->count, n);
        exit(1);
    }
    for (int i = 0; i < n; i++) {
        if ((void *)c->providers[i].fn != (void *)plain[i].fn ||
            c->providers[i].closure != plain[i].closure) {
            fprintf(stderr, "hook_dispatch: chain entry %d differs from the plain array\n", i);
            exit(1);
        }
    }
    mod_reset_calls();
}

/* Every hook of the chain was called once per dispatch, in every mode. */
static void check_calls(int n, unsigned long want)
{
    for (int i = 0; i < n; i++) {
        if (mod_calls(i) != want) {
            fprintf(stderr, "hook_dispatch: hook %d called %lu times, expected %lu\n", i,
                    mod_calls(i), want);
            exit(1);
        }
    }
}

int main(int argc, char **argv)
{
    const char *so_path = NULL, *counts_arg = "0 1 4 16", *one_mode = NULL;
    long iters = 20000000;
    int runs = 7, one_n = 4, opt;

    while ((opt = getopt(argc, argv, "s:i:r:c:m:n:")) != -1) {
        switch (opt) {
        case 's': so_path = optarg; break;
        case 'i': iters = atol(optarg); break;
        case 'r': runs = atoi(optarg); break;
        case 'c': counts_arg = optarg; break;
        case 'm': one_mode = optarg; break;
        case 'n': one_n = atoi(optarg); break;
        default: usage();
        }
    }
    if (!so_path || iters <= 0 || runs <= 0)
        usage();

    void *so = dlopen(so_path, RTLD_NOW | RTLD_LOCAL);
    if (!so) {
        fprintf(stderr, "hook_dispatch: %s\n", dlerror());
        return 2;
    }
    mod_max = (int (*)(void))need(so, "bench_hooks_max");
    mod_register = (void (*)(int))need(so, "bench_hooks_register");
    mod_pairs = (void (*)(struct bench_pair *, int))need(so, "bench_hooks_pairs");
    mod_calls = (unsigned long (*)(int))need(so, "bench_hooks_calls");
    mod_reset_calls = (void (*)(void))need(so, "bench_hooks_reset_calls");
    if (mod_max() < MAX_HOOKS)
        return 2;

    dst.sin_family = AF_INET;
    dst.sin_port = htons(25);
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    if (one_mode) { /* a single long run, for perf record/stat */
        enum mode m = M_COUNT;
        for (int i = 0; i < M_COUNT; i++)
            if (strcmp(one_mode, mode_names[i]) == 0)
                m = (enum mode)i;
        if (m == M_COUNT || one_n < 0 || one_n > MAX_HOOKS)
            usage();
        setup(one_n);
        double ns = run(m, iters);
        check_calls(one_n, (unsigned long)iters);
        printf("hook_dispatch mode=%s hooks=%d iterations=%ld ns_per_dispatch=%.3f\n", one_mode,
               one_n, iters, ns);
        return 0;
    }

    int counts[32], ncounts = 0;
    for (const char *p = counts_arg; *p && ncounts < 32;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p)
            break;
        if (v < 0 || v > MAX_HOOKS)
            usage();
        counts[ncounts++] = (int)v;
        p = end;
        while (*p == ' ' || *p == ',')
            p++;
    }

    printf("%-6s %11s %11s %8s %11s %8s %11s %8s\n", "hooks", "call_ ns", "plain ns", "ratio",
           "plainfn ns", "ratio", "has+call ns", "ratio");
    for (int c = 0; c < ncounts; c++) {
        int n = counts[c];
        double best[M_COUNT];
        setup(n);
        for (int m = 0; m < M_COUNT; m++)
            best[m] = 1e30;
        run(M_HOOK, iters / 10); /* warm up: caches, branch predictors, CPU clock */
        run(M_PLAIN, iters / 10);
        for (int r = 0; r < runs; r++) {
            /* interleaved, the order rotating so no mode always runs first */
            for (int k = 0; k < M_COUNT; k++) {
                enum mode m = (enum mode)((k + r) % M_COUNT);
                double ns = run(m, iters);
                if (ns < best[m])
                    best[m] = ns;
            }
        }
        check_calls(n, (unsigned long)(iters / 10) * 2 + (unsigned long)iters * runs * M_COUNT);
        printf("%-6d %11.3f %11.3f %8.2f %11.3f %8.2f %11.3f %8.2f\n", n, best[M_HOOK],
               best[M_PLAIN], best[M_HOOK] / best[M_PLAIN], best[M_PLAIN_FN],
               best[M_HOOK] / best[M_PLAIN_FN], best[M_OUTBOUND],
               best[M_OUTBOUND] / best[M_PLAIN]);
        fflush(stdout);
    }
    plugin_hooks_reset_all();
    return 0;
}
