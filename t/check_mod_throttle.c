/* check_mod_throttle.c: Check suite for the throttle module (rates, options, token buckets, key table, the hook, the Redis backend). */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <event2/event.h>

#include "fakecore.h"
#include "throttle.h"

/* The hook's return values (see throttle.c). */
#define VETO_RATE 1
#define VETO_SHARED 2
#define VETO_CONCURRENCY 3
#define VETO_BACKEND 4

/* ---- helpers ---- */

static vipmta_module_ctx *mod; /* the instance under test */
static uint64_t fake_now = 1000000000ull; /* the explicit clock, in microseconds */

static uint64_t fake_clock(void)
{
    return fake_now;
}

static int outages_seen; /* outage lines logged before the one awaited */

static int never(void)
{
    return 0;
}

static void setup(void)
{
    fake_reset();
    outages_seen = 0;
    fake_event_base = NULL;
    mod = NULL;
    fake_now = 1000000000ull;
    throttle_clock_set(fake_clock);
}

static void teardown(void)
{
    throttle_clock_set(NULL);
}

static struct throttle_config *parse(const char *options)
{
    vipmta_module_ctx *m = fake_module("{}");
    json_t *j = fake_json(options);
    struct throttle_config *cfg = throttle_config_parse(m, (const vipmta_value *)j);
    json_decref(j);
    fake_stop(m);
    return cfg;
}

static struct throttle_config *parse_ok(const char *options)
{
    struct throttle_config *cfg = parse(options);
    ck_assert_parsed(cfg);
    return cfg;
}

static void parse_bad(const char *options)
{
    ck_assert_ptr_null(parse(options));
    ck_assert_int_gt(fake_nerrors, 0);
}

/* The instance's config entry for these options. */
static char *entry_for(const char *options)
{
    char *entry = NULL;
    ck_assert_int_ge(asprintf(&entry, "{\"options\": %s}", options), 0);
    return entry;
}

/* configure + init with these options; 0 when both succeeded. */
static int start_module(const char *options)
{
    char *entry = entry_for(options);
    mod = fake_module(entry);
    free(entry);
    int rc = fake_configure(mod);
    if (rc == 0)
        rc = fake_init(mod);
    if (rc != 0)
        fake_dump();
    return rc;
}

static int reload_module(const char *options)
{
    char *entry = entry_for(options);
    int rc = fake_reload(mod, entry);
    free(entry);
    return rc;
}

static void stop_module(void)
{
    fake_stop(mod);
    mod = NULL;
}

static struct sockaddr_in ip4(const char *text)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons(25);
    ck_assert_int_eq(inet_pton(AF_INET, text, &a.sin_addr), 1);
    return a;
}

/* Calls the registered hook for (domain, slot) to the IPv4 address `ip`, with
 * `open` connections counted for the pair (this one included). */
static int call_hook(const char *domain, int slot, const char *ip, uint32_t open)
{
    uint32_t counts[3] = {0, 0, 0};
    counts[slot] = open;
    domain_record dr = {.domain = (char *)domain};
    fake_connections = counts;
    struct sockaddr_in a = ip4(ip);
    ck_assert_ptr_nonnull(fake_hook_fn);
    return fake_hook_fn(fake_hook_closure, &dr, slot, -1, (struct sockaddr *)&a, sizeof(a));
}

/* Runs the test event loop until cond() or `ms` milliseconds. */
static int loop_until(int (*cond)(void), int ms)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (cond && cond())
            return 1;
        clock_gettime(CLOCK_MONOTONIC, &t);
        long elapsed = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
        if (elapsed >= ms)
            return cond ? cond() : 1;
        struct timeval tv = {0, 10000};
        event_base_loopexit(fake_event_base, &tv);
        event_base_loop(fake_event_base, 0);
    }
}

/* ---- rates ---- */

static void rate_ok(const char *text, uint32_t count, uint32_t period)
{
    uint32_t c = 0, p = 0;
    char err[160] = "";
    ck_assert_msg(throttle_rate_parse(text, &c, &p, err, sizeof(err)) == 0, "\"%s\": %s", text,
                  err);
    ck_assert_uint_eq(c, count);
    ck_assert_uint_eq(p, period);
}

static void rate_bad(const char *text, const char *message)
{
    uint32_t c = 7, p = 7;
    char err[160] = "";
    ck_assert_int_eq(throttle_rate_parse(text, &c, &p, err, sizeof(err)), -1);
    ck_assert_str_eq(err, message);
    ck_assert_uint_eq(c, 7);
    ck_assert_uint_eq(p, 7);
}

START_TEST(test_rate_parse)
{
    rate_ok("10/s", 10, 1);
    rate_ok("600/min", 600, 60);
    rate_ok("3600/h", 3600, 3600);
    rate_ok("1/sec", 1, 1);
    rate_ok("1/second", 1, 1);
    rate_ok("5/minute", 5, 60);
    rate_ok("2/hour", 2, 3600);
    rate_ok("007/s", 7, 1);
    rate_ok("1000000/s", 1000000, 1);

    rate_bad("", "must be COUNT/UNIT like \"10/s\", \"600/min\" or \"3600/h\", not \"\"");
    rate_bad("10", "must be COUNT/UNIT like \"10/s\", \"600/min\" or \"3600/h\", not \"10\"");
    rate_bad("/s", "must be COUNT/UNIT like \"10/s\", \"600/min\" or \"3600/h\", not \"/s\"");
    rate_bad("10/", "must be COUNT/UNIT like \"10/s\", \"600/min\" or \"3600/h\", not \"10/\"");
    rate_bad("1.5/s", "must be COUNT/UNIT like \"10/s\", \"600/min\" or \"3600/h\", not \"1.5/s\"");
    rate_bad("-1/s", "must be COUNT/UNIT like \"10/s\", \"600/min\" or \"3600/h\", not \"-1/s\"");
    rate_bad(" 10/s", "must be COUNT/UNIT like \"10/s\", \"600/min\" or \"3600/h\", not \" 10/s\"");
    rate_bad("0/s", "the count must be from 1 to 1000000, not 0");
    rate_bad("1000001/min", "the count must be from 1 to 1000000, not 1000001");
    rate_bad("99999999999999999999999/s",
             "the count must be from 1 to 1000000, not 99999999999999999999999");
    rate_bad("10/d", "unknown unit \"d\" in \"10/d\" (use s, min or h)");
    rate_bad("10/S", "unknown unit \"S\" in \"10/S\" (use s, min or h)");
    rate_bad("10/s ", "unknown unit \"s \" in \"10/s \" (use s, min or h)");
    rate_bad("10/s/s", "unknown unit \"s/s\" in \"10/s/s\" (use s, min or h)");
}
END_TEST

/* ---- options ---- */

