/* check_mod_netacl.c: Check suite for the netacl module (CIDR parsing and matching, rule order, options, the hook). */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netacl.h"
#include "vipmta_binding.h"
#include "hooks/core/connection_post_bind.h"

/* ---- a fake core: the public ABI the module uses, recording what it is told ---- */

struct vipmta_module_ctx {
    void *data;
};

#define MAX_LINES 64
static char errors[MAX_LINES][640];
static int nerrors;
static char logs[MAX_LINES][640];
static enum vipmta_log_level log_levels[MAX_LINES];
static int nlogs;
static int debug_enabled = 1;
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
    if (nlogs < MAX_LINES) {
        log_levels[nlogs] = level;
        vsnprintf(logs[nlogs++], sizeof(logs[0]), fmt, ap);
    }
    va_end(ap);
}

int vipmta_log_enabled(enum vipmta_log_level level)
{
    return level < VIPMTA_LOG_DEBUG || debug_enabled;
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

static struct netacl_config *parse_ok(const char *text)
{
    json_t *j = parse_json(text);
    struct netacl_config *cfg = netacl_config_parse(&ctx, j);
    json_decref(j);
    if (!cfg)
        dump_errors();
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(nerrors, 0);
    return cfg;
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

static const char order_options[] =
    "{\"default\": \"allow\","
    " \"rules\": [{\"action\": \"allow\", \"cidr\": \"10.1.0.0/16\", \"comment\": \"partners\"},"
    "            {\"action\": \"deny\", \"cidr\": \"10.0.0.0/8\", \"comment\": \"private\"},"
    "            {\"action\": \"deny\", \"cidr\": \"fe80::/10\"}],"
    " \"bindings\": {\"vip1\": {\"default\": \"deny\","
    "                          \"rules\": [{\"action\": \"allow\", \"cidr\": \"10.9.0.0/16\"},"
    "                                      {\"action\": \"allow\", \"cidr\": \"192.0.2.0/24\"}]},"
    "              \"vip2\": {\"rules\": [{\"action\": \"deny\", \"cidr\": \"198.51.100.0/24\"}]}}}";

static void decide(const struct netacl_config *cfg, const struct netacl_binding *b,
                   const char *ip, struct netacl_verdict *v)
{
    struct netacl_addr a = addr(ip);
    netacl_decide(cfg, b, &a, v);
}

START_TEST(test_decide_order)
{
    struct netacl_config *cfg = parse_ok(order_options);
    ck_assert_uint_eq(cfg->nbindings, 2);
    const struct netacl_binding *vip1 = &cfg->bindings[0], *vip2 = &cfg->bindings[1];
    ck_assert_str_eq(vip1->name, "vip1");
    struct netacl_verdict v;

    /* binding rules first */
    decide(cfg, vip1, "10.9.1.1", &v);
    ck_assert_int_eq(v.action, NETACL_ALLOW);
    ck_assert_ptr_eq(v.rule, &vip1->list.rules[0]);
    ck_assert_int_eq(v.from_binding, 1);
    ck_assert_uint_eq(v.index, 0);
    /* then global rules, first match wins */
    decide(cfg, vip1, "10.1.2.3", &v);
    ck_assert_int_eq(v.action, NETACL_ALLOW);
    ck_assert_ptr_eq(v.rule, &cfg->global.rules[0]);
    ck_assert_int_eq(v.from_binding, 0);
    decide(cfg, vip1, "10.2.3.4", &v);
    ck_assert_int_eq(v.action, NETACL_DENY);
    ck_assert_uint_eq(v.index, 1);
    ck_assert_str_eq(v.rule->comment, "private");
    ck_assert_str_eq(v.rule->cidr, "10.0.0.0/8");
    /* then the binding's default */
    decide(cfg, vip1, "203.0.113.9", &v);
    ck_assert_int_eq(v.action, NETACL_DENY);
    ck_assert_ptr_null(v.rule);
    ck_assert_int_eq(v.from_binding, 1);
    /* a binding without a default falls back to the global one */
    decide(cfg, vip2, "203.0.113.9", &v);
    ck_assert_int_eq(v.action, NETACL_ALLOW);
    ck_assert_ptr_null(v.rule);
    ck_assert_int_eq(v.from_binding, 0);
    decide(cfg, vip2, "198.51.100.4", &v);
    ck_assert_int_eq(v.action, NETACL_DENY);
    ck_assert_int_eq(v.from_binding, 1);
    /* no binding rules at all */
    decide(cfg, NULL, "10.9.1.1", &v);
    ck_assert_int_eq(v.action, NETACL_DENY);
    ck_assert_uint_eq(v.index, 1);
    decide(cfg, NULL, "fe80::1", &v);
    ck_assert_int_eq(v.action, NETACL_DENY);
    ck_assert_uint_eq(v.index, 2);
    ck_assert_ptr_null(v.rule->comment);
    decide(cfg, NULL, "::ffff:10.200.0.1", &v);
    ck_assert_int_eq(v.action, NETACL_DENY);
    ck_assert_uint_eq(v.index, 1);
    decide(cfg, NULL, "2001:db8::1", &v);
    ck_assert_int_eq(v.action, NETACL_ALLOW);
    ck_assert_ptr_null(v.rule);
    netacl_config_free(cfg);
}
END_TEST

START_TEST(test_default_deny)
{
    struct netacl_config *cfg = parse_ok(
        "{\"default\": \"deny\", \"rules\": [{\"action\": \"allow\", \"cidr\": \"0.0.0.0/0\"}]}");
    struct netacl_verdict v;
    decide(cfg, NULL, "192.0.2.1", &v);
    ck_assert_int_eq(v.action, NETACL_ALLOW);
    decide(cfg, NULL, "2001:db8::1", &v);
    ck_assert_int_eq(v.action, NETACL_DENY);
    netacl_config_free(cfg);

    cfg = parse_ok("{}"); /* no options: allow everything */
    decide(cfg, NULL, "10.0.0.1", &v);
    ck_assert_int_eq(v.action, NETACL_ALLOW);
    netacl_config_free(cfg);
}
END_TEST

/* ---- option errors ---- */

START_TEST(test_option_errors)
{
    json_t *j = parse_json(
        "{\"default\": \"block\","
        " \"rules\": [{\"action\": \"drop\", \"cidr\": \"10.0.0.0/33\"},"
        "            {\"cidr\": \"10.0.0.0/8\"}, {\"action\": \"deny\"}, \"10.0.0.0/8\","
        "            {\"action\": \"deny\", \"cidr\": 5, \"comment\": 7, \"note\": \"\"},"
        "            {\"action\": \"allow\", \"cidr\": \"192.168.1.1/16\"}],"
        " \"bindings\": {\"vip1\": {\"default\": 1, \"rules\": {}}, \"vip2\": [],"
        "              \"vip3\": {\"extra\": 1}},"
        " \"other\": 1}");
    ck_assert_ptr_null(netacl_config_parse(&ctx, j));
    json_decref(j);
    ck_assert_error("default: must be \"allow\" or \"deny\", not \"block\"");
    ck_assert_error("rules[0].action: must be \"allow\" or \"deny\", not \"drop\"");
    ck_assert_error("rules[0].cidr: \"10.0.0.0/33\" is not a network: the prefix length must "
                    "be a number from 0 to 32");
    ck_assert_error("rules[1]: missing \"action\" (\"allow\" or \"deny\")");
    ck_assert_error("rules[2]: missing \"cidr\" (a network such as \"10.0.0.0/8\")");
    ck_assert_error("rules[3]: must be an object with \"action\", \"cidr\" and an optional "
                    "\"comment\", not a string");
    ck_assert_error("rules[4]: unknown key \"note\"");
    ck_assert_error("rules[4].cidr: must be a network such as \"10.0.0.0/8\", not an integer");
    ck_assert_error("rules[4].comment: must be a string, not an integer");
    ck_assert_error("rules[5].cidr: \"192.168.1.1/16\" is not a network: host bits are set "
                    "(did you mean 192.168.0.0/16?)");
    ck_assert_error("bindings.vip1.default: must be \"allow\" or \"deny\", not an integer");
    ck_assert_error("bindings.vip1.rules: must be an array of rules, not an object");
    ck_assert_error("bindings.vip2: must be an object with \"default\" and/or \"rules\", not an "
                    "array");
    ck_assert_error("bindings.vip3: unknown key \"extra\"");
    ck_assert_error("(options): unknown key \"other\"");
    ck_assert_int_eq(nerrors, 15);

    nerrors = 0;
    j = parse_json("{\"rules\": {}, \"bindings\": []}");
    ck_assert_ptr_null(netacl_config_parse(&ctx, j));
    json_decref(j);
    ck_assert_error("rules: must be an array of rules, not an object");
    ck_assert_error("bindings: must be an object mapping binding names to rules, not an array");
    ck_assert_int_eq(nerrors, 2);

    nerrors = 0;
    j = parse_json("\"deny\"");
    ck_assert_ptr_null(netacl_config_parse(&ctx, j));
    json_decref(j);
    ck_assert_error("(options): must be an object, not a string");
}
END_TEST

START_TEST(test_unknown_binding)
{
    struct netacl_config *cfg = parse_ok("{\"bindings\": {\"vip1\": {}, \"vip9\": {}}}");
    int n;
    ck_assert_ptr_null(netacl_config_slots(&ctx, cfg, &n));
    ck_assert_error("bindings.vip9: no binding named \"vip9\" in the configuration");
    ck_assert_int_eq(nerrors, 1);
    netacl_config_free(cfg);
}
END_TEST

/* ---- the module through its descriptor ---- */

static const vipmta_module_descriptor *start_module(const char *options)
{
    const vipmta_module_descriptor *d = vipmta_module_get_descriptor();
    ck_assert_str_eq(d->name, "netacl");
    json_t *j = parse_json(options);
    int r = d->configure(&ctx, j);
    json_decref(j);
    if (r)
        dump_errors();
    ck_assert_int_eq(r, 0);
    ck_assert_ptr_null(hook_fn);
    ck_assert_int_eq(d->init(&ctx), 0);
    ck_assert_ptr_nonnull(hook_fn);
    return d;
}

static int call_hook(int slot, const char *ip)
{
    static domain_record dr = {.domain = "example.com"};
    struct dest d = dest(ip);
    nlogs = 0;
    return hook_fn(hook_closure, &dr, slot, 9, (struct sockaddr *)&d.ss, d.len);
}

START_TEST(test_module_hook)
{
    const vipmta_module_descriptor *d = start_module(order_options);
    ck_assert_int_eq(hook_first, 1); /* before the other modules */

    ck_assert_int_eq(call_hook(1, "10.2.3.4"), 1);
    ck_assert_int_eq(nlogs, 1);
    ck_assert_int_eq(log_levels[0], VIPMTA_LOG_NOTICE);
    ck_assert_str_eq(logs[0], "denied connection to 10.2.3.4:25 (domain example.com) from "
                              "binding \"vip1\" (slot 1): rule rules[1] deny 10.0.0.0/8 "
                              "(\"private\")");
    ck_assert_int_eq(call_hook(2, "198.51.100.1"), 1);
    ck_assert_str_eq(logs[0], "denied connection to 198.51.100.1:25 (domain example.com) from "
                              "binding \"vip2\" (slot 2): rule bindings.vip2.rules[0] deny "
                              "198.51.100.0/24");
    ck_assert_int_eq(call_hook(1, "203.0.113.5"), 1);
    ck_assert_str_eq(logs[0], "denied connection to 203.0.113.5:25 (domain example.com) from "
                              "binding \"vip1\" (slot 1): no rule matched, binding \"vip1\"'s "
                              "default is deny");
    ck_assert_int_eq(call_hook(0, "::ffff:10.0.0.1"), 1);
    ck_assert_str_eq(logs[0], "denied connection to [::ffff:10.0.0.1]:25 (domain example.com) "
                              "from binding \"default\" (slot 0): rule rules[1] deny "
                              "10.0.0.0/8 (\"private\")");
    ck_assert_int_eq(call_hook(0, "fe80::5"), 1);
    ck_assert_int_eq(call_hook(7, "10.0.0.1"), 1); /* unknown slot: global rules */

    /* allowed: 0, and a debug line only */
    ck_assert_int_eq(call_hook(1, "10.9.0.1"), 0);
    ck_assert_int_eq(nlogs, 1);
    ck_assert_int_eq(log_levels[0], VIPMTA_LOG_DEBUG);
    ck_assert_str_eq(logs[0], "allowed connection to 10.9.0.1:25 (domain example.com) from "
                              "binding \"vip1\" (slot 1): rule bindings.vip1.rules[0] allow "
                              "10.9.0.0/16");
    ck_assert_int_eq(call_hook(2, "2001:db8::1"), 0);
    ck_assert_str_eq(logs[0], "allowed connection to [2001:db8::1]:25 (domain example.com) "
                              "from binding \"vip2\" (slot 2): no rule matched, the global "
                              "default is allow");
    debug_enabled = 0;
    ck_assert_int_eq(call_hook(2, "2001:db8::1"), 0);
    ck_assert_int_eq(nlogs, 0);

    /* reload: errors keep the old rules */
    json_t *j = parse_json("{\"rules\": [{\"action\": \"deny\", \"cidr\": \"10.0.0.1/8\"}]}");
    ck_assert_int_ne(d->reload(&ctx, j), 0);
    json_decref(j);
    ck_assert_int_eq(call_hook(1, "10.9.0.1"), 0);
    j = parse_json("{\"default\": \"deny\"}");
    ck_assert_int_eq(d->reload(&ctx, j), 0);
    json_decref(j);
    ck_assert_int_eq(call_hook(1, "10.9.0.1"), 1);
    ck_assert_str_eq(logs[0], "denied connection to 10.9.0.1:25 (domain example.com) from "
                              "binding \"vip1\" (slot 1): no rule matched, the global default "
                              "is deny");
    d->shutdown(&ctx);
    ck_assert_ptr_null(ctx.data);
}
END_TEST

START_TEST(test_module_init_unknown_binding)
{
    const vipmta_module_descriptor *d = vipmta_module_get_descriptor();
    json_t *j = parse_json("{\"bindings\": {\"internet\": {\"default\": \"deny\"}}}");
    ck_assert_int_eq(d->configure(&ctx, j), 0);
    json_decref(j);
    ck_assert_int_ne(d->init(&ctx), 0);
    ck_assert_error("bindings.internet: no binding named \"internet\" in the configuration");
    ck_assert_ptr_null(hook_fn);
    d->shutdown(&ctx);
}
END_TEST

/* ---- the example shipped in docs/modules/netacl.md ---- */

/* The first ```json block of the page; its "options" member when it is a
 * whole module entry. */
static json_t *doc_example(void)
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
    json_t *entry = parse_json(start);
    json_t *options = json_object_get(entry, "options");
    ck_assert_ptr_nonnull(options);
    json_incref(options);
    json_decref(entry);
    return options;
}

START_TEST(test_doc_example)
{
    json_t *options = doc_example();
    struct netacl_config *cfg = netacl_config_parse(&ctx, options);
    json_decref(options);
    if (!cfg)
        dump_errors();
    ck_assert_ptr_nonnull(cfg);
    int n;
    const struct netacl_binding **slots = netacl_config_slots(&ctx, cfg, &n);
    ck_assert_ptr_nonnull(slots);
    static const char *const denied[] = {
        "10.1.2.3",   "172.20.0.1", "192.168.1.1", "100.64.0.1",     "127.0.0.1",
        "::1",        "169.254.1.1", "fe80::1",    "fd00::1",        "::ffff:192.168.0.1",
        "0.0.0.1",    "224.0.0.5",   "ff02::1",
    };
    static const char *const allowed[] = {"192.0.2.1", "8.8.8.8", "2001:db8::1", "100.128.0.1",
                                          "172.32.0.1"};
    struct netacl_verdict v;
    for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
        decide(cfg, slots[1], denied[i], &v);
        ck_assert_msg(v.action == NETACL_DENY, "%s should be denied for vip1", denied[i]);
    }
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        decide(cfg, slots[1], allowed[i], &v);
        ck_assert_msg(v.action == NETACL_ALLOW, "%s should be allowed for vip1", allowed[i]);
    }
    /* vip2 reaches the internal relays, and nothing else private */
    decide(cfg, slots[2], "10.20.0.25", &v);
    ck_assert_int_eq(v.action, NETACL_ALLOW);
    decide(cfg, slots[2], "10.21.0.25", &v);
    ck_assert_int_eq(v.action, NETACL_DENY);
    free(slots);
    netacl_config_free(cfg);
}
END_TEST

static Suite *netacl_suite(void)
{
    Suite *s = suite_create("mod_netacl");
    TCase *tc = tcase_create("cidr");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_cidr_parse);
    tcase_add_test(tc, test_cidr_errors);
    tcase_add_test(tc, test_match_v4_v6);
    tcase_add_test(tc, test_match_mapped);
    suite_add_tcase(s, tc);

    tc = tcase_create("rules");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_decide_order);
    tcase_add_test(tc, test_default_deny);
    tcase_add_test(tc, test_option_errors);
    tcase_add_test(tc, test_unknown_binding);
    tcase_add_test(tc, test_doc_example);
    suite_add_tcase(s, tc);

    tc = tcase_create("module");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_module_hook);
    tcase_add_test(tc, test_module_init_unknown_binding);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(netacl_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
