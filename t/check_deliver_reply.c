/* check_deliver_reply.c: Check suite for the SMTP reply parser and formatter (deliver_reply_parse, deliver_reply_format). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/deliver_reply.h"

static struct deliver_reply rep;
static size_t used;

/* Parses a heap copy of exactly len bytes, so ASan catches reads past len. */
static enum deliver_reply_status parse_n(const char *s, size_t len, int is_ehlo)
{
    char *copy = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, s, len);
    used = 12345;
    enum deliver_reply_status st = deliver_reply_parse(copy, len, is_ehlo, &rep, &used);
    free(copy);
    return st;
}

static enum deliver_reply_status parse(const char *s, int is_ehlo)
{
    return parse_n(s, strlen(s), is_ehlo);
}

START_TEST(test_single_line)
{
    const char *r = "250 ok\r\n";
    ck_assert_int_eq(parse(r, 0), DELIVER_REPLY_COMPLETE);
    ck_assert_int_eq(rep.code, 250);
    ck_assert_str_eq(rep.text, "ok");
    ck_assert_uint_eq(rep.line_count, 1);
    ck_assert_int_eq(rep.has_enhanced, 0);
    ck_assert_uint_eq(used, strlen(r));
    ck_assert_int_eq(parse("220 mx.example.com ESMTP ready\n", 0), DELIVER_REPLY_COMPLETE);
    ck_assert_int_eq(rep.code, 220);
    ck_assert_str_eq(rep.text, "mx.example.com ESMTP ready");
    ck_assert_uint_eq(used, 31);
    ck_assert_int_eq(parse("354 go ahead\r\n", 0), DELIVER_REPLY_COMPLETE);
    ck_assert_int_eq(rep.code, 354);
}
END_TEST

START_TEST(test_bare_code)
{
    ck_assert_int_eq(parse("250\r\n", 0), DELIVER_REPLY_COMPLETE);
    ck_assert_int_eq(rep.code, 250);
    ck_assert_str_eq(rep.text, "");
    ck_assert_uint_eq(rep.line_count, 1);
    ck_assert_uint_eq(used, 5);
    ck_assert_int_eq(parse("221\n", 0), DELIVER_REPLY_COMPLETE);
    ck_assert_int_eq(rep.code, 221);
    ck_assert_uint_eq(used, 4);
    ck_assert_int_eq(parse("250 \r\n", 0), DELIVER_REPLY_COMPLETE);
    ck_assert_str_eq(rep.text, "");
}
END_TEST

START_TEST(test_multi_line)
{
    const char *r = "250-first line\r\n250-second\r\n250 last\r\n";
    ck_assert_int_eq(parse(r, 0), DELIVER_REPLY_COMPLETE);
    ck_assert_int_eq(rep.code, 250);
    ck_assert_uint_eq(rep.line_count, 3);
    ck_assert_str_eq(rep.text, "first line\nsecond\nlast");
    ck_assert_uint_eq(used, strlen(r));
    /* a continuation line with no text */
    ck_assert_int_eq(parse("250-\r\n250 x\r\n", 0), DELIVER_REPLY_COMPLETE);
    ck_assert_str_eq(rep.text, "\nx");
    ck_assert_uint_eq(rep.line_count, 2);
}
END_TEST

START_TEST(test_incomplete)
{
    ck_assert_int_eq(parse("", 0), DELIVER_REPLY_INCOMPLETE);
    ck_assert_int_eq(parse("2", 0), DELIVER_REPLY_INCOMPLETE);
    ck_assert_int_eq(parse("25", 0), DELIVER_REPLY_INCOMPLETE);
    ck_assert_int_eq(parse("250", 0), DELIVER_REPLY_INCOMPLETE);
    ck_assert_int_eq(parse("250 ok", 0), DELIVER_REPLY_INCOMPLETE);
    ck_assert_int_eq(parse("250 ok\r", 0), DELIVER_REPLY_INCOMPLETE);
    ck_assert_int_eq(parse("250\r", 0), DELIVER_REPLY_INCOMPLETE);
    /* partial multi-line replies */
    ck_assert_int_eq(parse("250-a\r\n", 0), DELIVER_REPLY_INCOMPLETE);
    ck_assert_int_eq(parse("250-a\r\n250-b\r\n", 0), DELIVER_REPLY_INCOMPLETE);
    ck_assert_int_eq(parse("250-a\r\n250-b\r\n25", 0), DELIVER_REPLY_INCOMPLETE);
    ck_assert_int_eq(parse("250-a\r\n250 b", 0), DELIVER_REPLY_INCOMPLETE);
    /* every prefix of a valid reply is INCOMPLETE, the whole is COMPLETE */
    const char *r = "250-mx.example.com\r\n250-PIPELINING\r\n250 SIZE 1000\r\n";
    for (size_t k = 0; k < strlen(r); k++)
        ck_assert_int_eq(parse_n(r, k, 1), DELIVER_REPLY_INCOMPLETE);
    ck_assert_int_eq(parse(r, 1), DELIVER_REPLY_COMPLETE);
}
END_TEST

