/* check_smtpd_limits.c: Check suite for the SMTP server's per-client key (max_sessions_per_ip: IPv4 address, IPv6 network). */
#include <arpa/inet.h>
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "smtpd/smtpd_session.h"

static void key_of(const char *ip, unsigned prefix, unsigned char key[16], int *family)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        ck_assert_int_eq(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        ck_assert_int_eq(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
    }
    ck_assert_int_eq(smtpd_client_key((struct sockaddr *)&ss, prefix, key, family), 0);
}

static int same_key(const char *a, const char *b, unsigned prefix)
{
    unsigned char ka[16], kb[16];
    int fa, fb;
    key_of(a, prefix, ka, &fa);
    key_of(b, prefix, kb, &fb);
    return fa == fb && memcmp(ka, kb, 16) == 0;
}

/* A client with a whole /64 cannot walk around max_sessions_per_ip. */
START_TEST(test_ipv6_counted_per_network)
{
    ck_assert(same_key("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", 64));
    ck_assert(!same_key("2001:db8:1:2::1", "2001:db8:1:3::1", 64));
    ck_assert(same_key("2001:db8:1:2::1", "2001:db8:1:3::1", 48));
    ck_assert(!same_key("2001:db8::1", "2001:db8::2", 128));
    ck_assert(same_key("2001:db8::1", "2001:db8::2", 112));
}
END_TEST

START_TEST(test_ipv4_counted_per_address)
{
    ck_assert(same_key("192.0.2.1", "192.0.2.1", 64));
    ck_assert(!same_key("192.0.2.1", "192.0.2.2", 64));
    ck_assert(same_key("192.0.2.1", "::ffff:192.0.2.1", 64)); /* mapped counts as IPv4 */
}
END_TEST

static Suite *limits_suite(void)
{
    Suite *s = suite_create("smtpd_limits");
    TCase *tc = tcase_create("client_key");
    tcase_add_test(tc, test_ipv6_counted_per_network);
    tcase_add_test(tc, test_ipv4_counted_per_address);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(limits_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
