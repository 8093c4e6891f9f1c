/* connect_path.c: connections per second through the core's outbound path with the bundled modules, against a bare socket/bind/connect/close loop; and the ephemeral-port check. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <event2/event.h>

#include "binding/binding_table.h"
#include "config/config.h"
#include "config/config_current.h"
#include "daemon/daemon.h"
#include "queue/queue_domain.h"
#include "plugin/plugin_hooks.h"
#include "log/log.h"
#include "plugin/plugin_loader.h"
#include "deliver/deliver_connect.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

static const char *errno_name(int e)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
    const char *n = strerrorname_np(e);
    if (n)
        return n;
#endif
    static char buf[32];
    snprintf(buf, sizeof(buf), "errno %d", e);
    return buf;
}

/* CPU time of the calling thread (the one connecting), user + system. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the listener: accept and close, in a thread, on 127.0.0.1 ---- */

static int lfd = -1;
static struct sockaddr_in laddr;
static pthread_t lthread;
static atomic_ulong accepted;
/* Close only after the client has: the client is always the one that closes
 * first, so every TIME_WAIT lands on its side (the ephemeral-port check). */
static int listener_wait_eof;

static void *listener_main(void *arg)
{
    (void)arg;
    for (;;) {
        int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                usleep(1000);
                continue;
            }
            return NULL; /* EINVAL after shutdown(): we are done */
        }
        if (listener_wait_eof) {
            char b[64];
            ssize_t r;
            while ((r = read(c, b, sizeof(b))) > 0 || (r < 0 && errno == EINTR))
                ;
        }
        close(c);
        atomic_fetch_add(&accepted, 1);
    }
}

static void listener_start(void)
{
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memset(&laddr, 0, sizeof(laddr));
    laddr.sin_family = AF_INET;
    laddr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(laddr);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&laddr, sizeof(laddr)) != 0 ||
        getsockname(lfd, (struct sockaddr *)&laddr, &len) != 0 || listen(lfd, 4096) != 0) {
        perror("connect_path: listener");
        exit(1);
    }
    if (pthread_create(&lthread, NULL, listener_main, NULL) != 0) {
        fprintf(stderr, "connect_path: cannot start the listener thread\n");
        exit(1);
    }
}

static void listener_stop(void)
{
    shutdown(lfd, SHUT_RDWR);
    pthread_join(lthread, NULL);
    close(lfd);
}

/* Waits until the listener has accepted `n` connections in all (5 s at most). */
static int listener_catch_up(unsigned long n)
{
    double until = now_s() + 5;
    while (atomic_load(&accepted) < n && now_s() < until)
        usleep(200);
    return atomic_load(&accepted) >= n;
}

/* The non-blocking connect finished: 0, or the socket's error. */
static int wait_connected(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int r;
    while ((r = poll(&p, 1, 5000)) < 0 && errno == EINTR)
        ;
    if (r == 0)
        return ETIMEDOUT;
    if (r < 0)
        return errno;
    int err = 0;
    socklen_t el = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
        return errno;
    return err;
}

/* ---- configuration: bindings and modules ---- */

static const char *moddir, *tmpdir;
static int sockopt_tos_only; /* -S tos: one option per connection instead of six */
static int connlog_flush_ms = 200; /* -F: connlog's flush_interval_ms (its docs' advice) */
static char src_text[2][INET_ADDRSTRLEN] = {"127.0.0.2", "127.0.0.3"};

enum { MOD_SOCKOPT, MOD_NETACL, MOD_THROTTLE, MOD_CONNLOG, MOD_COUNT };
static const char *const mod_names[MOD_COUNT] = {"sockopt", "netacl", "throttle", "connlog"};

/* Each bundled module's entry in `modules`: realistic options that let every
 * connection through. */
