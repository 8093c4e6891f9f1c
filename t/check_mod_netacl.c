/* check_mod_netacl.c: Check suite for the netacl module (CIDR parsing and matching, rule order, options, the hook). */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakecore.h"
#include "netacl.h"

/* ---- helpers ---- */

/* The parsed options of `entry` (every scope), which must be valid. */
static struct netacl_config *parse_ok(const char *entry)
{
    vipmta_module_ctx *m = fake_module(entry);
    struct netacl_config *cfg = netacl_config_parse(m);
    fake_stop(m);
    ck_assert_parsed(cfg);
    return cfg;
}

static void parse_bad(const char *entry)
{
    vipmta_module_ctx *m = fake_module(entry);
    ck_assert_ptr_null(netacl_config_parse(m));
    fake_stop(m);
}

static struct netacl_cidr cidr(const char *text)
{
    struct netacl_cidr c;
    char err[256] = "";
    ck_assert_msg(netacl_cidr_parse(text, &c, err, sizeof(err)) == 0, "%s: %s", text, err);
    return c;
}

static void cidr_error(const char *text, const char *want)
{
    struct netacl_cidr c;
    char err[256] = "";
    ck_assert_int_eq(netacl_cidr_parse(text, &c, err, sizeof(err)), -1);
    ck_assert_str_eq(err, want);
}

/* A destination as the core passes it: a sockaddr for "ip" port 25. */
struct dest {
    struct sockaddr_storage ss;
    int len;
};

static struct dest dest(const char *ip)
{
    struct dest d;
    memset(&d, 0, sizeof(d));
    struct sockaddr_in *s4 = (struct sockaddr_in *)&d.ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&d.ss;
    if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(25);
        d.len = sizeof(*s4);
    } else {
        ck_assert_int_eq(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(25);
        d.len = sizeof(*s6);
    }
    return d;
}

static struct netacl_addr addr(const char *ip)
{
    struct dest d = dest(ip);
    struct netacl_addr a;
    ck_assert_int_eq(netacl_addr_from_sockaddr((struct sockaddr *)&d.ss, d.len, &a), 0);
    return a;
}

static int matches(const char *net, const char *ip)
{
    struct netacl_cidr c = cidr(net);
    struct netacl_addr a = addr(ip);
    return netacl_cidr_match(&c, &a);
}

/* ---- CIDR parsing ---- */

START_TEST(test_cidr_parse)
{
    struct netacl_cidr c = cidr("10.0.0.0/8");
    ck_assert_int_eq(c.net.family, AF_INET);
    ck_assert_uint_eq(c.prefix, 8);
    ck_assert_uint_eq(c.net.v4, 0x0a000000u);
    ck_assert_uint_eq(c.mask4, 0xff000000u);

    c = cidr("192.0.2.7");
    ck_assert_uint_eq(c.prefix, 32);
    c = cidr("0.0.0.0/0");
    ck_assert_uint_eq(c.mask4, 0);

    c = cidr("fc00::/7");
    ck_assert_int_eq(c.net.family, AF_INET6);
    ck_assert_uint_eq(c.prefix, 7);
    ck_assert(c.mask_hi == 0xfe00000000000000ull && c.mask_lo == 0);
    c = cidr("2001:db8::/96");
    ck_assert(c.mask_hi == UINT64_MAX && c.mask_lo == 0xffffffff00000000ull);
    c = cidr("::1");
    ck_assert_uint_eq(c.prefix, 128);
    ck_assert(c.net.hi == 0 && c.net.lo == 1);
    c = cidr("::/0");
    ck_assert(c.mask_hi == 0 && c.mask_lo == 0);

    /* IPv4-mapped networks become IPv4 ones */
    c = cidr("::ffff:10.0.0.0/104");
    ck_assert_int_eq(c.net.family, AF_INET);
    ck_assert_uint_eq(c.prefix, 8);
    ck_assert_uint_eq(c.net.v4, 0x0a000000u);
    c = cidr("::ffff:0:0/96");
    ck_assert_int_eq(c.net.family, AF_INET);
    ck_assert_uint_eq(c.prefix, 0);
}
END_TEST

