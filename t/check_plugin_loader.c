/* check_plugin_loader.c: Check suite for the module loader: every check, its exact message, the lifecycle, -M. */
#include <arpa/inet.h>
#include <check.h>
#include <stddef.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "plugin/plugin_hooks.h"
#include "hooks/core/connection_post_bind.h"
#include "plugin/plugin_loader.h"
#include "plugin/plugin_reload.h"
#include "log/log.h"

#define MODDIR TEST_BUILDDIR "/modules"

static struct config_errors errs;
static struct vipmta_config *cfg;

/* Loads a config whose module_path is `path_json` and whose modules are `modules_json`. */
static struct vipmta_config *make_config(const char *path_json, const char *modules_json)
{
    char *text = NULL;
    struct config_errors cerrs = {0};

    ck_assert_int_ge(asprintf(&text, "{ \"module_path\": %s, \"modules\": %s }", path_json,
                              modules_json),
                     0);
    struct vipmta_config *c = config_load_string(text, "/etc/t/loader.json", &cerrs);
    if (!c)
        ck_abort_msg("config rejected: %s", cerrs.count ? cerrs.messages[0] : "?");
    config_errors_clear(&cerrs);
    free(text);
    return c;
}

/* Loads `modules_json` from the test modules' directory. */
static int load(const char *modules_json)
{
    cfg = make_config("[\"" MODDIR "\"]", modules_json);
    return plugin_loader_load(cfg, &errs);
}

static void teardown(void)
{
    plugin_loader_unload();
    config_release(cfg);
    cfg = NULL;
    config_errors_clear(&errs);
}

/* Asserts that one of the errors is exactly `expected`. */
static void expect_error(const char *expected)
{
    for (size_t i = 0; i < errs.count; i++)
        if (strcmp(errs.messages[i], expected) == 0)
            return;
    ck_abort_msg("expected error [%s], got %zu errors, first [%s]", expected, errs.count,
                 errs.count ? errs.messages[0] : "");
}

/* The real path of the shared object the build made for test module `name`. */
static char *built_so(const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/.libs/%s.so", MODDIR, name);
    char *real = realpath(path, NULL);
    ck_assert_msg(real != NULL, "%s is not built", path);
    return real;
}

/* Expected `modules[I] ("NAME"): FILE: TAIL` for the built module `file`. */
static void expect_module_error(int index, const char *name, const char *tail)
{
    char *file = built_so(name);
    char *msg = NULL;
    ck_assert_int_ge(asprintf(&msg, "modules[%d] (\"%s\"): %s: %s", index, name, file, tail), 0);
    expect_error(msg);
    free(msg);
    free(file);
}

START_TEST(test_good_loads_and_registers)
{
    ck_assert_int_eq(load("[{\"name\": \"good\"}]"), 0);
    ck_assert_uint_eq(errs.count, 0);
    ck_assert_uint_eq(plugin_loader_count(), 1);
    const vipmta_module_ctx *m = plugin_loader_get(0);
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_null(plugin_loader_get(1));
    ck_assert_str_eq(vipmta_module_name(m), "good");
    ck_assert_int_eq(vipmta_module_index(m), 0);
    ck_assert_str_eq(plugin_loader_descriptor(m)->version, "1.2.3");
    char *file = built_so("good");
    ck_assert_str_eq(plugin_loader_file(m), file);
    free(file);

    ck_assert_int_eq(has_core_connection_post_bind_hook(), 0);
    ck_assert_int_eq(plugin_loader_init(&errs), 0);
    ck_assert_int_ne(has_core_connection_post_bind_hook(), 0);
    ck_assert_int_eq(plugin_hook_core_connection_post_bind.count, 1);
    ck_assert_str_eq(plugin_hooks_owner(&plugin_hook_core_connection_post_bind, 0), "good");
    ck_assert_int_eq(call_core_connection_post_bind_hook(NULL, 0, -1, NULL, 0), 0);
}
END_TEST

