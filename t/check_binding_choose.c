/* check_binding_choose.c: Check suite for the binding of a group for one message: binding_group_choose_binding's dispatch rules (first slot wins, refusals), the exclusion after a veto, the fallback, the core's choice. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "binding/binding_choose.h"
#include "binding/binding_table.h"
#include "config/config.h"
#include "config/config_errors.h"
#include "plugin/plugin_hooks.h"
#include "plugin/plugin_internal.h"
#include "plugin/plugin_message.h"

/* vip1, vip2 in "pool"; vip3 outside it (slots 1, 2, 3). */
static const char config_text[] =
    "{\"bindings\": {\"vip1\": {\"address\": \"127.0.0.2\"}, \"vip2\": {\"address\": "
    "\"127.0.0.3\"}, \"vip3\": {\"address\": \"127.0.0.4\"}},"
    " \"binding_groups\": {\"pool\": [\"vip1\", \"vip2\"]}, \"spool_dir\": \".\"}";

static struct vipmta_config *cfg;
static struct vipmta_module_ctx test_module = {.label = "picker"};
static ec_message msg;

static void setup(void)
{
    struct config_errors errs = {0};
    plugin_hooks_reset_all();
    cfg = config_load_string(config_text, "check_binding_choose.json", &errs);
    if (!cfg)
        config_errors_print(&errs, stderr, "config: ");
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(binding_table_build(cfg, &errs), 0);
    config_errors_clear(&errs);
    plugin_message_init_queued(&msg, "0123456789abcdef", "a@src.test", "b@dst.test", 1, "pool",
                               100, NULL, 0);
}

static void teardown(void)
{
    plugin_message_release(&msg);
    plugin_hooks_reset_all();
    binding_table_free();
    config_release(cfg);
    cfg = NULL;
}

/* The providers: each returns its closure's slot, counts its calls and
 * records what the message said while it ran. */
struct pick {
    ec_binding_slot slot;
    int calls;
    ec_binding_slot excluded;  /* vipmta_message_excluded_binding during the call */
    int set_result, set_errno; /* vipmta_message_set_binding during the call */
    char group[32];
};

static int picker(void *closure, ec_message *m, const char *group)
{
    struct pick *p = closure;
    p->calls++;
    p->excluded = vipmta_message_excluded_binding(m);
    errno = 0;
    p->set_result = vipmta_message_set_binding(m, 2);
    p->set_errno = errno;
    snprintf(p->group, sizeof(p->group), "%s", group);
    return p->slot;
}

static int picker2(void *closure, ec_message *m, const char *group)
{
    return picker(closure, m, group);
}

static int picker3(void *closure, ec_message *m, const char *group)
{
    return picker(closure, m, group);
}

static void providers(struct pick *a, struct pick *b, struct pick *c)
{
    plugin_hooks_begin_init(&test_module);
    if (a)
        register_core_binding_group_choose_binding_hook_last(picker, a);
    if (b)
        register_core_binding_group_choose_binding_hook_last(picker2, b);
    if (c)
        register_core_binding_group_choose_binding_hook_last(picker3, c);
    plugin_hooks_end_init();
}

/* No provider: the core's round-robin over the group, both members; the
 * excluded one never; a fallback wins over the core. */
START_TEST(test_core_choice)
{
    int seen[4] = {0};
    for (int i = 0; i < 20; i++) {
        ec_binding_slot s = binding_choose(&msg, "pool", EC_BINDING_SLOT_UNBOUND,
                                           EC_BINDING_SLOT_UNBOUND);
        ck_assert_msg(s == 1 || s == 2, "slot %d", s);
        seen[s]++;
    }
    ck_assert_int_gt(seen[1], 0);
    ck_assert_int_gt(seen[2], 0);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(binding_choose(&msg, "pool", 1, EC_BINDING_SLOT_UNBOUND), 2);
    ck_assert_int_eq(binding_choose(&msg, "pool", EC_BINDING_SLOT_UNBOUND, 1), 1);
    /* the group has no other binding: none */
    ck_assert_int_eq(binding_choose(&msg, "nosuchgroup", EC_BINDING_SLOT_UNBOUND,
                                    EC_BINDING_SLOT_UNBOUND),
                     EC_BINDING_SLOT_UNBOUND);
}
END_TEST

