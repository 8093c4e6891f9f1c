/* check_deliver_connect.c: Check suite for the outbound connect path (bind, post-bind veto) and the SMTP client session. */
#include <check.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "binding/binding_table.h"
#include "plugin/plugin_hooks.h"
#include "plugin/plugin_internal.h"
#include "hooks/core/connection_post_bind.h"
#include "deliver/deliver_connect.h"
#include "queue/queue.h"
#include "deliver/deliver_client.h"
#include "spool/spool.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* ---- the binding table (from a config): default, vip1 127.0.0.2, vip2 192.0.2.1 (absent), v6only ::1 ---- */

static const char *config_text =
    "{ \"hostname\": \"check.test\",\n"
    "  \"bindings\": {\n"
    "    \"vip1\": { \"address\": \"127.0.0.2\", \"ehlo\": \"vip1.test\" },\n"
    "    \"vip2\": { \"address\": \"192.0.2.1\" },\n"
    "    \"v6only\": { \"address6\": \"::1\" } } }\n";
static struct vipmta_config *cfg;
static domain_record dr = {.domain = "example.test"};

static int listener = -1;
static struct sockaddr_in listen_addr;

/* The tests register their hooks as a module's init would. */
static struct vipmta_module_ctx test_module = {.label = "test"};

static void setup(void)
{
    struct config_errors errs = {0};
    plugin_hooks_reset_all();
    plugin_hooks_begin_init(&test_module);
    cfg = config_load_string(config_text, "check_outbound.json", &errs);
    if (!cfg)
        config_errors_print(&errs, stderr, "config: ");
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(binding_table_build(cfg, &errs), 0);
    config_errors_clear(&errs);
    ck_assert_int_eq(config_get_binding_id_from_name("vip1"), 1);
    ck_assert_int_eq(config_get_binding_id_from_name("vip2"), 2);
    ck_assert_int_eq(config_get_binding_id_from_name("v6only"), 3);
    listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(listener, 0);
    memset(&listen_addr, 0, sizeof(listen_addr));
    listen_addr.sin_family = AF_INET;
    listen_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(listener, (struct sockaddr *)&listen_addr, sizeof(listen_addr)), 0);
    socklen_t len = sizeof(listen_addr);
    ck_assert_int_eq(getsockname(listener, (struct sockaddr *)&listen_addr, &len), 0);
    ck_assert_int_eq(listen(listener, 16), 0);
}

static void teardown(void)
{
    plugin_hooks_reset_all();
    binding_table_free();
    config_release(cfg);
    cfg = NULL;
    if (listener >= 0)
        close(listener);
    listener = -1;
}

/* Accepts within `ms`; -1 when nobody connected. Fills the peer address. */
static int accept_within(int ms, struct sockaddr_in *peer)
{
    struct pollfd p = {.fd = listener, .events = POLLIN};
    if (poll(&p, 1, ms) != 1)
        return -1;
    socklen_t len = sizeof(*peer);
    return accept(listener, (struct sockaddr *)peer, &len);
}

static const char *ip_of(const struct sockaddr_in *a, char *buf)
{
    return inet_ntop(AF_INET, &a->sin_addr, buf, INET_ADDRSTRLEN);
}

START_TEST(test_bound_source_reaches_listener)
{
    struct deliver_connect_result res;
    memset(&res, 0, sizeof(res));
    int fd = deliver_connect(&dr, 1, (struct sockaddr *)&listen_addr, sizeof(listen_addr), &res);
    ck_assert_msg(fd >= 0, "deliver_connect failed: %s", res.message);
    ck_assert_int_eq(res.status, DELIVER_CONNECT_OK);
    struct sockaddr_in peer;
    char ip[INET_ADDRSTRLEN];
    int a = accept_within(2000, &peer);
    ck_assert_int_ge(a, 0);
    ck_assert_str_eq(ip_of(&peer, ip), "127.0.0.2");
    /* non-blocking, close-on-exec */
    ck_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
    ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    close(a);
    close(fd);
}
END_TEST

