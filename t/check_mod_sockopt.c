/* check_mod_sockopt.c: Check suite for the sockopt module (options, precedence, options read back from real sockets). */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sockopt.h"
#include "vipmta_binding.h"
#include "hooks/core/connection_post_bind.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* ---- a fake core: the public ABI the module uses, recording what it is told ---- */

struct vipmta_module_ctx {
    void *data;
};

#define MAX_LINES 64
static char errors[MAX_LINES][640];
static int nerrors;
static char logs[MAX_LINES][640];
static int nlogs;
static ec_hook_core_connection_post_bind_func_t hook_fn;
static void *hook_closure;
static int hook_first;

static vipmta_binding bindings[3] = {
    {.slot = 0, .name = "default"},
    {.slot = 1, .name = "vip1"},
    {.slot = 2, .name = "vip2"},
};

void vipmta_module_error(vipmta_module_ctx *m, const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (nerrors < MAX_LINES)
        snprintf(errors[nerrors++], sizeof(errors[0]), "%s: %s", path ? path : "(options)", msg);
}

int vipmta_module_check_keys(vipmta_module_ctx *m, const json_t *object, const char *path,
                             const char *const *allowed)
{
    int n = 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)object, key, v) {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            ok |= strcmp(*a, key) == 0;
        if (!ok) { /* the core also lists the allowed keys */
            vipmta_module_error(m, path, "unknown key \"%s\"", key);
            n++;
        }
    }
    return n;
}

void vipmta_module_log(const vipmta_module_ctx *m, enum vipmta_log_level level, const char *fmt,
                       ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (nlogs < MAX_LINES)
        vsnprintf(logs[nlogs++], sizeof(logs[0]), fmt, ap);
    va_end(ap);
}

int vipmta_log_enabled(enum vipmta_log_level level)
{
    return 1;
}

void vipmta_module_set_data(vipmta_module_ctx *m, void *data)
{
    m->data = data;
}

void *vipmta_module_get_data(const vipmta_module_ctx *m)
{
    return m->data;
}

int vipmta_binding_count(void)
{
    return 3;
}

const vipmta_binding *vipmta_binding_by_slot(ec_binding_slot slot)
{
    return slot >= 0 && slot < 3 ? &bindings[slot] : NULL;
}

const vipmta_binding *vipmta_binding_by_name(const char *name)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(bindings[i].name, name) == 0)
            return &bindings[i];
    return NULL;
}

ec_binding_slot config_get_binding_id_from_name(const char *name)
{
    const vipmta_binding *b = vipmta_binding_by_name(name);
    return b ? b->slot : EC_BINDING_SLOT_UNBOUND;
}

const char *config_get_binding_name_from_id(ec_binding_slot slot)
{
    const vipmta_binding *b = vipmta_binding_by_slot(slot);
    return b ? b->name : NULL;
}

void register_core_connection_post_bind_hook_last(ec_hook_core_connection_post_bind_func_t hook,
                                                  void *closure)
{
    hook_fn = hook;
    hook_closure = closure;
    hook_first = 0;
}

void register_core_connection_post_bind_hook_first(ec_hook_core_connection_post_bind_func_t hook,
                                                   void *closure)
{
    hook_fn = hook;
    hook_closure = closure;
    hook_first = 1;
}

/* ---- helpers ---- */

static vipmta_module_ctx ctx;

static void setup(void)
{
    nerrors = nlogs = 0;
    hook_fn = NULL;
    hook_closure = NULL;
    memset(&ctx, 0, sizeof(ctx));
}

static json_t *parse_json(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &e);
    ck_assert_msg(j != NULL, "bad test JSON: %s", e.text);
    return j;
}

static int has_error(const char *line)
{
    for (int i = 0; i < nerrors; i++)
        if (strcmp(errors[i], line) == 0)
            return 1;
    return 0;
}

static void dump_errors(void)
{
    for (int i = 0; i < nerrors; i++)
        fprintf(stderr, "  error %d: %s\n", i, errors[i]);
}

#define ck_assert_error(line)                                                                \
    do {                                                                                     \
        if (!has_error(line))                                                                \
            dump_errors();                                                                   \
        ck_assert_msg(has_error(line), "missing error: %s", line);                           \
    } while (0)

