/* check_plugin_message.c: unit tests of the message handle modules get (ec_message): header fields added, reading the content as it will be sent, the header section, replies, the delivery-side view. */
#include <check.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "momentum/ec_message.h"
#include "plugin/plugin_message.h"
#include "spool/spool.h"

/* Formats one field into a fresh buffer: its text, or NULL with errno. */
static char *field(const char *name, const char *value)
{
    char *out = NULL;
    size_t len = 0, cap = 0;
    if (plugin_message_format_field(name, value, &out, &len, &cap, VIPMTA_MESSAGE_ADDED_MAX) != 0) {
        free(out);
        return NULL;
    }
    out[len] = '\0'; /* room: the format reserves more than it writes */
    return out;
}

static void assert_field(const char *name, const char *value, const char *want)
{
    char *got = field(name, value);
    ck_assert_msg(got != NULL, "refused %s: %s (%s)", name, value, strerror(errno));
    ck_assert_str_eq(got, want);
    free(got);
}

static void assert_refused(const char *name, const char *value, int err)
{
    errno = 0;
    char *got = field(name, value);
    ck_assert_msg(got == NULL, "accepted %s: %s", name ? name : "(null)", value ? value : "(null)");
    ck_assert_int_eq(errno, err);
}

START_TEST(test_field_format)
{
    assert_field("X-A", "1", "X-A: 1\r\n");
    assert_field("X-A", "", "X-A:\r\n");
    /* a value starting with white space is written as it is (a signer knows the octets) */
    assert_field("DKIM-Signature", " v=1; a=rsa-sha256;", "DKIM-Signature: v=1; a=rsa-sha256;\r\n");
    assert_field("X-T", "\tx", "X-T:\tx\r\n");
    /* folding: CRLF or LF, then white space */
    assert_field("X-F", "a\r\n\tb", "X-F: a\r\n\tb\r\n");
    assert_field("X-F", "a\n b\n\tc", "X-F: a\r\n b\r\n\tc\r\n");
    /* the longest line there may be: 998 octets */
    char v[1100];
    memset(v, 'x', sizeof(v));
    v[998 - 5] = '\0'; /* "X-L: " + 993 */
    char *got = field("X-L", v);
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(strlen(got), 1000);
    free(got);
    v[998 - 5] = 'x';
    v[998 - 4] = '\0';
    assert_refused("X-L", v, E2BIG);
    /* a long value folded into short lines is fine */
    for (int i = 100; i < 1000; i += 100)
        memcpy(v + i - 2, "\r\n ", 3);
    v[1000] = '\0';
    got = field("X-L", v);
    ck_assert_ptr_nonnull(got);
    free(got);

    assert_refused(NULL, "1", EINVAL);
    assert_refused("X-A", NULL, EINVAL);
    assert_refused("", "1", EINVAL);
    assert_refused("X A", "1", EINVAL);
    assert_refused("X:A", "1", EINVAL);
    assert_refused("X-\x80", "1", EINVAL);
    assert_refused("X-A", "1\r\nBcc: x", EINVAL);   /* a line break that does not fold */
    assert_refused("X-A", "1\nBcc: x", EINVAL);
    assert_refused("X-A", "1\rx", EINVAL);          /* a bare CR */
    assert_refused("X-A", "1\r\n", EINVAL);         /* ends with a line break */
    assert_refused("X-A", "1\r\n \r\n x", EINVAL);  /* a line of white space only */
    assert_refused("X-A", "1\r\n ", EINVAL);
    assert_refused("X-A", "caf\xc3\xa9", EINVAL);   /* 8-bit */
    assert_refused("X-A", "a\x01", EINVAL);
    memset(v, 'n', 80);
    v[80] = '\0';
    assert_refused(v, "1", E2BIG);

    /* the total of a message's fields is bounded */
    char *out = NULL;
    size_t len = 0, cap = 0;
    memset(v, 'y', 900);
    v[900] = '\0';
    int n = 0;
    while (plugin_message_format_field("X-Big", v, &out, &len, &cap, VIPMTA_MESSAGE_ADDED_MAX) == 0)
        n++;
    ck_assert_int_eq(errno, E2BIG);
    ck_assert_int_eq(n, VIPMTA_MESSAGE_ADDED_MAX / 909);
    ck_assert_uint_le(len, VIPMTA_MESSAGE_ADDED_MAX);
    free(out);
}
END_TEST