/* The first slot other than UNBOUND wins; the providers after it are not
 * called; each saw the group and the exclusion, and could not set the
 * binding themselves. */
START_TEST(test_first_slot_wins)
{
    struct pick a = {.slot = EC_BINDING_SLOT_UNBOUND}, b = {.slot = 2}, c = {.slot = 1};
    providers(&a, &b, &c);
    ck_assert_int_eq(binding_choose(&msg, "pool", EC_BINDING_SLOT_UNBOUND, 1), 2);
    ck_assert_int_eq(a.calls, 1);
    ck_assert_int_eq(b.calls, 1);
    ck_assert_int_eq(c.calls, 0);
    ck_assert_str_eq(a.group, "pool");
    ck_assert_int_eq(a.excluded, EC_BINDING_SLOT_UNBOUND);
    ck_assert_int_eq(a.set_result, -1);
    ck_assert_int_eq(a.set_errno, EPERM);
    /* after the chain the message is as before */
    ck_assert_int_eq(vipmta_message_excluded_binding(&msg), EC_BINDING_SLOT_UNBOUND);
    ck_assert_int_eq(vipmta_message_binding(&msg), 1);
}
END_TEST

/* Every provider declines: the caller's fallback, else the core. */
START_TEST(test_all_decline)
{
    struct pick a = {.slot = EC_BINDING_SLOT_UNBOUND}, b = {.slot = EC_BINDING_SLOT_UNBOUND};
    providers(&a, &b, NULL);
    ck_assert_int_eq(binding_choose(&msg, "pool", EC_BINDING_SLOT_UNBOUND, 2), 2);
    ck_assert_int_eq(binding_choose(&msg, "pool", 2, EC_BINDING_SLOT_UNBOUND), 1);
    ck_assert_int_eq(a.calls, 2);
    ck_assert_int_eq(b.calls, 2);
    ck_assert_int_eq(a.excluded, 2);
}
END_TEST

/* A slot outside the group, an unknown one, or the excluded one is refused:
 * the core decides (the next providers are not asked). */
START_TEST(test_refusals)
{
    struct pick a = {.slot = 3}, b = {.slot = 1};
    providers(&a, &b, NULL);
    for (int i = 0; i < 6; i++) {
        ec_binding_slot s = binding_choose(&msg, "pool", EC_BINDING_SLOT_UNBOUND,
                                           EC_BINDING_SLOT_UNBOUND);
        ck_assert_msg(s == 1 || s == 2, "slot %d", s);
    }
    ck_assert_int_eq(b.calls, 0);
    a.slot = 42;
    ck_assert_int_eq(binding_choose(&msg, "pool", 1, EC_BINDING_SLOT_UNBOUND), 2);
    a.slot = 1; /* the binding the message must leave */
    ck_assert_int_eq(binding_choose(&msg, "pool", 1, EC_BINDING_SLOT_UNBOUND), 2);
    ck_assert_int_eq(a.excluded, 1);
    a.slot = 2; /* a member, usable, not excluded: taken */
    ck_assert_int_eq(binding_choose(&msg, "pool", 1, EC_BINDING_SLOT_UNBOUND), 2);
    ck_assert_int_eq(binding_choose(&msg, "pool", EC_BINDING_SLOT_UNBOUND, 1), 2);
}
END_TEST

static Suite *binding_choose_suite(void)
{
    Suite *s = suite_create("binding_choose");
    TCase *tc = tcase_create("dispatch");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_core_choice);
    tcase_add_test(tc, test_first_slot_wins);
    tcase_add_test(tc, test_all_decline);
    tcase_add_test(tc, test_refusals);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(binding_choose_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
