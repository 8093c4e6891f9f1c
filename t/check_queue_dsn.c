/* check_queue_dsn.c: Check suite for the RFC 3464 bounce composer (queue_dsn_compose). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue/queue_dsn_compose.h"

#define NOW ((time_t)1700000000)     /* Tue, 14 Nov 2023 22:13:20 +0000 */
#define ARRIVAL ((time_t)1699990000) /* Tue, 14 Nov 2023 19:26:40 +0000 */

static const char orig_headers[] = "Received: from client by mx\n"
                                   "From: Alice <alice@example.org>\r\n"
                                   "Subject: hello\r\n"
                                   "\r\n"
                                   "the body must not appear\r\n";

static struct queue_dsn_recipient two_rcpts[] = {
    {"bob@example.com", "5.1.1", "smtp; 550 5.1.1 <bob@example.com>: no such user", "mx.example.com"},
    {"carol@example.net", NULL, "smtp; 552 5.2.2 mailbox full", "mx2.example.net"},
};

static struct queue_dsn_request base_request(void)
{
    struct queue_dsn_request r = {
        .reporting_mta = "mta.example.org",
        .queue_id = "Q123ABC",
        .original_sender = "alice@example.org",
        .arrival = ARRIVAL,
        .rcpts = two_rcpts,
        .rcpt_count = 2,
        .original_headers = orig_headers,
        .original_headers_len = sizeof(orig_headers) - 1,
        .now = NOW,
    };
    return r;
}

static char *msg;
static size_t msg_len;

static void compose(const struct queue_dsn_request *r)
{
    free(msg);
    msg = queue_dsn_compose(r, &msg_len);
    ck_assert_ptr_nonnull(msg);
    ck_assert_uint_eq(strlen(msg), msg_len); /* NUL-terminated, no NUL inside */
}

static void teardown(void)
{
    free(msg);
    msg = NULL;
}

/* The value of the first field `name` at or after `from` (a line start),
 * unfolded, in a static buffer; NULL when absent. */
static const char *field_from(const char *from, const char *name)
{
    static char val[4096];
    size_t nl = strlen(name);
    const char *p = from;
    for (;;) {
        if (strncmp(p, name, nl) == 0 && p[nl] == ':')
            break;
        p = strstr(p, "\r\n");
        if (!p)
            return NULL;
        p += 2;
    }
    p += nl + 1;
    while (*p == ' ')
        p++;
    size_t n = 0;
    while (*p && n + 1 < sizeof(val)) {
        if (p[0] == '\r' && p[1] == '\n') {
            if (p[2] == ' ' || p[2] == '\t') {
                p += 2; /* unfold: drop the CRLF, keep the white space */
                continue;
            }
            break;
        }
        val[n++] = *p++;
    }
    val[n] = '\0';
    return val;
}

static const char *field(const char *name)
{
    return field_from(msg, name);
}

/* The body of the MIME part whose Content-Type starts with `type`. */
static const char *part(const char *type)
{
    char needle[128];
    snprintf(needle, sizeof(needle), "Content-Type: %s", type);
    const char *p = strstr(msg, needle);
    if (!p)
        return NULL;
    p = strstr(p, "\r\n\r\n");
    return p ? p + 4 : NULL;
}