static struct sockopt_config *parse_ok(const char *text)
{
    json_t *j = parse_json(text);
    struct sockopt_config *cfg = sockopt_config_parse(&ctx, j);
    json_decref(j);
    if (!cfg)
        dump_errors();
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(nerrors, 0);
    return cfg;
}

static void parse_bad(const char *text)
{
    json_t *j = parse_json(text);
    struct sockopt_config *cfg = sockopt_config_parse(&ctx, j);
    json_decref(j);
    ck_assert_ptr_null(cfg);
}

/* A TCP socket of `family` bound to 127.0.0.2 (IPv4) or ::1 (IPv6), port
 * chosen at connect time like the core's; -1 when the host has no IPv6. */
static int bound_socket(int family)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (family == AF_INET6 && fd < 0)
        return -1;
    ck_assert_int_ge(fd, 0);
    int one = 1;
    if (family == AF_INET) {
        struct sockaddr_in a = {.sin_family = AF_INET};
        inet_pton(AF_INET, "127.0.0.2", &a.sin_addr);
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    } else {
        struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
        if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

static int get_int_opt(int fd, int level, int name)
{
    int v = -1;
    socklen_t len = sizeof(v);
    ck_assert_int_eq(getsockopt(fd, level, name, &v, &len), 0);
    return v;
}

static struct sockaddr_in dst4(void)
{
    struct sockaddr_in d = {.sin_family = AF_INET, .sin_port = htons(25)};
    inet_pton(AF_INET, "192.0.2.25", &d.sin_addr);
    return d;
}

static char fails[8][128];
static int nfails;

static void record_fail(void *arg, const char *key, const char *sockopt, int err)
{
    if (nfails < 8)
        snprintf(fails[nfails++], sizeof(fails[0]), "%s %s %d", key, sockopt, err);
}

/* ---- DSCP names ---- */

START_TEST(test_dscp_names)
{
    ck_assert_int_eq(sockopt_dscp_tos("cs0"), 0);
    ck_assert_int_eq(sockopt_dscp_tos("cs1"), 8 << 2);
    ck_assert_int_eq(sockopt_dscp_tos("cs7"), 56 << 2);
    ck_assert_int_eq(sockopt_dscp_tos("af11"), 10 << 2);
    ck_assert_int_eq(sockopt_dscp_tos("af21"), 18 << 2);
    ck_assert_int_eq(sockopt_dscp_tos("AF21"), 72);
    ck_assert_int_eq(sockopt_dscp_tos("af32"), 28 << 2);
    ck_assert_int_eq(sockopt_dscp_tos("af43"), 38 << 2);
    ck_assert_int_eq(sockopt_dscp_tos("ef"), 46 << 2);
    ck_assert_int_eq(sockopt_dscp_tos("le"), 1 << 2);
    ck_assert_int_eq(sockopt_dscp_tos("cs8"), -1);
    ck_assert_int_eq(sockopt_dscp_tos("af44"), -1);
    ck_assert_int_eq(sockopt_dscp_tos("af50"), -1);
    ck_assert_int_eq(sockopt_dscp_tos("af1"), -1);
    ck_assert_int_eq(sockopt_dscp_tos(""), -1);
    ck_assert_int_eq(sockopt_dscp_tos("expedited"), -1);
}
END_TEST

/* ---- parsing ---- */

START_TEST(test_parse_empty)
{
    struct sockopt_config *cfg = parse_ok("{}");
    ck_assert_uint_eq(cfg->dflt.present, 0);
    ck_assert_uint_eq(cfg->nbindings, 0);
    ck_assert_uint_eq(cfg->ndomains, 0);
    ck_assert_int_eq(cfg->veto_on_error, 0);
    sockopt_config_free(cfg);
}
END_TEST

START_TEST(test_parse_every_option)
{
    struct sockopt_config *cfg = parse_ok(
        "{\"default\": {\"tos\": \"af21\", \"traffic_class\": 32, \"mark\": 4294967295,"
        " \"keepalive\": {\"idle\": 60, \"interval\": 10, \"count\": 5},"
        " \"user_timeout_ms\": 30000, \"nodelay\": true, \"congestion\": \"cubic\","
        " \"sndbuf\": 262144, \"rcvbuf\": 131072}, \"veto_on_error\": true}");
    const struct sockopt_set *s = &cfg->dflt;
    ck_assert_uint_eq(s->present, SOCKOPT_TOS | SOCKOPT_TRAFFIC_CLASS | SOCKOPT_MARK |
                                      SOCKOPT_KEEPALIVE | SOCKOPT_KA_IDLE | SOCKOPT_KA_INTERVAL |
                                      SOCKOPT_KA_COUNT | SOCKOPT_USER_TIMEOUT | SOCKOPT_NODELAY |
                                      SOCKOPT_CONGESTION | SOCKOPT_SNDBUF | SOCKOPT_RCVBUF);
    ck_assert_int_eq(s->tos, 72);
    ck_assert_int_eq(s->traffic_class, 32);
    ck_assert_uint_eq(s->mark, 4294967295u);
    ck_assert_int_eq(s->keepalive, 1);
    ck_assert_int_eq(s->ka_idle, 60);
    ck_assert_int_eq(s->ka_interval, 10);
    ck_assert_int_eq(s->ka_count, 5);
    ck_assert_int_eq(s->user_timeout_ms, 30000);
    ck_assert_int_eq(s->nodelay, 1);
    ck_assert_str_eq(s->congestion, "cubic");
    ck_assert_int_eq(s->sndbuf, 262144);
    ck_assert_int_eq(s->rcvbuf, 131072);
    ck_assert_int_eq(cfg->veto_on_error, 1);
    sockopt_config_free(cfg);
}
END_TEST

START_TEST(test_parse_numbers_and_bools)
{
    struct sockopt_config *cfg =
        parse_ok("{\"default\": {\"tos\": 184, \"keepalive\": false, \"nodelay\": false},"
                 " \"bindings\": {\"vip1\": {\"keepalive\": true}, \"vip2\": {}}}");
    ck_assert_int_eq(cfg->dflt.tos, 184);
    ck_assert_uint_eq(cfg->dflt.present, SOCKOPT_TOS | SOCKOPT_KEEPALIVE | SOCKOPT_NODELAY);
    ck_assert_int_eq(cfg->dflt.keepalive, 0);
    ck_assert_int_eq(cfg->dflt.nodelay, 0);
    ck_assert_uint_eq(cfg->nbindings, 2);
    ck_assert_str_eq(cfg->bindings[0].name, "vip1");
    ck_assert_uint_eq(cfg->bindings[0].set.present, SOCKOPT_KEEPALIVE);
    ck_assert_int_eq(cfg->bindings[0].set.keepalive, 1);
    ck_assert_str_eq(cfg->bindings[1].name, "vip2");
    ck_assert_uint_eq(cfg->bindings[1].set.present, 0);
    sockopt_config_free(cfg);
}
END_TEST

START_TEST(test_parse_errors_all_reported)
{
    parse_bad("{\"default\": {\"tos\": \"af44\", \"traffic_class\": 256, \"mark\": -1,"
              " \"keepalive\": {\"idle\": 0, \"interval\": \"x\", \"count\": 128, \"probes\": 1},"
              " \"user_timeout_ms\": 1.5, \"nodelay\": 1, \"congestion\": \"a-very-long-cc-name\","
              " \"sndbuf\": 0, \"rcvbuf\": 2147483647, \"ttl\": 3},"
              " \"veto_on_error\": \"yes\", \"domain\": {}}");
    ck_assert_error("default.tos: must be a DSCP name (cs0-cs7, af11-af43, ef, le) or a number "
                    "from 0 to 255, not \"af44\"");
    ck_assert_error("default.traffic_class: must be an integer from 0 to 255, not 256");
    ck_assert_error("default.mark: must be an integer from 0 to 4294967295, not -1");
    ck_assert_error("default.keepalive.idle: must be an integer from 1 to 32767, not 0");
    ck_assert_error("default.keepalive.interval: must be an integer from 1 to 32767, not a "
                    "string");
    ck_assert_error("default.keepalive.count: must be an integer from 1 to 127, not 128");
    ck_assert_error("default.keepalive: unknown key \"probes\"");
    ck_assert_error("default.user_timeout_ms: must be an integer from 0 to 2147483647, not a "
                    "real number");
    ck_assert_error("default.nodelay: must be true or false, not an integer");
    ck_assert_error("default.congestion: must be 1 to 15 characters long, not 19");
    ck_assert_error("default.sndbuf: must be an integer from 1 to 1073741823, not 0");
    ck_assert_error("default.rcvbuf: must be an integer from 1 to 1073741823, not 2147483647");
    ck_assert_error("default: unknown key \"ttl\"");
    ck_assert_error("veto_on_error: must be true or false, not a string");
    ck_assert_error("(options): unknown key \"domain\"");
    ck_assert_int_eq(nerrors, 15);
}
END_TEST

START_TEST(test_parse_errors_shapes)
{
    parse_bad("{\"default\": [], \"bindings\": {\"vip1\": {\"tos\": 300}, \"vip2\": \"af21\"},"
              " \"domains\": {\"Example.COM\": {\"keepalive\": 30}, \"*.example.org\": {},"
              " \"example.net\": {\"congestion\": \"bb r\", \"tos\": null}}}");
    ck_assert_error("default: must be an object of socket options, not an array");
    ck_assert_error("bindings.vip1.tos: must be a DSCP name (cs0-cs7, af11-af43, ef, le) or a "
                    "number from 0 to 255, not 300");
    ck_assert_error("bindings.vip2: must be an object of socket options, not a string");
    ck_assert_error("domains.Example.COM.keepalive: must be true, false or an object with "
                    "\"idle\", \"interval\" and \"count\", not an integer");
    ck_assert_error("domains.*.example.org: \"*.example.org\" is not a domain name (exact names "
                    "only, no wildcards)");
    ck_assert_error("domains.example.net.congestion: \"bb r\" is not a congestion control name "
                    "(letters, digits, '_' and '-' only)");
    ck_assert_error("domains.example.net.tos: must be a DSCP name (cs0-cs7, af11-af43, ef, le) "
                    "or a number from 0 to 255, not null");
    ck_assert_int_eq(nerrors, 7);
}
END_TEST

START_TEST(test_parse_errors_top_level)
{
    parse_bad("[]");
    ck_assert_error("(options): must be an object, not an array");
    nerrors = 0;
    parse_bad("{\"bindings\": [], \"domains\": 3}");
    ck_assert_error("bindings: must be an object mapping binding names to socket options, not "
                    "an array");
    ck_assert_error("domains: must be an object mapping domain names to socket options, not an "
                    "integer");
    nerrors = 0;
    parse_bad("{\"default\": {\"congestion\": 5}}");
    ck_assert_error("default.congestion: must be the name of a TCP congestion control algorithm "
                    "(e.g. \"cubic\", \"bbr\"), not an integer");
    nerrors = 0;
    parse_bad("{\"domains\": {\"Example.com\": {}, \"example.COM\": {}}}");
    ck_assert_error("domains: domain \"example.com\" is listed more than once (names are "
                    "case-insensitive)");
}
END_TEST

/* ---- precedence: domain > binding > default, per option ---- */

START_TEST(test_precedence)
{
    struct sockopt_config *cfg = parse_ok(
        "{\"default\": {\"tos\": \"cs1\", \"nodelay\": true, \"keepalive\": {\"idle\": 60,"
        " \"count\": 3}},"
        " \"bindings\": {\"vip1\": {\"tos\": \"af21\", \"mark\": 7, \"keepalive\": {\"idle\": 30}}},"
        " \"domains\": {\"Example.com\": {\"tos\": \"ef\", \"keepalive\": {\"interval\": 5}},"
        " \"b.example\": {}, \"a.example\": {\"nodelay\": false}}}");
    ck_assert_uint_eq(cfg->ndomains, 3);
    ck_assert_str_eq(cfg->domains[0].name, "a.example"); /* sorted, lower-cased */
    ck_assert_str_eq(cfg->domains[2].name, "example.com");
    int n = 0;
    struct sockopt_set *slots = sockopt_config_slots(&ctx, cfg, &n);
    ck_assert_ptr_nonnull(slots);
    ck_assert_int_eq(n, 3);

    /* slot 0 and 2: the default only */
    ck_assert_int_eq(slots[0].tos, 32);
    ck_assert_uint_eq(slots[2].present, cfg->dflt.present);
    ck_assert_int_eq(slots[2].ka_idle, 60);
    /* slot 1: binding over default, per option */
    ck_assert_int_eq(slots[1].tos, 72);
    ck_assert_uint_eq(slots[1].mark, 7);
    ck_assert_int_eq(slots[1].nodelay, 1);
    ck_assert_int_eq(slots[1].ka_idle, 30);
    ck_assert_int_eq(slots[1].ka_count, 3);
    ck_assert(!(slots[1].present & SOCKOPT_KA_INTERVAL));

    /* domain over binding */
    const struct sockopt_set *d = sockopt_config_domain(cfg, "example.com");
    ck_assert_ptr_nonnull(d);
    ck_assert_ptr_null(sockopt_config_domain(cfg, "example.org"));
    ck_assert_ptr_null(sockopt_config_domain(cfg, NULL));
    struct sockopt_set merged = slots[1];
    sockopt_merge(&merged, d);
    ck_assert_int_eq(merged.tos, 184);
    ck_assert_uint_eq(merged.mark, 7);
    ck_assert_int_eq(merged.ka_idle, 30);
    ck_assert_int_eq(merged.ka_interval, 5);
    ck_assert_int_eq(merged.ka_count, 3);
    ck_assert_int_eq(merged.nodelay, 1);

    merged = slots[0];
    sockopt_merge(&merged, sockopt_config_domain(cfg, "a.example"));
    ck_assert_int_eq(merged.nodelay, 0);
    ck_assert_int_eq(merged.tos, 32);
    free(slots);
    sockopt_config_free(cfg);
}
END_TEST

START_TEST(test_unknown_binding)
{
    struct sockopt_config *cfg =
        parse_ok("{\"bindings\": {\"vip1\": {}, \"vip9\": {}, \"nope\": {\"tos\": 4}}}");
    int n = 0;
    ck_assert_ptr_null(sockopt_config_slots(&ctx, cfg, &n));
    ck_assert_error("bindings.vip9: no binding named \"vip9\" in the configuration");
    ck_assert_error("bindings.nope: no binding named \"nope\" in the configuration");
    ck_assert_int_eq(nerrors, 2);
    sockopt_config_free(cfg);
}
END_TEST

/* ---- applying to real sockets and reading back ---- */

START_TEST(test_apply_ipv4_read_back)
{
    struct sockopt_config *cfg = parse_ok(
        "{\"default\": {\"tos\": \"af21\", \"traffic_class\": 4,"
        " \"keepalive\": {\"idle\": 45, \"interval\": 7, \"count\": 4},"
        " \"user_timeout_ms\": 15000, \"nodelay\": true, \"sndbuf\": 65536,"
        " \"rcvbuf\": 98304}}");
    int fd = bound_socket(AF_INET);
    struct sockaddr_in d = dst4();
    nfails = 0;
    ck_assert_int_eq(sockopt_apply(fd, (struct sockaddr *)&d, sizeof(d), &cfg->dflt, record_fail,
                                   NULL),
                     0);
    ck_assert_int_eq(nfails, 0);
    ck_assert_int_eq(get_int_opt(fd, IPPROTO_IP, IP_TOS), 72);
    ck_assert_int_eq(get_int_opt(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
    ck_assert_int_eq(get_int_opt(fd, IPPROTO_TCP, TCP_KEEPIDLE), 45);
    ck_assert_int_eq(get_int_opt(fd, IPPROTO_TCP, TCP_KEEPINTVL), 7);
    ck_assert_int_eq(get_int_opt(fd, IPPROTO_TCP, TCP_KEEPCNT), 4);
    ck_assert_int_eq(get_int_opt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT), 15000);
    ck_assert_int_eq(get_int_opt(fd, IPPROTO_TCP, TCP_NODELAY), 1);
    ck_assert_int_ge(get_int_opt(fd, SOL_SOCKET, SO_SNDBUF), 65536); /* the kernel doubles */
    ck_assert_int_ge(get_int_opt(fd, SOL_SOCKET, SO_RCVBUF), 98304);
    close(fd);
    sockopt_config_free(cfg);
}
END_TEST

START_TEST(test_apply_congestion)
{
    /* the system's default algorithm is always allowed */
    char cc[SOCKOPT_CONGESTION_MAX] = "";
    FILE *f = fopen("/proc/sys/net/ipv4/tcp_congestion_control", "r");
    if (!f || !fgets(cc, sizeof(cc), f)) {
        if (f)
            fclose(f);
        return; /* no procfs: nothing to compare with */
    }
    fclose(f);
    cc[strcspn(cc, "\n")] = '\0';
    struct sockopt_set s = {.present = SOCKOPT_CONGESTION};
    snprintf(s.congestion, sizeof(s.congestion), "%s", cc);
    int fd = bound_socket(AF_INET);
    struct sockaddr_in d = dst4();
    ck_assert_int_eq(sockopt_apply(fd, (struct sockaddr *)&d, sizeof(d), &s, NULL, NULL), 0);
    char got[SOCKOPT_CONGESTION_MAX] = "";
    socklen_t len = sizeof(got);
    ck_assert_int_eq(getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, got, &len), 0);
    ck_assert_str_eq(got, cc);

    /* an unknown algorithm fails and is reported with its option */
    snprintf(s.congestion, sizeof(s.congestion), "no-such-cc");
    nfails = 0;
    ck_assert_int_eq(sockopt_apply(fd, (struct sockaddr *)&d, sizeof(d), &s, record_fail, NULL),
                     1);
    ck_assert_int_eq(nfails, 1);
    ck_assert_int_eq(strncmp(fails[0], "congestion TCP_CONGESTION ", 26), 0);
    close(fd);
}
END_TEST

START_TEST(test_apply_keepalive_off)
{
    struct sockopt_set s = {.present = SOCKOPT_KEEPALIVE | SOCKOPT_KA_IDLE, .ka_idle = 99};
    int fd = bound_socket(AF_INET);
    int one = 1;
    ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)), 0);
    int idle_before = get_int_opt(fd, IPPROTO_TCP, TCP_KEEPIDLE);
    struct sockaddr_in d = dst4();
    ck_assert_int_eq(sockopt_apply(fd, (struct sockaddr *)&d, sizeof(d), &s, NULL, NULL), 0);
    ck_assert_int_eq(get_int_opt(fd, SOL_SOCKET, SO_KEEPALIVE), 0);
    ck_assert_int_eq(get_int_opt(fd, IPPROTO_TCP, TCP_KEEPIDLE), idle_before);
    close(fd);
}
END_TEST

