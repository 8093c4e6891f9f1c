/* check_plugin_options.c: Check suite for the module kit's option API: values, checked readers and their messages, paths, scopes, kept options, a module's debug_level. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "fakecore.h"
#include "plugin/plugin_internal.h"

/* The fake core makes instances of "the module under test": this one. */
static const vipmta_module_descriptor kit_descriptor = {
    VIPMTA_MODULE_HEADER("kit", "1.0", "the module kit's own test"),
    .scopes = VIPMTA_SCOPES_ALL,
};
VIPMTA_MODULE_EXPORT(kit_descriptor)

static vipmta_module_ctx *m;

static void setup(void)
{
    fake_reset();
    m = fake_module("{\"options\": {\"n\": 7, \"r\": 1.5, \"t\": true, \"s\": \"text\","
                    " \"e\": \"\", \"nul\": \"a\\u0000b\", \"z\": null, \"a\": [1, \"x\"],"
                    " \"o\": {\"k\": 1, \"j\": 2}, \"c\": \"ip\"}}");
}

static void teardown(void)
{
    fake_stop(m);
}

static const vipmta_value *opts(void)
{
    return (const vipmta_value *)m->entry.options;
}

START_TEST(test_values)
{
    const vipmta_value *o = opts();
    ck_assert_int_eq(vipmta_value_type(o), VIPMTA_VALUE_OBJECT);
    ck_assert_int_eq(vipmta_value_type(NULL), VIPMTA_VALUE_ABSENT);
    ck_assert_str_eq(vipmta_value_describe(NULL), "nothing");
    static const struct {
        const char *key;
        enum vipmta_value_type type;
        const char *words;
    } kinds[] = {{"n", VIPMTA_VALUE_INTEGER, "an integer"}, {"r", VIPMTA_VALUE_REAL, "a real number"},
                 {"t", VIPMTA_VALUE_BOOL, "true"},       {"s", VIPMTA_VALUE_STRING, "a string"},
                 {"z", VIPMTA_VALUE_NULL, "null"},        {"a", VIPMTA_VALUE_ARRAY, "an array"},
                 {"o", VIPMTA_VALUE_OBJECT, "an object"}};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        const vipmta_value *v = vipmta_value_get(o, kinds[i].key);
        ck_assert_int_eq(vipmta_value_type(v), kinds[i].type);
        ck_assert_str_eq(vipmta_value_describe(v), kinds[i].words);
    }
    ck_assert_int_eq(vipmta_value_integer(vipmta_value_get(o, "n")), 7);
    ck_assert(vipmta_value_real(vipmta_value_get(o, "r")) == 1.5);
    ck_assert(vipmta_value_real(vipmta_value_get(o, "n")) == 7.0); /* integers read as reals */
    ck_assert_int_eq(vipmta_value_bool(vipmta_value_get(o, "t")), 1);
    ck_assert_str_eq(vipmta_value_string(vipmta_value_get(o, "s")), "text");
    ck_assert_uint_eq(vipmta_value_string_length(vipmta_value_get(o, "nul")), 3);
    /* the wrong type gives nothing */
    ck_assert_ptr_null(vipmta_value_string(vipmta_value_get(o, "n")));
    ck_assert_int_eq(vipmta_value_integer(vipmta_value_get(o, "s")), 0);
    ck_assert_ptr_null(vipmta_value_get(vipmta_value_get(o, "a"), "k"));
    /* arrays and objects */
    const vipmta_value *a = vipmta_value_get(o, "a");
    ck_assert_uint_eq(vipmta_value_size(a), 2);
    ck_assert_str_eq(vipmta_value_string(vipmta_value_at(a, 1)), "x");
    ck_assert_ptr_null(vipmta_value_at(a, 2));
    void *it = NULL;
    const char *key, *keys = "kj";
    const vipmta_value *v;
    int n = 0;
    while (vipmta_value_next(vipmta_value_get(o, "o"), &it, &key, &v)) { /* config order */
        ck_assert_int_eq(key[0], keys[n]);
        ck_assert_int_eq(vipmta_value_integer(v), n + 1);
        n++;
    }
    ck_assert_int_eq(n, 2);
    ck_assert_uint_eq(vipmta_value_size(vipmta_value_get(o, "n")), 0);
}
END_TEST