START_TEST(test_parse_defaults)
{
    struct throttle_config *cfg =
        parse_ok("{\"limits\": [{\"binding\": \"vip2\", \"concurrency\": 3},"
                 " {\"binding\": \"vip1\", \"per\": \"ip\", \"domain\": \"Example.COM\","
                 " \"rate\": \"600/min\", \"burst\": 20}, {\"rate\": \"5/s\"}]}");
    ck_assert_int_eq(cfg->backend, THROTTLE_BACKEND_LOCAL);
    ck_assert_int_eq(cfg->deny_on_error, 0);
    ck_assert_str_eq(cfg->redis.host, "127.0.0.1");
    ck_assert_int_eq(cfg->redis.port, 6379);
    ck_assert_str_eq(cfg->redis.key_prefix, "vipmta:throttle:");
    ck_assert_int_eq(cfg->redis.timeout_ms, 200);
    ck_assert_uint_eq(cfg->nlimits, 3);
    ck_assert_int_eq(cfg->has_kind[THROTTLE_PER_DOMAIN], 1);
    ck_assert_int_eq(cfg->has_kind[THROTTLE_PER_IP], 1);

    const struct throttle_limit *l = &cfg->limits[2];
    ck_assert_ptr_null(l->binding);
    ck_assert_ptr_null(l->domain);
    ck_assert_int_eq(l->per, THROTTLE_PER_DOMAIN);
    ck_assert_int_eq(l->has_rate, 1);
    ck_assert_uint_eq(l->rate.count, 5);
    ck_assert_uint_eq(l->rate.period_s, 1);
    ck_assert_uint_eq(l->rate.burst, 5); /* the count by default */
    ck_assert_uint_eq(l->concurrency, 0);
    ck_assert_uint_eq(l->batch, 1);
    ck_assert_str_eq(l->rate_text, "5/s");
    ck_assert_int_eq(l->slot, -1);

    l = &cfg->limits[1];
    ck_assert_str_eq(l->binding, "vip1");
    ck_assert_str_eq(l->domain, "example.com"); /* lower-cased */
    ck_assert_int_eq(l->per, THROTTLE_PER_IP);
    ck_assert_uint_eq(l->rate.count, 600);
    ck_assert_uint_eq(l->rate.period_s, 60);
    ck_assert_uint_eq(l->rate.burst, 20);
    ck_assert_uint_eq(l->batch, 1);

    l = &cfg->limits[0];
    ck_assert_int_eq(l->has_rate, 0);
    ck_assert_uint_eq(l->concurrency, 3);
    throttle_config_free(cfg);

    cfg = parse_ok("{\"backend\": \"redis\", \"on_backend_error\": \"deny\", \"redis\": {\"host\":"
                   " \"::1\", \"port\": 6390, \"key_prefix\": \"mta:\", \"timeout_ms\": 50},"
                   " \"limits\": [{\"domain\": \"a.test\", \"rate\": \"100000/s\", \"burst\": 50},"
                   " {\"rate\": \"1000/s\", \"burst\": 2000}]}");
    ck_assert_int_eq(cfg->backend, THROTTLE_BACKEND_REDIS);
    ck_assert_int_eq(cfg->deny_on_error, 1);
    ck_assert_str_eq(cfg->redis.host, "::1");
    ck_assert_int_eq(cfg->redis.port, 6390);
    ck_assert_str_eq(cfg->redis.key_prefix, "mta:");
    ck_assert_int_eq(cfg->redis.timeout_ms, 50);
    ck_assert_uint_eq(cfg->limits[1].batch, 100); /* a tenth of a second, at most 100 */
    ck_assert_uint_eq(cfg->limits[0].batch, 50);  /* at most the burst */
    throttle_config_free(cfg);

    cfg = parse_ok("{\"limits\": []}");
    ck_assert_uint_eq(cfg->nlimits, 0);
    throttle_config_free(cfg);
}
END_TEST

START_TEST(test_parse_errors_all_reported)
{
    parse_bad("{\"backend\": \"memcached\", \"on_backend_error\": true, \"retry\": 1,"
              " \"redis\": {\"host\": \"redis.example.com\", \"port\": 0, \"key_prefix\": \"a b\","
              " \"timeout_ms\": \"fast\", \"db\": 1},"
              " \"limits\": [7, {\"rate\": 10, \"binding\": 1, \"domain\": \"*.example.com\","
              " \"per\": \"host\", \"burst\": 0, \"concurrency\": 100001, \"max\": 1},"
              " {\"burst\": 5, \"domain\": \"example.com\"},"
              " {\"per\": \"ip\", \"rate\": \"ten/s\", \"concurrency\": 2},"
              " {\"binding\": \"\", \"domain\": 5, \"rate\": \"1/d\"}, {}]}");
    ck_assert_error("options: unknown key \"retry\" (allowed: backend, redis, on_backend_error, "
                    "limits)");
    ck_assert_error("options.backend: must be \"local\" or \"redis\", not \"memcached\"");
    ck_assert_error("options.on_backend_error: must be \"allow\" or \"deny\", not true");
    ck_assert_error("options.redis: unknown key \"db\" (allowed: host, port, key_prefix, timeout_ms)");
    ck_assert_error("options.redis.host: must be an IPv4 or IPv6 address (no host names: resolving one "
                    "would block the event loop), not \"redis.example.com\"");
    ck_assert_error("options.redis.port: must be an integer from 1 to 65535, not 0");
    ck_assert_error("options.redis.key_prefix: must be at most 128 printable characters without spaces, "
                    "not \"a b\"");
    ck_assert_error("options.redis.timeout_ms: must be an integer from 1 to 60000, not a string");
    ck_assert_error("options.limits[0]: must be an object, not an integer");
    ck_assert_error("options.limits[1]: unknown key \"max\" (allowed: binding, domain, per, rate, burst, "
                    "concurrency)");
    ck_assert_error("options.limits[1].rate: must be a string like \"10/s\", \"600/min\" or \"3600/h\", "
                    "not an integer");
    ck_assert_error("options.limits[1].binding: must be a binding name or \"*\", not an integer");
    ck_assert_error("options.limits[1].domain: must be a domain name or \"*\", not \"*.example.com\"");
    ck_assert_error("options.limits[1].per: must be \"domain\" or \"ip\", not \"host\"");
    ck_assert_error("options.limits[1].burst: must be an integer from 1 to 1000000, not 0");
    ck_assert_error("options.limits[1].concurrency: must be an integer from 1 to 100000, not 100001");
    ck_assert_error("options.limits[2].burst: needs a \"rate\" in the same limit");
    ck_assert_error("options.limits[2]: needs a \"rate\", a \"concurrency\" or both");
    ck_assert_error("options.limits[3].rate: must be COUNT/UNIT like \"10/s\", \"600/min\" or \"3600/h\", "
                    "not \"ten/s\"");
    ck_assert_error("options.limits[3].concurrency: is not supported with \"per\": \"ip\" (the core counts "
                    "open connections per binding and domain, not per IP); use a \"per\": "
                    "\"domain\" limit");
    ck_assert_error("options.limits[4].binding: must be a binding name or \"*\", not an empty or overlong "
                    "string");
    ck_assert_error("options.limits[4].domain: must be a domain name or \"*\", not an integer");
    ck_assert_error("options.limits[4].rate: unknown unit \"d\" in \"1/d\" (use s, min or h)");
    ck_assert_error("options.limits[5]: needs a \"rate\", a \"concurrency\" or both");
    ck_assert_int_eq(fake_nerrors, 24);
}
END_TEST