START_TEST(test_cidr_errors)
{
    cidr_error("", "\"\" is not a network: expected ADDRESS/PREFIX such as 10.0.0.0/8 or "
                   "fc00::/7");
    cidr_error("/8", "\"/8\" is not a network: expected ADDRESS/PREFIX such as 10.0.0.0/8 or "
                     "fc00::/7");
    cidr_error("10.0.0/8", "\"10.0.0/8\" is not a network: \"10.0.0\" is not an IPv4 or IPv6 "
                           "address");
    cidr_error("10/8", "\"10/8\" is not a network: \"10\" is not an IPv4 or IPv6 address");
    cidr_error("example.com/24", "\"example.com/24\" is not a network: \"example.com\" is not "
                                 "an IPv4 or IPv6 address");
    cidr_error("fe80::1%eth0/64", "\"fe80::1%eth0/64\" is not a network: \"fe80::1%eth0\" is "
                                  "not an IPv4 or IPv6 address");
    cidr_error("10.0.0.0/33", "\"10.0.0.0/33\" is not a network: the prefix length must be a "
                              "number from 0 to 32");
    cidr_error("10.0.0.0/", "\"10.0.0.0/\" is not a network: the prefix length must be a "
                            "number from 0 to 32");
    cidr_error("10.0.0.0/-1", "\"10.0.0.0/-1\" is not a network: the prefix length must be a "
                              "number from 0 to 32");
    cidr_error("10.0.0.0/8/8", "\"10.0.0.0/8/8\" is not a network: the prefix length must be "
                               "a number from 0 to 32");
    cidr_error("10.0.0.0/ 8", "\"10.0.0.0/ 8\" is not a network: the prefix length must be a "
                              "number from 0 to 32");
    cidr_error("fc00::/129", "\"fc00::/129\" is not a network: the prefix length must be a "
                             "number from 0 to 128");
    cidr_error("fc00::/0128", "\"fc00::/0128\" is not a network: the prefix length must be a "
                              "number from 0 to 128");
    cidr_error("10.0.0.1/8", "\"10.0.0.1/8\" is not a network: host bits are set (did you mean "
                             "10.0.0.0/8?)");
    cidr_error("172.16.5.0/12", "\"172.16.5.0/12\" is not a network: host bits are set (did "
                                "you mean 172.16.0.0/12?)");
    cidr_error("fe80::1/10", "\"fe80::1/10\" is not a network: host bits are set (did you mean "
                             "fe80::/10?)");
}
END_TEST

/* ---- matching ---- */

START_TEST(test_match_v4_v6)
{
    ck_assert(matches("10.0.0.0/8", "10.255.0.1"));
    ck_assert(!matches("10.0.0.0/8", "11.0.0.1"));
    ck_assert(matches("172.16.0.0/12", "172.31.255.255"));
    ck_assert(!matches("172.16.0.0/12", "172.32.0.0"));
    ck_assert(matches("192.0.2.7", "192.0.2.7"));
    ck_assert(!matches("192.0.2.7", "192.0.2.8"));
    ck_assert(matches("0.0.0.0/0", "203.0.113.1"));
    ck_assert(matches("fc00::/7", "fd12:3456::1"));
    ck_assert(!matches("fc00::/7", "fe00::1"));
    ck_assert(matches("fe80::/10", "febf::1"));
    ck_assert(!matches("fe80::/10", "fec0::1"));
    ck_assert(matches("2001:db8::/96", "2001:db8::ffff:ffff"));
    ck_assert(!matches("2001:db8::/96", "2001:db8::1:0:0"));
    ck_assert(matches("::1/128", "::1"));
    ck_assert(!matches("::1/128", "::2"));
    ck_assert(matches("::/0", "2001:db8::1"));
    /* families never cross */
    ck_assert(!matches("::/0", "192.0.2.1"));
    ck_assert(!matches("0.0.0.0/0", "2001:db8::1"));
}
END_TEST

