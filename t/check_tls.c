/* check_tls.c: Check suite for core/tls and the TLS config keys: credentials file, safe file reads, session cache, policies. */
#include <check.h>
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "tls/tls.h"
#include "tls/tls_auth.h"

static struct config_errors errs;
static char dir[] = "/tmp/check_tls.XXXXXX";

static void setup(void)
{
    ck_assert_ptr_nonnull(mkdtemp(dir));
    config_errors_clear(&errs);
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
    strcpy(dir, "/tmp/check_tls.XXXXXX");
    config_errors_clear(&errs);
}

/* Writes `text` to DIR/name with `mode`; returns the path (static). */
static const char *file(const char *name, const char *text, mode_t mode)
{
    static char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    ck_assert_int_eq(chmod(path, mode), 0);
    return path;
}

static char *hash(const char *prefix, const char *password)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data cd;
    memset(&cd, 0, sizeof(cd));
    ck_assert_ptr_nonnull(crypt_gensalt_rn(prefix, 0, NULL, 0, setting, sizeof(setting)));
    return strdup(crypt_rn(password, setting, &cd, sizeof(cd)));
}

START_TEST(test_credentials_check)
{
    char *y = hash("$y$", "alice pw"), *s6 = hash("$6$", "bob pw");
    char text[1024];
    snprintf(text, sizeof(text), "# users\n\nalice:%s\nbob:%s:1000:1000::/home/bob\n", y, s6);
    const char *path = file("users", text, 0600);
    struct tls_credentials *c = tls_credentials_load(path, &errs);
    ck_assert_msg(c != NULL, "%s", errs.count ? errs.messages[0] : "");
    ck_assert_uint_eq(tls_credentials_count(c), 2);
    ck_assert_int_eq(tls_credentials_check(c, "alice", "alice pw"), 1);
    ck_assert_int_eq(tls_credentials_check(c, "bob", "bob pw"), 1);
    ck_assert_int_eq(tls_credentials_check(c, "alice", "bob pw"), 0);
    ck_assert_int_eq(tls_credentials_check(c, "carol", "alice pw"), 0);
    ck_assert_int_eq(tls_credentials_check(c, "", ""), 0);
    tls_credentials_release(c);
    free(y);
    free(s6);
}
END_TEST

START_TEST(test_credentials_errors)
{
    const char *path = file("users", "alice:$1$md5salt$abcdefghijklmnopqrstuv\nnocolon\n", 0600);
    ck_assert_ptr_null(tls_credentials_load(path, &errs));
    ck_assert_uint_eq(errs.count, 2);
    char want[512];
    snprintf(want, sizeof(want), "%s:1: user \"alice\": the hash is not yescrypt ($y$...) or "
             "SHA-512-crypt ($6$...): make one with mkpasswd -m yescrypt (or openssl passwd -6)", path);
    ck_assert_str_eq(errs.messages[0], want);
    snprintf(want, sizeof(want), "%s:2: expected user:hash (a crypt(3) hash: mkpasswd -m yescrypt, "
             "see docs/tls.md)", path);
    ck_assert_str_eq(errs.messages[1], want);
}
END_TEST

START_TEST(test_secret_files_not_readable_by_others)
{
    const char *path = file("users", "", 0644);
    ck_assert_ptr_null(tls_credentials_load(path, &errs));
    ck_assert_uint_eq(errs.count, 1);
    ck_assert_ptr_nonnull(strstr(errs.messages[0], "mode 644 lets other users read it"));
    char why[256];
    size_t len;
    char link[300];
    snprintf(link, sizeof(link), "%s/link", dir);
    ck_assert_int_eq(symlink(path, link), 0);
    ck_assert_ptr_null(tls_file_read(link, 100, 0, &len, why, sizeof(why)));
    ck_assert_ptr_nonnull(strstr(why, "symbolic link"));
    char *buf = tls_file_read(path, 100, 0, &len, why, sizeof(why));
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(len, 0);
    free(buf);
}
END_TEST