static void module_json(int mod, char *buf, size_t size)
{
    switch (mod) {
    case MOD_SOCKOPT:
        if (sockopt_tos_only) {
            snprintf(buf, size,
                     "{\"name\": \"sockopt\", \"bindings\": {\"b1\": {\"tos\": "
                     "\"af21\"}, \"b2\": {\"tos\": \"cs1\"}}}");
            break;
        }
        snprintf(buf, size,
                 "{\"name\": \"sockopt\", \"options\": {"
                 "\"keepalive\": {\"idle\": 60, \"interval\": 15, \"count\": 4}, "
                 "\"user_timeout_ms\": 120000}, "
                 "\"bindings\": {\"b1\": {\"tos\": \"af21\"}, \"b2\": {\"tos\": \"cs1\"}}}");
        break;
    case MOD_NETACL: /* the internet-facing example of its docs, without the loopback rule */
        snprintf(buf, size,
                 "{\"name\": \"netacl\", \"options\": {\"default\": \"allow\", \"rules\": ["
                 "{\"action\": \"deny\", \"cidr\": \"10.0.0.0/8\"},"
                 "{\"action\": \"deny\", \"cidr\": \"172.16.0.0/12\"},"
                 "{\"action\": \"deny\", \"cidr\": \"192.168.0.0/16\"},"
                 "{\"action\": \"deny\", \"cidr\": \"100.64.0.0/10\"},"
                 "{\"action\": \"deny\", \"cidr\": \"::1/128\"},"
                 "{\"action\": \"deny\", \"cidr\": \"169.254.0.0/16\"},"
                 "{\"action\": \"deny\", \"cidr\": \"fe80::/10\"},"
                 "{\"action\": \"deny\", \"cidr\": \"fc00::/7\"},"
                 "{\"action\": \"deny\", \"cidr\": \"0.0.0.0/8\"},"
                 "{\"action\": \"deny\", \"cidr\": \"224.0.0.0/4\"},"
                 "{\"action\": \"deny\", \"cidr\": \"ff00::/8\"}]}}");
        break;
    case MOD_THROTTLE: /* local backend; limits far above what loopback can do */
        snprintf(buf, size,
                 "{\"name\": \"throttle\", \"options\": {\"backend\": \"local\", \"limits\": ["
                 "{\"per\": \"domain\", \"rate\": \"1000000/s\", \"burst\": 1000000},"
                 "{\"per\": \"ip\", \"rate\": \"1000000/s\", \"burst\": 1000000}]}}");
        break;
    case MOD_CONNLOG:
        snprintf(buf, size,
                 "{\"name\": \"connlog\", \"options\": {\"file\": \"%s/connlog.jsonl\", "
                 "\"flush_interval_ms\": %d}}",
                 tmpdir, connlog_flush_ms);
        break;
    }
}

static struct vipmta_config *cfg;
static domain_record *dr;
static struct event_base *base; /* what modules get as the daemon's loop */

/* Loads bindings b1/b2 (or one binding `p` at `ports_src`) and the modules in
 * `mask`, as the daemon starts them. 0, or -1 with the errors printed. */
static int core_up(unsigned mask, const char *ports_src, int quiet)
{
    char text[8192], mods[6144], one[2048];
    size_t used = 0;
    struct config_errors errs = {0};

    mods[0] = '\0';
    for (int i = 0; i < MOD_COUNT; i++) {
        if (!(mask & (1u << i)))
            continue;
        module_json(i, one, sizeof(one));
        used += (size_t)snprintf(mods + used, sizeof(mods) - used, "%s%s", used ? ", " : "", one);
    }
    if (ports_src)
        snprintf(text, sizeof(text),
                 "{ \"hostname\": \"bench.test\", \"log_level\": \"warning\", "
                 "\"bindings\": {\"p\": {\"address\": \"%s\"}} }",
                 ports_src);
    else
        snprintf(text, sizeof(text),
                 "{ \"hostname\": \"bench.test\", \"log_level\": \"warning\", \"module_path\": "
                 "[\"%s\"], \"bindings\": {\"b1\": {\"address\": \"%s\"}, \"b2\": {\"address\": "
                 "\"%s\"}}, \"modules\": [%s] }",
                 moddir, src_text[0], src_text[1], mods);
    cfg = config_load_string(text, "connect_path.json", &errs);
    if (!cfg) {
        config_errors_print(&errs, stderr, "connect_path: config: ");
        config_errors_clear(&errs);
        return -1;
    }
    config_install(config_ref(cfg));
    if (binding_table_build(cfg, &errs) != 0)
        goto fail;
    queue_domain_registry_init();
    dr = queue_domain_get("bench.test");
    /* a loop, as in the daemon (connlog's flush timer, throttle's events);
     * never dispatched here: what a module buffers it writes at shutdown */
    base = event_base_new();
    daemon_set_event_base(base);
    if (plugin_loader_load(cfg, &errs) != 0 || plugin_loader_init(&errs) != 0)
        goto fail;
    return 0;
fail:
    if (!quiet)
        config_errors_print(&errs, stderr, "connect_path: ");
    config_errors_clear(&errs);
    return -1;
}