START_TEST(test_match_mapped)
{
    /* an IPv4-mapped destination is matched as the IPv4 address */
    ck_assert(matches("10.0.0.0/8", "::ffff:10.0.0.1"));
    ck_assert(!matches("10.0.0.0/8", "::ffff:11.0.0.1"));
    ck_assert(matches("0.0.0.0/0", "::ffff:192.0.2.1"));
    ck_assert(!matches("::/0", "::ffff:192.0.2.1"));
    /* and a mapped rule matches plain IPv4 destinations */
    ck_assert(matches("::ffff:10.0.0.0/104", "10.1.2.3"));
    ck_assert(matches("::ffff:10.0.0.0/104", "::ffff:10.1.2.3"));

    struct netacl_addr a = addr("::ffff:10.0.0.1");
    ck_assert_int_eq(a.family, AF_INET);
    ck_assert_uint_eq(a.v4, 0x0a000001u);

    /* unknown families match nothing */
    struct sockaddr sa = {.sa_family = AF_UNIX};
    ck_assert_int_eq(netacl_addr_from_sockaddr(&sa, sizeof(sa), &a), -1);
    ck_assert_int_eq(a.family, 0);
    struct netacl_cidr all = cidr("0.0.0.0/0");
    ck_assert(!netacl_cidr_match(&all, &a));
    /* a short sockaddr is refused, not read past */
    struct dest d = dest("10.0.0.1");
    ck_assert_int_eq(netacl_addr_from_sockaddr((struct sockaddr *)&d.ss, 4, &a), -1);
}
END_TEST

/* ---- rule order ---- */

static const char order_entry[] =
    "{\"options\": {\"default\": \"allow\","
    " \"rules\": [{\"action\": \"allow\", \"cidr\": \"10.1.0.0/16\", \"comment\": \"partners\"},"
    "            {\"action\": \"deny\", \"cidr\": \"10.0.0.0/8\", \"comment\": \"private\"},"
    "            {\"action\": \"deny\", \"cidr\": \"fe80::/10\"}]},"
    " \"bindings\": {\"vip1\": {\"default\": \"deny\","
    "                          \"rules\": [{\"action\": \"allow\", \"cidr\": \"10.9.0.0/16\"},"
    "                                      {\"action\": \"allow\", \"cidr\": \"192.0.2.0/24\"}]},"
    "              \"vip2\": {\"rules\": [{\"action\": \"deny\", \"cidr\": \"198.51.100.0/24\"}]}},"
    " \"domains\": {\"Partner.test\": {\"rules\": [{\"action\": \"allow\", \"cidr\": \"10.0.0.0/8\"}]},"
    "             \"closed.test\": {\"default\": \"deny\"}},"
    " \"binding_domains\": {\"vip2\": {\"partner.test\": {\"rules\": [{\"action\": \"deny\","
    "                                  \"cidr\": \"10.5.0.0/16\", \"comment\": \"not from vip2\"}]}}}}";

static void decide(const struct netacl_config *cfg, int slot, const char *domain, const char *ip,
                   struct netacl_verdict *v)
{
    struct netacl_addr a = addr(ip);
    netacl_decide(cfg, slot, domain, &a, v);
}