START_TEST(test_malformed)
{
    ck_assert_int_eq(parse("250-a\r\n251 b\r\n", 0), DELIVER_REPLY_MALFORMED); /* mixed codes */
    ck_assert_int_eq(parse("250-a\r\n550-b\r\n250 c\r\n", 0), DELIVER_REPLY_MALFORMED);
    ck_assert_int_eq(parse("250-a\r\n251", 0), DELIVER_REPLY_MALFORMED); /* known early */
    ck_assert_int_eq(parse("abc\r\n", 0), DELIVER_REPLY_MALFORMED);
    ck_assert_int_eq(parse("x", 0), DELIVER_REPLY_MALFORMED);
    ck_assert_int_eq(parse("150 ok\r\n", 0), DELIVER_REPLY_MALFORMED); /* first digit 2-5 */
    ck_assert_int_eq(parse("650 ok\r\n", 0), DELIVER_REPLY_MALFORMED);
    ck_assert_int_eq(parse("260 ok\r\n", 0), DELIVER_REPLY_MALFORMED); /* second digit 0-5 */
    ck_assert_int_eq(parse("25\r\n", 0), DELIVER_REPLY_MALFORMED);
    ck_assert_int_eq(parse("2500 ok\r\n", 0), DELIVER_REPLY_MALFORMED);
    ck_assert_int_eq(parse("250_ok\r\n", 0), DELIVER_REPLY_MALFORMED);
    ck_assert_int_eq(parse("250\rx\r\n", 0), DELIVER_REPLY_MALFORMED);
    ck_assert_int_eq(parse("\r\n", 0), DELIVER_REPLY_MALFORMED);
}
END_TEST

START_TEST(test_line_too_long)
{
    size_t n = DELIVER_REPLY_LINE_MAX + 10;
    char *buf = malloc(n);
    ck_assert_ptr_nonnull(buf);
    memset(buf, 'x', n);
    memcpy(buf, "250 ", 4);
    /* LF at index LINE_MAX - 1: the line is exactly LINE_MAX octets: fine */
    buf[DELIVER_REPLY_LINE_MAX - 2] = '\r';
    buf[DELIVER_REPLY_LINE_MAX - 1] = '\n';
    ck_assert_int_eq(parse_n(buf, DELIVER_REPLY_LINE_MAX, 0), DELIVER_REPLY_COMPLETE);
    ck_assert_uint_eq(used, DELIVER_REPLY_LINE_MAX);
    ck_assert_uint_eq(strlen(rep.text), DELIVER_REPLY_TEXT_MAX - 1); /* truncated text */
    /* one more octet before the LF: malformed */
    buf[DELIVER_REPLY_LINE_MAX - 2] = 'x';
    buf[DELIVER_REPLY_LINE_MAX - 1] = '\r';
    buf[DELIVER_REPLY_LINE_MAX] = '\n';
    ck_assert_int_eq(parse_n(buf, DELIVER_REPLY_LINE_MAX + 1, 0), DELIVER_REPLY_MALFORMED);
    /* without any LF: incomplete up to the cap, malformed at it */
    memset(buf + 4, 'x', n - 4);
    ck_assert_int_eq(parse_n(buf, DELIVER_REPLY_LINE_MAX - 1, 0), DELIVER_REPLY_INCOMPLETE);
    ck_assert_int_eq(parse_n(buf, DELIVER_REPLY_LINE_MAX, 0), DELIVER_REPLY_MALFORMED);
    free(buf);
}
END_TEST

