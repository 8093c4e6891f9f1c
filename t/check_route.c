/* check_route.c: Check suite for routing: static routes, MX order, null MX, NXDOMAIN, NODATA fallback, failures, cache. */
#include <arpa/inet.h>
#include <check.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config_current.h"
#include "route/route.h"

/* ---- a tiny authoritative DNS server on a loopback UDP port, in the test's loop ---- */

#define T_A 1
#define T_MX 15
#define T_AAAA 28

struct rr {
    const char *name;
    int type;
    int rcode;          /* for the whole answer: 0, 2 SERVFAIL, 3 NXDOMAIN, -1 no answer at all */
    unsigned ttl;
    unsigned pref;      /* MX */
    const char *data;   /* MX host ("" for the root), or the address */
};

static const struct rr zone[] = {
    {"mx.test", T_MX, 0, 300, 20, "b.mx.test"},
    {"mx.test", T_MX, 0, 300, 10, "a.mx.test"},
    {"a.mx.test", T_A, 0, 50, 0, "127.0.0.1"},
    {"b.mx.test", T_A, 0, 600, 0, "127.0.0.2"},
    {"b.mx.test", T_AAAA, 0, 600, 0, "::1"},
    {"null.test", T_MX, 0, 300, 0, ""},
    {"nx.test", 0, 3, 0, 0, NULL},
    {"nomx.test", T_A, 0, 300, 0, "127.0.0.3"},
    {"fail.test", T_MX, 2, 0, 0, NULL},
    {"slow.test", T_MX, -1, 0, 0, NULL},
    {"relay.test", T_A, 0, 300, 0, "127.0.0.4"},
    {"noaddr.test", T_MX, 0, 300, 10, "gone.noaddr.test"},
    {"gone.noaddr.test", 0, 3, 0, 0, NULL},
};

static int dns_fd = -1;
static unsigned dns_port;
static struct event *dns_ev;
static int queries; /* questions received */

static size_t put_name(unsigned char *p, const char *name)
{
    size_t o = 0;
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t n = dot ? (size_t)(dot - name) : strlen(name);
        p[o++] = (unsigned char)n;
        memcpy(p + o, name, n);
        o += n;
        name += n;
        if (*name == '.')
            name++;
    }
    p[o++] = 0;
    return o;
}