START_TEST(test_decide_order)
{
    struct netacl_config *cfg = parse_ok(order_entry);
    ck_assert_uint_eq(cfg->nbindings, 2);
    ck_assert_uint_eq(cfg->ndomains, 2);
    ck_assert_uint_eq(cfg->npairs, 1);
    const struct netacl_list *vip1 = cfg->slots[1];
    ck_assert_ptr_nonnull(vip1);
    ck_assert_str_eq(vip1->binding, "vip1");
    ck_assert_ptr_null(cfg->slots[0]);
    struct netacl_verdict v;

    /* binding rules first */
    decide(cfg, 1, "x.test", "10.9.1.1", &v);
    ck_assert_int_eq(v.action, NETACL_ALLOW);
    ck_assert_ptr_eq(v.rule, &vip1->rules[0]);
    ck_assert_ptr_eq(v.list, vip1);
    ck_assert_uint_eq(v.index, 0);
    /* then global rules, first match wins */
    decide(cfg, 1, "x.test", "10.1.2.3", &v);
    ck_assert_int_eq(v.action, NETACL_ALLOW);
    ck_assert_ptr_eq(v.rule, &cfg->global.rules[0]);
    ck_assert_ptr_eq(v.list, &cfg->global);
    decide(cfg, 1, "x.test", "10.2.3.4", &v);
    ck_assert_int_eq(v.action, NETACL_DENY);
    ck_assert_uint_eq(v.index, 1);
    ck_assert_str_eq(v.rule->comment, "private");
    ck_assert_str_eq(v.rule->cidr, "10.0.0.0/8");
    /* then the binding's default */
    decide(cfg, 1, "x.test", "203.0.113.9", &v);
    ck_assert_int_eq(v.action, NETACL_DENY);
    ck_assert_ptr_null(v.rule);
    ck_assert_ptr_eq(v.list, vip1);
    /* a binding without a default falls back to the global one */
    decide(cfg, 2, "x.test", "203.0.113.9", &v);
    ck_assert_int_eq(v.action, NETACL_ALLOW);
    ck_assert_ptr_null(v.rule);
    ck_assert_ptr_eq(v.list, &cfg->global);
    decide(cfg, 2, NULL, "198.51.100.4", &v);
    ck_assert_int_eq(v.action, NETACL_DENY);
    ck_assert_ptr_eq(v.list, cfg->slots[2]);
    /* no binding rules at all */
    decide(cfg, 0, NULL, "10.9.1.1", &v);
    ck_assert_int_eq(v.action, NETACL_DENY);
    ck_assert_uint_eq(v.index, 1);
    decide(cfg, 7, NULL, "fe80::1", &v);
    ck_assert_int_eq(v.action, NETACL_DENY);
    ck_assert_uint_eq(v.index, 2);
    ck_assert_ptr_null(v.rule->comment);
    decide(cfg, 0, NULL, "::ffff:10.200.0.1", &v);
    ck_assert_int_eq(v.action, NETACL_DENY);
    ck_assert_uint_eq(v.index, 1);
    decide(cfg, 0, NULL, "2001:db8::1", &v);
    ck_assert_int_eq(v.action, NETACL_ALLOW);
    ck_assert_ptr_null(v.rule);

    /* domain rules before the binding's and the global ones */
    decide(cfg, 1, "partner.test", "10.2.3.4", &v);
    ck_assert_int_eq(v.action, NETACL_ALLOW);
    ck_assert_str_eq(v.list->domain, "partner.test");
    /* binding x domain rules before everything */
    decide(cfg, 2, "partner.test", "10.5.0.1", &v);
    ck_assert_int_eq(v.action, NETACL_DENY);
    ck_assert_str_eq(v.rule->comment, "not from vip2");
    decide(cfg, 2, "partner.test", "10.6.0.1", &v);
    ck_assert_int_eq(v.action, NETACL_ALLOW);
    /* a domain's default before the binding's and the global one */
    decide(cfg, 2, "closed.test", "203.0.113.9", &v);
    ck_assert_int_eq(v.action, NETACL_DENY);
    ck_assert_ptr_null(v.rule);
    ck_assert_str_eq(v.list->domain, "closed.test");
    /* and rules still come before any default */
    decide(cfg, 1, "closed.test", "192.0.2.7", &v);
    ck_assert_int_eq(v.action, NETACL_ALLOW);
    char path[128];
    netacl_list_name(v.list, NETACL_PATH, path, sizeof(path));
    ck_assert_str_eq(path, "bindings.vip1.");
    netacl_list_name(cfg->pairs[0], NETACL_PATH, path, sizeof(path));
    ck_assert_str_eq(path, "binding_domains.vip2.partner.test.");
    netacl_config_free(cfg);
}
END_TEST

START_TEST(test_default_deny)
{
    struct netacl_config *cfg = parse_ok(
        "{\"options\": {\"default\": \"deny\","
        " \"rules\": [{\"action\": \"allow\", \"cidr\": \"0.0.0.0/0\"}]}}");
    struct netacl_verdict v;
    decide(cfg, 0, NULL, "192.0.2.1", &v);
    ck_assert_int_eq(v.action, NETACL_ALLOW);
    decide(cfg, 0, NULL, "2001:db8::1", &v);
    ck_assert_int_eq(v.action, NETACL_DENY);
    netacl_config_free(cfg);

    cfg = parse_ok("{}"); /* no options: allow everything */
    decide(cfg, 0, NULL, "10.0.0.1", &v);
    ck_assert_int_eq(v.action, NETACL_ALLOW);
    netacl_config_free(cfg);
}
END_TEST

/* ---- option errors ---- */