START_TEST(test_good_veto_option)
{
    ck_assert_int_eq(load("[{\"name\": \"good\", \"options\": {\"veto\": true}}]"), 0);
    ck_assert_int_eq(plugin_loader_init(&errs), 0);
    ck_assert_int_eq(call_core_connection_post_bind_hook(NULL, 0, -1, NULL, 0), 1);
    ck_assert_str_eq(plugin_hooks_last_stop_owner(&plugin_hook_core_connection_post_bind), "good");
}
END_TEST

START_TEST(test_disabled_skipped_index_kept)
{
    ck_assert_int_eq(load("[{\"name\": \"nosuch\", \"enabled\": false}, {\"name\": \"good\"}]"), 0);
    ck_assert_uint_eq(plugin_loader_count(), 1);
    ck_assert_int_eq(vipmta_module_index(plugin_loader_get(0)), 1);
}
END_TEST

START_TEST(test_name_with_extension)
{
    ck_assert_int_eq(load("[{\"name\": \"good.la\"}]"), 0);
    ck_assert_uint_eq(plugin_loader_count(), 1);
    ck_assert_str_eq(vipmta_module_name(plugin_loader_get(0)), "good");
}
END_TEST

START_TEST(test_missing_lists_dirs)
{
    cfg = make_config("[\"" MODDIR "\", \"/nonexistent/vipmta-mods\"]",
                      "[{\"name\": \"good\"}, {\"name\": \"nosuch\"}]");
    ck_assert_int_eq(plugin_loader_load(cfg, &errs), -1);
    ck_assert_uint_eq(errs.count, 1);
    expect_error("modules[1] (\"nosuch\"): cannot open module: not found in " MODDIR
                 ", /nonexistent/vipmta-mods (last error: file not found)");
    /* the good one before it still loaded */
    ck_assert_uint_eq(plugin_loader_count(), 1);
}
END_TEST

START_TEST(test_path_as_name_refused)
{
    ck_assert_int_eq(load("[{\"name\": \"../modules/good\"}]"), -1);
    ck_assert_uint_eq(errs.count, 1);
    expect_error("modules[0] (\"../modules/good\"): cannot open module: expected a file name "
                 "without '/', found a path: put the module into a module_path directory and "
                 "list it by its name");
}
END_TEST

START_TEST(test_unloadable_file_shows_why)
{
    /* a file that is there but is no shared object: its error beats "file not found" */
    char tmpl[] = "/tmp/check_loader.XXXXXX";
    char *dir = mkdtemp(tmpl);
    ck_assert_ptr_nonnull(dir);
    char *file = NULL, *path = NULL;
    ck_assert_int_ge(asprintf(&file, "%s/junk.so", dir), 0);
    FILE *f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fputs("not an ELF file\n", f);
    fclose(f);
    chmod(file, 0644);
    ck_assert_int_ge(asprintf(&path, "[\"%s\", \"/nonexistent/vipmta-mods\"]", dir), 0);
    cfg = make_config(path, "[{\"name\": \"junk\"}]");
    ck_assert_int_eq(plugin_loader_load(cfg, &errs), -1);
    ck_assert_uint_eq(errs.count, 1);
    ck_assert_ptr_nonnull(strstr(errs.messages[0], "cannot open module: not loadable from "));
    ck_assert_ptr_null(strstr(errs.messages[0], "(last error: file not found)"));
    ck_assert_ptr_nonnull(strstr(errs.messages[0], "junk.so"));
    unlink(file);
    rmdir(dir);
    free(file);
    free(path);
}
END_TEST

START_TEST(test_no_descriptor)
{
    ck_assert_int_eq(load("[{\"name\": \"no_descriptor\"}]"), -1);
    ck_assert_uint_eq(errs.count, 1);
    expect_module_error(0, "no_descriptor",
                        "descriptor symbol: expected the function vipmta_module_get_descriptor "
                        "to be exported, found no such symbol: define it with "
                        "VIPMTA_MODULE_EXPORT(descriptor) (see docs/writing-modules.md), or "
                        "export a Momentum generic_module_infrastructure named "
                        "\"no_descriptor\"");
    ck_assert_uint_eq(plugin_loader_count(), 0);
}
END_TEST

