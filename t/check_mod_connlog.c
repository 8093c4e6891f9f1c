/* check_mod_connlog.c: Check suite for connlog: its line format (field order, JSON escaping, invalid UTF-8, addresses, overflow), options, and the module writing, buffering and reloading. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/event.h>

#include "connlog.h"
#include "fakecore.h"

static struct sockaddr_in src4;
static struct sockaddr_in6 dst6;

static struct connlog_event event_for(const char *domain, const char *binding)
{
    struct connlog_event ev = {
        .domain = domain,
        .binding = binding,
        .slot = 2,
        .source = (const struct sockaddr *)&src4,
        .source_len = (int)sizeof(src4),
        .destination = (const struct sockaddr *)&dst6,
        .destination_len = (int)sizeof(dst6),
        .fd = 17,
        .verdict = "allow",
    };
    ev.time.tv_sec = 1704110400; /* 2024-01-01T12:00:00Z */
    ev.time.tv_usec = 123456;
    return ev;
}

static void setup(void)
{
    memset(&src4, 0, sizeof(src4));
    src4.sin_family = AF_INET;
    inet_pton(AF_INET, "192.0.2.10", &src4.sin_addr);
    memset(&dst6, 0, sizeof(dst6));
    dst6.sin6_family = AF_INET6;
    dst6.sin6_port = htons(25);
    inet_pton(AF_INET6, "2001:db8::25", &dst6.sin6_addr);
}

/* The line for `domain`, checked to be one line ending in a newline. */
static const char *line_for(const char *domain, const char *binding)
{
    static char buf[2048];
    struct connlog_event ev = event_for(domain, binding);
    int n = connlog_format_line(&ev, buf, sizeof(buf));
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq((int)strlen(buf), n);
    ck_assert_int_eq(buf[n - 1], '\n');
    ck_assert_ptr_eq(strchr(buf, '\n'), buf + n - 1); /* one line */
    return buf;
}

START_TEST(test_fields_in_order)
{
    ck_assert_str_eq(line_for("example.com", "vip1"),
                     "{\"time\":\"2024-01-01T12:00:00.123Z\",\"domain\":\"example.com\","
                     "\"binding\":\"vip1\",\"slot\":2,\"source\":\"192.0.2.10:0\","
                     "\"destination\":\"[2001:db8::25]:25\",\"fd\":17,\"verdict\":\"allow\"}\n");
}
END_TEST

START_TEST(test_escapes_quotes_backslashes_controls)
{
    const char *line = line_for("a\"b\\c\x01\n\x7f" "d", "vip1");
    ck_assert_ptr_nonnull(strstr(line, "\"domain\":\"a\\\"b\\\\c\\u0001\\u000a\\u007fd\","));
}
END_TEST