START_TEST(test_default_slot_no_bind)
{
    struct deliver_connect_result res;
    int fd = deliver_connect(&dr, 0, (struct sockaddr *)&listen_addr, sizeof(listen_addr), &res);
    ck_assert_msg(fd >= 0, "deliver_connect failed: %s", res.message);
    struct sockaddr_in peer;
    char ip[INET_ADDRSTRLEN];
    int a = accept_within(2000, &peer);
    ck_assert_int_ge(a, 0);
    ck_assert_str_eq(ip_of(&peer, ip), "127.0.0.1");
    close(a);
    close(fd);
}
END_TEST

/* What the veto hook saw. */
static int hook_calls, hook_nobind, hook_slot;
static char hook_ip[INET_ADDRSTRLEN];
static unsigned hook_port;
static int hook_dst_len;

static int veto_hook(void *closure, domain_record *d, int slot, int fd, struct sockaddr *addr,
                     int addr_len)
{
    (void)d;
    struct sockaddr_in local;
    socklen_t len = sizeof(local);
    hook_calls++;
    hook_slot = slot;
    hook_dst_len = addr_len;
    hook_port = ntohs(((struct sockaddr_in *)addr)->sin_port);
    if (getsockname(fd, (struct sockaddr *)&local, &len) == 0)
        ip_of(&local, hook_ip);
    int v = 0;
    socklen_t vl = sizeof(v);
    if (getsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &v, &vl) == 0)
        hook_nobind = v;
    return *(int *)closure;
}

START_TEST(test_veto)
{
    static int seven = 7;
    static struct vipmta_module_ctx throttle = {.label = "throttle"};
    hook_calls = 0;
    hook_nobind = 0;
    hook_ip[0] = '\0';
    plugin_hooks_begin_init(&throttle); /* as the module's init does */
    register_core_connection_post_bind_hook_last(veto_hook, &seven);
    plugin_hooks_end_init();

    struct deliver_connect_result res;
    memset(&res, 0, sizeof(res));
    int fd = deliver_connect(&dr, 1, (struct sockaddr *)&listen_addr, sizeof(listen_addr), &res);
    ck_assert_int_eq(fd, -1);
    ck_assert_int_eq(res.status, DELIVER_CONNECT_VETOED);
    ck_assert_int_eq(res.veto_value, 7);
    ck_assert_str_eq(res.veto_module, "throttle");
    char want[256];
    snprintf(want, sizeof(want),
             "connection to 127.0.0.1:%u from binding \"vip1\" vetoed by module \"throttle\" "
             "(returned 7)",
             (unsigned)ntohs(listen_addr.sin_port));
    ck_assert_str_eq(res.message, want);
    ck_assert_int_eq(hook_calls, 1);
    ck_assert_int_eq(hook_slot, 1);
    ck_assert_str_eq(hook_ip, "127.0.0.2");
    ck_assert_int_eq(hook_nobind, 1);
    ck_assert_uint_eq(hook_port, ntohs(listen_addr.sin_port));
    ck_assert_int_eq(hook_dst_len, (int)sizeof(listen_addr));
    struct sockaddr_in peer;
    ck_assert_int_eq(accept_within(300, &peer), -1);
}
END_TEST

START_TEST(test_hook_zero_lets_connect)
{
    static int zero = 0;
    hook_calls = 0;
    register_core_connection_post_bind_hook_first(veto_hook, &zero);
    struct deliver_connect_result res;
    int fd = deliver_connect(&dr, 1, (struct sockaddr *)&listen_addr, sizeof(listen_addr), &res);
    ck_assert_msg(fd >= 0, "%s", res.message);
    ck_assert_int_eq(hook_calls, 1);
    struct sockaddr_in peer;
    int a = accept_within(2000, &peer);
    ck_assert_int_ge(a, 0);
    close(a);
    close(fd);
}
END_TEST