START_TEST(test_enhanced_codes)
{
    ck_assert_int_eq(parse("550 5.1.1 <bob@example.com>: no such user\r\n", 0), DELIVER_REPLY_COMPLETE);
    ck_assert_int_eq(rep.code, 550);
    ck_assert_int_eq(rep.has_enhanced, 1);
    ck_assert_int_eq(rep.enh_class, 5);
    ck_assert_int_eq(rep.enh_subject, 1);
    ck_assert_int_eq(rep.enh_detail, 1);
    ck_assert_str_eq(rep.text, "<bob@example.com>: no such user");
    /* stripped from every line that repeats it */
    ck_assert_int_eq(parse("452-4.2.2 mailbox full\r\n452-4.2.2 try later\r\n452 4.2.2 bye\r\n", 0),
                     DELIVER_REPLY_COMPLETE);
    ck_assert_int_eq(rep.enh_class, 4);
    ck_assert_int_eq(rep.enh_subject, 2);
    ck_assert_int_eq(rep.enh_detail, 2);
    ck_assert_str_eq(rep.text, "mailbox full\ntry later\nbye");
    /* three-digit subject and detail */
    ck_assert_int_eq(parse("250 2.123.456 ok\r\n", 0), DELIVER_REPLY_COMPLETE);
    ck_assert_int_eq(rep.enh_subject, 123);
    ck_assert_int_eq(rep.enh_detail, 456);
    ck_assert_str_eq(rep.text, "ok");
    /* a code alone */
    ck_assert_int_eq(parse("250 2.0.0\r\n", 0), DELIVER_REPLY_COMPLETE);
    ck_assert_int_eq(rep.has_enhanced, 1);
    ck_assert_str_eq(rep.text, "");
}
END_TEST

START_TEST(test_not_enhanced)
{
    /* class must match the reply's first digit */
    ck_assert_int_eq(parse("250 5.1.1 odd\r\n", 0), DELIVER_REPLY_COMPLETE);
    ck_assert_int_eq(rep.has_enhanced, 0);
    ck_assert_str_eq(rep.text, "5.1.1 odd");
    ck_assert_int_eq(parse("550 5.1234.1 x\r\n", 0), DELIVER_REPLY_COMPLETE);
    ck_assert_int_eq(rep.has_enhanced, 0);
    ck_assert_int_eq(parse("550 5.1.1x\r\n", 0), DELIVER_REPLY_COMPLETE);
    ck_assert_int_eq(rep.has_enhanced, 0);
    ck_assert_int_eq(parse("550 5.1 x\r\n", 0), DELIVER_REPLY_COMPLETE);
    ck_assert_int_eq(rep.has_enhanced, 0);
    ck_assert_int_eq(parse("354 3.0.0 x\r\n", 0), DELIVER_REPLY_COMPLETE);
    ck_assert_int_eq(rep.has_enhanced, 0);
    /* only on the first line */
    ck_assert_int_eq(parse("550-no code here\r\n550 5.1.1 late\r\n", 0), DELIVER_REPLY_COMPLETE);
    ck_assert_int_eq(rep.has_enhanced, 0);
    ck_assert_str_eq(rep.text, "no code here\n5.1.1 late");
    /* a different code on a later line is kept */
    ck_assert_int_eq(parse("550-5.1.1 a\r\n550 5.7.1 b\r\n", 0), DELIVER_REPLY_COMPLETE);
    ck_assert_str_eq(rep.text, "a\n5.7.1 b");
}
END_TEST

START_TEST(test_ehlo_keywords)
{
    const char *r = "250-mx.example.com Hello client [192.0.2.1]\r\n"
                    "250-pipelining\r\n"
                    "250-SIZE 35882577\r\n"
                    "250-8BITMIME\r\n"
                    "250-SMTPUTF8\r\n"
                    "250-Enhancedstatuscodes\r\n"
                    "250-STARTTLS\r\n"
                    "250-AUTH PLAIN LOGIN\r\n"
                    "250 CHUNKING\r\n";
    ck_assert_int_eq(parse(r, 1), DELIVER_REPLY_COMPLETE);
    ck_assert_uint_eq(used, strlen(r));
    ck_assert_uint_eq(rep.line_count, 9);
    ck_assert_int_eq(rep.ext_pipelining, 1);
    ck_assert_int_eq(rep.ext_size, 1);
    ck_assert_uint_eq(rep.ext_size_limit, 35882577ULL);
    ck_assert_int_eq(rep.ext_8bitmime, 1);
    ck_assert_int_eq(rep.ext_smtputf8, 1);
    ck_assert_int_eq(rep.ext_enhancedstatuscodes, 1);
    ck_assert_int_eq(rep.ext_starttls, 1);
    ck_assert_int_eq(rep.ext_auth_plain, 1);
    ck_assert_int_eq(rep.ext_auth_login, 1);
    ck_assert_int_eq(rep.has_enhanced, 0);
    ck_assert_int_eq(strncmp(rep.text, "mx.example.com Hello client [192.0.2.1]\npipelining\n", 51),
                     0);
    /* the old "AUTH=" form, and mechanisms that only start like ours */
    ck_assert_int_eq(parse("250-mx\r\n250 AUTH=PLAINX LOGIN\r\n", 1), DELIVER_REPLY_COMPLETE);
    ck_assert_int_eq(rep.ext_auth_plain, 0);
    ck_assert_int_eq(rep.ext_auth_login, 1);
    ck_assert_int_eq(parse("250-mx\r\n250 AUTH CRAM-MD5 plain\r\n", 1), DELIVER_REPLY_COMPLETE);
    ck_assert_int_eq(rep.ext_auth_plain, 1);
}
END_TEST