static void dns_on_query(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    (void)arg;
    unsigned char q[512], r[1024];
    struct sockaddr_storage from;
    socklen_t fl = sizeof(from);
    ssize_t n = recvfrom(fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
    if (n < 17)
        return;
    queries++;
    /* the question name */
    char name[256];
    size_t i = 12, o = 0;
    while (i < (size_t)n && q[i]) {
        size_t l = q[i++];
        if (o)
            name[o++] = '.';
        memcpy(name + o, q + i, l);
        o += l;
        i += l;
    }
    name[o] = '\0';
    i++;
    int qtype = q[i] << 8 | q[i + 1];
    size_t qend = i + 4;

    int rcode = 0, known = 0, an = 0;
    size_t ro = qend;
    memcpy(r, q, qend);
    for (size_t z = 0; z < sizeof(zone) / sizeof(zone[0]); z++) {
        const struct rr *e = &zone[z];
        if (strcasecmp(e->name, name) != 0)
            continue;
        known = 1;
        if (e->rcode == -1)
            return; /* never answer */
        if (e->rcode) {
            rcode = e->rcode;
            break;
        }
        if (e->type != qtype)
            continue;
        r[ro++] = 0xc0;
        r[ro++] = 12;
        r[ro++] = 0;
        r[ro++] = (unsigned char)e->type;
        r[ro++] = 0;
        r[ro++] = 1;
        r[ro++] = (unsigned char)(e->ttl >> 24);
        r[ro++] = (unsigned char)(e->ttl >> 16);
        r[ro++] = (unsigned char)(e->ttl >> 8);
        r[ro++] = (unsigned char)e->ttl;
        size_t rdlen_at = ro;
        ro += 2;
        size_t start = ro;
        if (e->type == T_MX) {
            r[ro++] = (unsigned char)(e->pref >> 8);
            r[ro++] = (unsigned char)e->pref;
            ro += put_name(r + ro, e->data);
        } else if (e->type == T_A) {
            inet_pton(AF_INET, e->data, r + ro);
            ro += 4;
        } else {
            inet_pton(AF_INET6, e->data, r + ro);
            ro += 16;
        }
        r[rdlen_at] = (unsigned char)((ro - start) >> 8);
        r[rdlen_at + 1] = (unsigned char)(ro - start);
        an++;
    }
    if (!known)
        rcode = 3;
    if (rcode)
        ro = qend, an = 0;
    r[2] = 0x84 | (q[2] & 0x01); /* QR, AA, RD copied */
    r[3] = (unsigned char)(0x80 | rcode);
    r[6] = 0;
    r[7] = (unsigned char)an;
    r[8] = r[9] = r[10] = r[11] = 0;
    sendto(fd, r, ro, 0, (struct sockaddr *)&from, fl);
}

/* ---- the routing config ---- */

static char server[64];
static char *servers[] = {server};
static char *static_hosts[] = {"127.0.0.1:2600", "[::1]:2601"};
static char *named_hosts[] = {"relay.test:2700", "127.0.0.9"};
static struct config_route routes[] = {
    {.domain = "static.test", .hosts = static_hosts, .host_count = 2},
    {.domain = "named.test", .hosts = named_hosts, .host_count = 2},
};
static struct vipmta_config cfg;
static struct event_base *base;

/* Only the lookups route.c needs from config.c. */
static void setup(void)
{
    base = event_base_new();
    ck_assert_ptr_nonnull(base);
    dns_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(dns_fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(dns_fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t al = sizeof(a);
    getsockname(dns_fd, (struct sockaddr *)&a, &al);
    dns_port = ntohs(a.sin_port);
    dns_ev = event_new(base, dns_fd, EV_READ | EV_PERSIST, dns_on_query, NULL);
    event_add(dns_ev, NULL);
    queries = 0;

    memset(&cfg, 0, sizeof(cfg));
    snprintf(server, sizeof(server), "127.0.0.1:%u", dns_port);
    cfg.dns.servers = servers;
    cfg.dns.server_count = 1;
    cfg.dns.timeout_ms = 300;
    cfg.dns.tries = 1;
    cfg.dns.mx_port = 2525;
    cfg.routes = routes;
    cfg.route_count = 2;
    cfg.refs = 1; /* the test's own reference, never released: nothing frees the static cfg */
    config_install(config_ref(&cfg));
    struct config_errors errs = {0};
    int rc = route_init(base, &cfg, &errs);
    if (rc != 0)
        config_errors_print(&errs, stderr, "route_init: ");
    config_errors_clear(&errs);
    ck_assert_int_eq(rc, 0);
}

static void teardown(void)
{
    route_shutdown();
    config_install(NULL);
    event_free(dns_ev);
    close(dns_fd);
    event_base_free(base);
}

/* ---- resolving ---- */

struct answer {
    int calls;
    enum route_status status;
    char error[256];
    struct route_target t[16];
    size_t count;
};

static void on_route(void *arg, const struct route_result *res)
{
    struct answer *a = arg;
    a->calls++;
    a->status = res->status;
    snprintf(a->error, sizeof(a->error), "%s", res->error);
    a->count = res->count < 16 ? res->count : 16;
    if (a->count)
        memcpy(a->t, res->targets, a->count * sizeof(a->t[0]));
    event_base_loopbreak(base);
}

static void resolve(const char *domain, struct answer *a)
{
    memset(a, 0, sizeof(*a));
    route_resolve(domain, on_route, a);
    if (!a->calls) {
        struct timeval limit = {5, 0};
        event_base_loopexit(base, &limit);
        event_base_dispatch(base);
    }
    ck_assert_int_eq(a->calls, 1);
}

static const char *target_str(const struct route_target *t)
{
    static char buf[400];
    char ip[INET6_ADDRSTRLEN];
    unsigned port;
    if (t->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&t->addr;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
        port = ntohs(s6->sin6_port);
        snprintf(buf, sizeof(buf), "%s [%s]:%u", t->host, ip, port);
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&t->addr;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
        port = ntohs(s4->sin_port);
        snprintf(buf, sizeof(buf), "%s %s:%u", t->host, ip, port);
    }
    return buf;
}

START_TEST(test_mx_order_and_port)
{
    struct answer a;
    resolve("mx.test", &a);
    ck_assert_int_eq(a.status, ROUTE_OK);
    ck_assert_uint_eq(a.count, 3);
    ck_assert_str_eq(target_str(&a.t[0]), "a.mx.test 127.0.0.1:2525");
    ck_assert_uint_eq(a.t[0].preference, 10);
    ck_assert_str_eq(target_str(&a.t[1]), "b.mx.test 127.0.0.2:2525");
    ck_assert_str_eq(target_str(&a.t[2]), "b.mx.test [::1]:2525");
    ck_assert_uint_eq(a.t[2].preference, 20);
    ck_assert_uint_eq(a.t[2].addr_len, sizeof(struct sockaddr_in6));
}
END_TEST

START_TEST(test_cache_answers_without_queries)
{
    struct answer a;
    resolve("mx.test", &a);
    int after_first = queries;
    ck_assert_int_ge(after_first, 3);
    memset(&a, 0, sizeof(a));
    route_resolve("MX.test", on_route, &a); /* cached: answered at once */
    ck_assert_int_eq(a.calls, 1);
    ck_assert_int_eq(a.status, ROUTE_OK);
    ck_assert_uint_eq(a.count, 3);
    ck_assert_int_eq(queries, after_first);
    /* negative answers are cached too */
    resolve("nx.test", &a);
    int q = queries;
    memset(&a, 0, sizeof(a));
    route_resolve("nx.test", on_route, &a);
    ck_assert_int_eq(a.calls, 1);
    ck_assert_int_eq(a.status, ROUTE_PERMFAIL);
    ck_assert_int_eq(queries, q);
}
END_TEST

START_TEST(test_concurrent_lookups_share_one_query)
{
    struct answer a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    route_resolve("nomx.test", on_route, &a);
    route_resolve("nomx.test", on_route, &b);
    for (int i = 0; i < 10 && (!a.calls || !b.calls); i++) {
        struct timeval limit = {2, 0};
        event_base_loopexit(base, &limit);
        event_base_dispatch(base);
    }
    ck_assert_int_eq(a.calls, 1);
    ck_assert_int_eq(b.calls, 1);
    ck_assert_int_eq(b.status, ROUTE_OK);
    ck_assert_int_eq(queries, 3); /* MX, A, AAAA once */
}
END_TEST

START_TEST(test_null_mx)
{
    struct answer a;
    resolve("null.test", &a);
    ck_assert_int_eq(a.status, ROUTE_PERMFAIL);
    ck_assert_msg(strstr(a.error, "does not accept mail (null MX)"), "%s", a.error);
    ck_assert_msg(strncmp(a.error, "556 5.1.10 ", 11) == 0, "%s", a.error);
}
END_TEST

START_TEST(test_nxdomain)
{
    struct answer a;
    resolve("nx.test", &a);
    ck_assert_int_eq(a.status, ROUTE_PERMFAIL);
    ck_assert_msg(strstr(a.error, "NXDOMAIN"), "%s", a.error);
}
END_TEST

START_TEST(test_nodata_falls_back_to_a)
{
    struct answer a;
    resolve("nomx.test", &a);
    ck_assert_int_eq(a.status, ROUTE_OK);
    ck_assert_uint_eq(a.count, 1);
    ck_assert_str_eq(target_str(&a.t[0]), "nomx.test 127.0.0.3:2525");
}
END_TEST

START_TEST(test_servfail_is_temporary)
{
    struct answer a;
    resolve("fail.test", &a);
    ck_assert_int_eq(a.status, ROUTE_TEMPFAIL);
}
END_TEST

START_TEST(test_timeout_is_temporary)
{
    struct answer a;
    resolve("slow.test", &a);
    ck_assert_int_eq(a.status, ROUTE_TEMPFAIL);
    ck_assert_msg(strstr(a.error, "slow.test"), "%s", a.error);
}
END_TEST

START_TEST(test_mx_without_address_is_permanent)
{
    struct answer a;
    resolve("noaddr.test", &a);
    ck_assert_int_eq(a.status, ROUTE_PERMFAIL);
}
END_TEST

START_TEST(test_static_literals)
{
    struct answer a;
    memset(&a, 0, sizeof(a));
    route_resolve("static.test", on_route, &a); /* no DNS: at once */
    ck_assert_int_eq(a.calls, 1);
    ck_assert_int_eq(a.status, ROUTE_OK);
    ck_assert_uint_eq(a.count, 2);
    ck_assert_str_eq(target_str(&a.t[0]), "127.0.0.1 127.0.0.1:2600");
    ck_assert_str_eq(target_str(&a.t[1]), "[::1] [::1]:2601");
    ck_assert_int_eq(queries, 0);
}
END_TEST

START_TEST(test_static_names_resolved)
{
    struct answer a;
    resolve("named.test", &a);
    ck_assert_int_eq(a.status, ROUTE_OK);
    ck_assert_uint_eq(a.count, 2);
    ck_assert_str_eq(target_str(&a.t[0]), "relay.test 127.0.0.4:2700");
    ck_assert_str_eq(target_str(&a.t[1]), "127.0.0.9 127.0.0.9:2525");
}
END_TEST

START_TEST(test_address_literal_domain)
{
    struct answer a;
    resolve("[127.0.0.5]", &a);
    ck_assert_int_eq(a.status, ROUTE_OK);
    ck_assert_uint_eq(a.count, 1);
    ck_assert_str_eq(target_str(&a.t[0]), "[127.0.0.5] 127.0.0.5:2525");
}
END_TEST

START_TEST(test_shutdown_answers_pending)
{
    struct answer a;
    memset(&a, 0, sizeof(a));
    route_resolve("slow.test", on_route, &a);
    ck_assert_int_eq(a.calls, 0);
    route_shutdown();
    ck_assert_int_eq(a.calls, 1);
    ck_assert_int_eq(a.status, ROUTE_TEMPFAIL);
    /* after shutdown: an immediate temporary failure */
    memset(&a, 0, sizeof(a));
    route_resolve("mx.test", on_route, &a);
    ck_assert_int_eq(a.calls, 1);
    ck_assert_int_eq(a.status, ROUTE_TEMPFAIL);
}
END_TEST

START_TEST(test_bad_static_route_rejected)
{
    static char *bad_hosts[] = {"host:notaport"};
    static struct config_route bad = {.domain = "bad.test", .hosts = bad_hosts, .host_count = 1};
    struct vipmta_config c2 = cfg;
    c2.routes = &bad;
    c2.route_count = 1;
    struct config_errors errs = {0};
    route_shutdown();
    ck_assert_int_eq(route_init(base, &c2, &errs), -1);
    ck_assert_uint_eq(errs.count, 1);
    ck_assert_msg(strstr(errs.messages[0], "routes.bad.test[0]"), "%s", errs.messages[0]);
    config_errors_clear(&errs);
}
END_TEST

static Suite *route_suite(void)
{
    Suite *s = suite_create("route");
    TCase *tc = tcase_create("resolve");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_mx_order_and_port);
    tcase_add_test(tc, test_cache_answers_without_queries);
    tcase_add_test(tc, test_concurrent_lookups_share_one_query);
    tcase_add_test(tc, test_null_mx);
    tcase_add_test(tc, test_nxdomain);
    tcase_add_test(tc, test_nodata_falls_back_to_a);
    tcase_add_test(tc, test_servfail_is_temporary);
    tcase_add_test(tc, test_timeout_is_temporary);
    tcase_add_test(tc, test_mx_without_address_is_permanent);
    tcase_add_test(tc, test_static_literals);
    tcase_add_test(tc, test_static_names_resolved);
    tcase_add_test(tc, test_address_literal_domain);
    tcase_add_test(tc, test_shutdown_answers_pending);
    tcase_add_test(tc, test_bad_static_route_rejected);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(route_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