static void core_down(void)
{
    plugin_loader_unload();
    daemon_set_event_base(NULL);
    if (base)
        event_base_free(base);
    base = NULL;
    plugin_hooks_reset_all();
    queue_domain_registry_free();
    binding_table_free();
    config_install(NULL);
    config_release(cfg);
    cfg = NULL;
    dr = NULL;
}

/* ---- the two loops ---- */

static struct sockaddr_in src_addr[2];
static unsigned long total_connected;

/* `n` connections through the core: deliver_connect() (socket, option, bind,
 * the post-bind chain, connect), wait for the handshake, close. Slots 1 and 2
 * alternate, as a binding group of two would. Seconds taken. */
static double run_core(long n)
{
    struct deliver_connect_result res;
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        int fd = deliver_connect(dr, (ec_binding_slot)(1 + (i & 1)), (struct sockaddr *)&laddr,
                                  sizeof(laddr), &res);
        if (fd < 0) {
            fprintf(stderr, "connect_path: connection %ld: %s (status %d, %s)\n", i,
                    res.message, (int)res.status, strerror(res.error));
            exit(1);
        }
        int e = wait_connected(fd);
        if (e) {
            fprintf(stderr, "connect_path: connection %ld did not complete: %s\n", i, strerror(e));
            exit(1);
        }
        close(fd);
    }
    double t = now_s() - t0;
    total_connected += (unsigned long)n;
    return t;
}

/* The reference: the same sockets by hand: socket (non-blocking), the same
 * IP_BIND_ADDRESS_NO_PORT, bind to 127.0.0.2 / .3 alternately, connect, wait
 * for the handshake, close. */
static double run_bare(long n)
{
    int one = 1;
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0 || setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)) ||
            bind(fd, (struct sockaddr *)&src_addr[i & 1], sizeof(src_addr[0])) != 0 ||
            (connect(fd, (struct sockaddr *)&laddr, sizeof(laddr)) != 0 &&
             errno != EINPROGRESS)) {
            fprintf(stderr, "connect_path: bare connection %ld: %s\n", i, strerror(errno));
            exit(1);
        }
        int e = wait_connected(fd);
        if (e) {
            fprintf(stderr, "connect_path: bare connection %ld did not complete: %s\n", i,
                    strerror(e));
            exit(1);
        }
        close(fd);
    }
    double t = now_s() - t0;
    total_connected += (unsigned long)n;
    return t;
}

/* ---- the benchmark: variants interleaved round by round ---- */

struct variant {
    const char *name;
    int core;      /* through deliver_connect */
    unsigned mask; /* modules loaded */
    double best, sum;
    int runs;
    double *rate; /* per round */
    double *cpu;  /* the connecting thread's CPU seconds per connection, per round */
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *x, int n)
{
    qsort(x, (size_t)n, sizeof(*x), cmp_double);
    return n % 2 ? x[n / 2] : (x[n / 2 - 1] + x[n / 2]) / 2;
}