START_TEST(test_bind_failure_message)
{
    static int zero = 0;
    hook_calls = 0;
    register_core_connection_post_bind_hook_last(veto_hook, &zero);
    struct deliver_connect_result res;
    memset(&res, 0, sizeof(res));
    int fd = deliver_connect(&dr, 2, (struct sockaddr *)&listen_addr, sizeof(listen_addr), &res);
    ck_assert_int_eq(fd, -1);
    ck_assert_int_eq(res.status, DELIVER_CONNECT_BIND_FAILED);
    ck_assert_int_eq(res.error, EADDRNOTAVAIL);
    ck_assert_str_eq(res.message,
                     "binding \"vip2\" (slot 2): cannot bind source address 192.0.2.1: Cannot "
                     "assign requested address (is the address configured on this host?)");
    ck_assert_int_eq(hook_calls, 0);
}
END_TEST

START_TEST(test_no_address_of_family)
{
    struct deliver_connect_result res;
    memset(&res, 0, sizeof(res));
    int fd = deliver_connect(&dr, 3, (struct sockaddr *)&listen_addr, sizeof(listen_addr), &res);
    ck_assert_int_eq(fd, -1);
    ck_assert_int_eq(res.status, DELIVER_CONNECT_NO_ADDRESS);
    ck_assert_msg(strstr(res.message, "binding \"v6only\" (slot 3) has no IPv4 source address"),
                  "%s", res.message);
    fd = deliver_connect(&dr, 9, (struct sockaddr *)&listen_addr, sizeof(listen_addr), &res);
    ck_assert_int_eq(fd, -1);
    ck_assert_int_eq(res.status, DELIVER_CONNECT_NO_ADDRESS);
}
END_TEST

/* ---- dot-stuffing ---- */

static char *stuff_all(const char *in, size_t chunk)
{
    static char out[4096];
    size_t o = 0, len = strlen(in);
    unsigned st = 0;
    for (size_t i = 0; i < len; i += chunk) {
        size_t n = len - i < chunk ? len - i : chunk;
        o += deliver_client_dot_stuff(in + i, n, out + o, &st);
    }
    o += deliver_client_dot_end(st, out + o);
    out[o] = '\0';
    return out;
}

START_TEST(test_dot_stuffing)
{
    const char *in = ".a\r\nb.\r\n.\r\n..x\r\nend\r\n";
    const char *want = "..a\r\nb.\r\n..\r\n...x\r\nend\r\n.\r\n";
    for (size_t chunk = 1; chunk <= strlen(in); chunk++)
        ck_assert_str_eq(stuff_all(in, chunk), want);
    ck_assert_str_eq(stuff_all("", 1), ".\r\n");
    ck_assert_str_eq(stuff_all("no newline", 3), "no newline\r\n.\r\n");
    ck_assert_str_eq(stuff_all("cr only\r", 3), "cr only\r\n.\r\n");
    ck_assert_str_eq(stuff_all(".", 1), "..\r\n.\r\n");
}
END_TEST

/* Never a bare CR or LF to a next hop: each becomes a CRLF line end, so a
 * "\r.\r\n" in spooled text is a stuffed line, not a second end of data. */
START_TEST(test_dot_stuffing_bare_line_ends)
{
    const char *in = "a\r.\r\nb\n.c\rd\r\r\ne\n";
    const char *want = "a\r\n..\r\nb\r\n..c\r\nd\r\n\r\ne\r\n.\r\n";
    for (size_t chunk = 1; chunk <= strlen(in); chunk++)
        ck_assert_str_eq(stuff_all(in, chunk), want);
    ck_assert_str_eq(stuff_all("x\r", 1), "x\r\n.\r\n");
    ck_assert_str_eq(stuff_all("\r.", 1), "\r\n..\r\n.\r\n");
    /* the output bound: 2 * len + 2 for a piece after a pending CR */
    char out[16];
    unsigned st = 0;
    ck_assert_uint_eq(deliver_client_dot_stuff("\r", 1, out, &st), 0);
    ck_assert_uint_le(deliver_client_dot_stuff(".", 1, out, &st), 2 * 1 + 2);
}
END_TEST

/* ---- an SMTP session against a scripted server thread ---- */