START_TEST(test_ehlo_edge_cases)
{
    /* SIZE without a limit */
    ck_assert_int_eq(parse("250-mx\r\n250 SIZE\r\n", 1), DELIVER_REPLY_COMPLETE);
    ck_assert_int_eq(rep.ext_size, 1);
    ck_assert_uint_eq(rep.ext_size_limit, 0);
    /* a huge SIZE saturates */
    ck_assert_int_eq(parse("250-mx\r\n250 SIZE 999999999999999999999999\r\n", 1), DELIVER_REPLY_COMPLETE);
    ck_assert_uint_eq(rep.ext_size_limit, ~0ULL);
    /* keywords only from line 2 on, whole words only */
    ck_assert_int_eq(parse("250-PIPELINING\r\n250 PIPELININGX\r\n", 1), DELIVER_REPLY_COMPLETE);
    ck_assert_int_eq(rep.ext_pipelining, 0);
    /* not collected when not asked for, nor from an error reply */
    ck_assert_int_eq(parse("250-mx\r\n250 PIPELINING\r\n", 0), DELIVER_REPLY_COMPLETE);
    ck_assert_int_eq(rep.ext_pipelining, 0);
    ck_assert_int_eq(parse("554-mx\r\n554 PIPELINING\r\n", 1), DELIVER_REPLY_COMPLETE);
    ck_assert_int_eq(rep.ext_pipelining, 0);
    /* single-line EHLO reply: no extensions */
    ck_assert_int_eq(parse("250 mx.example.com\r\n", 1), DELIVER_REPLY_COMPLETE);
    ck_assert_int_eq(rep.ext_size + rep.ext_pipelining + rep.ext_8bitmime, 0);
}
END_TEST

START_TEST(test_two_replies_in_buffer)
{
    const char *buf = "250-a\r\n250 b\r\n354 go\r\n";
    ck_assert_int_eq(parse(buf, 0), DELIVER_REPLY_COMPLETE);
    ck_assert_uint_eq(used, 14);
    ck_assert_int_eq(rep.code, 250);
    ck_assert_str_eq(rep.text, "a\nb");
    ck_assert_int_eq(parse(buf + used, 0), DELIVER_REPLY_COMPLETE);
    ck_assert_uint_eq(used, 8);
    ck_assert_int_eq(rep.code, 354);
    ck_assert_str_eq(rep.text, "go");
    /* pipelined replies, LF only */
    const char *p = "250 2.1.0 ok\n250 2.1.5 ok\n554 5.5.1 no\n";
    size_t off = 0;
    int codes[3];
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(parse(p + off, 0), DELIVER_REPLY_COMPLETE);
        codes[i] = rep.code;
        off += used;
    }
    ck_assert_uint_eq(off, strlen(p));
    ck_assert_int_eq(codes[0], 250);
    ck_assert_int_eq(codes[2], 554);
    ck_assert_int_eq(rep.enh_class, 5);
}
END_TEST

START_TEST(test_control_chars_in_text)
{
    static const char r[] = "550 a\0b\x1b" "c\r\n";
    ck_assert_int_eq(parse_n(r, sizeof(r) - 1, 0), DELIVER_REPLY_COMPLETE);
    ck_assert_str_eq(rep.text, "a?b?c");
    ck_assert_int_eq(parse("550 a\rb\r\n", 0), DELIVER_REPLY_COMPLETE);
    ck_assert_str_eq(rep.text, "a?b");
}
END_TEST

