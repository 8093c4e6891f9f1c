/* check_mod_sockopt.c: Check suite for the sockopt module (options per scope, precedence, options read back from real sockets). */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fakecore.h"
#include "sockopt.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* ---- helpers ---- */

/* The parsed options of `entry` (every scope), which must be valid. */
static struct sockopt_config *parse_ok(const char *entry)
{
    vipmta_module_ctx *m = fake_module(entry);
    struct sockopt_config *cfg = sockopt_config_parse(m);
    fake_stop(m);
    ck_assert_parsed(cfg);
    return cfg;
}

static void parse_bad(const char *entry)
{
    vipmta_module_ctx *m = fake_module(entry);
    struct sockopt_config *cfg = sockopt_config_parse(m);
    fake_stop(m);
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
    ck_assert_uint_eq(cfg->npairs, 0);
    ck_assert_int_eq(cfg->nslots, 3);
    ck_assert_int_eq(cfg->veto_on_error, 0);
    sockopt_config_free(cfg);
}
END_TEST

START_TEST(test_parse_every_option)
{
    struct sockopt_config *cfg = parse_ok(
        "{\"options\": {\"tos\": \"af21\", \"traffic_class\": 32, \"mark\": 4294967295,"
        " \"keepalive\": {\"idle\": 60, \"interval\": 10, \"count\": 5},"
        " \"user_timeout_ms\": 30000, \"nodelay\": true, \"congestion\": \"cubic\","
        " \"sndbuf\": 262144, \"rcvbuf\": 131072, \"veto_on_error\": true}}");
    const struct sockopt_set want = {
        .present = SOCKOPT_TOS | SOCKOPT_TRAFFIC_CLASS | SOCKOPT_MARK | SOCKOPT_KEEPALIVE |
                   SOCKOPT_KA_IDLE | SOCKOPT_KA_INTERVAL | SOCKOPT_KA_COUNT |
                   SOCKOPT_USER_TIMEOUT | SOCKOPT_NODELAY | SOCKOPT_CONGESTION | SOCKOPT_SNDBUF |
                   SOCKOPT_RCVBUF,
        .tos = 72, .traffic_class = 32, .mark = 4294967295u, .keepalive = 1, .ka_idle = 60,
        .ka_interval = 10, .ka_count = 5, .user_timeout_ms = 30000, .nodelay = 1,
        .congestion = "cubic", .sndbuf = 262144, .rcvbuf = 131072,
    };
    /* plain data without padding holes that matter: compared whole */
    ck_assert_mem_eq(&cfg->dflt, &want, sizeof(want));
    ck_assert_int_eq(cfg->veto_on_error, 1);
    sockopt_config_free(cfg);
}
END_TEST

START_TEST(test_parse_numbers_and_bools)
{
    struct sockopt_config *cfg =
        parse_ok("{\"options\": {\"tos\": 184, \"keepalive\": false, \"nodelay\": false},"
                 " \"bindings\": {\"vip1\": {\"keepalive\": true}, \"vip2\": {}}}");
    ck_assert_int_eq(cfg->dflt.tos, 184);
    ck_assert_uint_eq(cfg->dflt.present, SOCKOPT_TOS | SOCKOPT_KEEPALIVE | SOCKOPT_NODELAY);
    ck_assert_int_eq(cfg->dflt.keepalive, 0);
    ck_assert_int_eq(cfg->dflt.nodelay, 0);
    ck_assert_uint_eq(cfg->nbindings, 2);
    ck_assert_uint_eq(cfg->slots[1].present, SOCKOPT_TOS | SOCKOPT_KEEPALIVE | SOCKOPT_NODELAY);
    ck_assert_int_eq(cfg->slots[1].keepalive, 1);
    ck_assert_int_eq(cfg->slots[2].keepalive, 0);
    sockopt_config_free(cfg);
}
END_TEST