START_TEST(test_paths)
{
    char buf[VIPMTA_OPTION_PATH_MAX], tiny[8];
    ck_assert_str_eq(vipmta_option_path(buf, sizeof(buf), NULL, "tos"), "tos");
    ck_assert_str_eq(vipmta_option_path(buf, sizeof(buf), "", "tos"), "tos");
    ck_assert_str_eq(vipmta_option_path(buf, sizeof(buf), "keepalive", "idle"), "keepalive.idle");
    ck_assert_str_eq(vipmta_option_path_index(buf, sizeof(buf), "rules", 2), "rules[2]");
    ck_assert_str_eq(vipmta_option_path(tiny, sizeof(tiny), "abcdef", "gh"), "abcdef.");
}
END_TEST

START_TEST(test_readers)
{
    const vipmta_value *o = opts();
    long long x = -1;
    int b = -1, which = -1;
    const char *s = NULL;
    static const char *const two[] = {"domain", "ip", NULL};
    static const char *const three[] = {"a", "b", "c", NULL};

    ck_assert_int_eq(vipmta_option_int(m, o, NULL, "missing", 0, 9, &x), 0);
    ck_assert_int_eq(x, -1); /* absent: untouched */
    ck_assert_int_eq(vipmta_option_int(m, o, NULL, "n", 0, 9, &x), 1);
    ck_assert_int_eq(x, 7);
    ck_assert_int_eq(vipmta_option_int(m, o, NULL, "n", 8, 9, &x), -1);
    ck_assert_int_eq(vipmta_option_int(m, o, "deep", "r", 0, 9, &x), -1);
    ck_assert_int_eq(vipmta_option_bool(m, o, NULL, "t", &b), 1);
    ck_assert_int_eq(b, 1);
    ck_assert_int_eq(vipmta_option_bool(m, o, NULL, "n", &b), -1);
    ck_assert_int_eq(vipmta_option_string(m, o, NULL, "s", "a word", &s), 1);
    ck_assert_str_eq(s, "text");
    ck_assert_int_eq(vipmta_option_string(m, o, NULL, "e", "a word", &s), -1);
    ck_assert_int_eq(vipmta_option_string(m, o, NULL, "nul", "a word", &s), -1);
    ck_assert_int_eq(vipmta_option_string(m, o, NULL, "a", "a word", &s), -1);
    ck_assert_int_eq(vipmta_option_choice(m, o, NULL, "c", two, &which), 1);
    ck_assert_int_eq(which, 1);
    ck_assert_int_eq(vipmta_option_choice(m, o, NULL, "s", three, &which), -1);
    ck_assert_int_eq(vipmta_option_choice(m, o, NULL, "n", two, &which), -1);
    /* key NULL: the value itself, at its path */
    ck_assert_int_eq(vipmta_option_int(m, vipmta_value_get(o, "n"), "n", NULL, 0, 5, &x), -1);
    ck_assert_int_eq(vipmta_option_object(m, vipmta_value_get(o, "o"), "o", NULL), 0);
    ck_assert_int_eq(vipmta_option_object(m, vipmta_value_get(o, "a"), "a", "a map"), -1);
    ck_assert_int_eq(vipmta_option_array(m, vipmta_value_get(o, "o"), "o", NULL), -1);
    static const char *const allowed[] = {"n", "r", NULL};
    ck_assert_int_eq(vipmta_module_check_keys(m, vipmta_value_get(o, "o"), "o", allowed), 2);
    ck_assert_int_eq(vipmta_module_check_keys(m, vipmta_value_get(o, "n"), "n", allowed), 1);
    fake_stop(m);
    m = NULL;
    static const char *const errors[] = {
        "options.n: must be an integer from 8 to 9, not 7",
        "options.deep.r: must be an integer from 0 to 9, not a real number",
        "options.n: must be true or false, not an integer",
        "options.e: must be a word, not an empty string",
        "options.nul: must not contain a NUL character",
        "options.a: must be a word, not an array",
        "options.s: must be \"a\", \"b\" or \"c\", not \"text\"",
        "options.n: must be \"domain\" or \"ip\", not an integer",
        "options.n: must be an integer from 0 to 5, not 7",
        "options.a: must be a map, not an array",
        "options.o: must be an array, not an object",
        "options.o: unknown key \"k\" (allowed: n, r)",
        "options.o: unknown key \"j\" (allowed: n, r)",
        "options.n: must be an object, not an integer",
    };
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
        ck_assert_error(errors[i]);
    ck_assert_int_eq(fake_nerrors, (int)(sizeof(errors) / sizeof(errors[0])));
    m = fake_module("{}"); /* for the teardown */
}
END_TEST

/* ---- scopes ---- */

static char visits[512];

static int visit(vipmta_module_ctx *mod, const vipmta_scope *s, void *arg)
{
    size_t n = strlen(visits);
    snprintf(visits + n, sizeof(visits) - n, "%d:%d:%s:%s;", (int)s->kind, s->slot,
             s->binding ? s->binding : "-", s->domain ? s->domain : "-");
    vipmta_module_error(mod, "x", "seen");
    return arg ? *(int *)arg : 0;
}

