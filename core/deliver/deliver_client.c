/* deliver_client.c: one outbound SMTP session: greeting, EHLO/HELO, pipelined MAIL/RCPT/DATA, body streaming, QUIT. */
#include "deliver_client.h"
#include "log/log.h"
#include "queue/queue.h"
#include "deliver_reply.h"
#include "spool/spool.h"
#include "config/config.h"
#include "tls/tls.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include "net/net_io.h"
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DELIVER_CLIENT_PEND_MAX 128              /* > MAIL + DELIVER_CLIENT_MAX_RCPTS RCPTs + DATA */
#define DELIVER_CLIENT_REPLY_BUF_MAX (64 * 1024) /* a reply longer than this is refused */
#define DELIVER_CLIENT_BODY_CHUNK (64 * 1024)    /* read from the spooled body at a time */
#define DELIVER_CLIENT_OUT_HIGH (256 * 1024)     /* stop filling the output above this */
#define DELIVER_CLIENT_OUT_LOW (64 * 1024)       /* refill once it drains to this */
#define DELIVER_CLIENT_QUIT_TIMEOUT 30           /* seconds to wait for the reply to QUIT */

enum deliver_client_cmd { CMD_GREETING, CMD_EHLO, CMD_HELO, CMD_MAIL, CMD_RCPT, CMD_DATA, CMD_DOT, CMD_RSET,
                 CMD_QUIT, CMD_STARTTLS, CMD_AUTH };
static const char *const deliver_client_cmd_names[] = {"greeting", "EHLO", "HELO", "MAIL", "RCPT",
                                              "DATA", "end of data", "RSET", "QUIT", "STARTTLS",
                                              "AUTH"};

enum deliver_client_state {
    ST_CONNECTING, /* waiting for TCP connect */
    ST_HELLO,      /* greeting, EHLO/HELO */
    ST_IDLE,       /* between messages, no work */
    ST_TXN,        /* a transaction: commands sent, replies pending */
    ST_BODY,       /* streaming the message data */
    ST_QUIT,       /* QUIT sent */
    ST_DEAD,       /* finished; the done callback is due */
    ST_TLS,        /* the TLS handshake after STARTTLS */
};

/* a recipient's progress in the transaction */
enum { R_NEW, R_SENT, R_ACCEPTED, R_DONE };

struct deliver_client_pending {
    uint8_t cmd;
    uint8_t discard; /* CMD_DOT after a 354 with no accepted recipient */
    uint16_t index;  /* recipient index for CMD_RCPT */
};

struct deliver_client_session {
    struct net_io *io;
    struct event *timer; /* timeouts; also fires the done callback once finished */
    struct event_base *base;
    struct deliver_client_ops ops;
    void *arg;
    char ehlo[256];
    char peer[96];
    unsigned connect_timeout, command_timeout, data_timeout, idle_ms, max_messages;
    enum deliver_client_state state;
    unsigned pipelining : 1, eightbit : 1, smtputf8 : 1, size_offered : 1, hello_done : 1;
    unsigned established : 1; /* TCP connected: `ending` is owed */
    unsigned long long size_limit;
    unsigned messages;

    struct deliver_client_pending pend[DELIVER_CLIENT_PEND_MAX];
    unsigned pend_head, pend_len;

    /* the current transaction */
    struct queue_rcpt *rcpts[DELIVER_CLIENT_MAX_RCPTS];
    uint8_t rstate[DELIVER_CLIENT_MAX_RCPTS];
    size_t nrcpt, next_rcpt, accepted;
    int aborted;     /* MAIL/DATA failed: RSET before the next one */
    struct spool_body *body; /* the message text being sent */
    size_t added_sent;       /* octets of the message's added header fields sent (they go first) */
    unsigned stuff_state;

    enum deliver_client_end end;
    char reason[512];

    /* TLS and AUTH */
    const struct vipmta_config *cfg;
    int tls_policy;
    unsigned tls_settled : 1, ext_auth_plain : 1, ext_auth_login : 1, ext_starttls : 1;
    struct tls_info *tls;          /* NULL: clear text */
    char tls_host[256];
    char policy_source[300];
    char *auth_user, *auth_password;
};