START_TEST(test_text_truncation)
{
    /* many lines: text is cut, nothing overflows, line count and consumed exact */
    char buf[8192];
    size_t n = 0;
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "250-%s\r\n",
                              "0123456789012345678901234567890123456789");
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "250 end\r\n");
    ck_assert_int_eq(parse_n(buf, n, 0), DELIVER_REPLY_COMPLETE);
    ck_assert_uint_eq(used, n);
    ck_assert_uint_eq(rep.line_count, 41);
    ck_assert_uint_eq(strlen(rep.text), DELIVER_REPLY_TEXT_MAX - 1);
    /* a cut never leaves half a UTF-8 sequence */
    char u[DELIVER_REPLY_TEXT_MAX + 64];
    memcpy(u, "250 xx", 6); /* two ASCII bytes so the cut falls inside a sequence */
    size_t k = 6;
    while (k + 2 < DELIVER_REPLY_TEXT_MAX + 32) {
        u[k++] = '\xc3';
        u[k++] = '\xa9';
    }
    memcpy(u + k, "\r\n", 2);
    ck_assert_int_eq(parse_n(u, k + 2, 0), DELIVER_REPLY_COMPLETE);
    size_t tl = strlen(rep.text);
    ck_assert_uint_eq(tl, DELIVER_REPLY_TEXT_MAX - 2);
    ck_assert_int_eq((unsigned char)rep.text[tl - 1], 0xa9);
}
END_TEST

START_TEST(test_format)
{
    char out[128];
    ck_assert_int_eq(parse("451 4.3.0 try again later\r\n", 0), DELIVER_REPLY_COMPLETE);
    int n = deliver_reply_format(&rep, out, sizeof(out));
    ck_assert_str_eq(out, "451 4.3.0 try again later");
    ck_assert_int_eq(n, 25);
    ck_assert_int_eq(parse("550-5.1.1 first\r\n550 5.1.1 second\r\n", 0), DELIVER_REPLY_COMPLETE);
    deliver_reply_format(&rep, out, sizeof(out));
    ck_assert_str_eq(out, "550 5.1.1 first / second");
    ck_assert_int_eq(parse("250\r\n", 0), DELIVER_REPLY_COMPLETE);
    deliver_reply_format(&rep, out, sizeof(out));
    ck_assert_str_eq(out, "250");
    ck_assert_int_eq(parse("220 hi there\r\n", 0), DELIVER_REPLY_COMPLETE);
    deliver_reply_format(&rep, out, sizeof(out));
    ck_assert_str_eq(out, "220 hi there");
    /* snprintf semantics */
    char small[6];
    n = deliver_reply_format(&rep, small, sizeof(small));
    ck_assert_int_eq(n, 12);
    ck_assert_str_eq(small, "220 h");
    ck_assert_int_eq(deliver_reply_format(&rep, NULL, 0), 12);
}
END_TEST

/* Every prefix and single-byte corruption of a reply: no crash, no overread,
 * and on COMPLETE a consumed count within the buffer. */
START_TEST(test_robust)
{
    const char *r = "250-mx.example.com\r\n250-SIZE 10\r\n250 2.0.0 ENHANCEDSTATUSCODES\r\n";
    size_t n = strlen(r);
    char buf[128];
    for (size_t k = 0; k < n; k++) {
        for (int b = 0; b < 256; b += 5) {
            memcpy(buf, r, n);
            buf[k] = (char)b;
            for (size_t len = k; len <= n; len += (len < n - 3 ? 7 : 1)) {
                enum deliver_reply_status st = parse_n(buf, len, 1);
                if (st == DELIVER_REPLY_COMPLETE)
                    ck_assert_uint_le(used, len);
            }
        }
    }
}
END_TEST

static Suite *reply_suite(void)
{
    Suite *s = suite_create("deliver_reply");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, test_single_line);
    tcase_add_test(tc, test_bare_code);
    tcase_add_test(tc, test_multi_line);
    tcase_add_test(tc, test_incomplete);
    tcase_add_test(tc, test_malformed);
    tcase_add_test(tc, test_line_too_long);
    tcase_add_test(tc, test_enhanced_codes);
    tcase_add_test(tc, test_not_enhanced);
    tcase_add_test(tc, test_ehlo_keywords);
    tcase_add_test(tc, test_ehlo_edge_cases);
    tcase_add_test(tc, test_two_replies_in_buffer);
    tcase_add_test(tc, test_control_chars_in_text);
    tcase_add_test(tc, test_text_truncation);
    tcase_add_test(tc, test_robust);
    suite_add_tcase(s, tc);
    tc = tcase_create("format");
    tcase_add_test(tc, test_format);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(reply_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