START_TEST(test_parse_errors_top_level)
{
    parse_bad("[]");
    ck_assert_error("options: must be an object, not an array");
    fake_nerrors = 0;
    parse_bad("{}");
    ck_assert_error("options.limits: is required: a list of limits");
    fake_nerrors = 0;
    parse_bad("{\"limits\": {\"rate\": \"1/s\"}, \"redis\": \"127.0.0.1:6379\"}");
    ck_assert_error("options.limits: must be an array of limits, not an object");
    ck_assert_error("options.redis: must be an object, not a string");
    ck_assert_int_eq(fake_nerrors, 2);
    fake_nerrors = 0;
    parse_bad("{\"limits\": [], \"redis\": {\"host\": 127, \"key_prefix\": false, \"port\": 65536}}");
    ck_assert_error("options.redis.host: must be an IPv4 or IPv6 address, not an integer");
    ck_assert_error("options.redis.key_prefix: must be a string, not false");
    ck_assert_error("options.redis.port: must be an integer from 1 to 65535, not 65536");
    ck_assert_int_eq(fake_nerrors, 3);
}
END_TEST

START_TEST(test_parse_shadowed_limits)
{
    /* a later limit an earlier one always wins over is an error */
    parse_bad("{\"limits\": [{\"rate\": \"10/s\"}, {\"binding\": \"vip1\", \"rate\": \"1/s\"}]}");
    ck_assert_error("options.limits[1]: never applies: limits[0] (binding \"*\", domain \"*\", per domain) "
                    "comes first and matches every connection this one would (the first "
                    "matching limit wins); put the more specific limit first");
    ck_assert_int_eq(fake_nerrors, 1);
    fake_nerrors = 0;
    parse_bad("{\"limits\": [{\"binding\": \"vip1\", \"domain\": \"a.test\", \"per\": \"ip\","
              " \"rate\": \"1/s\"}, {\"binding\": \"vip1\", \"domain\": \"A.test\", \"per\": \"ip\","
              " \"rate\": \"2/s\"}]}");
    ck_assert_error("options.limits[1]: never applies: limits[0] (binding \"vip1\", domain \"a.test\", per "
                    "ip) comes first and matches every connection this one would (the first "
                    "matching limit wins); put the more specific limit first");
    ck_assert_int_eq(fake_nerrors, 1);
    fake_nerrors = 0;
    /* specific first, then the wildcard; other kinds and bindings do not shadow; a bad limit
     * shadows nothing */
    struct throttle_config *cfg =
        parse_ok("{\"limits\": [{\"binding\": \"vip1\", \"domain\": \"a.test\", \"rate\": \"1/s\"},"
                 " {\"binding\": \"vip1\", \"rate\": \"2/s\"}, {\"rate\": \"3/s\"},"
                 " {\"binding\": \"vip2\", \"per\": \"ip\", \"rate\": \"4/s\"},"
                 " {\"per\": \"ip\", \"rate\": \"5/s\"}]}");
    ck_assert_uint_eq(cfg->nlimits, 5);
    throttle_config_free(cfg);
    parse_bad("{\"limits\": [{\"rate\": \"x\"}, {\"binding\": \"vip1\", \"rate\": \"1/s\"}]}");
    ck_assert_int_eq(fake_nerrors, 1);
}
END_TEST

START_TEST(test_config_match)
{
    struct throttle_config *cfg =
        parse_ok("{\"limits\": [{\"binding\": \"vip1\", \"domain\": \"a.test\", \"rate\": \"1/s\"},"
                 " {\"binding\": \"vip1\", \"rate\": \"2/s\"}, {\"domain\": \"b.test\", \"rate\":"
                 " \"3/s\"}, {\"per\": \"ip\", \"binding\": \"vip2\", \"rate\": \"4/s\"}]}");
    /* named bindings match nothing until resolved */
    ck_assert_ptr_eq(throttle_config_match(cfg, THROTTLE_PER_DOMAIN, 1, "a.test"), NULL);
    cfg->limits[0].slot = cfg->limits[1].slot = 1;
    cfg->limits[3].slot = 2;
    ck_assert_ptr_eq(throttle_config_match(cfg, THROTTLE_PER_DOMAIN, 1, "a.test"),
                     &cfg->limits[0]);
    ck_assert_ptr_eq(throttle_config_match(cfg, THROTTLE_PER_DOMAIN, 1, "b.test"),
                     &cfg->limits[1]);
    ck_assert_ptr_eq(throttle_config_match(cfg, THROTTLE_PER_DOMAIN, 2, "b.test"),
                     &cfg->limits[2]);
    ck_assert_ptr_eq(throttle_config_match(cfg, THROTTLE_PER_DOMAIN, 0, "b.test"),
                     &cfg->limits[2]);
    ck_assert_ptr_null(throttle_config_match(cfg, THROTTLE_PER_DOMAIN, 2, "a.test"));
    ck_assert_ptr_eq(throttle_config_match(cfg, THROTTLE_PER_IP, 2, "a.test"), &cfg->limits[3]);
    ck_assert_ptr_null(throttle_config_match(cfg, THROTTLE_PER_IP, 1, "a.test"));
    throttle_config_free(cfg);
}
END_TEST

/* ---- token buckets on an explicit clock ---- */