static const char BODY[] = "Received: from c.example\r\nSubject: hi\r\n\r\nHello.\r\n";

/* The message being received lives in a spool writer: a spool of the
 * test's own, its bodies in memory (loop 1) or in their files (loop 0). */
static char spool_dir[64];
static struct event_base *spool_base;

static void spool_setup(int in_memory)
{
    char err[256];
    strcpy(spool_dir, "/tmp/check_plugin_message.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(spool_dir));
    spool_set_memory(in_memory ? 1u << 20 : 0);
    spool_base = event_base_new();
    ck_assert_ptr_nonnull(spool_base);
    ck_assert_msg(spool_init(spool_dir, spool_base, err, sizeof(err)) == 0, "spool_init: %s", err);
}

static void spool_teardown(void)
{
    spool_shutdown();
    event_base_free(spool_base);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", spool_dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* A message being received whose body is `text`. */
static struct spool_writer *body_writer(const char *text)
{
    struct spool_writer *w = spool_writer_open();
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(spool_writer_write(w, text, strlen(text)), 0);
    return w;
}

START_TEST(test_accept_message)
{
    spool_setup(_i);
    struct spool_rcpt rcpts[2] = {{.address = "b@x.example"}, {.address = "c@y.example"}};
    struct spool_writer *w = body_writer(BODY);
    ec_message msg;
    plugin_message_init_accept(&msg, "0123456789abcdef", "a@s.example", rcpts, 2, w, strlen(BODY));
    ck_assert_str_eq(vipmta_message_id(&msg), "0123456789abcdef");
    ck_assert_str_eq(vipmta_message_sender(&msg), "a@s.example");
    ck_assert_uint_eq(vipmta_message_recipient_count(&msg), 2);
    ck_assert_str_eq(vipmta_message_recipient(&msg, 1), "c@y.example");
    ck_assert_ptr_null(vipmta_message_recipient(&msg, 2));
    ck_assert_uint_eq(vipmta_message_size(&msg), strlen(BODY));

    /* adding: only while the core allows it */
    errno = 0;
    ck_assert_int_eq(vipmta_message_add_header(&msg, "X-A", "1"), -1);
    ck_assert_int_eq(errno, EPERM);
    ck_assert_ptr_null(vipmta_message_suspend(&msg));
    ck_assert_int_eq(errno, EPERM);
    msg.may_add = 1;
    ck_assert_int_eq(vipmta_message_add_header(&msg, "X-A", "1"), 0);
    ck_assert_int_eq(vipmta_message_add_header(&msg, "X-B", "two\n\tlines"), 0);
    ck_assert_int_eq(vipmta_message_add_header(&msg, "X B", "bad"), -1);
    ck_assert_uint_eq(vipmta_message_added_headers(&msg), 2);
    static const char added[] = "X-A: 1\r\nX-B: two\r\n\tlines\r\n";
    ck_assert_uint_eq(vipmta_message_size(&msg), strlen(added) + strlen(BODY));

    /* reading as it will be sent: the added fields, then the body, across the seam */
    char want[512], buf[512];
    snprintf(want, sizeof(want), "%s%s", added, BODY);
    size_t total = strlen(want);
    for (size_t off = 0; off <= total + 2; off += 3) {
        for (size_t len = 0; len < 40; len += 7) {
            ssize_t n = vipmta_message_read(&msg, off, buf, len);
            size_t expect = off >= total ? 0 : (total - off < len ? total - off : len);
            ck_assert_int_eq(n, (ssize_t)expect);
            ck_assert(memcmp(buf, want + (off < total ? off : total), expect) == 0);
        }
    }
    size_t hlen;
    char *h = vipmta_message_get_headers(&msg, &hlen);
    ck_assert_ptr_nonnull(h);
    ck_assert_str_eq(h, "X-A: 1\r\nX-B: two\r\n\tlines\r\nReceived: from c.example\r\nSubject: hi\r\n\r\n");
    ck_assert_uint_eq(hlen, strlen(h));
    free(h);

    /* what the spool gets */
    size_t alen;
    char *taken = plugin_message_take_added(&msg, &alen);
    ck_assert_uint_eq(alen, strlen(added));
    ck_assert(memcmp(taken, added, alen) == 0);
    free(taken);
    ck_assert_uint_eq(vipmta_message_added_headers(&msg), 0);
    plugin_message_release(&msg);
    spool_writer_abort(w);
    spool_teardown();
}
END_TEST

/* A message with no empty line: its header section is all of it; one with a
 * body and no field: the empty line alone. */
START_TEST(test_header_section)
{
    spool_setup(_i);
    struct spool_rcpt r = {.address = "b@x.example"};
    static const char *const bodies[] = {"Subject: x\r\nNo-Body: y\r\n", "\r\nbody only\r\n"};
    static const char *const want[] = {"Subject: x\r\nNo-Body: y\r\n", "\r\n"};
    for (int i = 0; i < 2; i++) {
        struct spool_writer *w = body_writer(bodies[i]);
        ec_message msg;
        plugin_message_init_accept(&msg, "0123456789abcdef", "", &r, 1, w, strlen(bodies[i]));
        char *h = vipmta_message_get_headers(&msg, NULL);
        ck_assert_ptr_nonnull(h);
        ck_assert_str_eq(h, want[i]);
        free(h);
        plugin_message_release(&msg);
        spool_writer_abort(w);
    }
    /* a header section larger than the chunk read at a time */
    size_t big = 100000;
    char *text = malloc(big + 16);
    for (size_t i = 0; i < big; i += 50)
        memcpy(text + i, "X-Filler: 01234567890123456789012345678901234567\r\n", 50);
    strcpy(text + big, "\r\nbody\r\n");
    struct spool_writer *w = body_writer(text);
    ec_message msg;
    plugin_message_init_accept(&msg, "0123456789abcdef", "", &r, 1, w, strlen(text));
    size_t len;
    char *h = vipmta_message_get_headers(&msg, &len);
    ck_assert_uint_eq(len, big + 2);
    ck_assert(memcmp(h, text, len) == 0);
    free(h);
    free(text);
    plugin_message_release(&msg);
    spool_writer_abort(w);
    spool_teardown();
}
END_TEST

START_TEST(test_queued_view)
{
    static const char added[] = "X-A: 1\r\nX-B: 2\r\n\t3\r\n";
    ec_message msg;
    plugin_message_init_queued(&msg, "0123456789abcdef", "a@s.example", "b@x.example", 2, "pool",
                               0, added, strlen(added));
    ck_assert_uint_eq(vipmta_message_recipient_count(&msg), 1);
    ck_assert_str_eq(vipmta_message_recipient(&msg, 0), "b@x.example");
    ck_assert_int_eq(vipmta_message_binding(&msg), 2);
    ck_assert_str_eq(vipmta_message_binding_group(&msg), "pool");
    ck_assert_uint_eq(vipmta_message_added_headers(&msg), 2);
    ck_assert_uint_eq(vipmta_message_size(&msg), strlen(added));
    errno = 0;
    ck_assert_int_eq(vipmta_message_add_header(&msg, "X-C", "no"), -1);
    ck_assert_int_eq(errno, EPERM);
    char buf[64];
    ck_assert_int_eq(vipmta_message_read(&msg, 0, buf, sizeof(buf)), (ssize_t)strlen(added));
    plugin_message_release(&msg);
    ck_assert_str_eq(added, "X-A: 1\r\nX-B: 2\r\n\t3\r\n"); /* the queue's, untouched */
}
END_TEST

START_TEST(test_replies)
{
    ck_assert(plugin_message_reply_ok("550 5.7.1 no", '5'));
    ck_assert(plugin_message_reply_ok("554", '5'));
    ck_assert(plugin_message_reply_ok("451 4.7.1 later", '4'));
    ck_assert(plugin_message_reply_ok("550 rejected", '5'));
    ck_assert(!plugin_message_reply_ok("451 4.7.1 later", '5'));
    ck_assert(!plugin_message_reply_ok("550 4.7.1 mixed", '5'));
    ck_assert(!plugin_message_reply_ok("55 short", '5'));
    ck_assert(!plugin_message_reply_ok("550-5.7.1 multi", '5'));
    ck_assert(!plugin_message_reply_ok("550 5.7.1 two\r\n550 lines", '5'));
    ck_assert(!plugin_message_reply_ok(NULL, '5'));
    char long_reply[PLUGIN_MESSAGE_REPLY_MAX + 8];
    memset(long_reply, 'x', sizeof(long_reply) - 1);
    long_reply[sizeof(long_reply) - 1] = '\0';
    memcpy(long_reply, "550 ", 4);
    ck_assert(!plugin_message_reply_ok(long_reply, '5'));

    validate_context ctx = {{0}};
    ck_assert_ptr_null(vipmta_validate_reply(&ctx));
    vipmta_validate_set_reply(&ctx, "550 5.7.1 no");
    ck_assert_str_eq(vipmta_validate_reply(&ctx), "550 5.7.1 no");
    vipmta_validate_set_reply(&ctx, NULL);
    ck_assert_ptr_null(vipmta_validate_reply(&ctx));

    accept_construct ac = {.client_address = "192.0.2.1", .helo = "c.example"};
    ck_assert_str_eq(vipmta_accept_client_address(&ac), "192.0.2.1");
    ck_assert_str_eq(vipmta_accept_helo(&ac), "c.example");
    ck_assert_ptr_null(vipmta_accept_auth_user(&ac));
    ck_assert_ptr_null(vipmta_accept_tls_version(&ac));
}
END_TEST

START_TEST(test_momentum_envelope)
{
    struct spool_rcpt rcpts[2] = {{.address = "bob@x.example"}, {.address = "c@y.example"}};
    ec_message msg;
    char local[64], domain[64];
    int isnull = -1;
    plugin_message_init_accept(&msg, "0123456789abcdef", "alice@s.example", rcpts, 2, NULL, 0);
    ck_assert_int_eq(ec_message_get_envelope(&msg, EC_MSG_ENV_FROM, local, 64, domain, 64, &isnull), 1);
    ck_assert_str_eq(local, "alice");
    ck_assert_str_eq(domain, "s.example");
    ck_assert_int_eq(isnull, 0);
    ck_assert_int_eq(ec_message_get_envelope(&msg, EC_MSG_ENV_TO, local, 64, domain, 64, NULL), 1);
    ck_assert_str_eq(local, "bob");
    ck_assert_str_eq(domain, "x.example");
    ck_assert_int_eq(ec_message_get_envelope(&msg, EC_MSG_ENV_TO | EC_MSG_ENV_COMPLETE, local, 64,
                                             NULL, 0, NULL), 1);
    ck_assert_str_eq(local, "bob@x.example");
    ck_assert_int_eq(ec_message_get_envelope(&msg, EC_MSG_ENV_FROM | EC_MSG_ENV_TO, local, 64,
                                             domain, 64, NULL), 0);
    ck_assert_int_eq(ec_message_get_envelope(&msg, EC_MSG_ENV_FROM, local, 5, domain, 64, NULL), 0);
    ck_assert_int_eq(ec_message_get_envelope(&msg, EC_MSG_ENV_FROM, local, 6, domain, 64, NULL), 1);
    ck_assert_uint_eq(ec_message_get_message_size(&msg), 0);
    plugin_message_release(&msg);

    plugin_message_init_accept(&msg, "0123456789abcdef", "", rcpts, 1, NULL, 0);
    ck_assert_int_eq(ec_message_get_envelope(&msg, EC_MSG_ENV_FROM, local, 64, domain, 64, &isnull), 1);
    ck_assert_int_eq(isnull, 1);
    ck_assert_str_eq(local, "");
    ck_assert_str_eq(domain, "");
    plugin_message_release(&msg);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("plugin_message");
    TCase *tc = tcase_create("message");
    tcase_add_test(tc, test_field_format);
    tcase_add_loop_test(tc, test_accept_message, 0, 2);
    tcase_add_loop_test(tc, test_header_section, 0, 2);
    tcase_add_test(tc, test_queued_view);
    tcase_add_test(tc, test_replies);
    tcase_add_test(tc, test_momentum_envelope);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
