/* check_net_io.c: Check suite for net_io: one write per callback's output, data then the peer's close in one edge, refused connects, the read high mark, freeing from inside a callback. */
#include <check.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net_io.h"

struct probe {
    struct event_base *base;
    int reads, writes, events;
    short last_what;
    int last_errno;
    size_t seen;            /* input bytes seen by the read callback */
    int drain;              /* the read callback consumes the input */
    int echo;               /* the read callback answers each read with 2 separate adds */
    int free_in_read;       /* the read callback frees the connection */
    struct net_io *io;
};

static void on_read(struct net_io *io, void *arg)
{
    struct probe *p = arg;
    struct evbuffer *in = net_io_input(io);
    p->reads++;
    p->seen = evbuffer_get_length(in);
    if (p->echo) {
        evbuffer_add(net_io_output(io), "250 one\r\n", 9);
        evbuffer_add(net_io_output(io), "250 two\r\n", 9);
    }
    if (p->drain)
        evbuffer_drain(in, evbuffer_get_length(in));
    if (p->free_in_read) {
        net_io_free(io);
        p->io = NULL;
        event_base_loopbreak(p->base);
    }
}

static void on_write(struct net_io *io, void *arg)
{
    (void)io;
    ((struct probe *)arg)->writes++;
}

static void on_event(struct net_io *io, short what, void *arg)
{
    (void)io;
    struct probe *p = arg;
    p->events++;
    p->last_what = what;
    p->last_errno = errno;
    event_base_loopbreak(p->base);
}

static void run_for(struct event_base *base, int ms)
{
    struct timeval tv = {0, ms * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

/* A connected plain pair: io on sv[0], the test speaks on sv[1]. */
static struct net_io *pair_new(struct probe *p, int sv[2])
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    struct net_io *io = net_io_socket_new(p->base, sv[0]);
    ck_assert_ptr_nonnull(io);
    net_io_setcb(io, on_read, on_write, on_event, p);
    net_io_enable(io, EV_READ | EV_WRITE);
    p->io = io;
    return io;
}

START_TEST(test_replies_of_one_callback_in_one_write)
{
    struct probe p = {.base = event_base_new(), .drain = 1, .echo = 1};
    int sv[2];
    pair_new(&p, sv);
    ck_assert_int_eq(write(sv[1], "MAIL FROM:<a@b>\r\n", 17), 17);
    run_for(p.base, 100);
    ck_assert_int_eq(p.reads, 1);
    /* both replies arrive together: written at once, after the callback */
    char buf[64];
    ssize_t n = read(sv[1], buf, sizeof(buf));
    ck_assert_int_eq(n, 18);
    ck_assert(memcmp(buf, "250 one\r\n250 two\r\n", 18) == 0);
    ck_assert_int_eq(p.writes, 1);
    /* output added outside a callback goes out too (at the next iteration) */
    evbuffer_add(net_io_output(p.io), "421 bye\r\n", 9);
    run_for(p.base, 50);
    n = read(sv[1], buf, sizeof(buf));
    ck_assert_int_eq(n, 9);
    net_io_free(p.io);
    close(sv[1]);
    event_base_free(p.base);
}
END_TEST

START_TEST(test_data_then_close_in_one_edge)
{
    struct probe p = {.base = event_base_new(), .drain = 1};
    int sv[2];
    pair_new(&p, sv);
    /* the data and the close (a FIN: the peer's write side) are there
     * before the loop looks: one edge, and a short read */
    ck_assert_int_eq(write(sv[1], "QUIT\r\n", 6), 6);
    ck_assert_int_eq(shutdown(sv[1], SHUT_WR), 0);
    run_for(p.base, 200);
    ck_assert_int_eq(p.reads, 1);
    ck_assert_uint_eq(p.seen, 6);
    ck_assert_int_eq(p.events, 1);
    ck_assert(p.last_what & BEV_EVENT_EOF);
    net_io_free(p.io);
    close(sv[1]);
    event_base_free(p.base);
}
END_TEST

START_TEST(test_refused_connect_is_an_error)
{
    struct probe p = {.base = event_base_new()};
    /* a port nobody listens on: bind one, close it */
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof(a);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    ck_assert_int_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(getsockname(l, (struct sockaddr *)&a, &alen), 0);
    close(l);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
    ck_assert(rc == 0 || errno == EINPROGRESS || errno == ECONNREFUSED);
    struct net_io *io = net_io_socket_new(p.base, fd);
    net_io_setcb(io, on_read, on_write, on_event, &p);
    ck_assert_int_eq(net_io_connect(io), 0);
    run_for(p.base, 500);
    ck_assert_int_eq(p.events, 1);
    ck_assert(p.last_what & BEV_EVENT_ERROR);
    ck_assert(!(p.last_what & BEV_EVENT_CONNECTED));
    ck_assert_int_eq(p.last_errno, ECONNREFUSED);
    net_io_free(io);
    event_base_free(p.base);
}
END_TEST

START_TEST(test_read_high_mark)
{
    struct probe p = {.base = event_base_new()};
    int sv[2];
    struct net_io *io = pair_new(&p, sv);
    net_io_set_read_high(io, 100);
    char big[1000];
    memset(big, 'x', sizeof(big));
    ck_assert_int_eq(write(sv[1], big, sizeof(big)), (ssize_t)sizeof(big));
    run_for(p.base, 100);
    /* it stops at the mark, and goes on once the input was consumed */
    ck_assert_uint_eq(evbuffer_get_length(net_io_input(io)), 100);
    size_t total = 100;
    for (int i = 0; i < 20 && total < sizeof(big); i++) {
        evbuffer_drain(net_io_input(io), 100);
        run_for(p.base, 20);
        total += evbuffer_get_length(net_io_input(io));
    }
    ck_assert_uint_eq(total, sizeof(big));
    net_io_free(io);
    close(sv[1]);
    event_base_free(p.base);
}
END_TEST

START_TEST(test_free_inside_callback)
{
    struct probe p = {.base = event_base_new(), .free_in_read = 1, .echo = 1};
    int sv[2];
    pair_new(&p, sv);
    ck_assert_int_eq(write(sv[1], "x\r\n", 3), 3);
    run_for(p.base, 100);
    ck_assert_ptr_null(p.io);
    /* the socket was closed: the peer sees the end */
    char buf[32];
    ssize_t n;
    for (int i = 0; i < 50 && (n = read(sv[1], buf, sizeof(buf))) < 0 && errno == EAGAIN; i++)
        usleep(10000);
    ck_assert_int_eq(n, 0);
    close(sv[1]);
    event_base_free(p.base);
}
END_TEST

START_TEST(test_release_keeps_the_socket)
{
    struct probe p = {.base = event_base_new()};
    int sv[2];
    struct net_io *io = pair_new(&p, sv);
    int fd = net_io_release_fd(io);
    ck_assert_int_eq(fd, sv[0]);
    ck_assert_int_eq(write(fd, "ok", 2), 2);
    char buf[4];
    ck_assert_int_eq(read(sv[1], buf, sizeof(buf)), 2);
    close(fd);
    close(sv[1]);
    event_base_free(p.base);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("net_io");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_replies_of_one_callback_in_one_write);
    tcase_add_test(tc, test_data_then_close_in_one_edge);
    tcase_add_test(tc, test_refused_connect_is_an_error);
    tcase_add_test(tc, test_read_high_mark);
    tcase_add_test(tc, test_free_inside_callback);
    tcase_add_test(tc, test_release_keeps_the_socket);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