enum scenario { SC_PIPELINE, SC_SIZE, SC_DROP, SC_GREET421, SC_HELO, SC_MAIL_REJECT, SC_PLAIN,
                SC_UTF8 };

struct fake {
    enum scenario sc;
    int lfd;
    pthread_t th;
    char cmds[8192];   /* command lines received, "\n"-separated */
    char data[8192];   /* message data as received (dot-stuffed) */
    size_t data_len;
    int mail_rejected; /* the current transaction's MAIL got 550 */
};

static void fake_send(int fd, const char *s)
{
    (void)!write(fd, s, strlen(s));
}

static const char *fake_reply(struct fake *f, const char *line)
{
    if (strncmp(line, "EHLO", 4) == 0) {
        if (f->sc == SC_HELO)
            return "502 5.5.1 no EHLO here\r\n";
        if (f->sc == SC_SIZE)
            return "250-fake.test\r\n250-PIPELINING\r\n250 SIZE 10\r\n";
        if (f->sc == SC_PLAIN) /* neither 8BITMIME nor SMTPUTF8 */
            return "250-fake.test\r\n250 PIPELINING\r\n";
        if (f->sc == SC_UTF8)
            return "250-fake.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n";
        return "250-fake.test hello\r\n250-PIPELINING\r\n250-SIZE 100000\r\n250 8BITMIME\r\n";
    }
    if (strncmp(line, "HELO", 4) == 0)
        return "250 fake.test\r\n";
    if (strncmp(line, "MAIL", 4) == 0) {
        if (f->sc == SC_MAIL_REJECT && strstr(line, "<sender@")) {
            f->mail_rejected = 1;
            return "550 5.7.1 sender refused\r\n";
        }
        f->mail_rejected = 0;
        return "250 2.1.0 ok\r\n";
    }
    if (strncmp(line, "RCPT", 4) == 0) {
        if (f->sc == SC_DROP)
            return NULL;
        if (f->mail_rejected)
            return "503 5.5.1 MAIL first\r\n";
        if (strstr(line, "bad@"))
            return "550 5.1.1 no such user\r\n";
        if (strstr(line, "later@"))
            return "451 4.2.0 mailbox busy\r\n";
        return "250 2.1.5 ok\r\n";
    }
    if (strncmp(line, "DATA", 4) == 0)
        return f->mail_rejected ? "503 5.5.1 no valid recipients\r\n" : "354 go ahead\r\n";
    if (strncmp(line, "QUIT", 4) == 0)
        return "221 2.0.0 bye\r\n";
    if (strncmp(line, "RSET", 4) == 0)
        return "250 2.0.0 reset\r\n";
    return "500 5.5.2 what?\r\n";
}

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    struct pollfd p = {.fd = f->lfd, .events = POLLIN};
    if (poll(&p, 1, 5000) != 1)
        return NULL;
    int c = accept(f->lfd, NULL, NULL);
    if (c < 0)
        return NULL;
    if (f->sc == SC_GREET421) {
        fake_send(c, "421 4.3.2 too busy\r\n");
        char tmp[256];
        struct pollfd pc = {.fd = c, .events = POLLIN};
        if (poll(&pc, 1, 3000) == 1)
            (void)!read(c, tmp, sizeof(tmp));
        close(c);
        return NULL;
    }
    fake_send(c, "220 fake.test ESMTP\r\n");
    char buf[16384];
    size_t len = 0;
    int in_data = 0;
    for (;;) {
        ssize_t n = read(c, buf + len, sizeof(buf) - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        for (;;) {
            if (in_data) {
                char *end = strstr(buf, "\r\n.\r\n");
                if (!end)
                    break;
                size_t dl = (size_t)(end - buf) + 5;
                memcpy(f->data, buf, dl);
                f->data_len = dl;
                f->data[dl] = '\0';
                memmove(buf, buf + dl, len - dl + 1);
                len -= dl;
                in_data = 0;
                strcat(f->cmds, ".\n");
                fake_send(c, f->sc == SC_HELO ? "451 4.3.0 try later\r\n"
                                              : "250 2.0.0 queued as X\r\n");
                continue;
            }
            char *eol = strstr(buf, "\r\n");
            if (!eol)
                break;
            *eol = '\0';
            size_t cl = strlen(f->cmds);
            snprintf(f->cmds + cl, sizeof(f->cmds) - cl, "%.1000s\n", buf);
            const char *r = fake_reply(f, buf);
            int quit = strncmp(buf, "QUIT", 4) == 0;
            int data = strncmp(buf, "DATA", 4) == 0 && !f->mail_rejected;
            size_t used = (size_t)(eol - buf) + 2;
            memmove(buf, buf + used, len - used + 1);
            len -= used;
            if (!r) {
                close(c);
                return NULL;
            }
            fake_send(c, r);
            if (quit) {
                close(c);
                return NULL;
            }
            if (data)
                in_data = 1;
        }
    }
    close(c);
    return NULL;
}