START_TEST(test_parse_errors_all_reported)
{
    parse_bad("{\"options\": {\"tos\": \"af44\", \"traffic_class\": 256, \"mark\": -1,"
              " \"keepalive\": {\"idle\": 0, \"interval\": \"x\", \"count\": 128, \"probes\": 1},"
              " \"user_timeout_ms\": 1.5, \"nodelay\": 1, \"congestion\": \"a-very-long-cc-name\","
              " \"sndbuf\": 0, \"rcvbuf\": 2147483647, \"ttl\": 3,"
              " \"veto_on_error\": \"yes\"}}");
    ck_assert_error("options.tos: must be a DSCP name (cs0-cs7, af11-af43, ef, le) or a number "
                    "from 0 to 255, not \"af44\"");
    ck_assert_error("options.traffic_class: must be an integer from 0 to 255, not 256");
    ck_assert_error("options.mark: must be an integer from 0 to 4294967295, not -1");
    ck_assert_error("options.keepalive.idle: must be an integer from 1 to 32767, not 0");
    ck_assert_error("options.keepalive.interval: must be an integer from 1 to 32767, not a "
                    "string");
    ck_assert_error("options.keepalive.count: must be an integer from 1 to 127, not 128");
    ck_assert_error("options.keepalive: unknown key \"probes\" (allowed: idle, interval, count)");
    ck_assert_error("options.user_timeout_ms: must be an integer from 0 to 2147483647, not a "
                    "real number");
    ck_assert_error("options.nodelay: must be true or false, not an integer");
    ck_assert_error("options.congestion: must be 1 to 15 characters long, not 19");
    ck_assert_error("options.sndbuf: must be an integer from 1 to 1073741823, not 0");
    ck_assert_error("options.rcvbuf: must be an integer from 1 to 1073741823, not 2147483647");
    ck_assert_error("options: unknown key \"ttl\" (allowed: tos, traffic_class, mark, keepalive, "
                    "user_timeout_ms, nodelay, congestion, sndbuf, rcvbuf, veto_on_error)");
    ck_assert_error("options.veto_on_error: must be true or false, not a string");
    ck_assert_int_eq(fake_nerrors, 14);
}
END_TEST

START_TEST(test_parse_errors_scopes)
{
    parse_bad("{\"bindings\": {\"vip1\": {\"tos\": 300, \"veto_on_error\": true}},"
              " \"domains\": {\"Example.COM\": {\"keepalive\": 30},"
              " \"example.net\": {\"congestion\": \"bb r\", \"tos\": null}},"
              " \"binding_domains\": {\"vip2\": {\"example.org\": {\"keepalive\": []}}}}");
    ck_assert_error("bindings.vip1.tos: must be a DSCP name (cs0-cs7, af11-af43, ef, le) or a "
                    "number from 0 to 255, not 300");
    ck_assert_error("bindings.vip1: unknown key \"veto_on_error\" (allowed: tos, traffic_class, "
                    "mark, keepalive, user_timeout_ms, nodelay, congestion, sndbuf, rcvbuf)");
    ck_assert_error("domains.Example.COM.keepalive: must be true, false or an object with "
                    "\"idle\", \"interval\" and \"count\", not an integer");
    ck_assert_error("domains.example.net.congestion: \"bb r\" is not a congestion control name "
                    "(letters, digits, '_' and '-' only)");
    ck_assert_error("domains.example.net.tos: must be a DSCP name (cs0-cs7, af11-af43, ef, le) "
                    "or a number from 0 to 255, not null");
    ck_assert_error("binding_domains.vip2.example.org.keepalive: must be true, false or an object "
                    "with \"idle\", \"interval\" and \"count\", not an array");
    ck_assert_int_eq(fake_nerrors, 6);
    fake_reset();
    parse_bad("{\"options\": {\"congestion\": 5, \"default\": {}}}");
    ck_assert_error("options.congestion: must be the name of a TCP congestion control algorithm "
                    "(e.g. \"cubic\", \"bbr\"), not an integer");
    ck_assert_error("options: unknown key \"default\" (allowed: tos, traffic_class, mark, "
                    "keepalive, user_timeout_ms, nodelay, congestion, sndbuf, rcvbuf, "
                    "veto_on_error)");
    ck_assert_int_eq(fake_nerrors, 2);
}
END_TEST

/* ---- precedence: binding x domain > domain > binding > default, per option ---- */