START_TEST(test_bucket_math)
{
    struct throttle_params p = {.count = 5, .period_s = 1, .burst = 5};
    struct throttle_bucket b;
    uint64_t t = 5000000;
    throttle_bucket_init(&b, &p, t);
    ck_assert_uint_eq(throttle_bucket_tokens(&b, &p, t), 5);
    ck_assert_int_eq(throttle_bucket_full(&b, &p, t), 1);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(throttle_bucket_take(&b, &p, t), 1);
    ck_assert_int_eq(throttle_bucket_take(&b, &p, t), 0);
    ck_assert_int_eq(throttle_bucket_full(&b, &p, t), 0);
    /* one token every 200 ms, exactly */
    ck_assert_int_eq(throttle_bucket_ready(&b, &p, t + 199999), 0);
    ck_assert_int_eq(throttle_bucket_ready(&b, &p, t + 200000), 1);
    ck_assert_int_eq(throttle_bucket_take(&b, &p, t + 200000), 1);
    ck_assert_int_eq(throttle_bucket_take(&b, &p, t + 200000), 0);
    /* refills in small steps add up the same */
    for (uint64_t s = 1; s <= 400; s++)
        throttle_bucket_refill(&b, &p, t + 200000 + s * 1000);
    ck_assert_uint_eq(throttle_bucket_tokens(&b, &p, t + 600000), 2);
    /* capped at the burst */
    ck_assert_uint_eq(throttle_bucket_tokens(&b, &p, t + 60000000), 5);
    ck_assert_int_eq(throttle_bucket_full(&b, &p, t + 60000000), 1);
    /* a clock going back refills nothing and breaks nothing */
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(throttle_bucket_take(&b, &p, t + 60000000), 1);
    ck_assert_int_eq(throttle_bucket_take(&b, &p, t), 0);
    ck_assert_uint_eq(throttle_bucket_tokens(&b, &p, t + 100000), 0);
    ck_assert_uint_eq(throttle_bucket_tokens(&b, &p, t + 300000), 1);
    /* a huge gap: full, no overflow */
    ck_assert_uint_eq(throttle_bucket_tokens(&b, &p, UINT64_MAX / 2), 5);

    /* 600/min with a burst of 10: one token every 100 ms */
    struct throttle_params q = {.count = 600, .period_s = 60, .burst = 10};
    throttle_bucket_init(&b, &q, 0);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(throttle_bucket_take(&b, &q, 0), 1);
    ck_assert_int_eq(throttle_bucket_take(&b, &q, 99999), 0);
    ck_assert_int_eq(throttle_bucket_take(&b, &q, 100000), 1);
    ck_assert_uint_eq(throttle_bucket_tokens(&b, &q, 100000 + 350000), 3);

    /* 1/h: the next token an hour later */
    struct throttle_params h = {.count = 1, .period_s = 3600, .burst = 1};
    throttle_bucket_init(&b, &h, 0);
    ck_assert_int_eq(throttle_bucket_take(&b, &h, 0), 1);
    ck_assert_int_eq(throttle_bucket_ready(&b, &h, 3599999999ull), 0);
    ck_assert_int_eq(throttle_bucket_ready(&b, &h, 3600000000ull), 1);

    /* the largest rate and burst */
    struct throttle_params big = {.count = 1000000, .period_s = 3600, .burst = 1000000};
    throttle_bucket_init(&b, &big, 0);
    ck_assert_uint_eq(throttle_bucket_tokens(&b, &big, 7200000000ull), 1000000);
}
END_TEST

START_TEST(test_bucket_rescale)
{
    struct throttle_params a = {.count = 10, .period_s = 1, .burst = 10};
    struct throttle_params b2 = {.count = 20, .period_s = 1, .burst = 20};
    struct throttle_entry e;
    memset(&e, 0, sizeof(e));
    throttle_entry_use_params(&e, &a, 0); /* new: full */
    ck_assert_int_eq(e.has_params, 1);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(throttle_bucket_take(&e.bucket, &e.params, 0), 1);
    throttle_entry_use_params(&e, &a, 0); /* same limit: unchanged */
    ck_assert_uint_eq(throttle_bucket_tokens(&e.bucket, &e.params, 0), 5);
    throttle_entry_use_params(&e, &b2, 0); /* half full stays half full */
    ck_assert_uint_eq(throttle_bucket_tokens(&e.bucket, &e.params, 0), 10);
    ck_assert_uint_eq(e.params.burst, 20);
    struct throttle_params m = {.count = 60, .period_s = 60, .burst = 2};
    throttle_entry_use_params(&e, &m, 0);
    ck_assert_uint_eq(throttle_bucket_tokens(&e.bucket, &e.params, 0), 1);
    ck_assert_int_eq(throttle_bucket_ready(&e.bucket, &e.params, 0), 1);
}
END_TEST

/* ---- the key table ---- */

static struct throttle_entry *busy_entry(struct throttle_table *t, const char *name, uint64_t now)
{
    static const struct throttle_params p = {.count = 1, .period_s = 60, .burst = 2};
    struct throttle_entry *e = throttle_table_get(t, THROTTLE_PER_DOMAIN, 1, name, now);
    ck_assert_ptr_nonnull(e);
    throttle_entry_use_params(e, &p, now);
    ck_assert_int_eq(throttle_bucket_take(&e->bucket, &e->params, now), 1);
    return e;
}

static int present(struct throttle_table *t, const char *name)
{
    return throttle_table_find(t, THROTTLE_PER_DOMAIN, 1, name) != NULL;
}

START_TEST(test_table_keys)
{
    struct throttle_table *t = throttle_table_new(100);
    ck_assert_ptr_nonnull(t);
    /* busy keys (idle ones are forgotten whenever a key is added: that loses nothing) */
    struct throttle_entry *a = busy_entry(t, "a.test", 0);
    struct throttle_entry *b = throttle_table_get(t, THROTTLE_PER_IP, 1, "a.test", 0);
    ck_assert_ptr_nonnull(b);
    b->inflight = 1;
    struct throttle_entry *c = throttle_table_get(t, THROTTLE_PER_DOMAIN, 2, "a.test", 0);
    ck_assert_ptr_nonnull(c);
    c->pending = 1;
    ck_assert(a != b && b != c && a != c);
    ck_assert_ptr_eq(throttle_table_get(t, THROTTLE_PER_DOMAIN, 1, "a.test", 0), a);
    ck_assert_ptr_eq(throttle_table_find(t, THROTTLE_PER_IP, 1, "a.test"), b);
    ck_assert_ptr_null(throttle_table_find(t, THROTTLE_PER_IP, 2, "a.test"));
    ck_assert_str_eq(c->name, "a.test");
    ck_assert_int_eq(c->slot, 2);
    ck_assert_int_eq(b->kind, THROTTLE_PER_IP);
    /* names longer than a domain name have no entry */
    char longname[300];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    ck_assert_ptr_null(throttle_table_get(t, THROTTLE_PER_DOMAIN, 1, longname, 0));
    /* many keys: all found again */
    char name[32];
    for (int i = 0; i < 90; i++) {
        snprintf(name, sizeof(name), "d%d.test", i);
        busy_entry(t, name, 0);
    }
    for (int i = 0; i < 90; i++) {
        snprintf(name, sizeof(name), "d%d.test", i);
        ck_assert_msg(present(t, name), "%s lost", name);
    }
    throttle_table_free(t);
}
END_TEST