START_TEST(test_apply_mark_as_root)
{
    if (geteuid() != 0)
        return; /* SO_MARK needs CAP_NET_ADMIN */
    struct sockopt_set s = {.present = SOCKOPT_MARK, .mark = 0xC0FFEEu};
    int fd = bound_socket(AF_INET);
    struct sockaddr_in d = dst4();
    nfails = 0;
    int failed = sockopt_apply(fd, (struct sockaddr *)&d, sizeof(d), &s, record_fail, NULL);
    if (failed) { /* root without CAP_NET_ADMIN (a container): the failure is reported */
        ck_assert_int_eq(nfails, 1);
        ck_assert_int_eq(strncmp(fails[0], "mark SO_MARK ", 13), 0);
    } else {
        ck_assert_int_eq(get_int_opt(fd, SOL_SOCKET, SO_MARK), 0xC0FFEE);
    }
    close(fd);
}
END_TEST

START_TEST(test_apply_ipv6_traffic_class)
{
    int fd = bound_socket(AF_INET6);
    if (fd < 0)
        return; /* no IPv6 on this host */
    struct sockaddr_in6 d = {.sin6_family = AF_INET6, .sin6_port = htons(25)};
    inet_pton(AF_INET6, "2001:db8::25", &d.sin6_addr);

    /* tos is applied as the traffic class for IPv6 destinations */
    struct sockopt_set s = {.present = SOCKOPT_TOS, .tos = 72};
    ck_assert_int_eq(sockopt_apply(fd, (struct sockaddr *)&d, sizeof(d), &s, NULL, NULL), 0);
    ck_assert_int_eq(get_int_opt(fd, IPPROTO_IPV6, IPV6_TCLASS), 72);

    /* traffic_class wins over tos */
    s.present |= SOCKOPT_TRAFFIC_CLASS;
    s.traffic_class = 0xb8;
    ck_assert_int_eq(sockopt_apply(fd, (struct sockaddr *)&d, sizeof(d), &s, NULL, NULL), 0);
    ck_assert_int_eq(get_int_opt(fd, IPPROTO_IPV6, IPV6_TCLASS), 0xb8);
    close(fd);

    /* traffic_class is ignored for IPv4 destinations */
    fd = bound_socket(AF_INET);
    struct sockaddr_in d4 = dst4();
    s.present = SOCKOPT_TRAFFIC_CLASS;
    ck_assert_int_eq(sockopt_apply(fd, (struct sockaddr *)&d4, sizeof(d4), &s, NULL, NULL), 0);
    ck_assert_int_eq(get_int_opt(fd, IPPROTO_IP, IP_TOS), 0);
    close(fd);
}
END_TEST