static void bench(long n, int rounds, int breakdown, int want_throttle, const char *only)
{
    unsigned all = (1u << MOD_SOCKOPT) | (1u << MOD_NETACL) | (1u << MOD_CONNLOG);
    char full_name[64];

    if (want_throttle) {
        struct stat st;
        char so[4096];
        snprintf(so, sizeof(so), "%s/throttle.so", moddir);
        if (stat(so, &st) != 0) {
            printf("throttle: no %s: measuring with sockopt, netacl and connlog only\n", so);
        } else if (core_up(1u << MOD_THROTTLE, NULL, 0) != 0) {
            core_down();
            printf("throttle: does not load (errors above): measuring with sockopt, netacl and "
                   "connlog only\n");
        } else {
            core_down();
            all |= 1u << MOD_THROTTLE;
            printf("throttle: loads: included (local backend, 1000000/s per domain and per IP)\n");
        }
    }
    snprintf(full_name, sizeof(full_name), "core+sockopt,netacl,%sconnlog",
             all & (1u << MOD_THROTTLE) ? "throttle," : "");

    struct variant v[8];
    int nv = 0;
    v[nv++] = (struct variant){"bare", 0, 0, 1e30, 0, 0, NULL, NULL};
    v[nv++] = (struct variant){full_name, 1, all, 1e30, 0, 0, NULL, NULL};
    if (breakdown) {
        v[nv++] = (struct variant){"core-only", 1, 0, 1e30, 0, 0, NULL, NULL};
        for (int i = 0; i < MOD_COUNT; i++)
            if (all & (1u << i))
                v[nv++] = (struct variant){mod_names[i], 1, 1u << i, 1e30, 0, 0, NULL, NULL};
    }

    if (only) { /* one variant, for perf: keep just that one */
        int keep = -1;
        for (int k = 0; k < nv; k++)
            if (strcmp(v[k].name, only) == 0 || (strcmp(only, "full") == 0 && k == 1))
                keep = k;
        if (keep < 0) {
            fprintf(stderr, "connect_path: no variant \"%s\" (bare, full, or with -b: core-only "
                            "and the module names)\n", only);
            exit(2);
        }
        v[0] = v[keep];
        nv = 1;
    }

    /* warm-up, not counted: page cache, the modules' files, the listener */
    run_bare(n / 10 > 0 ? n / 10 : 1);
    listener_catch_up(total_connected);

    for (int k = 0; k < nv; k++)
        if (!(v[k].rate = calloc((size_t)rounds, sizeof(double))) ||
            !(v[k].cpu = calloc((size_t)rounds, sizeof(double))))
            exit(1);
    printf("%-6s %-38s %10s %12s %12s\n", "round", "variant", "seconds", "conns/s",
           "cpu us/conn");
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < nv; k++) {
            /* A B A B ...: the pair's order alternates each round */
            struct variant *x = &v[(r & 1) && nv == 2 ? 1 - k : (k + r) % nv];
            /* a fresh listener port per run: its 4-tuples hold no TIME_WAIT of
             * the runs before, so no run pays for its predecessor's sockets */
            listener_stop();
            listener_start();
            if (x->core && core_up(x->mask, NULL, 0) != 0)
                exit(1);
            double c0 = cpu_s();
            double t = x->core ? run_core(n) : run_bare(n);
            double cpu = (cpu_s() - c0) / (double)n;
            if (!listener_catch_up(total_connected))
                fprintf(stderr, "connect_path: listener accepted %lu of %lu connections\n",
                        atomic_load(&accepted), total_connected);
            if (x->core)
                core_down();
            double rate = (double)n / t;
            printf("%-6d %-38s %10.3f %12.1f %12.2f\n", r + 1, x->name, t, rate, cpu * 1e6);
            fflush(stdout);
            if (1 / rate < x->best)
                x->best = 1 / rate;
            x->sum += rate;
            x->cpu[x->runs] = cpu;
            x->rate[x->runs++] = rate;
        }
    }
    /* Each round's figure against the bare loop of the same round: the machine
     * load moves both alike, so the per-round ratios scatter less than the
     * rates. */
    double *tmp = calloc((size_t)rounds, sizeof(double)), ratio_med = 0, cpu_ratio_med = 0;
    if (!tmp)
        exit(1);
    printf("\n%-38s %12s %12s %8s %10s %9s %12s %9s\n", "variant", "mean conns/s",
           "best conns/s", "ratio", "min-max", "+us/conn", "cpu us/conn", "cpu ratio");
    for (int k = 0; k < nv; k++) {
        double lo = 1e30, hi = 0;
        for (int r = 0; r < rounds; r++) {
            tmp[r] = v[k].rate[r] / v[0].rate[r];
            lo = tmp[r] < lo ? tmp[r] : lo;
            hi = tmp[r] > hi ? tmp[r] : hi;
        }
        double med = median(tmp, rounds);
        for (int r = 0; r < rounds; r++)
            tmp[r] = 1e6 / v[k].rate[r] - 1e6 / v[0].rate[r];
        double extra = median(tmp, rounds);
        for (int r = 0; r < rounds; r++)
            tmp[r] = v[0].cpu[r] / v[k].cpu[r];
        double cpu_ratio = median(tmp, rounds);
        for (int r = 0; r < rounds; r++)
            tmp[r] = v[k].cpu[r] * 1e6;
        double cpu_us = median(tmp, rounds);
        if (k == 1) {
            ratio_med = med;
            cpu_ratio_med = cpu_ratio;
        }
        char range[32];
        snprintf(range, sizeof(range), "%.2f-%.2f", lo, hi);
        printf("%-38s %12.1f %12.1f %8.3f %10s %9.2f %12.2f %9.3f\n", v[k].name,
               v[k].sum / v[k].runs, 1 / v[k].best, med, range, extra, cpu_us, cpu_ratio);
    }
    printf("  ratio: median over the rounds of (variant conns/s / bare conns/s of the same round); "
           "min-max: their range;\n  +us/conn: median extra wall-clock microseconds per "
           "connection over bare;\n  cpu us/conn: median CPU time (user + system) of the "
           "connecting thread per connection (the listener thread not included);\n  cpu ratio: "
           "median of (bare cpu / variant cpu) per round: the connection rate one thread could "
           "reach, relative to bare,\n  with a CPU to itself (other load on the machine inflates "
           "the wall-clock figures, not this)\n");
    printf("\nconnections: %lu made, %lu accepted by the listener\n", total_connected,
           atomic_load(&accepted));
    free(tmp);
    if (nv < 2)
        return;
    /* one line for the script */
    printf("RESULT ratio_median=%.3f cpu_ratio_median=%.3f full_mean=%.1f bare_mean=%.1f "
           "throttle=%d\n",
           ratio_med, cpu_ratio_med, v[1].sum / v[1].runs, v[0].sum / v[0].runs,
           !!(all & (1u << MOD_THROTTLE)));
}