START_TEST(test_bad_magic)
{
    ck_assert_int_eq(load("[{\"name\": \"bad_magic\"}]"), -1);
    ck_assert_uint_eq(errs.count, 1);
    expect_module_error(0, "bad_magic",
                        "magic: expected 0x564d4f44, found 0xdeadbeef: not a vipmta module "
                        "descriptor; build it with VIPMTA_MODULE_HEADER() from vipmta_module.h");
}
END_TEST

START_TEST(test_abi_major)
{
    ck_assert_int_eq(load("[{\"name\": \"abi_major\"}]"), -1);
    ck_assert_uint_eq(errs.count, 1);
    expect_module_error(0, "abi_major",
                        "ABI major: expected 2, found 3: rebuild the module against this "
                        "vipmta's headers (module ABI 2.0)");
}
END_TEST

START_TEST(test_newer_minor)
{
    ck_assert_int_eq(load("[{\"name\": \"newer_minor\"}]"), -1);
    ck_assert_uint_eq(errs.count, 1);
    expect_module_error(0, "newer_minor",
                        "ABI minor: expected at most 0, found 1: the module needs a newer "
                        "vipmta; upgrade vipmta or rebuild the module against this vipmta's "
                        "headers (module ABI 2.0)");
}
END_TEST

START_TEST(test_small_size)
{
    char *tail = NULL;
    ck_assert_int_eq(load("[{\"name\": \"small_size\"}]"), -1);
    ck_assert_uint_eq(errs.count, 1);
    ck_assert_int_ge(asprintf(&tail,
                              "descriptor size: expected at least %zu bytes, found 16: rebuild "
                              "the module against this vipmta's headers",
                              offsetof(vipmta_module_descriptor, scopes) + sizeof(unsigned)),
                     0);
    expect_module_error(0, "small_size", tail);
    free(tail);
}
END_TEST

START_TEST(test_duplicate_name)
{
    char *good = built_so("good");
    char *tail = NULL;
    ck_assert_int_eq(load("[{\"name\": \"good\"}, {\"name\": \"dup_name\"}]"), -1);
    ck_assert_uint_eq(errs.count, 1);
    ck_assert_int_ge(asprintf(&tail,
                              "module name: expected a name no other module has, found \"good\" "
                              "(already loaded as modules[0] from %s): give each module its own "
                              "name",
                              good),
                     0);
    expect_module_error(1, "dup_name", tail);
    ck_assert_uint_eq(plugin_loader_count(), 1);
    free(tail);
    free(good);
}
END_TEST

START_TEST(test_configure_error_path)
{
    /* a disabled entry first: the prefix is the position in the config's list */
    ck_assert_int_eq(load("[{\"name\": \"good\", \"enabled\": false}, "
                          "{\"name\": \"configure_fail\"}]"),
                     -1);
    ck_assert_uint_eq(errs.count, 1);
    expect_error("modules[1].options.tos: must be a DSCP name or 0-255, not \"fast\"");
}
END_TEST

START_TEST(test_configure_fails_silently)
{
    ck_assert_int_eq(load("[{\"name\": \"configure_fail\", \"options\": {\"silent\": true}}]"),
                     -1);
    ck_assert_uint_eq(errs.count, 1);
    expect_error("modules[0] (\"configure_fail\"): configure failed");
}
END_TEST

START_TEST(test_check_keys_and_types)
{
    ck_assert_int_eq(load("[{\"name\": \"good\", \"options\": {\"veto\": 3, \"bogus\": 1}}]"), -1);
    ck_assert_uint_eq(errs.count, 2);
    expect_error("modules[0].options: unknown key \"bogus\" (allowed: veto)");
    expect_error("modules[0].options.veto: must be true or false, not an integer");
}
END_TEST

START_TEST(test_init_failure)
{
    ck_assert_int_eq(load("[{\"name\": \"good\"}, {\"name\": \"init_fail\"}]"), 0);
    ck_assert_int_eq(plugin_loader_init(&errs), -1);
    ck_assert_uint_eq(errs.count, 2);
    expect_error("modules[1] (\"init_fail\"): init: cannot start: no such thing");
    expect_module_error(1, "init_fail", "init failed (returned -1)");
}
END_TEST