static void deliver_client_next_message(struct deliver_client_session *s);
static size_t deliver_client_fit(struct deliver_client_session *s);
static void deliver_client_on_read(struct net_io *io, void *arg);
static void deliver_client_on_write(struct net_io *io, void *arg);
static void deliver_client_on_event(struct net_io *io, short what, void *arg);
static void deliver_client_finish(struct deliver_client_session *s, enum deliver_client_end end, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- small helpers ---- */

static void deliver_client_arm(struct deliver_client_session *s, unsigned seconds)
{
    if (s->state == ST_DEAD)
        return;
    struct timeval tv = {(time_t)(seconds ? seconds : 1), 0};
    event_add(s->timer, &tv);
}

static void deliver_client_arm_ms(struct deliver_client_session *s, unsigned ms)
{
    if (s->state == ST_DEAD)
        return;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    event_add(s->timer, &tv);
}

/* the timeout for the reply at the head of the pending list */
static unsigned deliver_client_reply_timeout(const struct deliver_client_session *s)
{
    switch (s->pend[s->pend_head].cmd) {
    case CMD_GREETING:
        return s->connect_timeout;
    case CMD_DOT:
        return s->data_timeout;
    case CMD_QUIT:
        return s->command_timeout < DELIVER_CLIENT_QUIT_TIMEOUT ? s->command_timeout : DELIVER_CLIENT_QUIT_TIMEOUT;
    default:
        return s->command_timeout;
    }
}

static int deliver_client_push(struct deliver_client_session *s, uint8_t cmd, uint16_t index, uint8_t discard)
{
    if (s->pend_len >= DELIVER_CLIENT_PEND_MAX)
        return -1;
    struct deliver_client_pending *p = &s->pend[(s->pend_head + s->pend_len) % DELIVER_CLIENT_PEND_MAX];
    p->cmd = cmd;
    p->index = index;
    p->discard = discard;
    s->pend_len++;
    return 0;
}

/* Writes a command line and expects its reply. */
static int deliver_client_send(struct deliver_client_session *s, uint8_t cmd, uint16_t index, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int deliver_client_send(struct deliver_client_session *s, uint8_t cmd, uint16_t index, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = evbuffer_add_vprintf(net_io_output(s->io), fmt, ap);
    va_end(ap);
    if (rc < 0 || deliver_client_push(s, cmd, index, 0) != 0) {
        deliver_client_finish(s, DELIVER_CLIENT_END_LOST, "out of memory writing to %s", s->peer);
        return -1;
    }
    return 0;
}

static void deliver_client_outcome(struct deliver_client_session *s, size_t i, enum deliver_client_outcome o,
                          const char *reply)
{
    if (s->rstate[i] == R_DONE)
        return;
    s->rstate[i] = R_DONE;
    s->ops.outcome(s->arg, s->rcpts[i], o, reply);
}

static enum deliver_client_outcome deliver_client_outcome_for(int code)
{
    return code / 100 == 5 ? DELIVER_CLIENT_FAILED : DELIVER_CLIENT_DEFERRED;
}

static void deliver_client_close_body(struct deliver_client_session *s)
{
    spool_body_close(s->body);
    s->body = NULL;
}

/* ---- ending ---- */

static void deliver_client_wipe(char *p)
{
    if (!p)
        return;
    for (volatile char *q = p; *q; q++)
        *q = 0;
    free(p);
}

static void deliver_client_free(struct deliver_client_session *s)
{
    deliver_client_close_body(s);
    free(s->tls);
    free(s->auth_user);
    deliver_client_wipe(s->auth_password);
    net_io_free(s->io);
    if (s->timer)
        event_free(s->timer);
    free(s);
}

/* The established connection ends: told once, its socket still open. */
static void deliver_client_ending(struct deliver_client_session *s)
{
    if (!s->established)
        return;
    s->established = 0;
    if (s->ops.ending)
        s->ops.ending(s->arg);
}

/* Gives every recipient without an outcome one, closes the body. */
static void deliver_client_settle(struct deliver_client_session *s, int release_all, const char *reason)
{
    char coded[sizeof(s->reason) + 16];
    if (!(reason[0] >= '2' && reason[0] <= '5' && reason[1] >= '0' && reason[1] <= '9')) {
        /* our own reason: give it a code for the DSN and the expiry text */
        snprintf(coded, sizeof(coded), "451 4.4.2 %s", reason);
        reason = coded;
    }
    for (size_t i = 0; i < s->nrcpt; i++) {
        if (s->rstate[i] == R_DONE)
            continue;
        if (release_all || s->rstate[i] == R_NEW)
            deliver_client_outcome(s, i, DELIVER_CLIENT_RELEASED, reason);
        else
            deliver_client_outcome(s, i, DELIVER_CLIENT_DEFERRED, reason);
    }
    s->nrcpt = 0;
    deliver_client_close_body(s);
}

static void deliver_client_finish(struct deliver_client_session *s, enum deliver_client_end end, const char *fmt, ...)
{
    if (s->state == ST_DEAD)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->reason, sizeof(s->reason), fmt, ap);
    va_end(ap);
    if (end == DELIVER_CLIENT_END_LOST && !s->hello_done)
        end = DELIVER_CLIENT_END_UNUSABLE;
    else if (end == DELIVER_CLIENT_END_LOST && s->nrcpt == 0)
        end = DELIVER_CLIENT_END_OK; /* nothing was in hand: the work is all done */
    s->end = end;
    deliver_client_settle(s, 0, s->reason);
    deliver_client_ending(s);
    s->state = ST_DEAD;
    net_io_disable(s->io, EV_READ | EV_WRITE);
    event_del(s->timer);
    event_active(s->timer, EV_TIMEOUT, 0);
}

static void deliver_client_quit(struct deliver_client_session *s)
{
    s->state = ST_QUIT;
    if (deliver_client_send(s, CMD_QUIT, 0, "QUIT\r\n") == 0)
        deliver_client_arm(s, deliver_client_reply_timeout(s));
}

/* ---- transactions ---- */

static void deliver_client_send_rcpt(struct deliver_client_session *s, size_t i)
{
    s->rstate[i] = R_SENT;
    deliver_client_send(s, CMD_RCPT, (uint16_t)i, "RCPT TO:<%s>\r\n", s->rcpts[i]->address);
}

static void deliver_client_begin(struct deliver_client_session *s)
{
    const struct queue_message *m = s->rcpts[0]->msg;
    char size[40] = "";

    s->state = ST_TXN;
    s->messages++;
    s->accepted = 0;
    s->aborted = 0;
    s->next_rcpt = 0;
    memset(s->rstate, R_NEW, sizeof(s->rstate));
    if (s->size_offered)
        snprintf(size, sizeof(size), " SIZE=%llu",
                 (unsigned long long)(m->body_size + m->added_headers_len));
    /* BODY=8BITMIME for 8-bit content, SMTPUTF8 for an internationalized
     * message (deliver_client_fit made sure the next hop takes both) */
    if (deliver_client_send(s, CMD_MAIL, 0, "MAIL FROM:<%s>%s%s%s\r\n", m->sender, size,
                            m->eightbit ? " BODY=8BITMIME" : "",
                            m->smtputf8 && s->smtputf8 ? " SMTPUTF8" : "") != 0)
        return;
    if (s->pipelining) {
        for (size_t i = 0; i < s->nrcpt && s->state == ST_TXN; i++)
            deliver_client_send_rcpt(s, i);
        if (s->state == ST_TXN)
            deliver_client_send(s, CMD_DATA, 0, "DATA\r\n");
        s->next_rcpt = s->nrcpt;
    }
}

/* The transaction is over (all recipients have outcomes). */
static void deliver_client_txn_end(struct deliver_client_session *s)
{
    deliver_client_close_body(s);
    s->nrcpt = 0;
    if (s->aborted) {
        s->aborted = 0;
        deliver_client_send(s, CMD_RSET, 0, "RSET\r\n");
        return;
    }
    deliver_client_next_message(s);
}

static void deliver_client_next_message(struct deliver_client_session *s)
{
    for (;;) {
        if (s->max_messages && s->messages >= s->max_messages) {
            deliver_client_quit(s);
            return;
        }
        size_t n = s->ops.take(s->arg, s->rcpts, DELIVER_CLIENT_MAX_RCPTS);
        if (n == 0) {
            if (s->idle_ms == 0) {
                deliver_client_quit(s);
                return;
            }
            s->state = ST_IDLE;
            deliver_client_arm_ms(s, s->idle_ms);
            return;
        }
        s->nrcpt = n;
        memset(s->rstate, R_NEW, sizeof(s->rstate));
        const struct queue_message *m = s->rcpts[0]->msg;
        if (deliver_client_fit(s) == 0)
            continue; /* this next hop can take none of them: they failed */
        uint64_t size = m->body_size + m->added_headers_len;
        if (s->size_limit && size > s->size_limit) {
            char why[256];
            snprintf(why, sizeof(why),
                     "552 5.3.4 message size %llu exceeds the maximum message size %llu of %s",
                     (unsigned long long)size, s->size_limit, s->peer);
            for (size_t i = 0; i < n; i++)
                deliver_client_outcome(s, i, DELIVER_CLIENT_FAILED, why);
            s->nrcpt = 0;
            continue;
        }
        s->body = spool_body_open(m->id);
        if (!s->body) {
            char why[256];
            snprintf(why, sizeof(why), "451 4.3.0 cannot open the spooled body of %s: %s", m->id,
                     strerror(errno));
            log_write("delivery", VIPMTA_LOG_ERROR, "%s", why);
            for (size_t i = 0; i < n; i++)
                deliver_client_outcome(s, i, DELIVER_CLIENT_DEFERRED, why);
            s->nrcpt = 0;
            continue;
        }
        s->stuff_state = 0;
        s->added_sent = 0;
        deliver_client_begin(s);
        if (s->state == ST_TXN)
            deliver_client_arm(s, deliver_client_reply_timeout(s));
        return;
    }
}

static int deliver_client_ascii(const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if (*p >= 0x80)
            return 0;
    return 1;
}

/* Fails (permanently) the recipients of the message in hand that this next
 * hop cannot take, and keeps the others: 8-bit content needs 8BITMIME (no
 * conversion to quoted-printable is made); an internationalized message
 * needs SMTPUTF8, unless its addresses are ASCII (it then goes without, as
 * RFC 6531 3.4 allows a downgrade of ASCII addresses). Returns how many are
 * left in s->rcpts. */
static size_t deliver_client_fit(struct deliver_client_session *s)
{
    const struct queue_message *m = s->rcpts[0]->msg;
    char all[512], why[512];

    all[0] = '\0';
    if (m->smtputf8 && !s->smtputf8 && !deliver_client_ascii(m->sender))
        snprintf(all, sizeof(all), "553 5.6.7 the sender <%s> is not ASCII and %s does not offer "
                 "SMTPUTF8", m->sender, s->peer);
    else if (m->eightbit && !s->eightbit)
        snprintf(all, sizeof(all), "554 5.6.3 the message has 8-bit content and %s does not offer "
                 "8BITMIME (vipmta does not convert it to 7-bit)", s->peer);
    size_t kept = 0;
    for (size_t i = 0; i < s->nrcpt; i++) {
        const char *reason = all[0] ? all : NULL;
        /* the address first: it is the better reason when both apply */
        if (m->smtputf8 && !s->smtputf8 && !deliver_client_ascii(s->rcpts[i]->address)) {
            snprintf(why, sizeof(why), "553 5.6.7 the recipient <%s> is not ASCII and %s does not "
                     "offer SMTPUTF8", s->rcpts[i]->address, s->peer);
            reason = why;
        }
        if (reason) {
            s->ops.outcome(s->arg, s->rcpts[i], DELIVER_CLIENT_FAILED, reason);
            continue;
        }
        s->rcpts[kept++] = s->rcpts[i];
    }
    s->nrcpt = kept;
    return kept;
}

/* Fills the output with dot-stuffed body data up to the high mark. */
static void deliver_client_fill_body(struct deliver_client_session *s)
{
    struct evbuffer *out = net_io_output(s->io);
    const struct queue_message *m = s->rcpts[0]->msg;
    while (s->state == ST_BODY && evbuffer_get_length(out) < DELIVER_CLIENT_OUT_HIGH) {
        char in[DELIVER_CLIENT_BODY_CHUNK];
        const char *src = in;
        ssize_t n;
        if (s->added_sent < m->added_headers_len) {
            /* the header fields modules added come first, stuffed like the rest */
            src = m->added_headers + s->added_sent;
            n = (ssize_t)(m->added_headers_len - s->added_sent);
            if (n > (ssize_t)sizeof(in))
                n = (ssize_t)sizeof(in);
            s->added_sent += (size_t)n;
        } else {
            n = spool_body_read(s->body, in, sizeof(in));
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            /* the data cannot be ended cleanly: drop the connection so the
             * server discards the transaction */
            deliver_client_finish(s, DELIVER_CLIENT_END_LOST, "451 4.3.0 cannot read the spooled body: %s",
                         strerror(errno));
            return;
        }
        if (n == 0) {
            char tail[8];
            size_t tl = deliver_client_dot_end(s->stuff_state, tail);
            deliver_client_close_body(s);
            s->state = ST_TXN;
            if (evbuffer_add(out, tail, tl) != 0 || deliver_client_push(s, CMD_DOT, 0, 0) != 0) {
                deliver_client_finish(s, DELIVER_CLIENT_END_LOST, "out of memory writing to %s", s->peer);
                return;
            }
            deliver_client_arm(s, deliver_client_reply_timeout(s));
            return;
        }
        struct evbuffer_iovec v;
        if (evbuffer_reserve_space(out, (ev_ssize_t)(2 * (size_t)n + 2), &v, 1) < 1) {
            deliver_client_finish(s, DELIVER_CLIENT_END_LOST, "out of memory writing to %s", s->peer);
            return;
        }
        v.iov_len = deliver_client_dot_stuff(src, (size_t)n, v.iov_base, &s->stuff_state);
        evbuffer_commit_space(out, &v, 1);
    }
    if (s->state == ST_BODY)
        deliver_client_arm(s, s->command_timeout); /* progress is required within this */
}

/* ---- replies ---- */

/* The TLS state is known (encrypted or clear from now on): tell the engine once. */
static void deliver_client_settle_tls(struct deliver_client_session *s)
{
    if (s->tls_settled)
        return;
    s->tls_settled = 1;
    if (s->ops.tls_settled)
        s->ops.tls_settled(s->arg, s->tls);
}

/* "AUTH PLAIN" with the credentials as initial response (RFC 4616). */
static void deliver_client_send_auth(struct deliver_client_session *s)
{
    size_t ul = strlen(s->auth_user), pl = strlen(s->auth_password);
    size_t rawlen = ul + pl + 2;
    unsigned char *raw = malloc(rawlen);
    char *b64 = malloc(4 * ((rawlen + 2) / 3) + 1);
    if (!raw || !b64) {
        free(raw);
        free(b64);
        deliver_client_finish(s, DELIVER_CLIENT_END_UNUSABLE, "out of memory for AUTH to %s", s->peer);
        return;
    }
    raw[0] = 0;
    memcpy(raw + 1, s->auth_user, ul);
    raw[1 + ul] = 0;
    memcpy(raw + 2 + ul, s->auth_password, pl);
    EVP_EncodeBlock((unsigned char *)b64, raw, (int)rawlen);
    deliver_client_send(s, CMD_AUTH, 0, "AUTH PLAIN %s\r\n", b64);
    for (size_t i = 0; i < rawlen; i++)
        ((volatile unsigned char *)raw)[i] = 0;
    for (volatile char *q = b64; *q; q++)
        *q = 0;
    free(raw);
    free(b64);
}

/* After EHLO: STARTTLS when the policy asks for it, then AUTH, then mail. */
static void deliver_client_after_ehlo(struct deliver_client_session *s)
{
    const char *policy = config_tls_policy_name((enum config_tls_policy)s->tls_policy);
    int wants_tls = s->tls_policy != CONFIG_TLS_POLICY_NONE && s->cfg && tls_client_ctx(s->cfg);
    int must_tls = s->tls_policy >= CONFIG_TLS_POLICY_REQUIRED;
    if (!s->tls && wants_tls && s->ext_starttls) {
        deliver_client_send(s, CMD_STARTTLS, 0, "STARTTLS\r\n");
        return;
    }
    if (!s->tls && must_tls) {
        deliver_client_finish(s, DELIVER_CLIENT_END_UNUSABLE,
                              "TLS is required (%s: tls \"%s\") but %s does not offer STARTTLS%s",
                              s->policy_source, policy, s->peer,
                              wants_tls ? "" : " (no TLS client context)");
        return;
    }
    deliver_client_settle_tls(s);
    if (s->auth_user && s->state != ST_DEAD) {
        if (!s->tls) {
            deliver_client_finish(s, DELIVER_CLIENT_END_UNUSABLE, "AUTH credentials for %s are "
                                  "sent only over TLS", s->peer);
            return;
        }
        if (!s->ext_auth_plain) {
            deliver_client_finish(s, DELIVER_CLIENT_END_UNUSABLE, "%s does not offer AUTH PLAIN "
                                  "(the route has credentials for it)", s->peer);
            return;
        }
        deliver_client_send_auth(s);
        return;
    }
    s->hello_done = 1;
    deliver_client_next_message(s);
}

/* The 220 to STARTTLS: the connection becomes a TLS client. */
static void deliver_client_start_tls(struct deliver_client_session *s)
{
    struct evbuffer *in = net_io_input(s->io);
    if (evbuffer_get_length(in)) {
        /* nothing may follow the 220 in clear (it would be taken as sent over TLS) */
        deliver_client_finish(s, DELIVER_CLIENT_END_TLS_FAILED, "%s sent %zu octets after its 220 "
                              "to STARTTLS, before the handshake", s->peer, evbuffer_get_length(in));
        return;
    }
    SSL *ssl = tls_client_ssl(s->cfg, s->tls_host, s->peer,
                              s->tls_policy == CONFIG_TLS_POLICY_VERIFY);
    if (!ssl) {
        deliver_client_finish(s, DELIVER_CLIENT_END_UNUSABLE, "out of memory starting TLS with %s",
                              s->peer);
        return;
    }
    struct event_base *base = s->base;
    /* the plain connection lets go of the socket */
    int fd = net_io_release_fd(s->io);
    struct bufferevent *bev = bufferevent_openssl_socket_new(base, fd, ssl,
                                                             BUFFEREVENT_SSL_CONNECTING,
                                                             BEV_OPT_CLOSE_ON_FREE);
    s->io = bev ? net_io_bev_new(bev) : NULL;
    if (!s->io) {
        if (bev)
            bufferevent_free(bev); /* closes fd, frees ssl */
        else {
            SSL_free(ssl);
            close(fd);
        }
        deliver_client_finish(s, DELIVER_CLIENT_END_UNUSABLE, "out of memory starting TLS with %s",
                              s->peer);
        return;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    net_io_setcb(s->io, deliver_client_on_read, deliver_client_on_write, deliver_client_on_event, s);
    net_io_set_write_low(s->io, DELIVER_CLIENT_OUT_LOW);
    net_io_enable(s->io, EV_READ | EV_WRITE);
    s->state = ST_TLS;
    deliver_client_arm(s, s->connect_timeout);
}

/* The handshake is done: the policy looks at the certificate, then EHLO again. */
static void deliver_client_tls_up(struct deliver_client_session *s)
{
    s->tls = calloc(1, sizeof(*s->tls));
    if (!s->tls) {
        deliver_client_finish(s, DELIVER_CLIENT_END_UNUSABLE, "out of memory after TLS with %s",
                              s->peer);
        return;
    }
    tls_info_from_ssl(bufferevent_openssl_get_ssl(net_io_bev(s->io)), s->tls);
    if (s->tls_policy == CONFIG_TLS_POLICY_VERIFY && !s->tls->verified) {
        deliver_client_finish(s, DELIVER_CLIENT_END_UNUSABLE,
                              "TLS certificate of %s (%s) not verified: %s (%s: tls \"verify\")",
                              s->tls_host[0] ? s->tls_host : "?", s->peer,
                              s->tls->verify_error[0] ? s->tls->verify_error : "unknown reason",
                              s->policy_source);
        return;
    }
    s->state = ST_HELLO;
    s->ext_starttls = 0;
    deliver_client_send(s, CMD_EHLO, 0, "EHLO %s\r\n", s->ehlo);
    deliver_client_arm(s, deliver_client_reply_timeout(s));
}

static void deliver_client_on_hello(struct deliver_client_session *s, uint8_t cmd, const struct deliver_reply *r,
                           const char *text)
{
    if (cmd == CMD_STARTTLS) {
        if (r->code == 220) {
            deliver_client_start_tls(s);
            return;
        }
        if (s->tls_policy >= CONFIG_TLS_POLICY_REQUIRED) {
            deliver_client_finish(s, DELIVER_CLIENT_END_UNUSABLE,
                                  "TLS is required (%s: tls \"%s\") but %s refused STARTTLS: %s",
                                  s->policy_source,
                                  config_tls_policy_name((enum config_tls_policy)s->tls_policy),
                                  s->peer, text);
            return;
        }
        s->ext_starttls = 0; /* opportunistic: on in clear */
        deliver_client_after_ehlo(s);
        return;
    }
    if (cmd == CMD_AUTH) {
        if (r->code / 100 != 2) {
            deliver_client_finish(s, DELIVER_CLIENT_END_UNUSABLE, "AUTH as %s refused by %s: %s",
                                  s->auth_user, s->peer, text);
            return;
        }
        s->hello_done = 1;
        deliver_client_next_message(s);
        return;
    }
    if (cmd == CMD_GREETING) {
        if (r->code / 100 != 2) {
            deliver_client_finish(s, DELIVER_CLIENT_END_UNUSABLE, "greeting from %s: %s", s->peer, text);
            return;
        }
        deliver_client_send(s, CMD_EHLO, 0, "EHLO %s\r\n", s->ehlo);
        return;
    }
    if (cmd == CMD_EHLO && r->code / 100 == 5) {
        deliver_client_send(s, CMD_HELO, 0, "HELO %s\r\n", s->ehlo);
        return;
    }
    if (r->code / 100 != 2) {
        deliver_client_finish(s, DELIVER_CLIENT_END_UNUSABLE, "%s refused by %s: %s", deliver_client_cmd_names[cmd],
                     s->peer, text);
        return;
    }
    if (cmd == CMD_EHLO) {
        s->pipelining = r->ext_pipelining != 0;
        s->eightbit = r->ext_8bitmime != 0;
        s->smtputf8 = r->ext_smtputf8 != 0;
        s->size_offered = r->ext_size != 0;
        s->size_limit = r->ext_size ? r->ext_size_limit : 0;
        s->ext_starttls = r->ext_starttls != 0;
        s->ext_auth_plain = r->ext_auth_plain != 0;
        s->ext_auth_login = r->ext_auth_login != 0;
    }
    deliver_client_after_ehlo(s);
}

static void deliver_client_on_reply(struct deliver_client_session *s, const struct deliver_reply *r)
{
    char text[DELIVER_REPLY_TEXT_MAX + 32];
    deliver_reply_format(r, text, sizeof(text));

    if (s->pend_len == 0) {
        deliver_client_finish(s, DELIVER_CLIENT_END_LOST, "unexpected reply from %s: %s", s->peer, text);
        return;
    }
    struct deliver_client_pending p = s->pend[s->pend_head];
    s->pend_head = (s->pend_head + 1) % DELIVER_CLIENT_PEND_MAX;
    s->pend_len--;
    int ok = r->code / 100 == 2;

    switch (p.cmd) {
    case CMD_GREETING:
    case CMD_EHLO:
    case CMD_HELO:
    case CMD_STARTTLS:
    case CMD_AUTH:
        deliver_client_on_hello(s, p.cmd, r, text);
        break;
    case CMD_MAIL:
        if (!ok) {
            for (size_t i = 0; i < s->nrcpt; i++)
                deliver_client_outcome(s, i, deliver_client_outcome_for(r->code), text);
            s->aborted = 1;
            if (!s->pipelining)
                deliver_client_txn_end(s);
        } else if (!s->pipelining) {
            deliver_client_send_rcpt(s, s->next_rcpt++);
        }
        break;
    case CMD_RCPT:
        if (p.index < s->nrcpt && s->rstate[p.index] != R_DONE) {
            if (ok) {
                s->rstate[p.index] = R_ACCEPTED;
                s->accepted++;
            } else {
                deliver_client_outcome(s, p.index, deliver_client_outcome_for(r->code), text);
            }
        }
        if (!s->pipelining) {
            if (s->next_rcpt < s->nrcpt)
                deliver_client_send_rcpt(s, s->next_rcpt++);
            else if (s->accepted)
                deliver_client_send(s, CMD_DATA, 0, "DATA\r\n");
            else {
                s->aborted = 1;
                deliver_client_txn_end(s);
            }
        }
        break;
    case CMD_DATA:
        if (r->code == 354 && s->accepted && !s->aborted) {
            s->state = ST_BODY;
            deliver_client_fill_body(s);
            return; /* the body's own timer */
        }
        if (r->code == 354) {
            /* nobody to deliver to: end the (empty) data and reset */
            evbuffer_add(net_io_output(s->io), ".\r\n", 3);
            deliver_client_push(s, CMD_DOT, 0, 1);
            s->aborted = 1;
            break;
        }
        for (size_t i = 0; i < s->nrcpt; i++)
            if (s->rstate[i] == R_ACCEPTED)
                deliver_client_outcome(s, i, ok ? DELIVER_CLIENT_DEFERRED : deliver_client_outcome_for(r->code), text);
        s->aborted = 1;
        deliver_client_txn_end(s);
        break;
    case CMD_DOT:
        if (!p.discard)
            for (size_t i = 0; i < s->nrcpt; i++)
                if (s->rstate[i] == R_ACCEPTED)
                    deliver_client_outcome(s, i, ok ? DELIVER_CLIENT_DELIVERED : deliver_client_outcome_for(r->code), text);
        deliver_client_txn_end(s);
        break;
    case CMD_RSET:
        if (ok)
            deliver_client_next_message(s);
        else
            deliver_client_quit(s);
        break;
    case CMD_QUIT:
        deliver_client_finish(s, DELIVER_CLIENT_END_OK, "QUIT");
        break;
    }
    if (s->pend_len && (s->state == ST_TXN || s->state == ST_HELLO || s->state == ST_QUIT))
        deliver_client_arm(s, deliver_client_reply_timeout(s));
}

/* ---- libevent callbacks ---- */

static void deliver_client_on_read(struct net_io *io, void *arg)
{
    struct deliver_client_session *s = arg;
    struct evbuffer *in = net_io_input(io);

    while (s->state != ST_DEAD && s->io == io) { /* STARTTLS replaces the connection */
        size_t len = evbuffer_get_length(in);
        if (len == 0)
            return;
        if (len > DELIVER_CLIENT_REPLY_BUF_MAX)
            len = DELIVER_CLIENT_REPLY_BUF_MAX;
        const char *data = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
        struct deliver_reply r;
        size_t used = 0;
        int is_ehlo = s->pend_len && s->pend[s->pend_head].cmd == CMD_EHLO;
        enum deliver_reply_status st = deliver_reply_parse(data, len, is_ehlo, &r, &used);
        if (st == DELIVER_REPLY_INCOMPLETE) {
            if (len >= DELIVER_CLIENT_REPLY_BUF_MAX)
                deliver_client_finish(s, DELIVER_CLIENT_END_LOST, "reply from %s longer than %d bytes", s->peer,
                             DELIVER_CLIENT_REPLY_BUF_MAX);
            return;
        }
        if (st == DELIVER_REPLY_MALFORMED) {
            deliver_client_finish(s, DELIVER_CLIENT_END_LOST, "malformed reply from %s", s->peer);
            return;
        }
        evbuffer_drain(in, used);
        deliver_client_on_reply(s, &r);
    }
}

static void deliver_client_on_write(struct net_io *io, void *arg)
{
    (void)io;
    struct deliver_client_session *s = arg;
    if (s->state == ST_BODY)
        deliver_client_fill_body(s);
}

static const char *deliver_client_waiting_for(const struct deliver_client_session *s)
{
    if (s->state == ST_BODY)
        return "sending the message data";
    if (s->state == ST_IDLE)
        return "idle";
    if (s->pend_len == 0)
        return "between commands";
    static char buf[48];
    snprintf(buf, sizeof(buf), "waiting for the reply to %s",
             deliver_client_cmd_names[s->pend[s->pend_head].cmd]);
    return buf;
}

static void deliver_client_on_event(struct net_io *io, short what, void *arg)
{
    struct deliver_client_session *s = arg;
    int err = EVUTIL_SOCKET_ERROR();

    if ((what & BEV_EVENT_CONNECTED) && s->state == ST_TLS) {
        deliver_client_tls_up(s);
        return;
    }
    if (what & BEV_EVENT_CONNECTED) {
        s->state = ST_HELLO;
        net_io_enable(io, EV_READ);
        s->established = 1;
        if (s->ops.connected)
            s->ops.connected(s->arg, 0);
        return;
    }
    if (s->state == ST_TLS) {
        char why[256] = "";
        unsigned long e;
        while (net_io_bev(io) && (e = bufferevent_get_openssl_error(net_io_bev(io))) != 0)
            if (!why[0])
                snprintf(why, sizeof(why), "%s", ERR_reason_error_string(e) ? ERR_reason_error_string(e)
                                                                            : "OpenSSL error");
        tls_stats_handshake_failed(TLS_STATS_OUTBOUND);
        deliver_client_finish(s, DELIVER_CLIENT_END_TLS_FAILED, "TLS handshake with %s (%s) failed: %s",
                              s->tls_host[0] ? s->tls_host : "?", s->peer,
                              why[0] ? why : (what & BEV_EVENT_EOF) ? "connection closed" : "error");
        return;
    }
    if (s->state == ST_CONNECTING) {
        if (s->ops.connected)
            s->ops.connected(s->arg, err ? err : ECONNRESET);
        deliver_client_finish(s, DELIVER_CLIENT_END_UNUSABLE, "connect to %s failed: %s", s->peer,
                     err ? strerror(err) : "connection closed");
        return;
    }
    if (s->state == ST_QUIT || s->state == ST_IDLE) {
        deliver_client_finish(s, DELIVER_CLIENT_END_OK, "closed");
        return;
    }
    if (what & BEV_EVENT_EOF)
        deliver_client_finish(s, DELIVER_CLIENT_END_LOST, "connection closed by %s (%s)", s->peer,
                     deliver_client_waiting_for(s));
    else
        deliver_client_finish(s, DELIVER_CLIENT_END_LOST, "connection to %s lost (%s): %s", s->peer,
                     deliver_client_waiting_for(s), err ? strerror(err) : "error");
}

static void deliver_client_on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct deliver_client_session *s = arg;

    if (s->state == ST_DEAD) {
        struct deliver_client_ops ops = s->ops;
        void *cb_arg = s->arg;
        enum deliver_client_end end = s->end;
        char reason[sizeof(s->reason)];
        memcpy(reason, s->reason, sizeof(reason));
        deliver_client_free(s);
        ops.done(cb_arg, end, reason);
        return;
    }
    if (s->state == ST_IDLE) {
        deliver_client_quit(s);
        return;
    }
    if (s->state == ST_QUIT) {
        deliver_client_finish(s, DELIVER_CLIENT_END_OK, "no reply to QUIT");
        return;
    }
    if (s->state == ST_CONNECTING) {
        if (s->ops.connected)
            s->ops.connected(s->arg, ETIMEDOUT);
        deliver_client_finish(s, DELIVER_CLIENT_END_UNUSABLE, "connect to %s timed out after %u s", s->peer,
                     s->connect_timeout);
        return;
    }
    if (s->state == ST_TLS) {
        tls_stats_handshake_failed(TLS_STATS_OUTBOUND);
        deliver_client_finish(s, DELIVER_CLIENT_END_TLS_FAILED, "TLS handshake with %s timed out "
                              "after %u s", s->peer, s->connect_timeout);
        return;
    }
    unsigned t = s->state == ST_BODY ? s->command_timeout : deliver_client_reply_timeout(s);
    deliver_client_finish(s, DELIVER_CLIENT_END_LOST, "timeout after %u s %s from %s", t, deliver_client_waiting_for(s),
                 s->peer);
}

/* ---- public ---- */

struct deliver_client_session *deliver_client_start(struct event_base *base, const struct deliver_client_params *params,
                                  const struct deliver_client_ops *ops, void *arg)
{
    struct deliver_client_session *s = calloc(1, sizeof(*s));
    if (!s) {
        close(params->fd);
        return NULL;
    }
    s->ops = *ops;
    s->arg = arg;
    snprintf(s->ehlo, sizeof(s->ehlo), "%s", params->ehlo_name ? params->ehlo_name : "localhost");
    snprintf(s->peer, sizeof(s->peer), "%s", params->peer ? params->peer : "?");
    s->connect_timeout = params->connect_timeout ? params->connect_timeout : 60;
    s->command_timeout = params->command_timeout ? params->command_timeout : 300;
    s->data_timeout = params->data_timeout ? params->data_timeout : 600;
    s->idle_ms = params->idle_timeout_ms;
    s->max_messages = params->max_messages;
    s->cfg = params->cfg;
    s->tls_policy = params->tls_policy;
    snprintf(s->tls_host, sizeof(s->tls_host), "%s", params->tls_host ? params->tls_host : "");
    snprintf(s->policy_source, sizeof(s->policy_source), "%s",
             params->policy_source ? params->policy_source : "policy");
    if (params->auth_user) {
        s->auth_user = strdup(params->auth_user);
        s->auth_password = strdup(params->auth_password ? params->auth_password : "");
        if (!s->auth_user || !s->auth_password) {
            close(params->fd);
            deliver_client_free(s);
            return NULL;
        }
    }
    s->state = ST_CONNECTING;
    s->base = base;
    s->io = net_io_socket_new(base, params->fd);
    s->timer = evtimer_new(base, deliver_client_on_timer, s);
    if (!s->io || !s->timer) {
        if (!s->io)
            close(params->fd);
        deliver_client_free(s);
        return NULL;
    }
    net_io_setcb(s->io, deliver_client_on_read, deliver_client_on_write, deliver_client_on_event, s);
    net_io_set_write_low(s->io, DELIVER_CLIENT_OUT_LOW);
    deliver_client_push(s, CMD_GREETING, 0, 0);
    deliver_client_arm(s, s->connect_timeout); /* covers the connect and the greeting */
    if (net_io_connect(s->io) != 0) {
        int err = errno;
        if (s->ops.connected)
            s->ops.connected(s->arg, err ? err : ECONNREFUSED);
        deliver_client_finish(s, DELIVER_CLIENT_END_UNUSABLE, "connect to %s failed: %s", s->peer,
                     strerror(err));
    }
    return s;
}

const struct tls_info *deliver_client_tls(const struct deliver_client_session *s)
{
    return s->tls;
}

int deliver_client_fd(const struct deliver_client_session *s)
{
    return s->io ? net_io_fd(s->io) : -1;
}

int deliver_client_is_idle(const struct deliver_client_session *s)
{
    return s->state == ST_IDLE;
}

void deliver_client_wake(struct deliver_client_session *s)
{
    if (s->state != ST_IDLE)
        return;
    event_del(s->timer);
    s->state = ST_TXN; /* until deliver_client_next_message decides */
    deliver_client_next_message(s);
}

void deliver_client_close_idle(struct deliver_client_session *s)
{
    if (s->state != ST_IDLE)
        return;
    event_del(s->timer);
    deliver_client_quit(s);
}

void deliver_client_abort(struct deliver_client_session *s)
{
    if (s->state == ST_IDLE) {
        int fd = net_io_fd(s->io);
        if (fd >= 0 && evbuffer_get_length(net_io_output(s->io)) == 0)
            (void)!send(fd, "QUIT\r\n", 6, MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    deliver_client_settle(s, 1, "shutting down");
    deliver_client_ending(s);
    deliver_client_free(s);
}