START_TEST(test_table_eviction)
{
    struct throttle_table *t = throttle_table_new(3);
    busy_entry(t, "a", 0);
    busy_entry(t, "b", 0);
    busy_entry(t, "c", 0);
    ck_assert_uint_eq(t->count, 3);
    /* full of busy keys: the least recently used goes */
    busy_entry(t, "d", 0);
    ck_assert_uint_eq(t->count, 3);
    ck_assert(!present(t, "a") && present(t, "b") && present(t, "c") && present(t, "d"));
    ck_assert_uint_eq(t->evicted_busy, 1);
    /* using a key makes it recent: c goes, not b */
    ck_assert_ptr_nonnull(throttle_table_get(t, THROTTLE_PER_DOMAIN, 1, "b", 0));
    busy_entry(t, "e", 0);
    ck_assert(present(t, "b") && !present(t, "c") && present(t, "d") && present(t, "e"));
    ck_assert_uint_eq(t->evicted_busy, 2);
    /* a key with a Redis charge on its way is never evicted */
    throttle_table_find(t, THROTTLE_PER_DOMAIN, 1, "d")->inflight = 1;
    busy_entry(t, "f", 0); /* LRU order: d (cold), b, e, f */
    ck_assert(!present(t, "b") && present(t, "d") && present(t, "e") && present(t, "f"));
    throttle_table_find(t, THROTTLE_PER_DOMAIN, 1, "d")->inflight = 0;
    /* idle keys (full buckets again, after two minutes) go first, without counting as busy */
    uint64_t later = 120000000;
    busy_entry(t, "g", later); /* d and e are idle at the cold end: both go */
    ck_assert(!present(t, "d") && !present(t, "e") && present(t, "f") && present(t, "g"));
    ck_assert_uint_eq(t->count, 2);
    ck_assert_uint_eq(t->evicted_busy, 3);
    throttle_table_free(t);
}
END_TEST

static void count_entry(struct throttle_entry *e, void *arg)
{
    (void)e;
    ++*(int *)arg;
}

START_TEST(test_table_never_evicts_most_recent)
{
    struct throttle_table *t = throttle_table_new(2);
    struct throttle_entry *x = busy_entry(t, "x", 0);
    struct throttle_entry *y = busy_entry(t, "y", 0);
    x->inflight = 1;
    /* the only candidate is y, the most recently used: it stays (the table overflows) */
    struct throttle_entry *z = throttle_table_get(t, THROTTLE_PER_DOMAIN, 1, "z", 0);
    ck_assert_ptr_nonnull(z);
    ck_assert_ptr_eq(throttle_table_find(t, THROTTLE_PER_DOMAIN, 1, "y"), y);
    ck_assert_ptr_eq(throttle_table_find(t, THROTTLE_PER_DOMAIN, 1, "x"), x);
    ck_assert_uint_eq(t->count, 3);
    int n = 0;
    throttle_table_foreach(t, count_entry, &n);
    ck_assert_int_eq(n, 3);
    throttle_table_free(t);
}
END_TEST

/* ---- the module: the hook with the local backend ---- */

START_TEST(test_module_local_rate)
{
    ck_assert_int_eq(start_module("{\"limits\": [{\"binding\": \"vip1\", \"domain\": "
                                  "\"example.com\", \"rate\": \"5/s\"}]}"),
                     0);
    ck_assert_log("ready: 1 limit(s), backend local");
    fake_nlogs = 0;
    /* the burst: five at once, then vetoed */
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(call_hook("example.com", 1, "192.0.2.1", 1), 0);
    ck_assert_int_eq(call_hook("example.com", 1, "192.0.2.1", 1), VETO_RATE);
    ck_assert_int_eq(call_hook("example.com", 1, "192.0.2.2", 1), VETO_RATE);
    ck_assert_int_eq(fake_nlogs, 1); /* once per key and second */
    ck_assert_int_eq(fake_log_levels[0], VIPMTA_LOG_INFO);
    ck_assert_str_eq(fake_logs[0], "binding \"vip1\" domain example.com: over 5/s (burst 5); "
                              "connection vetoed (mail deferred)");
    /* other bindings and domains are not limited */
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(call_hook("example.com", 2, "192.0.2.1", 1), 0);
        ck_assert_int_eq(call_hook("example.org", 1, "192.0.2.1", 1), 0);
    }
    /* one token every 200 ms */
    fake_now += 199999;
    ck_assert_int_eq(call_hook("example.com", 1, "192.0.2.1", 1), VETO_RATE);
    fake_now += 1;
    ck_assert_int_eq(call_hook("example.com", 1, "192.0.2.1", 1), 0);
    ck_assert_int_eq(call_hook("example.com", 1, "192.0.2.1", 1), VETO_RATE);
    /* over 10 s: at most the burst plus the rate */
    int allowed = 0;
    for (int ms = 0; ms < 10000; ms += 10) {
        fake_now += 10000;
        for (int k = 0; k < 3; k++)
            allowed += call_hook("example.com", 1, "192.0.2.1", 1) == 0;
    }
    ck_assert_int_eq(allowed, 50);
    ck_assert_int_eq(fake_nlogs, 11); /* one line per second with vetoes */
    stop_module();
}
END_TEST

START_TEST(test_module_per_ip_and_domain)
{
    /* per domain: burst 2 for vip1 (any domain); per IP: 1/min for every binding */
    ck_assert_int_eq(start_module("{\"limits\": [{\"binding\": \"vip1\", \"rate\": \"2/min\"},"
                                  " {\"per\": \"ip\", \"rate\": \"1/min\"}]}"),
                     0);
    fake_nlogs = 0;
    ck_assert_int_eq(call_hook("a.test", 1, "192.0.2.1", 1), 0);
    /* the IP's bucket is empty: vetoed, and the domain's token is not taken */
    ck_assert_int_eq(call_hook("a.test", 1, "192.0.2.1", 1), VETO_RATE);
    ck_assert_str_eq(fake_logs[0], "binding \"vip1\" ip 192.0.2.1 (domain a.test): over 1/min "
                              "(burst 1); connection vetoed (mail deferred)");
    ck_assert_int_eq(call_hook("a.test", 1, "192.0.2.2", 1), 0);
    /* now the domain's bucket is empty */
    ck_assert_int_eq(call_hook("a.test", 1, "192.0.2.3", 1), VETO_RATE);
    ck_assert_str_eq(fake_logs[1], "binding \"vip1\" domain a.test: over 2/min (burst 2); "
                              "connection vetoed (mail deferred)");
    /* per IP, domains share the IP's bucket; bindings do not */
    ck_assert_int_eq(call_hook("b.test", 1, "192.0.2.1", 1), VETO_RATE);
    ck_assert_int_eq(call_hook("b.test", 2, "192.0.2.1", 1), 0);
    ck_assert_int_eq(call_hook("c.test", 2, "192.0.2.1", 1), VETO_RATE);
    ck_assert_int_eq(call_hook("c.test", 0, "192.0.2.1", 1), 0);
    /* IPv6 destinations have their own keys; other families are not limited per IP */
    struct sockaddr_in6 a6;
    memset(&a6, 0, sizeof(a6));
    a6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "2001:db8::1", &a6.sin6_addr);
    uint32_t counts[3] = {0, 0, 1};
    domain_record dr = {.domain = "d.test"};
    fake_connections = counts;
    ck_assert_int_eq(fake_hook_fn(fake_hook_closure, &dr, 2, -1, (struct sockaddr *)&a6, sizeof(a6)), 0);
    ck_assert_int_eq(fake_hook_fn(fake_hook_closure, &dr, 2, -1, (struct sockaddr *)&a6, sizeof(a6)),
                     VETO_RATE);
    ck_assert_log("binding \"vip2\" ip 2001:db8::1 (domain d.test): over 1/min (burst 1); "
                  "connection vetoed (mail deferred)");
    struct sockaddr un = {.sa_family = AF_UNIX};
    ck_assert_int_eq(fake_hook_fn(fake_hook_closure, &dr, 2, -1, &un, sizeof(un)), 0);
    /* a minute later, one more each */
    fake_now += 60000000;
    ck_assert_int_eq(call_hook("a.test", 1, "192.0.2.1", 1), 0);
    ck_assert_int_eq(call_hook("a.test", 1, "192.0.2.1", 1), VETO_RATE);
    stop_module();
}
END_TEST