/* ---- ephemeral ports: N connections from one source address to one port ---- */

static void ports(const char *mode, long n, const char *src, double limit_s)
{
    struct sockaddr_in s = {.sin_family = AF_INET};
    if (inet_pton(AF_INET, src, &s.sin_addr) != 1) {
        fprintf(stderr, "connect_path: bad source address %s\n", src);
        exit(2);
    }
    int on = strcmp(mode, "on") == 0;
    if (on && core_up(0, src, 0) != 0)
        exit(1);
    struct deliver_connect_result res;
    long ok = 0, fail_at = -1;
    int fail_errno = 0, timed_out = 0;
    const char *fail_call = "";
    char fail_msg[300] = "";
    double t0 = now_s(), tick = t0, worst = 0, worst_all = 0;
    long worst_at = 0, tick_ok = 0;
    printf("  %10s %8s %12s %18s\n", "connections", "seconds", "conns/s", "slowest connect");
    /* conns/s: over the stretch since the previous line; slowest connect: the
     * longest socket+bind+connect call (deliver_connect() when on) in it */
    for (long i = 0; i < n; i++) {
        int fd, e;
        double c0 = now_s();
        if (on) { /* the daemon's path: IP_BIND_ADDRESS_NO_PORT, bind SRC:0, connect */
            fd = deliver_connect(dr, 1, (struct sockaddr *)&laddr, sizeof(laddr), &res);
            if (fd < 0) {
                fail_at = i;
                fail_errno = res.error;
                fail_call = res.status == DELIVER_CONNECT_BIND_FAILED ? "bind" : "connect";
                snprintf(fail_msg, sizeof(fail_msg), "%s", res.message);
                break;
            }
        } else { /* without the option: bind SRC:0 reserves a port at bind() */
            fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd < 0) {
                perror("socket");
                exit(1);
            }
            if (bind(fd, (struct sockaddr *)&s, sizeof(s)) != 0) {
                fail_at = i;
                fail_errno = errno;
                fail_call = "bind";
                close(fd);
                break;
            }
            if (connect(fd, (struct sockaddr *)&laddr, sizeof(laddr)) != 0 &&
                errno != EINPROGRESS) {
                fail_at = i;
                fail_errno = errno;
                fail_call = "connect";
                close(fd);
                break;
            }
        }
        double c1 = now_s();
        if (c1 - c0 > worst)
            worst = c1 - c0;
        if (c1 - c0 > worst_all) {
            worst_all = c1 - c0;
            worst_at = i + 1;
        }
        if ((e = wait_connected(fd)) != 0) {
            fail_at = i;
            fail_errno = e;
            fail_call = "handshake";
            close(fd);
            break;
        }
        close(fd);
        ok++;
        double t = now_s();
        if (ok % 10000 == 0 || t - tick >= 10) { /* a line per 10,000 connections or 10 s */
            printf("  %10ld %8.1f %12.0f %15.3f ms\n", ok, t - t0,
                   (double)(ok - tick_ok) / (t - tick), worst * 1e3);
            fflush(stdout);
            tick = t;
            tick_ok = ok;
            worst = 0;
        }
        if (limit_s > 0 && now_s() - t0 > limit_s) {
            timed_out = 1;
            break;
        }
    }
    double t = now_s() - t0;
    total_connected += (unsigned long)ok;
    listener_catch_up(total_connected);
    printf("PORTS mode=%s source=%s destination=127.0.0.1:%u attempted=%ld ok=%ld seconds=%.1f "
           "conns_per_s=%.0f slowest_connect_ms=%.3f (connection %ld) ",
           on ? "on" : "off", src, (unsigned)ntohs(laddr.sin_port),
           fail_at >= 0 ? fail_at + 1 : ok, ok, t, (double)ok / t, worst_all * 1e3, worst_at);
    if (fail_at >= 0)
        printf("first_failure=%ld call=%s errno=%s (%s)%s%s\n", fail_at + 1, fail_call,
               errno_name(fail_errno), strerror(fail_errno), fail_msg[0] ? " message: " : "",
               fail_msg);
    else if (timed_out)
        printf("first_failure=none stopped_at_time_limit=%.0fs\n", limit_s);
    else
        printf("first_failure=none\n");
    if (on)
        core_down();
}

