/* check_mod_connlog.c: Check suite for connlog's line format (field order, JSON escaping, invalid UTF-8, addresses, overflow). */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connlog.h"

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

static Suite *connlog_suite(void)
{
    Suite *s = suite_create("connlog");
    TCase *tc = tcase_create("line");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_fields_in_order);
    tcase_add_test(tc, test_escapes_quotes_backslashes_controls);
    tcase_add_test(tc, test_utf8_kept_invalid_is_null);
    tcase_add_test(tc, test_absent_values_are_null);
    tcase_add_test(tc, test_too_small_buffer_fails_cleanly);
    tcase_add_test(tc, test_time_follows_the_second);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(connlog_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