static void boundary_of(char *out, size_t cap)
{
    const char *ct = field("Content-Type");
    ck_assert_ptr_nonnull(ct);
    const char *b = strstr(ct, "boundary=\"");
    ck_assert_ptr_nonnull(b);
    b += 10;
    const char *e = strchr(b, '"');
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_lt((size_t)(e - b), cap);
    memcpy(out, b, (size_t)(e - b));
    out[e - b] = '\0';
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void assert_crlf_and_line_lengths(void)
{
    size_t col = 0;
    for (size_t i = 0; i < msg_len; i++) {
        if (msg[i] == '\n') {
            ck_assert_msg(i > 0 && msg[i - 1] == '\r', "bare LF at %zu", i);
            col = 0;
            continue;
        }
        if (msg[i] == '\r')
            ck_assert_msg(i + 1 < msg_len && msg[i + 1] == '\n', "bare CR at %zu", i);
        else
            col++;
        ck_assert_msg(col <= 998, "line longer than 998 octets ending at %zu", i);
    }
    ck_assert_int_eq(msg[msg_len - 1], '\n');
}

START_TEST(test_headers)
{
    struct queue_dsn_request r = base_request();
    compose(&r);
    ck_assert_str_eq(field("From"), "\"Mail Delivery System\" <MAILER-DAEMON@mta.example.org>");
    ck_assert_str_eq(field("To"), "<alice@example.org>");
    ck_assert_str_eq(field("Subject"), "Undelivered Mail Returned to Sender");
    ck_assert_str_eq(field("Date"), "Tue, 14 Nov 2023 22:13:20 +0000");
    ck_assert_str_eq(field("MIME-Version"), "1.0");
    ck_assert_str_eq(field("Auto-Submitted"), "auto-replied");
    const char *mid = field("Message-ID");
    ck_assert_int_eq(strncmp(mid, "<Q123ABC.dsn.", 13), 0);
    ck_assert_uint_gt(strlen(mid), strlen("<Q123ABC.dsn.@mta.example.org>"));
    ck_assert_str_eq(mid + strlen(mid) - strlen("@mta.example.org>"), "@mta.example.org>");
    const char *ct = field("Content-Type");
    ck_assert_int_eq(strncmp(ct, "multipart/report; report-type=delivery-status;", 46), 0);
    ck_assert_ptr_nonnull(strstr(ct, "boundary=\""));
    /* the header section ends before the first part */
    const char *end = strstr(msg, "\r\n\r\n");
    ck_assert_ptr_nonnull(end);
    ck_assert_ptr_null(memmem(msg, (size_t)(end - msg), "Final-Recipient", 15));
    ck_assert_ptr_null(field("Content-Transfer-Encoding")); /* all 7-bit */
}
END_TEST

START_TEST(test_parts)
{
    struct queue_dsn_request r = base_request();
    char b[128], delim[160], close[160];
    compose(&r);
    boundary_of(b, sizeof(b));
    snprintf(delim, sizeof(delim), "\r\n--%s\r\n", b);
    snprintf(close, sizeof(close), "\r\n--%s--\r\n", b);
    ck_assert_uint_eq(count(msg, delim), 3);
    ck_assert_uint_eq(count(msg, close), 1);
    ck_assert_str_eq(msg + msg_len - strlen(close), close); /* the close delimiter ends it */
    /* the parts in order */
    const char *t = strstr(msg, "Content-Type: text/plain");
    const char *d = strstr(msg, "Content-Type: message/delivery-status");
    const char *h = strstr(msg, "Content-Type: text/rfc822-headers");
    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_nonnull(d);
    ck_assert_ptr_nonnull(h);
    ck_assert_msg(t < d, "order");
    ck_assert_msg(d < h, "order");
    /* the human part names each recipient and its diagnostic */
    const char *text = part("text/plain");
    ck_assert_ptr_nonnull(strstr(text, "<bob@example.com>:"));
    ck_assert_ptr_nonnull(strstr(text, "<carol@example.net>:"));
    ck_assert_ptr_nonnull(strstr(text, "mailbox full"));
    ck_assert_msg(strstr(text, "carol") < d, "order");
}
END_TEST

START_TEST(test_per_message_fields)
{
    struct queue_dsn_request r = base_request();
    compose(&r);
    const char *ds = part("message/delivery-status");
    ck_assert_ptr_nonnull(ds);
    ck_assert_str_eq(field_from(ds, "Reporting-MTA"), "dns; mta.example.org");
    ck_assert_str_eq(field_from(ds, "X-Vipmta-Queue-ID"), "Q123ABC");
    ck_assert_str_eq(field_from(ds, "Arrival-Date"), "Tue, 14 Nov 2023 19:26:40 +0000");
    ck_assert_ptr_null(field_from(ds, "Original-Envelope-Id"));
    /* no arrival time: no Arrival-Date */
    r.arrival = 0;
    compose(&r);
    ck_assert_ptr_null(field_from(part("message/delivery-status"), "Arrival-Date"));
}
END_TEST

START_TEST(test_per_recipient_fields)
{
    struct queue_dsn_request r = base_request();
    compose(&r);
    const char *ds = part("message/delivery-status");
    ck_assert_uint_eq(count(ds, "\r\nFinal-Recipient: "), 2);
    ck_assert_uint_eq(count(ds, "\r\nAction: failed\r\n"), 2);
    /* each recipient block starts after an empty line */
    const char *b1 = strstr(ds, "\r\n\r\nFinal-Recipient: rfc822; bob@example.com\r\n");
    const char *b2 = strstr(ds, "\r\n\r\nFinal-Recipient: rfc822; carol@example.net\r\n");
    ck_assert_ptr_nonnull(b1);
    ck_assert_ptr_nonnull(b2);
    ck_assert_msg(b1 < b2, "order");
    b1 += 4;
    b2 += 4;
    ck_assert_str_eq(field_from(b1, "Final-Recipient"), "rfc822; bob@example.com");
    ck_assert_str_eq(field_from(b1, "Action"), "failed");
    ck_assert_str_eq(field_from(b1, "Status"), "5.1.1");
    ck_assert_str_eq(field_from(b1, "Remote-MTA"), "dns; mx.example.com");
    ck_assert_str_eq(field_from(b1, "Diagnostic-Code"),
                     "smtp; 550 5.1.1 <bob@example.com>: no such user");
    ck_assert_str_eq(field_from(b2, "Final-Recipient"), "rfc822; carol@example.net");
    ck_assert_str_eq(field_from(b2, "Status"), "5.2.2"); /* derived from the reply */
    ck_assert_str_eq(field_from(b2, "Remote-MTA"), "dns; mx2.example.net");
    ck_assert_str_eq(field_from(b2, "Diagnostic-Code"), "smtp; 552 5.2.2 mailbox full");
}
END_TEST

static const char *status_for(const char *status, const char *diag)
{
    static char out[64];
    struct queue_dsn_recipient one = {"x@example.com", status, diag, NULL};
    struct queue_dsn_request r = base_request();
    r.rcpts = &one;
    r.rcpt_count = 1;
    compose(&r);
    const char *s = field_from(part("message/delivery-status"), "Status");
    ck_assert_ptr_nonnull(s);
    snprintf(out, sizeof(out), "%s", s);
    return out;
}

START_TEST(test_status_derivation)
{
    ck_assert_str_eq(status_for(NULL, NULL), "5.0.0");
    ck_assert_str_eq(status_for(NULL, "smtp; 550 5.7.1 relay denied"), "5.7.1");
    ck_assert_str_eq(status_for(NULL, "smtp; 550-5.7.1 relay denied"), "5.7.1");
    ck_assert_str_eq(status_for(NULL, "550 5.1.2 bad domain"), "5.1.2");
    ck_assert_str_eq(status_for(NULL, "smtp; 550 no such user"), "5.0.0");
    ck_assert_str_eq(status_for(NULL, "smtp; 451 try later"), "4.0.0");
    ck_assert_str_eq(status_for(NULL, "smtp; 451 4.4.1 timeout"), "4.4.1");
    ck_assert_str_eq(status_for(NULL, "smtp; 550 4.1.1 inconsistent"), "5.0.0");
    ck_assert_str_eq(status_for(NULL, "5.4.7 delivery time expired"), "5.4.7");
    ck_assert_str_eq(status_for(NULL, "host unreachable; gave up"), "5.0.0");
    ck_assert_str_eq(status_for("9.9.9", "smtp; 550 5.1.1 x"), "5.1.1"); /* bad status ignored */
    ck_assert_str_eq(status_for("5.1.1\r\nX: y", NULL), "5.0.0");
    ck_assert_str_eq(status_for("4.7.0", "smtp; 550 5.1.1 x"), "4.7.0");
}
END_TEST

START_TEST(test_diagnostic_types)
{
    struct queue_dsn_recipient one = {"x@example.com", NULL, "5.4.7 delivery time expired", NULL};
    struct queue_dsn_request r = base_request();
    r.rcpts = &one;
    r.rcpt_count = 1;
    compose(&r);
    const char *ds = part("message/delivery-status");
    ck_assert_str_eq(field_from(ds, "Diagnostic-Code"), "X-Vipmta; 5.4.7 delivery time expired");
    ck_assert_ptr_null(field_from(ds, "Remote-MTA"));
    one.diagnostic = "451 4.4.2 connection dropped";
    compose(&r);
    ck_assert_str_eq(field_from(part("message/delivery-status"), "Diagnostic-Code"),
                     "smtp; 451 4.4.2 connection dropped");
    one.diagnostic = NULL;
    compose(&r);
    ck_assert_ptr_null(field_from(part("message/delivery-status"), "Diagnostic-Code"));
}
END_TEST

START_TEST(test_crlf_everywhere)
{
    struct queue_dsn_request r = base_request();
    compose(&r);
    assert_crlf_and_line_lengths();
    /* the original headers' bare LF became CRLF; the body was left out */
    const char *h = part("text/rfc822-headers");
    ck_assert_ptr_nonnull(h);
    static const char want[] = "Received: from client by mx\r\n"
                               "From: Alice <alice@example.org>\r\n"
                               "Subject: hello\r\n";
    ck_assert_int_eq(strncmp(h, want, sizeof(want) - 1), 0);
    ck_assert_ptr_null(strstr(msg, "the body must not appear"));
    /* old Mac line ends too */
    static const char cr_headers[] = "A: 1\rB: 2\r";
    r.original_headers = cr_headers;
    r.original_headers_len = sizeof(cr_headers) - 1;
    compose(&r);
    assert_crlf_and_line_lengths();
    ck_assert_int_eq(strncmp(part("text/rfc822-headers"), "A: 1\r\nB: 2\r\n", 12), 0);
}
END_TEST

START_TEST(test_no_long_lines)
{
    size_t big = 5000;
    char *diag = malloc(big + 32), *diag2 = malloc(big + 32), *hdr = malloc(3 * big);
    char *addr = malloc(big);
    ck_assert_ptr_nonnull(diag);
    ck_assert_ptr_nonnull(diag2);
    ck_assert_ptr_nonnull(hdr);
    ck_assert_ptr_nonnull(addr);
    /* one unbreakable word */
    strcpy(diag, "smtp; 550 ");
    memset(diag + 10, 'w', big);
    diag[10 + big] = '\0';
    /* many short words */
    strcpy(diag2, "smtp; 550 5.0.0");
    for (size_t i = 15; i < big; i += 4)
        memcpy(diag2 + i, " abc", 4);
    diag2[big] = '\0';
    /* a very long header line and a short one after it */
    memset(hdr, 'h', 2 * big);
    memcpy(hdr, "X-Long: ", 8);
    memcpy(hdr + 2 * big, "\r\nY: 1\r\n", 9);
    /* an absurdly long address and host */
    memset(addr, 'a', big - 20);
    strcpy(addr + big - 20, "@example.com");
    struct queue_dsn_recipient rc[3] = {
        {addr, NULL, diag, addr},
        {"b@example.com", NULL, diag2, "mx.example.com"},
        {"c@example.com", NULL, diag, NULL},
    };
    struct queue_dsn_request r = base_request();
    r.rcpts = rc;
    r.rcpt_count = 3;
    r.original_headers = hdr;
    r.original_headers_len = strlen(hdr);
    r.reporting_mta = addr;
    compose(&r);
    assert_crlf_and_line_lengths();
    /* the long header line was cut at 998 octets; the next line survives */
    const char *h = part("text/rfc822-headers");
    ck_assert_ptr_nonnull(h);
    ck_assert_ptr_eq(strstr(h, "\r\n"), h + 998);
    ck_assert_int_eq(strncmp(h + 1000, "Y: 1\r\n", 6), 0);
    /* the folded diagnostic keeps its words */
    const char *d = strstr(part("message/delivery-status"), "Final-Recipient: rfc822; b@example.com");
    ck_assert_ptr_nonnull(d);
    const char *v = field_from(d, "Diagnostic-Code");
    ck_assert_int_eq(strncmp(v, "smtp; 550 5.0.0 abc abc abc", 27), 0);
    ck_assert_ptr_null(strstr(v, "  "));
    ck_assert_str_eq(field_from(d, "Status"), "5.0.0");
    free(diag);
    free(diag2);
    free(hdr);
    free(addr);
}
END_TEST

START_TEST(test_diagnostic_sanitised)
{
    struct queue_dsn_recipient one = {
        "bob@example.com", NULL,
        "smtp; 550 5.1.1 bad\r\nBcc: evil@x.example\r\n\r\n--injected\nboundary\rend\t\x01!",
        "mx.example.com\r\nX-Evil: 1"};
    struct queue_dsn_request r = base_request();
    r.rcpts = &one;
    r.rcpt_count = 1;
    r.original_sender = "alice@example.org>\r\nBcc: evil@x.example";
    r.queue_id = "Q1\r\nX-Evil: 2";
    compose(&r);
    assert_crlf_and_line_lengths();
    ck_assert_ptr_null(strstr(msg, "\r\nBcc:"));
    ck_assert_ptr_null(strstr(msg, "\r\nX-Evil"));
    ck_assert_ptr_null(strstr(msg, "\r\n--injected"));
    ck_assert_ptr_null(strstr(msg, "\r\nboundary"));
    const char *ds = part("message/delivery-status");
    ck_assert_str_eq(field_from(ds, "Diagnostic-Code"),
                     "smtp; 550 5.1.1 bad Bcc: evil@x.example --injected boundary end !");
    ck_assert_str_eq(field_from(ds, "Status"), "5.1.1");
    ck_assert_str_eq(field_from(ds, "Remote-MTA"), "dns; mx.example.com__X-Evil:_1");
    ck_assert_str_eq(field("To"), "<alice@example.org>??Bcc: evil@x.example>");
}
END_TEST

START_TEST(test_utf8_recipient)
{
    struct queue_dsn_recipient one = {"j\xc3\xb8rn+x@b\xc3\xbc" "cher.example", NULL, "smtp; 550 5.1.1 unknown",
                                NULL};
    struct queue_dsn_request r = base_request();
    r.rcpts = &one;
    r.rcpt_count = 1;
    r.original_headers = NULL;
    r.original_headers_len = 0;
    compose(&r);
    assert_crlf_and_line_lengths();
    const char *ds = part("message/delivery-status");
    ck_assert_str_eq(field_from(ds, "Final-Recipient"),
                     "utf-8; j\\x{F8}rn\\x{2B}x@b\\x{FC}cher.example");
    /* the status part stays 7-bit; the human part is UTF-8 */
    const char *end = strstr(ds, "\r\n--");
    ck_assert_ptr_nonnull(end);
    for (const char *p = ds; p < end; p++)
        ck_assert_int_lt((unsigned char)*p, 0x80);
    ck_assert_ptr_nonnull(strstr(msg, "Content-Type: text/plain; charset=utf-8\r\n"
                                      "Content-Transfer-Encoding: 8bit\r\n"));
    ck_assert_str_eq(field("Content-Transfer-Encoding"), "8bit");
    /* no headers given: no third part */
    ck_assert_ptr_null(strstr(msg, "text/rfc822-headers"));
    char b[128], delim[160];
    boundary_of(b, sizeof(b));
    snprintf(delim, sizeof(delim), "\r\n--%s\r\n", b);
    ck_assert_uint_eq(count(msg, delim), 2);
}
END_TEST

START_TEST(test_unique_ids_and_boundary)
{
    struct queue_dsn_request r = base_request();
    char mid1[256], b1[128], b2[128], guess[160];
    compose(&r);
    snprintf(mid1, sizeof(mid1), "%s", field("Message-ID"));
    boundary_of(b1, sizeof(b1));
    compose(&r);
    ck_assert_str_ne(field("Message-ID"), mid1);
    boundary_of(b2, sizeof(b2));
    ck_assert_str_ne(b1, b2);
    /* boundaries look like "=_vipmta-dsn_<time>_<pid>_<serial>_<salt>": put
     * the next one into the original headers; the composer must pick another */
    unsigned serial;
    char *last = strrchr(b2, '_');
    *last = '\0';
    char *ser = strrchr(b2, '_');
    ck_assert_int_eq(sscanf(ser + 1, "%x", &serial), 1);
    snprintf(guess, sizeof(guess), "X-Trap: --=_vipmta-dsn_%llx_%x_%x_0\r\n", (unsigned long long)NOW,
             (unsigned)getpid(), serial + 1);
    r.original_headers = guess;
    r.original_headers_len = strlen(guess);
    compose(&r);
    boundary_of(b1, sizeof(b1));
    ck_assert_ptr_null(strstr(guess, b1));
    ck_assert_str_eq(b1 + strlen(b1) - 2, "_1");
}
END_TEST

static Suite *dsn_suite(void)
{
    Suite *s = suite_create("dsn");
    TCase *tc = tcase_create("compose");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_headers);
    tcase_add_test(tc, test_parts);
    tcase_add_test(tc, test_per_message_fields);
    tcase_add_test(tc, test_per_recipient_fields);
    tcase_add_test(tc, test_status_derivation);
    tcase_add_test(tc, test_diagnostic_types);
    tcase_add_test(tc, test_crlf_everywhere);
    tcase_add_test(tc, test_no_long_lines);
    tcase_add_test(tc, test_diagnostic_sanitised);
    tcase_add_test(tc, test_utf8_recipient);
    tcase_add_test(tc, test_unique_ids_and_boundary);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(dsn_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