/* ---- the module through its descriptor, as the loader drives it ---- */

static const vipmta_module_descriptor *configure_module(const char *options)
{
    const vipmta_module_descriptor *d = vipmta_module_get_descriptor();
    ck_assert_uint_eq(d->magic, VIPMTA_MODULE_MAGIC);
    ck_assert_str_eq(d->name, "sockopt");
    json_t *j = parse_json(options);
    int r = d->configure(&ctx, j);
    json_decref(j);
    if (r)
        dump_errors();
    ck_assert_int_eq(r, 0);
    return d;
}

START_TEST(test_module_hook)
{
    const vipmta_module_descriptor *d = configure_module(
        "{\"default\": {\"nodelay\": true}, \"bindings\": {\"vip1\": {\"tos\": \"af21\"}},"
        " \"domains\": {\"example.com\": {\"tos\": \"cs5\"}}}");
    ck_assert_ptr_null(hook_fn); /* configure registers nothing */
    ck_assert_int_eq(d->init(&ctx), 0);
    ck_assert_ptr_nonnull(hook_fn);
    ck_assert_int_eq(hook_first, 0);

    domain_record other = {.domain = "example.org"}, ex = {.domain = "example.com"};
    struct sockaddr_in dst = dst4();
    int fd = bound_socket(AF_INET);
    ck_assert_int_eq(hook_fn(hook_closure, &other, 1, fd, (struct sockaddr *)&dst, sizeof(dst)),
                     0);
    ck_assert_int_eq(get_int_opt(fd, IPPROTO_IP, IP_TOS), 72);
    ck_assert_int_eq(get_int_opt(fd, IPPROTO_TCP, TCP_NODELAY), 1);
    close(fd);

    fd = bound_socket(AF_INET);
    ck_assert_int_eq(hook_fn(hook_closure, &ex, 1, fd, (struct sockaddr *)&dst, sizeof(dst)), 0);
    ck_assert_int_eq(get_int_opt(fd, IPPROTO_IP, IP_TOS), 160);
    close(fd);

    /* slot 2 and an out-of-range slot get the default */
    for (int slot = 2; slot <= 7; slot += 5) {
        fd = bound_socket(AF_INET);
        ck_assert_int_eq(
            hook_fn(hook_closure, &other, slot, fd, (struct sockaddr *)&dst, sizeof(dst)), 0);
        ck_assert_int_eq(get_int_opt(fd, IPPROTO_IP, IP_TOS), 0);
        ck_assert_int_eq(get_int_opt(fd, IPPROTO_TCP, TCP_NODELAY), 1);
        close(fd);
    }

    /* reload: bad options keep the old ones, good ones replace them */
    json_t *bad = parse_json("{\"bindings\": {\"vip3\": {}}}");
    ck_assert_int_ne(d->reload(&ctx, bad), 0);
    json_decref(bad);
    ck_assert_error("bindings.vip3: no binding named \"vip3\" in the configuration");
    json_t *good = parse_json("{\"bindings\": {\"vip1\": {\"tos\": \"cs1\"}}}");
    ck_assert_int_eq(d->reload(&ctx, good), 0);
    json_decref(good);
    fd = bound_socket(AF_INET);
    ck_assert_int_eq(hook_fn(hook_closure, &ex, 1, fd, (struct sockaddr *)&dst, sizeof(dst)), 0);
    ck_assert_int_eq(get_int_opt(fd, IPPROTO_IP, IP_TOS), 32);
    ck_assert_int_eq(get_int_opt(fd, IPPROTO_TCP, TCP_NODELAY), 0);
    close(fd);
    d->shutdown(&ctx);
    ck_assert_ptr_null(ctx.data);
}
END_TEST