START_TEST(test_option_errors)
{
    parse_bad(
        "{\"options\": {\"default\": \"block\","
        " \"rules\": [{\"action\": \"drop\", \"cidr\": \"10.0.0.0/33\"},"
        "            {\"cidr\": \"10.0.0.0/8\"}, {\"action\": \"deny\"}, \"10.0.0.0/8\","
        "            {\"action\": \"deny\", \"cidr\": 5, \"comment\": 7, \"note\": \"\"},"
        "            {\"action\": \"allow\", \"cidr\": \"192.168.1.1/16\"}],"
        " \"other\": 1},"
        " \"bindings\": {\"vip1\": {\"default\": 1, \"rules\": {}}, \"vip2\": {\"extra\": 1}},"
        " \"domains\": {\"d.test\": {\"rules\": [{\"action\": \"deny\", \"cidr\": \"::1/129\"}]}}}");
    ck_assert_error("options.default: must be \"allow\" or \"deny\", not \"block\"");
    ck_assert_error("options.rules[0].action: must be \"allow\" or \"deny\", not \"drop\"");
    ck_assert_error("options.rules[0].cidr: \"10.0.0.0/33\" is not a network: the prefix length "
                    "must be a number from 0 to 32");
    ck_assert_error("options.rules[1]: missing \"action\" (\"allow\" or \"deny\")");
    ck_assert_error("options.rules[2]: missing \"cidr\" (a network such as \"10.0.0.0/8\")");
    ck_assert_error("options.rules[3]: must be an object with \"action\", \"cidr\" and an "
                    "optional \"comment\", not a string");
    ck_assert_error("options.rules[4]: unknown key \"note\" (allowed: action, cidr, comment)");
    ck_assert_error("options.rules[4].cidr: must be a network such as \"10.0.0.0/8\", not an "
                    "integer");
    ck_assert_error("options.rules[4].comment: must be a string, not an integer");
    ck_assert_error("options.rules[5].cidr: \"192.168.1.1/16\" is not a network: host bits are "
                    "set (did you mean 192.168.0.0/16?)");
    ck_assert_error("options: unknown key \"other\" (allowed: default, rules, on_deny)");
    ck_assert_error("bindings.vip1.default: must be \"allow\" or \"deny\", not an integer");
    ck_assert_error("bindings.vip1.rules: must be an array of rules, not an object");
    ck_assert_error("bindings.vip2: unknown key \"extra\" (allowed: default, rules)");
    ck_assert_error("domains.d.test.rules[0].cidr: \"::1/129\" is not a network: the prefix "
                    "length must be a number from 0 to 128");
    ck_assert_int_eq(fake_nerrors, 15);

    fake_reset();
    parse_bad("{\"options\": {\"rules\": {}, \"bindings\": []}}");
    ck_assert_error("options.rules: must be an array of rules, not an object");
    ck_assert_error("options: unknown key \"bindings\" (allowed: default, rules, on_deny)");
    ck_assert_int_eq(fake_nerrors, 2);

    /* on_deny: global only, "bounce" or "hold" */
    fake_reset();
    parse_bad("{\"options\": {\"on_deny\": \"drop\"},"
              " \"bindings\": {\"vip1\": {\"on_deny\": \"hold\"}}}");
    ck_assert_error("options.on_deny: must be \"bounce\" or \"hold\", not \"drop\"");
    ck_assert_error("bindings.vip1: unknown key \"on_deny\" (allowed: default, rules)");
    ck_assert_int_eq(fake_nerrors, 2);
}
END_TEST

/* ---- the module through its descriptor ---- */

static vipmta_module_ctx *start(const char *entry)
{
    vipmta_module_ctx *m = fake_module(entry);
    ck_assert_str_eq(vipmta_module_get_descriptor()->name, "netacl");
    ck_assert_int_eq(fake_configure(m), 0);
    ck_assert_ptr_null(fake_hook_fn);
    ck_assert_int_eq(fake_init(m), 0);
    ck_assert_ptr_nonnull(fake_hook_fn);
    return m;
}

static int call_hook(int slot, const char *domain, const char *ip)
{
    domain_record dr = {.domain = (char *)domain};
    struct dest d = dest(ip);
    fake_nlogs = 0;
    return fake_hook_fn(fake_hook_closure, &dr, slot, 9, (struct sockaddr *)&d.ss, d.len);
}