/* The session's view. */
struct sess {
    struct event_base *base;
    struct queue_message *msg, *msg2;
    struct queue_rcpt *rcpts[4];
    size_t nrcpt, next;
    int taken;
    int outcome[4];
    char reply[4][256];
    int done;
    enum deliver_client_end end;
    char reason[512];
};

/* Hands out the recipients message by message (consecutive ones sharing a message). */
static size_t sess_take(void *arg, struct queue_rcpt **out, size_t max)
{
    struct sess *s = arg;
    size_t n = 0;
    while (s->next < s->nrcpt && n < max &&
           (n == 0 || s->rcpts[s->next]->msg == out[0]->msg))
        out[n++] = s->rcpts[s->next++];
    s->taken += n > 0;
    return n;
}

static void sess_outcome(void *arg, struct queue_rcpt *r, enum deliver_client_outcome o, const char *reply)
{
    struct sess *s = arg;
    for (size_t i = 0; i < s->nrcpt; i++) {
        if (s->rcpts[i] == r) {
            ck_assert_int_eq(s->outcome[i], -1); /* exactly once */
            s->outcome[i] = (int)o;
            snprintf(s->reply[i], sizeof(s->reply[i]), "%s", reply);
        }
    }
}

static void sess_done(void *arg, enum deliver_client_end end, const char *reason)
{
    struct sess *s = arg;
    s->done++;
    s->end = end;
    snprintf(s->reason, sizeof(s->reason), "%s", reason);
    event_base_loopbreak(s->base);
}

static const struct deliver_client_ops sess_ops = {sess_take, sess_outcome, sess_done, NULL};

static char spool_tmp[64];
/* the first message's flags for the next run_session */
static int msg_eightbit, msg_smtputf8;
static const char *body_id = "0123456789abcdef";
static const char *body_text = "Subject: t\r\n\r\n.hello\r\nline\r\n..\r\nlast\r\n";

static void spool_setup(void)
{
    setup();
}