START_TEST(test_module_concurrency)
{
    ck_assert_int_eq(start_module("{\"limits\": [{\"binding\": \"vip1\", \"domain\": "
                                  "\"example.com\", \"concurrency\": 2},"
                                  " {\"domain\": \"example.com\", \"concurrency\": 1, "
                                  "\"rate\": \"1/min\"}]}"),
                     0);
    fake_nlogs = 0;
    /* the core counts this connection already */
    ck_assert_int_eq(call_hook("example.com", 1, "192.0.2.1", 1), 0);
    ck_assert_int_eq(call_hook("example.com", 1, "192.0.2.1", 2), 0);
    ck_assert_int_eq(call_hook("example.com", 1, "192.0.2.1", 3), VETO_CONCURRENCY);
    ck_assert_str_eq(fake_logs[0], "binding \"vip1\" domain example.com: 3 connections open counting "
                              "this one, concurrency 2; connection vetoed (mail deferred)");
    ck_assert_int_eq(call_hook("example.com", 1, "192.0.2.1", 2), 0);
    ck_assert_int_eq(call_hook("example.org", 1, "192.0.2.1", 50), 0);
    /* concurrency is checked first: a vetoed connection takes no token */
    ck_assert_int_eq(call_hook("example.com", 2, "192.0.2.1", 2), VETO_CONCURRENCY);
    ck_assert_int_eq(call_hook("example.com", 2, "192.0.2.1", 1), 0);
    ck_assert_int_eq(call_hook("example.com", 2, "192.0.2.1", 1), VETO_RATE);
    ck_assert_int_eq(fake_nlogs, 2); /* the key logged its veto this second already */
    stop_module();
}
END_TEST

START_TEST(test_module_init_unknown_binding)
{
    mod = fake_module("{\"options\": {\"limits\": [{\"binding\": \"vip9\", \"rate\": \"1/s\"},"
                      " {\"binding\": \"default\", \"rate\": \"2/s\"}]}}");
    ck_assert_int_eq(fake_configure(mod), 0);
    ck_assert_int_ne(fake_init(mod), 0);
    ck_assert_error("options.limits[0].binding: no binding named \"vip9\" (the bindings are: "
                    "\"default\", \"vip1\", \"vip2\")");
    ck_assert_int_eq(fake_nerrors, 1);
    ck_assert_ptr_null(fake_hook_fn);
    stop_module();
    /* configure failures leave nothing behind; shutdown copes */
    fake_nerrors = 0;
    mod = fake_module("{\"options\": {\"limits\": 3}}");
    ck_assert_int_ne(fake_configure(mod), 0);
    ck_assert_ptr_null(vipmta_module_get_data(mod));
    stop_module();
    /* the redis backend without an event loop (vipmta -M runs init): Redis is not contacted */
    fake_nerrors = fake_nlogs = 0;
    ck_assert_int_eq(start_module("{\"backend\": \"redis\", \"redis\": {\"port\": 1},"
                                  " \"limits\": [{\"rate\": \"1/s\"}]}"),
                     0);
    ck_assert_ptr_nonnull(fake_hook_fn);
    ck_assert_log("no event loop (not the daemon): redis 127.0.0.1:1 not contacted");
    ck_assert_int_eq(fake_logs_containing("unreachable"), 0);
    stop_module();
}
END_TEST

START_TEST(test_module_reload)
{
    ck_assert_int_eq(start_module("{\"limits\": [{\"binding\": \"vip1\", \"rate\": \"10/min\"}]}"),
                     0);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(call_hook("a.test", 1, "192.0.2.1", 1), 0);
    /* a bad reload keeps the old options */
    ck_assert_int_ne(reload_module("{\"limits\": [{\"binding\": \"vip7\", \"rate\": \"1/min\"}]}"), 0);
    ck_assert_error("options.limits[0].binding: no binding named \"vip7\" (the bindings are: "
                    "\"default\", \"vip1\", \"vip2\")");
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(call_hook("a.test", 1, "192.0.2.1", 1), 0);
    ck_assert_int_eq(call_hook("a.test", 1, "192.0.2.1", 1), VETO_RATE);
    /* a good one applies: the empty bucket stays empty, refilling at the new rate */
    fake_nlogs = 0;
    ck_assert_int_eq(reload_module("{\"limits\": [{\"binding\": \"vip1\", \"rate\": \"60/min\"}]}"), 0);
    ck_assert_log("reloaded: 1 limit(s), backend local");
    ck_assert_int_eq(call_hook("a.test", 1, "192.0.2.1", 1), VETO_RATE);
    fake_now += 1000000;
    ck_assert_int_eq(call_hook("a.test", 1, "192.0.2.1", 1), 0);
    ck_assert_int_eq(call_hook("a.test", 1, "192.0.2.1", 1), VETO_RATE);
    stop_module();
}
END_TEST

/* ---- the Redis backend ---- */

/* A TCP port on 127.0.0.1 that refuses connections while `*fd` stays open
 * (bound, not listening). */