/* A private copy of the built good.so as DIR/NAME.so; returns DIR (mode 0700). */
static char *copy_good(const char *name, char **file)
{
    char tmpl[] = "/tmp/check_loader.XXXXXX";
    char *dir = mkdtemp(tmpl);
    ck_assert_ptr_nonnull(dir);
    dir = realpath(dir, NULL);
    char *src = built_so("good");
    ck_assert_int_ge(asprintf(file, "%s/%s.so", dir, name), 0);

    FILE *in = fopen(src, "rb");
    FILE *out = fopen(*file, "wb");
    ck_assert_ptr_nonnull(in);
    ck_assert_ptr_nonnull(out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
    fclose(in);
    fclose(out);
    free(src);
    ck_assert_int_eq(chmod(*file, 0644), 0);
    return dir;
}

static void remove_copy(char *dir, char *file)
{
    chmod(dir, 0700);
    unlink(file);
    rmdir(dir);
    free(file);
    free(dir);
}

static int load_from(const char *dir, const char *name)
{
    char *path = NULL, *mods = NULL;
    ck_assert_int_ge(asprintf(&path, "[\"%s\"]", dir), 0);
    ck_assert_int_ge(asprintf(&mods, "[{\"name\": \"%s\"}]", name), 0);
    cfg = make_config(path, mods);
    free(path);
    free(mods);
    return plugin_loader_load(cfg, &errs);
}

START_TEST(test_private_copy_loads)
{
    char *file = NULL;
    char *dir = copy_good("good", &file);
    ck_assert_int_eq(load_from(dir, "good"), 0);
    ck_assert_str_eq(plugin_loader_file(plugin_loader_get(0)), file);
    teardown();
    remove_copy(dir, file);
}
END_TEST

START_TEST(test_world_writable_file_refused)
{
    char *file = NULL, *msg = NULL;
    char *dir = copy_good("good", &file);
    ck_assert_int_eq(chmod(file, 0666), 0);
    ck_assert_int_eq(load_from(dir, "good"), -1);
    ck_assert_uint_eq(errs.count, 1);
    ck_assert_int_ge(asprintf(&msg,
                              "modules[0] (\"good\"): %s: permissions: expected a file not "
                              "writable by group or others, found mode 0666: refusing it; run "
                              "chmod go-w %s",
                              file, file),
                     0);
    expect_error(msg);
    ck_assert_uint_eq(plugin_loader_count(), 0);
    free(msg);
    teardown();
    remove_copy(dir, file);
}
END_TEST

START_TEST(test_writable_dir_refused)
{
    char *file = NULL, *msg = NULL;
    char *dir = copy_good("good", &file);
    ck_assert_int_eq(chmod(dir, 0777), 0);
    ck_assert_int_eq(load_from(dir, "good"), -1);
    ck_assert_uint_eq(errs.count, 1);
    ck_assert_int_ge(asprintf(&msg,
                              "modules[0] (\"good\"): %s: directory permissions: expected %s not "
                              "writable by group or others, found mode 0777: refusing it; run "
                              "chmod go-w %s",
                              file, dir, dir),
                     0);
    expect_error(msg);
    free(msg);
    teardown();
    remove_copy(dir, file);
}
END_TEST

START_TEST(test_config_name_mismatch)
{
    char *file = NULL, *msg = NULL;
    char *dir = copy_good("other", &file);
    ck_assert_int_eq(load_from(dir, "other"), -1);
    ck_assert_uint_eq(errs.count, 1);
    ck_assert_int_ge(asprintf(&msg,
                              "modules[0] (\"other\"): %s: module name: expected \"other\" (the "
                              "name in the config), found \"good\": list the module as \"good\" "
                              "in the config, or rename it in its descriptor",
                              file),
                     0);
    expect_error(msg);
    free(msg);
    teardown();
    remove_copy(dir, file);
}
END_TEST

START_TEST(test_describe_lists_hooks)
{
    char *out = NULL, *expected = NULL;
    size_t len = 0;
    char *file = built_so("good");
    ck_assert_int_eq(load("[{\"name\": \"good\"}]"), 0);
    ck_assert_int_eq(plugin_loader_init(&errs), 0);
    FILE *f = open_memstream(&out, &len);
    plugin_loader_describe(f);
    fclose(f);
    ck_assert_int_ge(asprintf(&expected,
                              "good 1.2.3 %s\n"
                              "    a test module that loads\n"
                              "    hook core_connection_post_bind (position 1 of 1)\n",
                              file),
                     0);
    ck_assert_str_eq(out, expected);
    ck_assert_ptr_nonnull(strstr(out, "core_connection_post_bind"));
    free(out);
    free(expected);
    free(file);
}
END_TEST

START_TEST(test_unload_is_safe)
{
    plugin_loader_unload(); /* nothing loaded */
    ck_assert_int_eq(load("[{\"name\": \"bad_magic\"}, {\"name\": \"good\"}]"), -1);
    ck_assert_int_eq(plugin_loader_init(&errs), 0);
    plugin_loader_unload();
    ck_assert_uint_eq(plugin_loader_count(), 0);
    ck_assert_int_eq(has_core_connection_post_bind_hook(), 0);
    plugin_loader_unload(); /* twice */
    /* and a second load after an unload works */
    config_release(cfg);
    config_errors_clear(&errs);
    ck_assert_int_eq(load("[{\"name\": \"good\"}]"), 0);
    ck_assert_uint_eq(plugin_loader_count(), 1);
}
END_TEST

START_TEST(test_example_module)
{
    cfg = make_config("[\"" TOP_BUILDDIR "/modules\"]",
                      "[{\"name\": \"example\", \"options\": {\"veto\": \"yes\", \"x\": 1}}]");
    ck_assert_int_eq(plugin_loader_load(cfg, &errs), -1);
    ck_assert_uint_eq(errs.count, 2);
    expect_error("modules[0].options: unknown key \"x\" (allowed: veto)");
    expect_error("modules[0].options.veto: must be true or false, not a string");
    teardown();

    cfg = make_config("[\"" TOP_BUILDDIR "/modules\"]",
                      "[{\"name\": \"example\", \"options\": {\"veto\": true}}]");
    ck_assert_int_eq(plugin_loader_load(cfg, &errs), 0);
    ck_assert_int_eq(plugin_loader_init(&errs), 0);
    ck_assert_str_eq(plugin_hooks_owner(&plugin_hook_core_connection_post_bind, 0), "example");
    /* (also links the binding table into this test: the module calls it) */
    ck_assert_ptr_nonnull(config_get_binding_name_from_id);
    domain_record dr = {0};
    dr.domain = (char *)"example.com";
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(25)};
    sin.sin_addr.s_addr = htonl(0x7f000001);
    ck_assert_int_eq(call_core_connection_post_bind_hook(&dr, 0, 7, (struct sockaddr *)&sin,
                                                         sizeof(sin)),
                     1);
}
END_TEST