START_TEST(test_scopes)
{
    fake_stop(m);
    m = fake_module("{\"options\": {}, \"bindings\": {\"vip2\": {}, \"vip1\": {}},"
                    " \"domains\": {\"Example.COM\": {}},"
                    " \"binding_domains\": {\"vip1\": {\"a.test\": {}, \"B.test\": {}}}}");
    visits[0] = '\0';
    ck_assert_int_eq(vipmta_module_foreach_scope(m, visit, NULL), 0);
    ck_assert_str_eq(visits, "0:-1:-:-;1:2:vip2:-;1:1:vip1:-;2:-1:-:example.com;"
                             "3:1:vip1:a.test;3:1:vip1:b.test;");
    fake_stop(m);
    m = NULL;
    static const char *const where[] = {
        "options.x: seen", "bindings.vip2.x: seen", "bindings.vip1.x: seen",
        "domains.Example.COM.x: seen", "binding_domains.vip1.a.test.x: seen",
        "binding_domains.vip1.B.test.x: seen"};
    for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++)
        ck_assert_error(where[i]);
    /* results add up; -1 stops the walk */
    static int one = 1, stop = -1;
    m = fake_module("{\"bindings\": {\"vip1\": {}}, \"domains\": {\"a.test\": {}}}");
    ck_assert_int_eq(vipmta_module_foreach_scope(m, visit, &one), 3);
    visits[0] = '\0';
    ck_assert_int_eq(vipmta_module_foreach_scope(m, visit, &stop), -1);
    ck_assert_str_eq(visits, "0:-1:-:-;");
    /* after the walk, errors point at the options again */
    fake_nerrors = 0;
    vipmta_module_error(m, "y", "after");
    fake_stop(m);
    m = fake_module("{}");
    ck_assert_error("options.y: after");
}
END_TEST

/* ---- kept options ---- */

static int freed;

static void count_free(void *p)
{
    freed++;
    free(p);
}

START_TEST(test_keep_config)
{
    ck_assert_ptr_null(vipmta_module_config(m));
    int *a = malloc(sizeof(int)), *b = malloc(sizeof(int));
    ck_assert_int_eq(vipmta_module_keep_config(m, a, count_free), 0);
    ck_assert_ptr_eq(vipmta_module_config(m), a);
    ck_assert_int_eq(vipmta_module_keep_config(m, NULL, count_free), -1); /* a parse failed */
    ck_assert_ptr_eq(vipmta_module_config(m), a);
    ck_assert_int_eq(freed, 0);
    ck_assert_int_eq(vipmta_module_keep_config(m, b, count_free), 0);
    ck_assert_ptr_eq(vipmta_module_config(m), b);
    ck_assert_int_eq(freed, 1);
    fake_stop(m); /* the core frees the last one */
    ck_assert_int_eq(freed, 2);
    m = fake_module("{}");
}
END_TEST

/* ---- debug_level ---- */

START_TEST(test_debug_level)
{
    fake_log_level = VIPMTA_LOG_INFO;
    ck_assert_int_eq(vipmta_module_log_enabled(m, VIPMTA_LOG_DEBUG), 0); /* the log's level */
    vipmta_module_log(m, VIPMTA_LOG_DEBUG, "hidden");
    m->debug_level = 0; /* "debug": its own lines, whatever the log's level */
    ck_assert_int_eq(vipmta_module_log_enabled(m, VIPMTA_LOG_DEBUG), 1);
    vipmta_module_log(m, VIPMTA_LOG_DEBUG, "shown");
    m->debug_level = 4; /* "error" */
    ck_assert_int_eq(vipmta_module_log_enabled(m, VIPMTA_LOG_WARNING), 0);
    vipmta_module_log(m, VIPMTA_LOG_WARNING, "hidden too");
    vipmta_module_log(m, VIPMTA_LOG_ERROR, "an error");
    ck_assert_int_eq(fake_nlogs, 2);
    ck_assert_str_eq(fake_logs[0], "shown");
    ck_assert_str_eq(fake_logs[1], "an error");
}
END_TEST

static Suite *options_suite(void)
{
    Suite *s = suite_create("plugin_options");
    fake_tcase(s, "values", setup, teardown, test_values, test_paths, test_readers, NULL);
    fake_tcase(s, "scopes", setup, teardown, test_scopes, test_keep_config, NULL);
    fake_tcase(s, "log", setup, teardown, test_debug_level, NULL);
    return s;
}

int main(void)
{
    return fake_run(options_suite());
}