static int closed_port(int *fd)
{
    *fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(*fd, 0);
    struct sockaddr_in a = ip4("127.0.0.1");
    a.sin_port = 0;
    ck_assert_int_eq(bind(*fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    ck_assert_int_eq(getsockname(*fd, (struct sockaddr *)&a, &len), 0);
    return ntohs(a.sin_port);
}


static int outage_logged(void)
{
    return fake_logs_containing("unreachable") > outages_seen;
}

static void redis_down_case(int deny)
{
    int fd, port = closed_port(&fd);
    char options[512];
    fake_event_base = event_base_new();
    ck_assert_ptr_nonnull(fake_event_base);
    snprintf(options, sizeof(options),
             "{\"backend\": \"redis\", \"on_backend_error\": \"%s\", \"redis\": {\"port\": %d},"
             " \"limits\": [{\"binding\": \"vip1\", \"rate\": \"5/s\"}]}",
             deny ? "deny" : "allow", port);
    ck_assert_int_eq(start_module(options), 0);
    ck_assert_int_eq(loop_until(outage_logged, 3000), 1);
    char want[512];
    snprintf(want, sizeof(want),
             "redis 127.0.0.1:%d unreachable: Connection refused; until it is back, connections "
             "%s (on_backend_error %s); this is logged once per outage",
             port,
             deny ? "under a shared limit are vetoed"
                  : "are allowed under this node's local limits only",
             deny ? "deny" : "allow");
    ck_assert_log(want);
    int vetoes = 0, allowed = 0;
    for (int i = 0; i < 8; i++) {
        int rc = call_hook("a.test", 1, "192.0.2.1", 1);
        if (deny)
            ck_assert_int_eq(rc, VETO_BACKEND);
        vetoes += rc != 0;
        allowed += rc == 0;
    }
    /* allow: the node's own bucket still applies */
    ck_assert_int_eq(allowed, deny ? 0 : 5);
    ck_assert_int_eq(vetoes, deny ? 8 : 3);
    /* unlimited connections are not touched */
    ck_assert_int_eq(call_hook("a.test", 2, "192.0.2.1", 1), 0);
    /* reconnect attempts (after 250 ms, 500 ms...) fail silently */
    loop_until(NULL, 900);
    for (int i = 0; i < 8; i++)
        call_hook("a.test", 1, "192.0.2.1", 1);
    if (fake_logs_containing("unreachable") != 1)
        fake_dump();
    ck_assert_int_eq(fake_logs_containing("unreachable"), 1);
    if (deny) /* the outage line said it */
        ck_assert_int_eq(fake_logs_containing("connection vetoed"), 0);
    stop_module();
    event_base_free(fake_event_base);
    fake_event_base = NULL;
    close(fd);
}

START_TEST(test_redis_down_allow)
{
    throttle_clock_set(NULL); /* real time, for the event loop */
    redis_down_case(0);
}
END_TEST

START_TEST(test_redis_down_deny)
{
    throttle_clock_set(NULL);
    redis_down_case(1);
}
END_TEST

START_TEST(test_redis_silent_server)
{
    /* a server that accepts connections and never answers */
    int fd, port = closed_port(&fd);
    ck_assert_int_eq(listen(fd, 16), 0);
    throttle_clock_set(NULL);
    fake_event_base = event_base_new();
    char options[512];
    snprintf(options, sizeof(options),
             "{\"backend\": \"redis\", \"on_backend_error\": \"deny\", \"redis\": {\"port\": %d,"
             " \"timeout_ms\": 50}, \"limits\": [{\"binding\": \"vip1\", \"rate\": \"5/s\"}]}",
             port);
    ck_assert_int_eq(start_module(options), 0);
    /* before the probe times out, one connection goes ahead on credit */
    ck_assert_int_eq(call_hook("a.test", 1, "192.0.2.1", 1), 0);
    ck_assert_int_eq(loop_until(outage_logged, 3000), 1);
    char want[256];
    snprintf(want, sizeof(want),
             "redis 127.0.0.1:%d unreachable: no reply within 50 ms; until it is back, connections "
             "under a shared limit are vetoed (on_backend_error deny); this is logged once per "
             "outage",
             port);
    ck_assert_log(want);
    ck_assert_int_eq(call_hook("a.test", 1, "192.0.2.1", 1), VETO_BACKEND);
    /* reconnects that time out again are not logged */
    loop_until(never, 1000);
    ck_assert_int_eq(call_hook("a.test", 1, "192.0.2.1", 1), VETO_BACKEND);
    ck_assert_int_eq(fake_logs_containing("unreachable"), 1);
    stop_module();
    event_base_free(fake_event_base);
    fake_event_base = NULL;
    close(fd);
}
END_TEST

/* A redis-server started for the test, when one is installed. */
static pid_t redis_pid;
static char redis_dir[64];

static int redis_start(int port)
{
    const char *bin = "/usr/bin/redis-server";
    if (access(bin, X_OK) != 0)
        return -1;
    if (!redis_dir[0]) {
        snprintf(redis_dir, sizeof(redis_dir), "/tmp/check_mod_throttle.XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(redis_dir));
    }
    char portbuf[16];
    snprintf(portbuf, sizeof(portbuf), "%d", port);
    redis_pid = fork();
    ck_assert_int_ge(redis_pid, 0);
    if (redis_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* gone with the test, even when it fails */
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        execl(bin, bin, "--port", portbuf, "--bind", "127.0.0.1", "--save", "",
              "--appendonly", "no", "--dir", redis_dir, (char *)NULL);
        _exit(127);
    }
    /* until it accepts */
    for (int i = 0; i < 100; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = ip4("127.0.0.1");
        a.sin_port = htons((uint16_t)port);
        int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
        close(fd);
        if (ok)
            return 0;
        usleep(50000);
    }
    return -1;
}

static void redis_stop(void)
{
    if (redis_pid > 0) {
        kill(redis_pid, SIGTERM);
        waitpid(redis_pid, NULL, 0);
        redis_pid = 0;
    }
    if (redis_dir[0]) {
        rmdir(redis_dir);
        redis_dir[0] = '\0';
    }
}

struct charge_result {
    int calls, ok;
    long long tokens, wait_us;
    void *arg;
};

static struct charge_result last_charge;

static void charge_done(void *user, void *arg, int ok, long long tokens, long long wait_us)
{
    (void)user;
    last_charge.calls++;
    last_charge.ok = ok;
    last_charge.tokens = tokens;
    last_charge.wait_us = wait_us;
    last_charge.arg = arg;
}

static int charge_back(void)
{
    return last_charge.calls > 0;
}

static void charge(struct throttle_redis *r, const struct throttle_params *p, uint32_t n)
{
    memset(&last_charge, 0, sizeof(last_charge));
    ck_assert_int_eq(throttle_redis_charge(r, "t:vip1:domain:a.test", p, n, &last_charge), 0);
    ck_assert_int_eq(loop_until(charge_back, 3000), 1);
    ck_assert_int_eq(last_charge.calls, 1);
    ck_assert_ptr_eq(last_charge.arg, &last_charge);
}

static int recovered(void)
{
    return fake_logs_containing("reachable again") > 0;
}

START_TEST(test_redis_script_and_recovery)
{
    int fd, port = closed_port(&fd);
    close(fd); /* free again: the server starts there later */
    fake_event_base = event_base_new();
    struct throttle_redis_opts o = {.host = "127.0.0.1", .port = port, .key_prefix = "t:",
                                    .timeout_ms = 500};
    mod = fake_module("{}");
    struct throttle_redis *r = throttle_redis_new(mod, &o, 0, charge_done, NULL);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(loop_until(outage_logged, 3000), 1);
    ck_assert_int_eq(throttle_redis_up(r), 0);
    if (redis_start(port) != 0) {
        fprintf(stderr, "check_mod_throttle: no redis-server to test against; the script is "
                        "tested by integration/modules_throttle.sh only\n");
        throttle_redis_free(r);
        stop_module();
        redis_stop();
        event_base_free(fake_event_base);
        fake_event_base = NULL;
        return;
    }
    /* the reconnect (within the 250 ms .. 8 s backoff) ends the outage */
    ck_assert_int_eq(loop_until(recovered, 10000), 1);
    ck_assert_int_eq(throttle_redis_up(r), 1);
    ck_assert_int_eq(fake_logs_containing("unreachable"), 1);
    outages_seen = 1;

    /* 5/s with a burst of 5; the bucket may go below zero */
    struct throttle_params p = {.count = 5, .period_s = 1, .burst = 5};
    charge(r, &p, 1);
    ck_assert_int_eq(last_charge.ok, 1);
    ck_assert_int_eq(last_charge.tokens, 4);
    ck_assert_int_eq(last_charge.wait_us, 0);
    charge(r, &p, 4);
    ck_assert_int_eq(last_charge.tokens, 0);
    ck_assert_int_ge(last_charge.wait_us, 150000); /* about 200 ms, less what refilled since */
    ck_assert_int_le(last_charge.wait_us, 200000);
    charge(r, &p, 2);
    ck_assert_int_eq(last_charge.tokens, -2);
    ck_assert_int_ge(last_charge.wait_us, 500000); /* 3 tokens away: about 600 ms */
    ck_assert_int_le(last_charge.wait_us, 600000);

    /* losing the server: the charge fails, logged once */
    redis_stop();
    memset(&last_charge, 0, sizeof(last_charge));
    if (throttle_redis_charge(r, "t:vip1:domain:a.test", &p, 1, &last_charge) == 0) {
        ck_assert_int_eq(loop_until(charge_back, 3000), 1);
        ck_assert_int_eq(last_charge.ok, 0);
    }
    ck_assert_int_eq(loop_until(outage_logged, 3000), 1);
    ck_assert_int_eq(throttle_redis_up(r), 0);
    ck_assert_int_eq(fake_logs_containing("unreachable"), 2);
    ck_assert_int_eq(fake_logs_containing("reachable again"), 1);
    throttle_redis_free(r);
    stop_module();
    event_base_free(fake_event_base);
    fake_event_base = NULL;
}
END_TEST

START_TEST(test_redis_shared_budget)
{
    int fd, port = closed_port(&fd);
    close(fd);
    throttle_clock_set(NULL);
    if (redis_start(port) != 0) {
        fprintf(stderr, "check_mod_throttle: no redis-server to test against\n");
        redis_stop();
        return;
    }
    fake_event_base = event_base_new();
    /* another node has used up the shared bucket of (vip1, a.test) */
    struct throttle_redis_opts o = {.host = "127.0.0.1", .port = port, .key_prefix = "u:",
                                    .timeout_ms = 1000};
    vipmta_module_ctx *other_mod = fake_module("{}");
    struct throttle_redis *other = throttle_redis_new(other_mod, &o, 0, charge_done, NULL);
    struct throttle_params p = {.count = 5, .period_s = 1, .burst = 5};
    memset(&last_charge, 0, sizeof(last_charge));
    ck_assert_int_eq(throttle_redis_charge(other, "u:vip1:domain:a.test", &p, 5, &last_charge), 0);
    ck_assert_int_eq(loop_until(charge_back, 3000), 1);
    ck_assert_int_eq(last_charge.tokens, 0);

    char options[512];
    snprintf(options, sizeof(options),
             "{\"backend\": \"redis\", \"redis\": {\"port\": %d, \"key_prefix\": \"u:\","
             " \"timeout_ms\": 1000}, \"limits\": [{\"binding\": \"vip1\", \"rate\": \"5/s\"}]}",
             port);
    ck_assert_int_eq(start_module(options), 0);
    fake_nlogs = 0;
    /* this node does not know yet: one connection on credit, then it waits for Redis */
    ck_assert_int_eq(call_hook("a.test", 1, "192.0.2.1", 1), 0);
    ck_assert_int_eq(call_hook("a.test", 1, "192.0.2.1", 1), VETO_SHARED);
    ck_assert_str_eq(fake_logs[0], "binding \"vip1\" domain a.test: shared budget 5/s (burst 5): "
                              "waiting for redis to confirm 1 connection(s); connection vetoed "
                              "(mail deferred)");
    /* Redis answers: the bucket is in debt (-1), nothing for about 400 ms */
    loop_until(never, 100);
    ck_assert_int_eq(call_hook("a.test", 1, "192.0.2.1", 1), VETO_SHARED);
    ck_assert_int_eq(call_hook("a.test", 1, "192.0.2.1", 1), VETO_SHARED);
    /* other keys are not affected */
    ck_assert_int_eq(call_hook("b.test", 1, "192.0.2.1", 1), 0);
    loop_until(never, 700);
    ck_assert_int_eq(call_hook("a.test", 1, "192.0.2.1", 1), 0);
    ck_assert_int_eq(fake_logs_containing("unreachable"), 0);
    stop_module();
    throttle_redis_free(other);
    fake_stop(other_mod);
    redis_stop();
    event_base_free(fake_event_base);
    fake_event_base = NULL;
}
END_TEST

static Suite *throttle_suite(void)
{
    Suite *s = suite_create("mod_throttle");
    fake_tcase(s, "options", setup, teardown, test_rate_parse, test_parse_defaults,
               test_parse_errors_all_reported, test_parse_errors_top_level,
               test_parse_shadowed_limits, test_config_match, NULL);
    fake_tcase(s, "buckets", setup, teardown, test_bucket_math, test_bucket_rescale,
               test_table_keys, test_table_eviction, test_table_never_evicts_most_recent, NULL);
    fake_tcase(s, "module", setup, teardown, test_module_local_rate, test_module_per_ip_and_domain,
               test_module_concurrency, test_module_init_unknown_binding, test_module_reload,
               NULL);
    TCase *redis = fake_tcase(s, "redis", setup, teardown, test_redis_down_allow,
                              test_redis_down_deny, test_redis_silent_server,
                              test_redis_script_and_recovery, test_redis_shared_budget, NULL);
    tcase_set_timeout(redis, 30);
    return s;
}

int main(void)
{
    return fake_run(throttle_suite());
}