START_TEST(test_precedence)
{
    struct sockopt_config *cfg = parse_ok(
        "{\"options\": {\"tos\": \"cs1\", \"nodelay\": true, \"keepalive\": {\"idle\": 60,"
        " \"count\": 3}},"
        " \"bindings\": {\"vip1\": {\"tos\": \"af21\", \"mark\": 7, \"keepalive\": {\"idle\": 30}}},"
        " \"domains\": {\"Example.com\": {\"tos\": \"ef\", \"keepalive\": {\"interval\": 5}},"
        " \"b.example\": {}, \"a.example\": {\"nodelay\": false}},"
        " \"binding_domains\": {\"vip1\": {\"example.com\": {\"mark\": 9}},"
        "                       \"vip2\": {\"a.example\": {\"tos\": \"cs7\"}}}}");
    ck_assert_uint_eq(cfg->ndomains, 3);
    ck_assert_str_eq(cfg->domains[0].domain, "a.example"); /* sorted, lower-cased */
    ck_assert_str_eq(cfg->domains[2].domain, "example.com");
    ck_assert_uint_eq(cfg->npairs, 2);

    /* slot 0 and 2: the default only */
    ck_assert_int_eq(cfg->slots[0].tos, 32);
    ck_assert_uint_eq(cfg->slots[2].present, cfg->dflt.present);
    ck_assert_int_eq(cfg->slots[2].ka_idle, 60);
    /* slot 1: binding over default, per option */
    ck_assert_int_eq(cfg->slots[1].tos, 72);
    ck_assert_uint_eq(cfg->slots[1].mark, 7);
    ck_assert_int_eq(cfg->slots[1].nodelay, 1);
    ck_assert_int_eq(cfg->slots[1].ka_idle, 30);
    ck_assert_int_eq(cfg->slots[1].ka_count, 3);
    ck_assert(!(cfg->slots[1].present & SOCKOPT_KA_INTERVAL));

    /* no domain entry: the slot's own options, no merging */
    struct sockopt_set buf;
    ck_assert_ptr_eq(sockopt_config_resolve(cfg, 1, "example.org", &buf), &cfg->slots[1]);
    ck_assert_ptr_eq(sockopt_config_resolve(cfg, 1, NULL, &buf), &cfg->slots[1]);
    ck_assert_ptr_eq(sockopt_config_resolve(cfg, 7, NULL, &buf), &cfg->dflt);
    /* domain over binding, binding x domain over both */
    const struct sockopt_set *s = sockopt_config_resolve(cfg, 1, "example.com", &buf);
    ck_assert_int_eq(s->tos, 184);
    ck_assert_uint_eq(s->mark, 9);
    ck_assert_int_eq(s->ka_idle, 30);
    ck_assert_int_eq(s->ka_interval, 5);
    ck_assert_int_eq(s->ka_count, 3);
    ck_assert_int_eq(s->nodelay, 1);
    s = sockopt_config_resolve(cfg, 2, "example.com", &buf);
    ck_assert_uint_eq(s->mark, 0);
    ck_assert(!(s->present & SOCKOPT_MARK));
    s = sockopt_config_resolve(cfg, 0, "a.example", &buf);
    ck_assert_int_eq(s->nodelay, 0);
    ck_assert_int_eq(s->tos, 32);
    s = sockopt_config_resolve(cfg, 2, "a.example", &buf);
    ck_assert_int_eq(s->tos, 224);
    ck_assert_int_eq(s->nodelay, 0);
    sockopt_config_free(cfg);
}
END_TEST

/* ---- applying to real sockets and reading back ---- */