START_TEST(test_session_cache_bounded)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    tls_session_cache_configure(2, 3600);
    for (int i = 0; i < 3; i++) {
        SSL_SESSION *s = SSL_SESSION_new();
        SSL_SESSION_set_time(s, time(NULL));
        SSL_SESSION_set_timeout(s, 3600);
        SSL_SESSION_set_protocol_version(s, TLS1_2_VERSION);
        unsigned char id[4] = {1, 2, 3, (unsigned char)i};
        SSL_SESSION_set1_id(s, id, sizeof(id));
        char key[16];
        snprintf(key, sizeof(key), "k%d", i);
        tls_session_cache_put(key, s);
    }
    ck_assert_uint_eq(tls_session_cache_count(), 2);
    tls_session_cache_put("k2", SSL_SESSION_new()); /* replaces */
    ck_assert_uint_eq(tls_session_cache_count(), 2);
    tls_session_cache_free();
    ck_assert_uint_eq(tls_session_cache_count(), 0);
    SSL_CTX_free(ctx);
}
END_TEST

START_TEST(test_config_tls_keys)
{
    struct vipmta_config *cfg = config_load_string(
        "{\"tls\": {\"credentials_file\": \"users\", \"min_version\": \"TLSv1.3\"},"
        " \"listen\": [{\"address\": \"127.0.0.1\", \"port\": 25, \"certificates\": "
        "[{\"cert\": \"a.crt\", \"key\": \"/k/a.key\"}]},"
        " {\"address\": \"127.0.0.1\", \"port\": 465, \"tls\": \"implicit\", \"require_tls\": true, "
        "\"auth\": false, \"certificates\": [{\"cert\": \"a.crt\", \"key\": \"a.key\"}]}],"
        " \"domains\": {\"*\": {\"tls\": \"required\"}, \"v.test\": {\"tls\": \"verify\"}},"
        " \"routes\": {\"r.test\": {\"hosts\": \"smart.test:587\", \"auth\": {\"username\": \"u\", "
        "\"password\": \"p\"}}, \"n.test\": {\"hosts\": [\"h.test:25\"], \"tls\": \"none\"}}}",
        "/etc/t/test.json", &errs);
    ck_assert_msg(cfg != NULL, "%s", errs.count ? errs.messages[0] : "");
    ck_assert_str_eq(cfg->tls.min_version, "TLSv1.3");
    ck_assert_str_eq(cfg->tls.credentials_file, "/etc/t/users");
    ck_assert_uint_eq(cfg->tls.auth_max_failures, 5);
    ck_assert_int_eq(cfg->listen[0].tls, CONFIG_LISTEN_TLS_STARTTLS);
    ck_assert_int_eq(cfg->listen[0].auth, 1);
    ck_assert_str_eq(cfg->listen[0].certs[0].cert, "/etc/t/a.crt");
    ck_assert_str_eq(cfg->listen[0].certs[0].key, "/k/a.key");
    ck_assert_int_eq(cfg->listen[1].tls, CONFIG_LISTEN_TLS_IMPLICIT);
    ck_assert_int_eq(cfg->listen[1].require_tls, 1);
    ck_assert_int_eq(cfg->listen[1].auth, 0);
    ck_assert_int_eq(config_tls_policy_for(cfg, "other.test", NULL), CONFIG_TLS_POLICY_REQUIRED);
    ck_assert_int_eq(config_tls_policy_for(cfg, "v.test", NULL), CONFIG_TLS_POLICY_VERIFY);
    const struct config_route *r = config_route_for(cfg, "r.test");
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(r->auth_user, "u");
    ck_assert_int_eq(config_tls_policy_for(cfg, "r.test", r), CONFIG_TLS_POLICY_REQUIRED);
    ck_assert_int_eq(config_tls_policy_for(cfg, "n.test", config_route_for(cfg, "n.test")),
                     CONFIG_TLS_POLICY_NONE);
    config_release(cfg);
    struct vipmta_config *def = config_load_string("{}", "/etc/t/test.json", &errs);
    ck_assert_int_eq(config_tls_policy_for(def, "x.test", NULL), CONFIG_TLS_POLICY_OPPORTUNISTIC);
    ck_assert_str_eq(def->tls.min_version, "TLSv1.2");
    config_release(def);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("tls");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_credentials_check);
    tcase_add_test(tc, test_credentials_errors);
    tcase_add_test(tc, test_secret_files_not_readable_by_others);
    tcase_add_test(tc, test_session_cache_bounded);
    tcase_add_test(tc, test_config_tls_keys);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