static void run_session(enum scenario sc, const char *const *addrs, size_t n, struct sess *s,
                        struct fake *f)
{
    char err[256];
    struct event_base *base = event_base_new();
    ck_assert_ptr_nonnull(base);
    snprintf(spool_tmp, sizeof(spool_tmp), "/tmp/check_outbound.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(spool_tmp));
    ck_assert_msg(spool_init(spool_tmp, base, err, sizeof(err)) == 0, "%s", err);
    char path[256];
    snprintf(path, sizeof(path), "%s/queue/%s.body", spool_tmp, body_id);
    FILE *bf = fopen(path, "w");
    ck_assert_ptr_nonnull(bf);
    fputs(body_text, bf);
    fclose(bf);

    memset(f, 0, sizeof(*f));
    f->sc = sc;
    f->lfd = listener;
    ck_assert_int_eq(pthread_create(&f->th, NULL, fake_main, f), 0);

    memset(s, 0, sizeof(*s));
    s->base = base;
    s->msg = calloc(1, sizeof(*s->msg));
    memcpy(s->msg->id, body_id, SPOOL_ID_LEN + 1);
    s->msg->sender = "sender@src.test";
    s->msg->body_size = strlen(body_text);
    s->msg2 = calloc(1, sizeof(*s->msg2));
    *s->msg2 = *s->msg;
    s->msg2->sender = "second@src.test";
    s->msg->eightbit = msg_eightbit != 0; /* the first message only */
    s->msg->smtputf8 = msg_smtputf8 != 0;
    msg_eightbit = msg_smtputf8 = 0;
    s->nrcpt = n;
    for (size_t i = 0; i < n; i++) {
        /* "2:addr" puts the recipient in a second message */
        int second = strncmp(addrs[i], "2:", 2) == 0;
        s->rcpts[i] = calloc(1, sizeof(*s->rcpts[i]));
        s->rcpts[i]->msg = second ? s->msg2 : s->msg;
        s->rcpts[i]->address = (char *)addrs[i] + (second ? 2 : 0);
        s->rcpts[i]->index = (uint32_t)i;
        s->outcome[i] = -1;
    }

    struct deliver_connect_result res;
    int fd = deliver_connect(&dr, 0, (struct sockaddr *)&listen_addr, sizeof(listen_addr), &res);
    ck_assert_msg(fd >= 0, "%s", res.message);
    struct deliver_client_params p = {.fd = fd, .ehlo_name = "me.test", .peer = "fake",
                             .connect_timeout = 5, .command_timeout = 5, .data_timeout = 5,
                             .idle_timeout_ms = 0, .max_messages = 10};
    struct deliver_client_session *ss = deliver_client_start(base, &p, &sess_ops, s);
    ck_assert_ptr_nonnull(ss);
    struct timeval limit = {10, 0};
    event_base_loopexit(base, &limit);
    event_base_dispatch(base);
    ck_assert_int_eq(s->done, 1);
    /* let libevent finish freeing the session (closing its socket) */
    event_base_loop(base, EVLOOP_NONBLOCK);
    pthread_join(f->th, NULL);

    spool_shutdown();
    unlink(path);
    char dir[300];
    snprintf(dir, sizeof(dir), "%s/queue", spool_tmp);
    rmdir(dir);
    snprintf(dir, sizeof(dir), "%s/quarantine", spool_tmp);
    rmdir(dir);
    rmdir(spool_tmp);
    for (size_t i = 0; i < n; i++)
        free(s->rcpts[i]);
    free(s->msg);
    free(s->msg2);
    event_base_free(base);
}

START_TEST(test_session_pipelined)
{
    static const char *const addrs[] = {"good@example.test", "bad@example.test",
                                        "later@example.test"};
    struct sess s;
    struct fake f;
    run_session(SC_PIPELINE, addrs, 3, &s, &f);
    ck_assert_int_eq(s.end, DELIVER_CLIENT_END_OK);
    ck_assert_int_eq(s.outcome[0], DELIVER_CLIENT_DELIVERED);
    ck_assert_str_eq(s.reply[0], "250 2.0.0 queued as X");
    ck_assert_int_eq(s.outcome[1], DELIVER_CLIENT_FAILED);
    ck_assert_str_eq(s.reply[1], "550 5.1.1 no such user");
    ck_assert_int_eq(s.outcome[2], DELIVER_CLIENT_DEFERRED);
    char want[512];
    snprintf(want, sizeof(want),
             "EHLO me.test\nMAIL FROM:<sender@src.test> SIZE=%zu\n"
             "RCPT TO:<good@example.test>\nRCPT TO:<bad@example.test>\n"
             "RCPT TO:<later@example.test>\nDATA\n.\nQUIT\n",
             strlen(body_text));
    ck_assert_str_eq(f.cmds, want);
    ck_assert_str_eq(f.data, "Subject: t\r\n\r\n..hello\r\nline\r\n...\r\nlast\r\n.\r\n");
}
END_TEST

START_TEST(test_session_size_limit)
{
    static const char *const addrs[] = {"a@example.test", "b@example.test"};
    struct sess s;
    struct fake f;
    run_session(SC_SIZE, addrs, 2, &s, &f);
    ck_assert_int_eq(s.outcome[0], DELIVER_CLIENT_FAILED);
    ck_assert_int_eq(s.outcome[1], DELIVER_CLIENT_FAILED);
    ck_assert_msg(strncmp(s.reply[0], "552 5.3.4 ", 10) == 0, "%s", s.reply[0]);
    ck_assert_str_eq(f.cmds, "EHLO me.test\nQUIT\n");
}
END_TEST

START_TEST(test_session_dropped)
{
    static const char *const addrs[] = {"a@example.test"};
    struct sess s;
    struct fake f;
    run_session(SC_DROP, addrs, 1, &s, &f);
    ck_assert_int_eq(s.end, DELIVER_CLIENT_END_LOST);
    ck_assert_int_eq(s.outcome[0], DELIVER_CLIENT_DEFERRED);
    ck_assert_msg(strstr(s.reason, "fake"), "%s", s.reason);
}
END_TEST

START_TEST(test_session_greeting_421)
{
    static const char *const addrs[] = {"a@example.test"};
    struct sess s;
    struct fake f;
    run_session(SC_GREET421, addrs, 1, &s, &f);
    ck_assert_int_eq(s.end, DELIVER_CLIENT_END_UNUSABLE);
    ck_assert_int_eq(s.taken, 0);
    ck_assert_int_eq(s.outcome[0], -1);
    ck_assert_msg(strstr(s.reason, "421 4.3.2 too busy"), "%s", s.reason);
}
END_TEST

START_TEST(test_session_helo_fallback)
{
    static const char *const addrs[] = {"a@example.test", "bad@example.test"};
    struct sess s;
    struct fake f;
    run_session(SC_HELO, addrs, 2, &s, &f);
    ck_assert_int_eq(s.end, DELIVER_CLIENT_END_OK);
    ck_assert_int_eq(s.outcome[0], DELIVER_CLIENT_DEFERRED);
    ck_assert_str_eq(s.reply[0], "451 4.3.0 try later");
    ck_assert_int_eq(s.outcome[1], DELIVER_CLIENT_FAILED);
    ck_assert_str_eq(f.cmds, "EHLO me.test\nHELO me.test\nMAIL FROM:<sender@src.test>\n"
                             "RCPT TO:<a@example.test>\nRCPT TO:<bad@example.test>\nDATA\n.\n"
                             "QUIT\n");
}
END_TEST

START_TEST(test_session_mail_rejected_then_next_message)
{
    static const char *const addrs[] = {"a@example.test", "b@example.test", "2:c@example.test"};
    struct sess s;
    struct fake f;
    run_session(SC_MAIL_REJECT, addrs, 3, &s, &f);
    ck_assert_int_eq(s.end, DELIVER_CLIENT_END_OK);
    ck_assert_int_eq(s.taken, 2);
    ck_assert_int_eq(s.outcome[0], DELIVER_CLIENT_FAILED);
    ck_assert_str_eq(s.reply[0], "550 5.7.1 sender refused");
    ck_assert_int_eq(s.outcome[1], DELIVER_CLIENT_FAILED);
    ck_assert_int_eq(s.outcome[2], DELIVER_CLIENT_DELIVERED);
    char want[768];
    snprintf(want, sizeof(want),
             "EHLO me.test\nMAIL FROM:<sender@src.test> SIZE=%zu\n"
             "RCPT TO:<a@example.test>\nRCPT TO:<b@example.test>\nDATA\nRSET\n"
             "MAIL FROM:<second@src.test> SIZE=%zu\nRCPT TO:<c@example.test>\n"
             "DATA\n.\nQUIT\n",
             strlen(body_text), strlen(body_text));
    ck_assert_str_eq(f.cmds, want);
}
END_TEST

/* 8-bit content goes with BODY=8BITMIME to a next hop that offers it. */
START_TEST(test_session_8bit_declared)
{
    static const char *const addrs[] = {"a@example.test"};
    struct sess s;
    struct fake f;
    msg_eightbit = 1;
    run_session(SC_PIPELINE, addrs, 1, &s, &f);
    ck_assert_int_eq(s.outcome[0], DELIVER_CLIENT_DELIVERED);
    ck_assert_msg(strstr(f.cmds, "MAIL FROM:<sender@src.test> SIZE=38 BODY=8BITMIME\n"), "%s",
                  f.cmds);
}
END_TEST

/* To a next hop without 8BITMIME, 8-bit content bounces (no conversion). */
START_TEST(test_session_8bit_refused)
{
    static const char *const addrs[] = {"a@example.test", "2:b@example.test"};
    struct sess s;
    struct fake f;
    msg_eightbit = 1;
    run_session(SC_PLAIN, addrs, 2, &s, &f);
    ck_assert_int_eq(s.outcome[0], DELIVER_CLIENT_FAILED);
    ck_assert_str_eq(s.reply[0], "554 5.6.3 the message has 8-bit content and fake does not "
                                 "offer 8BITMIME (vipmta does not convert it to 7-bit)");
    ck_assert_int_eq(s.outcome[1], DELIVER_CLIENT_DELIVERED); /* the 7-bit one goes */
    ck_assert_msg(!strstr(f.cmds, "<a@example.test>"), "%s", f.cmds);
}
END_TEST

/* SMTPUTF8: passed on where offered; without it, ASCII addresses go (a
 * downgrade) and the others bounce with 5.6.7. */
START_TEST(test_session_smtputf8)
{
    static const char *const addrs[] = {"a@example.test", "\xc3\xa9l\xc3\xa8ve@example.test"};
    struct sess s;
    struct fake f;
    msg_smtputf8 = 1;
    run_session(SC_UTF8, addrs, 2, &s, &f);
    ck_assert_int_eq(s.outcome[0], DELIVER_CLIENT_DELIVERED);
    ck_assert_int_eq(s.outcome[1], DELIVER_CLIENT_DELIVERED);
    ck_assert_msg(strstr(f.cmds, "MAIL FROM:<sender@src.test> SMTPUTF8\n"), "%s", f.cmds);
    msg_smtputf8 = 1;
    run_session(SC_PLAIN, addrs, 2, &s, &f);
    ck_assert_int_eq(s.outcome[0], DELIVER_CLIENT_DELIVERED);
    ck_assert_int_eq(s.outcome[1], DELIVER_CLIENT_FAILED);
    ck_assert_str_eq(s.reply[1], "553 5.6.7 the recipient <\xc3\xa9l\xc3\xa8ve@example.test> is "
                                 "not ASCII and fake does not offer SMTPUTF8");
    ck_assert_msg(strstr(f.cmds, "MAIL FROM:<sender@src.test>\n"), "%s", f.cmds);
}
END_TEST

static Suite *outbound_suite(void)
{
    Suite *s = suite_create("outbound");
    TCase *tc = tcase_create("connect");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_bound_source_reaches_listener);
    tcase_add_test(tc, test_default_slot_no_bind);
    tcase_add_test(tc, test_veto);
    tcase_add_test(tc, test_hook_zero_lets_connect);
    tcase_add_test(tc, test_bind_failure_message);
    tcase_add_test(tc, test_no_address_of_family);
    suite_add_tcase(s, tc);

    TCase *ts = tcase_create("smtp_client");
    tcase_add_checked_fixture(ts, spool_setup, teardown);
    tcase_add_test(ts, test_dot_stuffing);
    tcase_add_test(ts, test_dot_stuffing_bare_line_ends);
    tcase_add_test(ts, test_session_pipelined);
    tcase_add_test(ts, test_session_size_limit);
    tcase_add_test(ts, test_session_dropped);
    tcase_add_test(ts, test_session_greeting_421);
    tcase_add_test(ts, test_session_helo_fallback);
    tcase_add_test(ts, test_session_mail_rejected_then_next_message);
    tcase_add_test(ts, test_session_8bit_declared);
    tcase_add_test(ts, test_session_8bit_refused);
    tcase_add_test(ts, test_session_smtputf8);
    tcase_set_timeout(ts, 30);
    suite_add_tcase(s, ts);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(outbound_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
