/* check_plugin_hooks.c: Check suite for the hook machinery: the connection_post_bind chain, hooks declared with EC_DECLARE_HOOK, and the rules of registration. */
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "plugin/plugin_hooks.h"
#include "plugin/plugin_internal.h"
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
/* Instances that register (only their label matters here). */
static struct vipmta_module_ctx alpha = {.label = "alpha"}, beta = {.label = "beta"};

static int call(void)
{
    trace[0] = '\0';
    return call_core_connection_post_bind_hook(&dr, 3, 42, (struct sockaddr *)&dst, sizeof(dst));
}

static void setup(void)
{
    plugin_hooks_reset_all();
    plugin_hooks_begin_init(&alpha); /* most tests register as alpha's init */
    trace[0] = '\0';
}

static void teardown(void)
{
    plugin_hooks_end_init();
    plugin_hooks_reset_all();
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
    register_core_connection_post_bind_hook_last(probe_hook, &a);
    plugin_hooks_begin_init(&beta);
    register_core_connection_post_bind_hook_last(probe_hook, &b);
    plugin_hooks_end_init();
    ck_assert_int_eq(call(), 5);
    ck_assert_str_eq(plugin_hooks_last_stop_owner(&plugin_hook_core_connection_post_bind), "beta");
    ck_assert_str_eq(plugin_hooks_owner(&plugin_hook_core_connection_post_bind, 0), "alpha");
    ck_assert_str_eq(plugin_hooks_owner(&plugin_hook_core_connection_post_bind, 9), "unknown");
    /* an instance that goes takes its providers along */
    plugin_hooks_remove_owner(&beta);
    ck_assert_int_eq(call(), 0);
    ck_assert_str_eq(trace, "a");
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
    ck_assert_int_eq(plugin_hook_core_connection_post_bind.count, 40);
    /* the trace buffer holds 63 tags: 40 fit */
    ck_assert_int_eq(call(), 0);
    ck_assert_int_eq((int)strlen(trace), 40);
}
END_TEST

/* ---- the rules of registration ---- */

START_TEST(test_refused_outside_init)
{
    static struct probe a = {'a', 0};
    plugin_hooks_end_init();
    register_core_connection_post_bind_hook_last(probe_hook, &a);
    ck_assert_int_eq(has_core_connection_post_bind_hook(), 0);
}
END_TEST

START_TEST(test_same_provider_kept_once)
{
    static struct probe a = {'a', 0}, b = {'b', 0};
    register_core_connection_post_bind_hook_last(probe_hook, &a);
    register_core_connection_post_bind_hook_last(probe_hook, &a); /* again: kept once */
    register_core_connection_post_bind_hook_first(probe_hook, &a);
    register_core_connection_post_bind_hook_last(probe_hook, &b); /* another closure: added */
    ck_assert_int_eq(call(), 0);
    ck_assert_str_eq(trace, "ab");
}
END_TEST

/* A provider that tries to register while the chain runs. */
static int greedy_hook(void *closure, domain_record *d, int slot, int fd, struct sockaddr *addr,
                       int len)
{
    register_core_connection_post_bind_hook_last(probe_hook, closure);
    return probe_hook(closure, d, slot, fd, addr, len);
}

START_TEST(test_refused_during_dispatch)
{
    static struct probe g = {'g', 0};
    register_core_connection_post_bind_hook_last(greedy_hook, &g);
    /* even inside an init window: never while a hook runs */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(call(), 0);
    ck_assert_str_eq(trace, "g");
    ck_assert_int_eq(plugin_hook_core_connection_post_bind.count, 1);
    ck_assert_int_eq(plugin_hooks_dispatching(), 0);
}
END_TEST

START_TEST(test_generations)
{
    static struct probe a = {'a', 0}, b = {'b', 0};
    static int gen1, gen2;
    plugin_hooks_begin_generation(&alpha, &gen1);
    register_core_connection_post_bind_hook_last(probe_hook, &a);
    plugin_hooks_begin_generation(&alpha, &gen2);
    register_core_connection_post_bind_hook_last(probe_hook, &b);
    plugin_hooks_remove_generation(&alpha, &gen1); /* the old generation ends */
    ck_assert_int_eq(call(), 0);
    ck_assert_str_eq(trace, "b");
}
END_TEST

