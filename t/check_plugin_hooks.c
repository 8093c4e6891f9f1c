/* check_plugin_hooks.c: Check suite for the hook machinery and the connection_post_bind chain. */
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "plugin/plugin_hooks.h"
#include "hooks/core/connection_post_bind.h"

/* Each test hook appends its tag to this trace and returns what its closure says. */
static char trace[64];
static domain_record *seen_dr;
static int seen_slot, seen_fd, seen_len;
static struct sockaddr *seen_addr;

struct probe {
    char tag;
    int result;
};

static int probe_hook(void *closure, domain_record *dr, int binding_slot, int fd,
                      struct sockaddr *addr, int addr_len)
{
    struct probe *p = closure;
    size_t n = strlen(trace);
    trace[n] = p->tag;
    trace[n + 1] = '\0';
    seen_dr = dr;
    seen_slot = binding_slot;
    seen_fd = fd;
    seen_addr = addr;
    seen_len = addr_len;
    return p->result;
}

static struct sockaddr_in dst;
static domain_record dr = {.domain = "example.com"};

static int call(void)
{
    trace[0] = '\0';
    return call_core_connection_post_bind_hook(&dr, 3, 42, (struct sockaddr *)&dst, sizeof(dst));
}

static void setup(void)
{
    plugin_hooks_reset_all();
    trace[0] = '\0';
}

START_TEST(test_no_providers)
{
    ck_assert_int_eq(has_core_connection_post_bind_hook(), 0);
    ck_assert_int_eq(call(), 0);
    ck_assert_str_eq(trace, "");
}
END_TEST

START_TEST(test_has_after_register)
{
    static struct probe a = {'a', 0};
    ck_assert_int_eq(has_core_connection_post_bind_hook(), 0);
    register_core_connection_post_bind_hook_last(probe_hook, &a);
    ck_assert_int_ne(has_core_connection_post_bind_hook(), 0);
}
END_TEST

START_TEST(test_order_first_last_mix)
{
    static struct probe a = {'a', 0}, b = {'b', 0}, c = {'c', 0}, d = {'d', 0}, e = {'e', 0};
    register_core_connection_post_bind_hook_last(probe_hook, &a);  /* a */
    register_core_connection_post_bind_hook_first(probe_hook, &b); /* b a */
    register_core_connection_post_bind_hook_last(probe_hook, &c);  /* b a c */
    register_core_connection_post_bind_hook_first(probe_hook, &d); /* d b a c */
    register_core_connection_post_bind_hook_last(probe_hook, &e);  /* d b a c e */
    ck_assert_int_eq(call(), 0);
    ck_assert_str_eq(trace, "dbace");
}
END_TEST

START_TEST(test_arguments_and_closure_passed)
{
    static struct probe a = {'a', 0};
    register_core_connection_post_bind_hook_last(probe_hook, &a);
    call();
    ck_assert_ptr_eq(seen_dr, &dr);
    ck_assert_str_eq(seen_dr->domain, "example.com");
    ck_assert_int_eq(seen_slot, 3);
    ck_assert_int_eq(seen_fd, 42);
    ck_assert_ptr_eq(seen_addr, (struct sockaddr *)&dst);
    ck_assert_int_eq(seen_len, (int)sizeof(dst));
}
END_TEST

START_TEST(test_short_circuit_returns_first_nonzero)
{
    static struct probe a = {'a', 0}, b = {'b', 7}, c = {'c', 9};
    register_core_connection_post_bind_hook_last(probe_hook, &a);
    register_core_connection_post_bind_hook_last(probe_hook, &b);
    register_core_connection_post_bind_hook_last(probe_hook, &c);
    ck_assert_int_eq(call(), 7);
    ck_assert_str_eq(trace, "ab"); /* c never ran */
}
END_TEST

START_TEST(test_negative_return_also_stops)
{
    static struct probe a = {'a', -1}, b = {'b', 0};
    register_core_connection_post_bind_hook_last(probe_hook, &a);
    register_core_connection_post_bind_hook_last(probe_hook, &b);
    ck_assert_int_eq(call(), -1);
    ck_assert_str_eq(trace, "a");
}
END_TEST

START_TEST(test_owner_attribution)
{
    static struct probe a = {'a', 0}, b = {'b', 5};
    plugin_hooks_set_registering_module("alpha");
    register_core_connection_post_bind_hook_last(probe_hook, &a);
    plugin_hooks_set_registering_module("beta");
    register_core_connection_post_bind_hook_last(probe_hook, &b);
    plugin_hooks_set_registering_module(NULL);
    ck_assert_int_eq(call(), 5);
    ck_assert_str_eq(plugin_hooks_last_stop_owner(&vipmta_hook_chain_core_connection_post_bind), "beta");
    ck_assert_str_eq(plugin_hooks_owner(&vipmta_hook_chain_core_connection_post_bind, 0), "alpha");
    ck_assert_str_eq(plugin_hooks_owner(&vipmta_hook_chain_core_connection_post_bind, 9), "unknown");
}
END_TEST

START_TEST(test_many_hooks_grow)
{
    static struct probe p[40];
    for (int i = 0; i < 40; i++) {
        p[i].tag = (char)('0' + (i % 10));
        p[i].result = 0;
        register_core_connection_post_bind_hook_last(probe_hook, &p[i]);
    }
    ck_assert_int_eq(vipmta_hook_chain_core_connection_post_bind.count, 40);
    trace[0] = '\0';
    /* the trace buffer holds 63 tags: 40 fit */
    ck_assert_int_eq(call(), 0);
    ck_assert_int_eq((int)strlen(trace), 40);
}
END_TEST

static Suite *hooks_suite(void)
{
    Suite *s = suite_create("hooks");
    TCase *tc = tcase_create("connection_post_bind");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_no_providers);
    tcase_add_test(tc, test_has_after_register);
    tcase_add_test(tc, test_order_first_last_mix);
    tcase_add_test(tc, test_arguments_and_closure_passed);
    tcase_add_test(tc, test_short_circuit_returns_first_nonzero);
    tcase_add_test(tc, test_negative_return_also_stops);
    tcase_add_test(tc, test_owner_attribution);
    tcase_add_test(tc, test_many_hooks_grow);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(hooks_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