START_TEST(test_module_hook)
{
    vipmta_module_ctx *m = start(order_entry);
    ck_assert_int_eq(fake_hook_first, 1); /* before the other modules */
    ck_assert_log("ready: 8 rule(s), 2 binding(s), 2 domain(s), 1 binding x domain(s), default "
                  "allow");

    /* denied: 1 and a notice naming what decided; allowed: 0 and a debug line */
    static const struct {
        int slot;
        const char *domain, *ip;
        int verdict;
        const char *line;
    } cases[] = {
        {1, "example.com", "10.2.3.4", 1,
         "denied connection to 10.2.3.4:25 (domain example.com) from binding \"vip1\" (slot 1): "
         "rule rules[1] deny 10.0.0.0/8 (\"private\")"},
        {2, "example.com", "198.51.100.1", 1,
         "denied connection to 198.51.100.1:25 (domain example.com) from binding \"vip2\" "
         "(slot 2): rule bindings.vip2.rules[0] deny 198.51.100.0/24"},
        {1, "example.com", "203.0.113.5", 1,
         "denied connection to 203.0.113.5:25 (domain example.com) from binding \"vip1\" "
         "(slot 1): no rule matched, binding \"vip1\"'s default is deny"},
        {0, "example.com", "::ffff:10.0.0.1", 1,
         "denied connection to [::ffff:10.0.0.1]:25 (domain example.com) from binding "
         "\"default\" (slot 0): rule rules[1] deny 10.0.0.0/8 (\"private\")"},
        {2, "partner.test", "10.5.1.1", 1,
         "denied connection to 10.5.1.1:25 (domain partner.test) from binding \"vip2\" (slot 2): "
         "rule binding_domains.vip2.partner.test.rules[0] deny 10.5.0.0/16 (\"not from vip2\")"},
        {2, "closed.test", "203.0.113.5", 1,
         "denied connection to 203.0.113.5:25 (domain closed.test) from binding \"vip2\" "
         "(slot 2): no rule matched, domain closed.test's default is deny"},
        {1, "example.com", "10.9.0.1", 0,
         "allowed connection to 10.9.0.1:25 (domain example.com) from binding \"vip1\" (slot 1): "
         "rule bindings.vip1.rules[0] allow 10.9.0.0/16"},
        {1, "partner.test", "10.2.0.1", 0,
         "allowed connection to 10.2.0.1:25 (domain partner.test) from binding \"vip1\" "
         "(slot 1): rule domains.partner.test.rules[0] allow 10.0.0.0/8"},
        {2, "example.com", "2001:db8::1", 0,
         "allowed connection to [2001:db8::1]:25 (domain example.com) from binding \"vip2\" "
         "(slot 2): no rule matched, the global default is allow"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_int_eq(call_hook(cases[i].slot, cases[i].domain, cases[i].ip), cases[i].verdict);
        ck_assert_int_eq(fake_nlogs, 1);
        ck_assert_int_eq(fake_log_levels[0],
                         cases[i].verdict ? VIPMTA_LOG_NOTICE : VIPMTA_LOG_DEBUG);
        ck_assert_str_eq(fake_logs[0], cases[i].line);
    }
    ck_assert_int_eq(call_hook(0, "example.com", "fe80::5"), 1);
    ck_assert_int_eq(call_hook(7, "example.com", "10.0.0.1"), 1); /* unknown slot: global rules */
    fake_log_level = VIPMTA_LOG_INFO;
    ck_assert_int_eq(call_hook(2, "example.com", "2001:db8::1"), 0);
    ck_assert_int_eq(fake_nlogs, 0);

    /* reload: errors keep the old rules */
    ck_assert_int_ne(fake_reload(m, "{\"options\": {\"rules\": [{\"action\": \"deny\", "
                                    "\"cidr\": \"10.0.0.1/8\"}]}}"),
                     0);
    ck_assert_int_eq(call_hook(1, "example.com", "10.9.0.1"), 0);
    ck_assert_int_eq(fake_reload(m, "{\"options\": {\"default\": \"deny\"}}"), 0);
    ck_assert_int_eq(call_hook(1, "example.com", "10.9.0.1"), 1);
    ck_assert_str_eq(fake_logs[0], "denied connection to 10.9.0.1:25 (domain example.com) from "
                                   "binding \"vip1\" (slot 1): no rule matched, the global "
                                   "default is deny");
    fake_stop(m);
}
END_TEST

/* A deny is a permanent veto whose reply names the rule (or the default)
 * and where the config file has it. */
START_TEST(test_deny_is_permanent)
{
    vipmta_module_ctx *m = start("{\"options\": {\n"
                                 "  \"rules\": [\n"
                                 "    {\"action\": \"allow\", \"cidr\": \"10.9.0.0/16\"},\n"
                                 "    {\"action\": \"deny\", \"cidr\": \"10.0.0.0/8\",\n"
                                 "     \"comment\": \"private\\u00e9\"}]},\n"
                                 " \"domains\": {\"closed.test\": {\n"
                                 "  \"default\": \"deny\"}}}");
    ck_assert_int_eq(call_hook(1, "example.com", "10.9.0.1"), 0);
    ck_assert_int_eq(fake_vetoes, 0);
    ck_assert_int_eq(call_hook(1, "example.com", "10.2.3.4"), 1);
    ck_assert_int_eq(fake_vetoes, 1);
    ck_assert_int_eq(fake_veto_kind, VIPMTA_VETO_PERMANENT);
    ck_assert_str_eq(fake_veto_reply, "550 5.7.1 netacl: destination 10.2.3.4:25 denied by rule "
                                      "rules[1] (deny 10.0.0.0/8, \"private??\") at fake.json:4");
    ck_assert_int_eq(call_hook(1, "closed.test", "192.0.2.1"), 1);
    ck_assert_int_eq(fake_veto_kind, VIPMTA_VETO_PERMANENT);
    ck_assert_str_eq(fake_veto_reply, "550 5.7.1 netacl: destination 192.0.2.1:25 denied: no rule "
                                      "matched and domain closed.test's default is deny at "
                                      "fake.json:7");
    fake_stop(m);

    /* on_deny "hold": the same denies, transient (vipmta_veto not called) */
    fake_reset();
    m = start("{\"options\": {\"on_deny\": \"hold\", \"rules\": [\n"
              "    {\"action\": \"deny\", \"cidr\": \"10.0.0.0/8\"}]}}");
    ck_assert_int_eq(call_hook(1, "example.com", "10.2.3.4"), 1);
    ck_assert_int_eq(fake_vetoes, 0);
    fake_stop(m);
}
END_TEST

/* ---- the example shipped in docs/modules/netacl.md ---- */

/* The first ```json block of the page: a whole module entry. */
static char *doc_example(void)
{
    const char *path = TEST_SRCDIR "/../docs/modules/netacl.md";
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    static char text[65536];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    char *start = strstr(text, "```json\n");
    ck_assert_ptr_nonnull(start);
    start += 8;
    char *end = strstr(start, "```");
    ck_assert_ptr_nonnull(end);
    *end = '\0';
    return start;
}

START_TEST(test_doc_example)
{
    struct netacl_config *cfg = parse_ok(doc_example());
    static const char *const denied[] = {
        "10.1.2.3",   "172.20.0.1", "192.168.1.1", "100.64.0.1",     "127.0.0.1",
        "::1",        "169.254.1.1", "fe80::1",    "fd00::1",        "::ffff:192.168.0.1",
        "0.0.0.1",    "224.0.0.5",   "ff02::1",
    };
    static const char *const allowed[] = {"192.0.2.1", "8.8.8.8", "2001:db8::1", "100.128.0.1",
                                          "172.32.0.1"};
    struct netacl_verdict v;
    for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
        decide(cfg, 1, "example.com", denied[i], &v);
        ck_assert_msg(v.action == NETACL_DENY, "%s should be denied for vip1", denied[i]);
    }
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        decide(cfg, 1, "example.com", allowed[i], &v);
        ck_assert_msg(v.action == NETACL_ALLOW, "%s should be allowed for vip1", allowed[i]);
    }
    /* vip2 reaches the internal relays, and nothing else private */
    decide(cfg, 2, "example.com", "10.20.0.25", &v);
    ck_assert_int_eq(v.action, NETACL_ALLOW);
    decide(cfg, 2, "example.com", "10.21.0.25", &v);
    ck_assert_int_eq(v.action, NETACL_DENY);
    /* the partner domain is reached on its private network from every binding */
    decide(cfg, 1, "partner.example", "10.30.0.25", &v);
    ck_assert_int_eq(v.action, NETACL_ALLOW);
    decide(cfg, 1, "example.com", "10.30.0.25", &v);
    ck_assert_int_eq(v.action, NETACL_DENY);
    netacl_config_free(cfg);
}
END_TEST

static Suite *netacl_suite(void)
{
    Suite *s = suite_create("mod_netacl");
    fake_tcase(s, "cidr", fake_reset, NULL, test_cidr_parse, test_cidr_errors, test_match_v4_v6,
               test_match_mapped, NULL);
    fake_tcase(s, "rules", fake_reset, NULL, test_decide_order, test_default_deny,
               test_option_errors, test_doc_example, NULL);
    fake_tcase(s, "module", fake_reset, NULL, test_module_hook, test_deny_is_permanent, NULL);
    return s;
}

int main(void)
{
    return fake_run(netacl_suite());
}