START_TEST(test_utf8_kept_invalid_is_null)
{
    ck_assert_ptr_nonnull(strstr(line_for("b\xc3\xbc" "cher.de", "vip1"),
                                 "\"domain\":\"b\xc3\xbc" "cher.de\","));
    /* a stray byte, an overlong '/', a surrogate, a truncated sequence */
    const char *bad[] = {"bad\xff", "over\xc0\xaf", "sur\xed\xa0\x80", "cut\xe2\x82"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(strstr(line_for(bad[i], "vip1"), "\"domain\":null,") != NULL,
                      "invalid UTF-8 #%zu not written as null", i);
}
END_TEST

START_TEST(test_absent_values_are_null)
{
    struct connlog_event ev = event_for(NULL, NULL);
    char buf[1024];
    ev.source = NULL;
    ck_assert_int_gt(connlog_format_line(&ev, buf, sizeof(buf)), 0);
    ck_assert_ptr_nonnull(strstr(buf, "\"domain\":null,\"binding\":null,\"slot\":2,"
                                      "\"source\":null,"));
}
END_TEST

START_TEST(test_too_small_buffer_fails_cleanly)
{
    struct connlog_event ev = event_for("example.com", "vip1");
    char buf[64];
    memset(buf, 'x', sizeof(buf));
    ck_assert_int_eq(connlog_format_line(&ev, buf, 40), -1);
    ck_assert_int_eq(buf[40], 'x'); /* nothing written past the size */
    ck_assert_int_eq(connlog_format_line(&ev, buf, 0), -1);
}
END_TEST

START_TEST(test_time_follows_the_second)
{
    char a[1024], b[1024];
    struct connlog_event ev = event_for("example.com", "vip1");
    ck_assert_int_gt(connlog_format_line(&ev, a, sizeof(a)), 0);
    ev.time.tv_sec += 61;
    ev.time.tv_usec = 5000;
    ck_assert_int_gt(connlog_format_line(&ev, b, sizeof(b)), 0);
    ck_assert_ptr_nonnull(strstr(a, "\"time\":\"2024-01-01T12:00:00.123Z\""));
    ck_assert_ptr_nonnull(strstr(b, "\"time\":\"2024-01-01T12:01:01.005Z\""));
}
END_TEST

/* ---- options ---- */

static void parse_bad(const char *options)
{
    vipmta_module_ctx *m = fake_module("{}");
    json_t *j = fake_json(options);
    ck_assert_ptr_null(connlog_config_parse(m, (const vipmta_value *)j));
    json_decref(j);
    fake_stop(m);
}

START_TEST(test_option_errors)
{
    parse_bad("{\"file\": \"\", \"syslog\": 1, \"flush_interval_ms\": 20000, \"facility\": 3,"
              " \"tls\": \"yes\"}");
    ck_assert_error("options.file: must be the path of the log file, not an empty string");
    ck_assert_error("options.syslog: must be true or false, not an integer");
    ck_assert_error("options.tls: must be true or false, not a string");
    ck_assert_error("options.flush_interval_ms: must be an integer from 0 to 10000, not 20000");
    ck_assert_error("options: unknown key \"facility\" (allowed: file, syslog, flush_interval_ms, tls)");
    ck_assert_int_eq(fake_nerrors, 5);
    fake_reset();
    parse_bad("{\"file\": \"/x\", \"syslog\": true}");
    ck_assert_error("options: set either \"file\" or \"syslog\": true, not both");
    fake_reset();
    parse_bad("{}");
    ck_assert_error("options: set either \"file\" (a path) or \"syslog\": true");
    fake_reset();
    parse_bad("{\"file\": \"a\\u0000b\"}");
    ck_assert_error("options.file: must not contain a NUL character");
}
END_TEST

/* ---- the module: lines written, buffered, a reload to another file ---- */

static char dir[64];

static void module_setup(void)
{
    setup();
    fake_reset();
    snprintf(dir, sizeof(dir), "/tmp/check_mod_connlog.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    fake_event_base = event_base_new();
}

static void module_teardown(void)
{
    static const char *const files[] = {"a.jsonl", "b.jsonl"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char path[128];
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
    event_base_free(fake_event_base);
    fake_event_base = NULL;
}

/* Lines in DIR/name. */
static int lines_in(const char *name)
{
    char path[128], buf[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    int n = 0;
    while (f && fgets(buf, sizeof(buf), f))
        n++;
    if (f)
        fclose(f);
    return n;
}

static void connect_once(void)
{
    domain_record dr = {.domain = "example.com"};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(fake_hook_fn(fake_hook_closure, &dr, 1, fd, (struct sockaddr *)&src4,
                                  sizeof(src4)),
                     0);
    close(fd);
}

/* The first line of DIR/name, "" when none. */
static const char *first_line_in(const char *name)
{
    static char buf[4096];
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    buf[0] = '\0';
    if (f && !fgets(buf, sizeof(buf), f))
        buf[0] = '\0';
    if (f)
        fclose(f);
    return buf;
}

static void tls_settled(void)
{
    domain_record dr = {.domain = "example.com"};
    vipmta_tls_info tls = {.settled = 1, .encrypted = 1, .version = "TLSv1.3",
                           .cipher = "TLS_AES_256_GCM_SHA384", .cipher_bits = 256,
                           .verified = 0, .resumed = 1, .verify_error = "self-signed certificate",
                           .peer_name = "mx.example.com", .policy = "opportunistic"};
    ck_assert_ptr_nonnull(fake_tls_hook_fn);
    ck_assert_int_eq(fake_tls_hook_fn(fake_tls_hook_closure, &dr, 2, 17, &tls), 0);
}

START_TEST(test_module_tls_lines)
{
    char entry[256];
    snprintf(entry, sizeof(entry), "{\"options\": {\"file\": \"%s/a.jsonl\"}}", dir);
    vipmta_module_ctx *m = fake_start(entry);
    ck_assert_ptr_nonnull(m);
    tls_settled(); /* registered, but "tls" is off: nothing written */
    ck_assert_int_eq(lines_in("a.jsonl"), 0);
    snprintf(entry, sizeof(entry), "{\"options\": {\"file\": \"%s/a.jsonl\", \"tls\": true}}",
             dir);
    ck_assert_int_eq(fake_reload(m, entry), 0);
    tls_settled();
    ck_assert_int_eq(lines_in("a.jsonl"), 1);
    const char *line = strstr(first_line_in("a.jsonl"), "\"event\"");
    ck_assert_ptr_nonnull(line);
    ck_assert_str_eq(line, "\"event\":\"tls\",\"domain\":\"example.com\",\"binding\":\"vip2\","
                           "\"slot\":2,\"fd\":17,\"peer_name\":\"mx.example.com\",\"policy\":"
                           "\"opportunistic\",\"tls\":true,\"version\":\"TLSv1.3\",\"cipher\":"
                           "\"TLS_AES_256_GCM_SHA384\",\"bits\":256,\"verified\":false,\"resumed\":true,"
                           "\"verify_error\":\"self-signed certificate\"}\n");
    fake_stop(m);
}
END_TEST

START_TEST(test_module_writes_and_reloads)
{
    char entry[256];
    snprintf(entry, sizeof(entry), "{\"options\": {\"file\": \"%s/a.jsonl\"}}", dir);
    vipmta_module_ctx *m = fake_start(entry);
    ck_assert_ptr_nonnull(m);
    connect_once();
    connect_once();
    ck_assert_int_eq(lines_in("a.jsonl"), 2); /* one write() per line */
    /* a reload to another file, buffered: lines wait for the timer */
    snprintf(entry, sizeof(entry),
             "{\"options\": {\"file\": \"%s/b.jsonl\", \"flush_interval_ms\": 50}}", dir);
    ck_assert_int_eq(fake_reload(m, entry), 0);
    connect_once();
    ck_assert_int_eq(lines_in("b.jsonl"), 0);
    struct timeval tv = {0, 200000};
    event_base_loopexit(fake_event_base, &tv);
    event_base_dispatch(fake_event_base);
    ck_assert_int_eq(lines_in("b.jsonl"), 1);
    ck_assert_int_eq(lines_in("a.jsonl"), 2);
    /* a bad reload keeps the file in use */
    ck_assert_int_ne(fake_reload(m, "{\"options\": {\"syslog\": \"yes\"}}"), 0);
    connect_once();
    fake_stop(m); /* shutdown writes what is buffered */
    ck_assert_int_eq(lines_in("b.jsonl"), 2);
}
END_TEST

static Suite *connlog_suite(void)
{
    Suite *s = suite_create("connlog");
    fake_tcase(s, "line", setup, NULL, test_fields_in_order,
               test_escapes_quotes_backslashes_controls, test_utf8_kept_invalid_is_null,
               test_absent_values_are_null, test_too_small_buffer_fails_cleanly,
               test_time_follows_the_second, NULL);
    fake_tcase(s, "options", fake_reset, NULL, test_option_errors, NULL);
    fake_tcase(s, "module", module_setup, module_teardown, test_module_writes_and_reloads,
               test_module_tls_lines, NULL);
    return s;
}

int main(void)
{
    return fake_run(connlog_suite());
}