/* ---- a hook declared by a module for other modules ---- */

struct tally {
    int sum;
};

EC_DECLARE_HOOK(testmod, int, add, (void *, struct tally *, int), (struct tally *t, int n),
                (EC_HOOK_CLOSURE, t, n), if (EC_HOOK_RETVAL < 0) EC_HOOK_RETURN(EC_HOOK_RETVAL))
EC_DECLARE_VOID_HOOK(testmod, note, (void *, int), (int n), (EC_HOOK_CLOSURE, n))
EC_DECLARE_HOOK_NOARGS(testmod, void *, get_closure, EC_HOOK_RETURN(EC_HOOK_RETVAL))

static int add_provider(void *closure, struct tally *t, int n)
{
    t->sum += n * *(int *)closure;
    return *(int *)closure;
}

static int noted;

static void note_provider(void *closure, int n)
{
    noted += n + *(int *)closure;
}

static void *closure_provider(void *closure)
{
    return closure;
}

START_TEST(test_declared_hooks)
{
    static int one = 1, ten = 10, minus = -1;
    struct tally t = {0};
    ck_assert_int_eq(has_testmod_add_hook(), 0);
    ck_assert_int_eq(call_testmod_add_hook(&t, 5), 0); /* no providers: 0 */
    register_testmod_add_hook_last(add_provider, &one);
    register_testmod_add_hook_last(add_provider, &ten);
    ck_assert_int_ne(has_testmod_add_hook(), 0);
    ck_assert_int_eq(call_testmod_add_hook(&t, 2), 10); /* the last provider's value */
    ck_assert_int_eq(t.sum, 22);
    register_testmod_add_hook_first(add_provider, &minus);
    t.sum = 0;
    ck_assert_int_eq(call_testmod_add_hook(&t, 2), -1); /* EC_HOOK_RETURN stopped it */
    ck_assert_int_eq(t.sum, -2);

    register_testmod_note_hook_last(note_provider, &one);
    register_testmod_note_hook_last(note_provider, &ten);
    noted = 0;
    call_testmod_note_hook(3);
    ck_assert_int_eq(noted, 17);

    ck_assert_ptr_null(call_testmod_get_closure_hook());
    register_testmod_get_closure_hook_last(closure_provider, &ten);
    ck_assert_ptr_eq(call_testmod_get_closure_hook(), &ten);

    /* the same name from another declaration with other arguments is refused */
    ck_assert_ptr_nonnull(vipmta_hook_lookup("testmod_add", "(void *, struct tally *, int)"));
    ck_assert_ptr_null(vipmta_hook_lookup("testmod_add", "(void *, int)"));
    /* the core's hooks are found by name too */
    ck_assert_ptr_eq(vipmta_hook_lookup("core_connection_post_bind", NULL),
                     &plugin_hook_core_connection_post_bind);
}
END_TEST

static Suite *hooks_suite(void)
{
    Suite *s = suite_create("hooks");
    TCase *tc = tcase_create("connection_post_bind");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_no_providers);
    tcase_add_test(tc, test_has_after_register);
    tcase_add_test(tc, test_order_first_last_mix);
    tcase_add_test(tc, test_arguments_and_closure_passed);
    tcase_add_test(tc, test_short_circuit_returns_first_nonzero);
    tcase_add_test(tc, test_negative_return_also_stops);
    tcase_add_test(tc, test_owner_attribution);
    tcase_add_test(tc, test_many_hooks_grow);
    suite_add_tcase(s, tc);

    tc = tcase_create("rules");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_refused_outside_init);
    tcase_add_test(tc, test_same_provider_kept_once);
    tcase_add_test(tc, test_refused_during_dispatch);
    tcase_add_test(tc, test_generations);
    suite_add_tcase(s, tc);

    tc = tcase_create("declared");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_declared_hooks);
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