START_TEST(test_undefined_symbol_refused)
{
    /* built without -z now: only a loader resolving every symbol at load sees it */
    ck_assert_int_eq(load("[{\"name\": \"undefined_symbol\"}]"), -1);
    ck_assert_uint_eq(errs.count, 1);
    expect_module_error(0, "undefined_symbol",
                        "symbols: expected every symbol to resolve when the module loads, found "
                        "undefined symbol: vipmta_no_such_function: it calls a function the "
                        "daemon does not export (the public ABI is core/plugin/vipmta.dynlist) "
                        "or one of a library it is not linked with; rebuild it against this "
                        "vipmta's headers and link what it uses");
    ck_assert_uint_eq(plugin_loader_count(), 0);
}
END_TEST

START_TEST(test_owner_not_root_refused)
{
    char *file = NULL, *msg = NULL;
    char *dir = copy_good("good", &file);
    if (geteuid() != 0) { /* only root may give files away; the rule is root's anyway */
        remove_copy(dir, file);
        return;
    }
    ck_assert_int_eq(chown(file, 65534, 65534), 0);
    ck_assert_int_eq(load_from(dir, "good"), -1);
    ck_assert_int_ge(asprintf(&msg,
                              "modules[0] (\"good\"): %s: owner: expected a file owned by root "
                              "(vipmta runs as root), found uid 65534: refusing it; run chown "
                              "root: %s",
                              file, file),
                     0);
    expect_error(msg);
    free(msg);
    teardown();
    /* the file is root's again, its directory is not */
    ck_assert_int_eq(chown(file, 0, 0), 0);
    ck_assert_int_eq(chown(dir, 65534, 65534), 0);
    ck_assert_int_eq(load_from(dir, "good"), -1);
    ck_assert_int_ge(asprintf(&msg,
                              "modules[0] (\"good\"): %s: directory owner: expected %s owned by "
                              "root (vipmta runs as root), found uid 65534: refusing it; run "
                              "chown root: %s",
                              file, dir, dir),
                     0);
    expect_error(msg);
    free(msg);
    ck_assert_uint_eq(plugin_loader_count(), 0);
    teardown();
    remove_copy(dir, file);
}
END_TEST