START_TEST(test_apply_ipv4_read_back)
{
    struct sockopt_config *cfg = parse_ok(
        "{\"options\": {\"tos\": \"af21\", \"traffic_class\": 4,"
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

static vipmta_module_ctx *start(const char *entry)
{
    vipmta_module_ctx *m = fake_module(entry);
    ck_assert_int_eq(fake_configure(m), 0);
    ck_assert_ptr_null(fake_hook_fn); /* configure registers nothing */
    ck_assert_int_eq(fake_init(m), 0);
    ck_assert_ptr_nonnull(fake_hook_fn);
    ck_assert_int_eq(fake_hook_first, 0);
    return m;
}

static int post_bind(domain_record *dr, int slot, int fd)
{
    struct sockaddr_in dst = dst4();
    return fake_hook_fn(fake_hook_closure, dr, slot, fd, (struct sockaddr *)&dst, sizeof(dst));
}

START_TEST(test_module_hook)
{
    vipmta_module_ctx *m = start(
        "{\"options\": {\"nodelay\": true}, \"bindings\": {\"vip1\": {\"tos\": \"af21\"}},"
        " \"domains\": {\"example.com\": {\"tos\": \"cs5\"}}}");
    ck_assert_log("ready: 1 binding, 1 domain and 0 binding x domain override(s), "
                  "veto_on_error false");
    domain_record other = {.domain = "example.org"}, ex = {.domain = "example.com"};
    int fd = bound_socket(AF_INET);
    ck_assert_int_eq(post_bind(&other, 1, fd), 0);
    ck_assert_int_eq(get_int_opt(fd, IPPROTO_IP, IP_TOS), 72);
    ck_assert_int_eq(get_int_opt(fd, IPPROTO_TCP, TCP_NODELAY), 1);
    close(fd);

    fd = bound_socket(AF_INET);
    ck_assert_int_eq(post_bind(&ex, 1, fd), 0);
    ck_assert_int_eq(get_int_opt(fd, IPPROTO_IP, IP_TOS), 160);
    close(fd);

    /* slot 2 and an out-of-range slot get the default */
    for (int slot = 2; slot <= 7; slot += 5) {
        fd = bound_socket(AF_INET);
        ck_assert_int_eq(post_bind(&other, slot, fd), 0);
        ck_assert_int_eq(get_int_opt(fd, IPPROTO_IP, IP_TOS), 0);
        ck_assert_int_eq(get_int_opt(fd, IPPROTO_TCP, TCP_NODELAY), 1);
        close(fd);
    }

    /* reload: bad options keep the old ones, good ones replace them */
    ck_assert_int_ne(fake_reload(m, "{\"bindings\": {\"vip1\": {\"tos\": \"af99\"}}}"), 0);
    ck_assert_error("bindings.vip1.tos: must be a DSCP name (cs0-cs7, af11-af43, ef, le) or a "
                    "number from 0 to 255, not \"af99\"");
    fd = bound_socket(AF_INET);
    ck_assert_int_eq(post_bind(&ex, 1, fd), 0);
    ck_assert_int_eq(get_int_opt(fd, IPPROTO_IP, IP_TOS), 160);
    close(fd);
    ck_assert_int_eq(fake_reload(m, "{\"bindings\": {\"vip1\": {\"tos\": \"cs1\"}}}"), 0);
    fd = bound_socket(AF_INET);
    ck_assert_int_eq(post_bind(&ex, 1, fd), 0);
    ck_assert_int_eq(get_int_opt(fd, IPPROTO_IP, IP_TOS), 32);
    ck_assert_int_eq(get_int_opt(fd, IPPROTO_TCP, TCP_NODELAY), 0);
    close(fd);
    fake_stop(m);
}
END_TEST

START_TEST(test_module_binding_domain)
{
    vipmta_module_ctx *m = start("{\"options\": {\"tos\": \"cs1\"},"
                                 " \"binding_domains\": {\"vip2\": {\"b.test\": {\"tos\": \"ef\"}}}}");
    domain_record b = {.domain = "b.test"};
    int fd = bound_socket(AF_INET);
    ck_assert_int_eq(post_bind(&b, 2, fd), 0);
    ck_assert_int_eq(get_int_opt(fd, IPPROTO_IP, IP_TOS), 184);
    close(fd);
    fd = bound_socket(AF_INET);
    ck_assert_int_eq(post_bind(&b, 1, fd), 0); /* another binding to b.test: the default */
    ck_assert_int_eq(get_int_opt(fd, IPPROTO_IP, IP_TOS), 32);
    close(fd);
    fake_stop(m);
}
END_TEST

START_TEST(test_module_veto_on_error)
{
    for (int veto = 0; veto <= 1; veto++) {
        char entry[200];
        snprintf(entry, sizeof(entry),
                 "{\"options\": {\"congestion\": \"no-such-cc\", \"nodelay\": true,"
                 " \"veto_on_error\": %s}}",
                 veto ? "true" : "false");
        vipmta_module_ctx *m = start(entry);
        fake_nlogs = 0;
        domain_record dr = {.domain = "example.com"};
        int fd = bound_socket(AF_INET);
        ck_assert_int_eq(post_bind(&dr, 1, fd), veto);
        ck_assert_int_eq(get_int_opt(fd, IPPROTO_TCP, TCP_NODELAY), 1); /* the rest applied */
        ck_assert_int_eq(fake_nlogs, 1);
        char want[256];
        snprintf(want, sizeof(want),
                 "setsockopt(TCP_CONGESTION) for \"congestion\" failed (binding \"vip1\", slot 1, "
                 "domain example.com): %s%s",
                 strerror(ENOENT), veto ? "; vetoing the connection" : "");
        ck_assert_str_eq(fake_logs[0], want);
        close(fd);
        fake_stop(m);
        fake_hook_fn = NULL;
    }
}
END_TEST

static Suite *sockopt_suite(void)
{
    Suite *s = suite_create("mod_sockopt");
    fake_tcase(s, "options", fake_reset, NULL, test_dscp_names, test_parse_empty,
               test_parse_every_option, test_parse_numbers_and_bools,
               test_parse_errors_all_reported, test_parse_errors_scopes, test_precedence, NULL);
    fake_tcase(s, "apply", fake_reset, NULL, test_apply_ipv4_read_back, test_apply_congestion,
               test_apply_keepalive_off, test_apply_mark_as_root, test_apply_ipv6_traffic_class,
               NULL);
    fake_tcase(s, "module", fake_reset, NULL, test_module_hook, test_module_binding_domain,
               test_module_veto_on_error, NULL);
    return s;
}

int main(void)
{
    return fake_run(sockopt_suite());
}