START_TEST(test_module_init_unknown_binding)
{
    const vipmta_module_descriptor *d = configure_module("{\"bindings\": {\"vip7\": {}}}");
    ck_assert_int_eq(nerrors, 0); /* configure does not check bindings */
    ck_assert_int_ne(d->init(&ctx), 0);
    ck_assert_error("bindings.vip7: no binding named \"vip7\" in the configuration");
    ck_assert_ptr_null(hook_fn);
    d->shutdown(&ctx);
}
END_TEST

START_TEST(test_module_veto_on_error)
{
    for (int veto = 0; veto <= 1; veto++) {
        char opts[160];
        snprintf(opts, sizeof(opts),
                 "{\"default\": {\"congestion\": \"no-such-cc\", \"nodelay\": true},"
                 " \"veto_on_error\": %s}",
                 veto ? "true" : "false");
        const vipmta_module_descriptor *d = configure_module(opts);
        ck_assert_int_eq(d->init(&ctx), 0);
        nlogs = 0;
        domain_record dr = {.domain = "example.com"};
        struct sockaddr_in dst = dst4();
        int fd = bound_socket(AF_INET);
        ck_assert_int_eq(hook_fn(hook_closure, &dr, 1, fd, (struct sockaddr *)&dst, sizeof(dst)),
                         veto);
        ck_assert_int_eq(get_int_opt(fd, IPPROTO_TCP, TCP_NODELAY), 1); /* the rest applied */
        ck_assert_int_eq(nlogs, 1);
        char want[256];
        snprintf(want, sizeof(want),
                 "setsockopt(TCP_CONGESTION) for \"congestion\" failed (binding \"vip1\", slot 1, "
                 "domain example.com): %s%s",
                 strerror(ENOENT), veto ? "; vetoing the connection" : "");
        ck_assert_str_eq(logs[0], want);
        close(fd);
        d->shutdown(&ctx);
    }
}
END_TEST

static Suite *sockopt_suite(void)
{
    Suite *s = suite_create("mod_sockopt");
    TCase *tc = tcase_create("options");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_dscp_names);
    tcase_add_test(tc, test_parse_empty);
    tcase_add_test(tc, test_parse_every_option);
    tcase_add_test(tc, test_parse_numbers_and_bools);
    tcase_add_test(tc, test_parse_errors_all_reported);
    tcase_add_test(tc, test_parse_errors_shapes);
    tcase_add_test(tc, test_parse_errors_top_level);
    tcase_add_test(tc, test_precedence);
    tcase_add_test(tc, test_unknown_binding);
    suite_add_tcase(s, tc);

    tc = tcase_create("apply");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_apply_ipv4_read_back);
    tcase_add_test(tc, test_apply_congestion);
    tcase_add_test(tc, test_apply_keepalive_off);
    tcase_add_test(tc, test_apply_mark_as_root);
    tcase_add_test(tc, test_apply_ipv6_traffic_class);
    suite_add_tcase(s, tc);

    tc = tcase_create("module");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_module_hook);
    tcase_add_test(tc, test_module_init_unknown_binding);
    tcase_add_test(tc, test_module_veto_on_error);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(sockopt_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