START_TEST(test_momentum_checks)
{
    ck_assert_int_eq(load("[{\"name\": \"ec_bad_version\"}, {\"name\": \"ec_deprecated\"}]"), -1);
    ck_assert_uint_eq(errs.count, 2);
    expect_module_error(0, "ec_bad_version",
                        "ABI major: expected 2, found 3: rebuild the module against this "
                        "vipmta's headers (module ABI 2.0)");
    expect_module_error(1, "ec_deprecated",
                        "callbacks: expected the deprecated callbacks to be NULL, found "
                        "module_init set: move its work to conf_setup or ext_init (Momentum 3 "
                        "no longer calls it)");
}
END_TEST

START_TEST(test_instances)
{
    ck_assert_int_eq(load("[{\"name\": \"good\", \"instance\": \"a\", \"options\": {\"veto\": false}},"
                          " {\"name\": \"good\", \"instance\": \"b\", \"options\": {\"veto\": true}}]"),
                     0);
    ck_assert_uint_eq(plugin_loader_count(), 2);
    ck_assert_str_eq(plugin_loader_label(plugin_loader_get(0)), "good:a");
    ck_assert_str_eq(vipmta_module_instance(plugin_loader_get(1)), "b");
    ck_assert_int_eq(plugin_loader_init(&errs), 0);
    /* each with its own options: a lets it through, b vetoes */
    ck_assert_int_eq(call_core_connection_post_bind_hook(NULL, 0, -1, NULL, 0), 1);
    ck_assert_str_eq(plugin_hooks_last_stop_owner(&plugin_hook_core_connection_post_bind), "good:b");
    ck_assert_str_eq(plugin_hooks_owner(&plugin_hook_core_connection_post_bind, 0), "good:a");
}
END_TEST

START_TEST(test_scopes_not_declared)
{
    ck_assert_int_eq(load("[{\"name\": \"good\", \"domains\": {\"a.test\": {\"veto\": true}}}]"), -1);
    ck_assert_uint_eq(errs.count, 1);
    expect_error("modules[0].domains: module \"good\" takes no per-domain options (it reads "
                 "\"options\" only): move them there or remove \"domains\"");
}
END_TEST

/* The main log, sent to a file for the test to read. */
static char log_path[64];