static void usage(void)
{
    fprintf(stderr,
            "usage: connect_path -M MODULE_DIR -T TMPDIR [-n CONNS] [-r ROUNDS] [-b] [-x]\n"
            "         [-o VARIANT] [-S docs|tos] [-F MS]\n"
            "         (-b: also each module alone and the core without modules; -x: leave "
            "throttle out; -o: run only that variant (bare, full, a module name with -b), for "
            "perf; -S: sockopt with keepalive, user timeout and tos (docs, 6 options) or tos only; "
            "-F: connlog's flush_interval_ms, default 200, 0 writes each line at once)\n"
            "       connect_path -P on|off [-n CONNS] [-s SOURCE] [-L SECONDS]   (ephemeral-port "
            "check; -L: stop after that long)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    long n = 20000;
    int rounds = 8, breakdown = 0, want_throttle = 1, opt;
    const char *ports_mode = NULL, *ports_src = "127.0.0.10", *only = NULL;
    double limit_s = 0;

    while ((opt = getopt(argc, argv, "M:T:n:r:bxP:s:o:S:L:F:")) != -1) {
        switch (opt) {
        case 'M': moddir = optarg; break;
        case 'T': tmpdir = optarg; break;
        case 'n': n = atol(optarg); break;
        case 'r': rounds = atoi(optarg); break;
        case 'b': breakdown = 1; break;
        case 'x': want_throttle = 0; break;
        case 'P': ports_mode = optarg; break;
        case 's': ports_src = optarg; break;
        case 'o': only = optarg; break;
        case 'L': limit_s = atof(optarg); break;
        case 'F': connlog_flush_ms = atoi(optarg); break;
        case 'S':
            if (strcmp(optarg, "tos") == 0)
                sockopt_tos_only = 1;
            else if (strcmp(optarg, "docs") != 0)
                usage();
            break;
        default: usage();
        }
    }
    if (n <= 0 || rounds <= 0)
        usage();
    log_set_level(VIPMTA_LOG_WARNING);
    for (int i = 0; i < 2; i++) {
        src_addr[i].sin_family = AF_INET;
        inet_pton(AF_INET, src_text[i], &src_addr[i].sin_addr);
    }
    listener_wait_eof = ports_mode != NULL;
    listener_start();
    if (ports_mode) {
        if (strcmp(ports_mode, "on") && strcmp(ports_mode, "off"))
            usage();
        ports(ports_mode, n, ports_src, limit_s);
    } else {
        if (!moddir || !tmpdir)
            usage();
        printf("listener on 127.0.0.1, a new port for each run (accept and close, in a thread); "
               "sources %s and %s alternately\n",
               src_text[0], src_text[1]);
        printf("sockopt: %s\n", sockopt_tos_only ? "tos per binding only (1 setsockopt)"
                                                  : "keepalive idle/interval/count and "
                                                    "user_timeout_ms for all, tos per binding "
                                                    "(6 setsockopt)");
        bench(n, rounds, breakdown, want_throttle, only);
    }
    listener_stop();
    return 0;
}