static void log_to_file(void)
{
    snprintf(log_path, sizeof(log_path), "/tmp/check_loader_log.XXXXXX");
    int fd = mkstemp(log_path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(log_open_file(log_path), 0);
}

static int log_count(const char *part)
{
    FILE *f = fopen(log_path, "r");
    char line[2048];
    int n = 0;
    while (f && fgets(line, sizeof(line), f))
        n += strstr(line, part) != NULL;
    if (f)
        fclose(f);
    return n;
}

START_TEST(test_registration_rules)
{
    log_to_file();
    ck_assert_int_eq(load("[{\"name\": \"late_register\"}]"), 0);
    /* configure registered nothing (refused, with a closure on its stack) */
    ck_assert_int_eq(has_core_connection_post_bind_hook(), 0);
    ck_assert_int_eq(log_count("hook core_connection_post_bind: registration by module "
                               "\"late_register\" refused: outside the module's initialisation"),
                     1);
    /* init registered the same provider twice: kept once */
    ck_assert_int_eq(plugin_loader_init(&errs), 0);
    ck_assert_int_eq(plugin_hook_core_connection_post_bind.count, 1);
    /* its hook registers from inside the chain: refused, the chain unchanged */
    ck_assert_int_eq(call_core_connection_post_bind_hook(NULL, 0, -1, NULL, 0), 1);
    ck_assert_int_eq(call_core_connection_post_bind_hook(NULL, 0, -1, NULL, 0), 2);
    ck_assert_int_eq(plugin_hook_core_connection_post_bind.count, 1);
    ck_assert_int_eq(log_count("registration by module \"late_register\" refused: called while a "
                               "hook runs"),
                     2);
    /* a reload (new options): its configure on a scratch handle and its reload register
     * nothing either */
    struct vipmta_config *next = make_config("[\"" MODDIR "\"]",
                                             "[{\"name\": \"late_register\", \"options\": "
                                             "{\"x\": 1}}]");
    struct config_errors warnings = {0};
    struct plugin_reload_plan *plan = plugin_reload_prepare(cfg, next, &errs, &warnings);
    ck_assert_ptr_nonnull(plan);
    ck_assert_int_eq(plugin_reload_apply(plan, &errs), 0);
    plugin_reload_plan_free(plan);
    ck_assert_uint_eq(errs.count, 0);
    ck_assert_int_eq(plugin_hook_core_connection_post_bind.count, 1);
    ck_assert_int_eq(log_count("registration by module \"late_register\" refused: outside"), 3);
    ck_assert_int_eq(call_core_connection_post_bind_hook(NULL, 0, -1, NULL, 0), 3);
    config_release(next);
    config_errors_clear(&warnings);
    log_open_file(NULL);
    unlink(log_path);
}
END_TEST

static Suite *loader_suite(void)
{
    Suite *s = suite_create("loader");
    TCase *tc = tcase_create("loader");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_good_loads_and_registers);
    tcase_add_test(tc, test_good_veto_option);
    tcase_add_test(tc, test_disabled_skipped_index_kept);
    tcase_add_test(tc, test_name_with_extension);
    tcase_add_test(tc, test_missing_lists_dirs);
    tcase_add_test(tc, test_path_as_name_refused);
    tcase_add_test(tc, test_unloadable_file_shows_why);
    tcase_add_test(tc, test_no_descriptor);
    tcase_add_test(tc, test_bad_magic);
    tcase_add_test(tc, test_abi_major);
    tcase_add_test(tc, test_newer_minor);
    tcase_add_test(tc, test_small_size);
    tcase_add_test(tc, test_duplicate_name);
    tcase_add_test(tc, test_configure_error_path);
    tcase_add_test(tc, test_configure_fails_silently);
    tcase_add_test(tc, test_check_keys_and_types);
    tcase_add_test(tc, test_init_failure);
    tcase_add_test(tc, test_private_copy_loads);
    tcase_add_test(tc, test_world_writable_file_refused);
    tcase_add_test(tc, test_writable_dir_refused);
    tcase_add_test(tc, test_config_name_mismatch);
    tcase_add_test(tc, test_describe_lists_hooks);
    tcase_add_test(tc, test_unload_is_safe);
    tcase_add_test(tc, test_example_module);
    tcase_add_test(tc, test_undefined_symbol_refused);
    tcase_add_test(tc, test_owner_not_root_refused);
    tcase_add_test(tc, test_momentum_checks);
    tcase_add_test(tc, test_instances);
    tcase_add_test(tc, test_scopes_not_declared);
    tcase_add_test(tc, test_registration_rules);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    umask(022);
    SRunner *sr = srunner_create(loader_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
