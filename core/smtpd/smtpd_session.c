/* smtpd_session.c: one SMTP connection: buffered I/O, the pipelined input loop, replies, timeouts, closing. */
#include "smtpd_session.h"
#include "config/config_current.h"
#include "tls/tls.h"
#include "net/net_io.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>

static void smtpd_on_read(struct net_io *io, void *arg);
static void smtpd_on_write(struct net_io *io, void *arg);
static void smtpd_on_event(struct net_io *io, short what, void *arg);
static void smtpd_on_timer(evutil_socket_t fd, short what, void *arg);

const char *smtpd_printable(const char *in, char *out, size_t outlen)
{
    size_t i = 0;
    if (!outlen)
        return out;
    for (; in && in[i] && i + 1 < outlen; i++) {
        unsigned char c = (unsigned char)in[i];
        out[i] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
    }
    out[i] = '\0';
    return out;
}

static void smtpd_format_addr(const struct sockaddr *sa, char *out, size_t len)
{
    snprintf(out, len, "?");
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)len);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
            inet_ntop(AF_INET, s6->sin6_addr.s6_addr + 12, out, (socklen_t)len);
        else
            inet_ntop(AF_INET6, &s6->sin6_addr, out, (socklen_t)len);
    }
}

void smtpd_session_setup_io(struct smtpd_session *s)
{
    net_io_setcb(s->io, smtpd_on_read, smtpd_on_write, smtpd_on_event, s);
    net_io_set_read_high(s->io, SMTPD_INPUT_HIGH);
    net_io_enable(s->io, EV_READ | EV_WRITE);
}

struct smtpd_session *smtpd_session_new(int fd, const struct sockaddr *sa, socklen_t salen,
                                        int may_relay, int listen_index)
{
    struct smtpd_session *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->cfg = config_hold();
    const struct vipmta_config *cfg = s->cfg;
    memcpy(&s->addr, sa, salen < sizeof(s->addr) ? salen : sizeof(s->addr));
    smtpd_format_addr(sa, s->addr_str, sizeof(s->addr_str));
    s->may_relay = may_relay;
    s->listen_index = listen_index;
    s->timer = evtimer_new(smtpd_base(), smtpd_on_timer, s);
    if (!s->timer) {
        config_release(s->cfg);
        free(s);
        return NULL;
    }
    if (smtpd_tls_open(s, fd) != 0) {
        event_free(s->timer);
        config_release(s->cfg);
        free(s);
        return NULL;
    }
    smtpd_session_setup_io(s);
    smtpd_log(s, VIPMTA_LOG_INFO, "connect (relay %s%s)", may_relay ? "allowed" : "to relay_domains only",
              s->state == SMTPD_STATE_TLS ? ", implicit TLS" : "");
    smtpd_reply(s, "220 %s ESMTP vipmta", cfg->hostname);
    smtpd_session_arm(s, smtpd_session_command_timeout(s));
    return s;
}

void smtpd_reply(struct smtpd_session *s, const char *fmt, ...)
{
    if (!s->io || s->state == SMTPD_STATE_CLOSING)
        return;
    struct evbuffer *out = net_io_output(s->io);
    va_list ap;
    va_start(ap, fmt);
    evbuffer_add_vprintf(out, fmt, ap);
    va_end(ap);
    evbuffer_add(out, "\r\n", 2);
}

void smtpd_log(const struct smtpd_session *s, enum vipmta_log_level level, const char *fmt, ...)
{
    if (!vipmta_log_enabled(level))
        return;
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (s->queue_id[0])
        log_write("smtpd", level, "id=%s client=%s: %s", s->queue_id, s->addr_str, msg);
    else
        log_write("smtpd", level, "client=%s: %s", s->addr_str, msg);
}

void smtpd_session_arm(struct smtpd_session *s, unsigned seconds)
{
    if (!s->timer)
        return;
    if (!seconds) {
        evtimer_del(s->timer);
        return;
    }
    struct timeval tv = {(time_t)seconds, 0};
    evtimer_add(s->timer, &tv);
}

unsigned smtpd_session_command_timeout(const struct smtpd_session *s)
{
    return smtpd_server_busy(s->cfg) ? s->cfg->smtp.busy_command_timeout
                                     : s->cfg->smtp.command_timeout;
}

void smtpd_session_arm_data(struct smtpd_session *s)
{
    unsigned seconds = s->cfg->smtp.data_timeout;
    if (s->data) {
        time_t left = s->data->deadline - time(NULL);
        if (left < 1)
            left = 1;
        if ((time_t)seconds > left)
            seconds = (unsigned)left;
    }
    smtpd_session_arm(s, seconds);
}

int smtpd_session_error(struct smtpd_session *s)
{
    unsigned max = s->cfg->smtp.max_errors;
    s->errors++;
    if (!max || s->errors < max)
        return 0;
    smtpd_log(s, VIPMTA_LOG_NOTICE, "too many errors (%u, max_errors %u): 421 4.7.0, closing",
              s->errors, max);
    smtpd_reply(s, "421 4.7.0 %s Error: too many errors, closing connection",
                s->cfg->hostname);
    smtpd_session_close(s);
    return 1;
}

void smtpd_session_free(struct smtpd_session *s)
{
    if (s->data)
        smtpd_data_abort(s);
    if (s->msg)
        smtpd_hooks_client_gone(s);
    if (s->io)
        net_io_free(s->io);
    s->io = NULL;
    if (s->timer)
        event_free(s->timer);
    s->timer = NULL;
    smtpd_transaction_reset(s);
    free(s->rcpts);
    smtpd_log(s, VIPMTA_LOG_INFO, "disconnect messages=%lu errors=%u%s%s", s->messages, s->errors,
              s->tls ? " tls=" : "", s->tls ? s->tls->version : "");
    const struct config_listen *l = smtpd_tls_listener(s);
    if (!s->tls && !(l && l->tls == CONFIG_LISTEN_TLS_IMPLICIT))
        tls_stats_connection(TLS_STATS_INBOUND, NULL); /* a session in clear text */
    smtpd_auth_free(s);
    free(s->auth_user);
    free(s->tls);
    free(s->helo);
    smtpd_registry_remove(s);
    config_release(s->cfg);
    free(s);
}

/* The connection is gone: free now, or once a pending commit reports. */
static void smtpd_session_drop(struct smtpd_session *s)
{
    if (s->state != SMTPD_STATE_COMMIT || s->msg) {
        /* a message the hooks have is let go with it (smtpd_session_free) */
        smtpd_session_free(s);
        return;
    }
    smtpd_log(s, VIPMTA_LOG_NOTICE, "connection lost while the message was being committed");
    net_io_free(s->io);
    s->io = NULL;
    smtpd_session_arm(s, 0);
}

void smtpd_session_drop_now(struct smtpd_session *s)
{
    if (s->state == SMTPD_STATE_DATA)
        smtpd_log(s, VIPMTA_LOG_NOTICE, "server stopped during DATA, message dropped");
    if (s->state == SMTPD_STATE_COMMIT && (s->io || s->msg)) {
        smtpd_session_drop(s);
        return;
    }
    if (s->state != SMTPD_STATE_COMMIT)
        smtpd_session_free(s);
}

/* CLOSING: the last reply is out; shut our side and wait (briefly) for the client's EOF. */
static void smtpd_session_flushed(struct smtpd_session *s)
{
    s->flushed = 1;
    (void)shutdown(net_io_fd(s->io), SHUT_WR);
    net_io_enable(s->io, EV_READ);
}

void smtpd_session_close(struct smtpd_session *s)
{
    if (s->state == SMTPD_STATE_CLOSING || s->state == SMTPD_STATE_COMMIT)
        return;
    if (s->state == SMTPD_STATE_DATA || s->data)
        smtpd_data_abort(s);
    s->state = SMTPD_STATE_CLOSING;
    if (!s->io)
        return;
    net_io_disable(s->io, EV_READ);
    smtpd_session_arm(s, SMTPD_LINGER_SECONDS);
    if (evbuffer_get_length(net_io_output(s->io)) == 0)
        smtpd_session_flushed(s);
}

void smtpd_session_stop(struct smtpd_session *s)
{
    s->stopping = 1;
    if (s->state == SMTPD_STATE_COMMIT)
        smtpd_hooks_stopping(s); /* a suspended message waits a little only */
    if ((s->state != SMTPD_STATE_COMMAND && s->state != SMTPD_STATE_TLS &&
         s->state != SMTPD_STATE_AUTH) || s->processing)
        return; /* DATA/commit finish first; the input loop sends the 421 */
    smtpd_log(s, VIPMTA_LOG_INFO, "server stopping: 421 4.3.2, closing");
    smtpd_reply(s, "421 4.3.2 %s Service shutting down, closing transmission channel",
                s->cfg->hostname);
    smtpd_session_close(s);
}

/* Reads one command line from `in`; 1 when a line was handled, 0 when the loop must wait. */
static int smtpd_session_line(struct smtpd_session *s, struct evbuffer *in)
{
    size_t avail = evbuffer_get_length(in);
    struct evbuffer_ptr lf;

    if (!avail)
        return 0;
    if (s->discarding) {
        lf = evbuffer_search(in, "\n", 1, NULL);
        if (lf.pos < 0) {
            evbuffer_drain(in, avail);
            return 0;
        }
        evbuffer_drain(in, (size_t)lf.pos + 1);
        s->discarding = 0;
        smtpd_log(s, VIPMTA_LOG_INFO, "command line longer than %d octets: 500 5.5.6",
                  SMTPD_COMMAND_LINE_MAX);
        smtpd_reply(s, "500 5.5.6 Error: line too long (command lines are limited to %d octets)",
                    SMTPD_COMMAND_LINE_MAX);
        smtpd_session_error(s);
        return 1;
    }
    struct evbuffer_ptr end;
    size_t window = avail < SMTPD_COMMAND_LINE_MAX + 1 ? avail : SMTPD_COMMAND_LINE_MAX + 1;
    evbuffer_ptr_set(in, &end, window, EVBUFFER_PTR_SET);
    lf = evbuffer_search_range(in, "\n", 1, NULL, &end);
    if (lf.pos < 0 && avail > SMTPD_COMMAND_LINE_MAX) {
        /* over-long: drop it up to its end, which may not be here yet */
        lf = evbuffer_search(in, "\n", 1, NULL);
        if (lf.pos < 0) {
            s->discarding = 1;
            evbuffer_drain(in, avail);
            return 0;
        }
    }
    if (lf.pos < 0)
        return 0;
    size_t n = (size_t)lf.pos + 1;
    if (n > SMTPD_COMMAND_LINE_MAX) {
        evbuffer_drain(in, n);
        smtpd_log(s, VIPMTA_LOG_INFO, "command line longer than %d octets: 500 5.5.6",
                  SMTPD_COMMAND_LINE_MAX);
        smtpd_reply(s, "500 5.5.6 Error: line too long (command lines are limited to %d octets)",
                    SMTPD_COMMAND_LINE_MAX);
        smtpd_session_error(s);
        return 1;
    }
    char line[SMTPD_COMMAND_LINE_MAX + 1];
    evbuffer_remove(in, line, n);
    n--;
    if (n && line[n - 1] == '\r')
        n--;
    line[n] = '\0';
    smtpd_command_run(s, line, n);
    return 1;
}

void smtpd_session_process(struct smtpd_session *s)
{
    if (s->processing || !s->io)
        return;
    s->processing = 1;
    struct evbuffer *in = net_io_input(s->io);
    struct evbuffer *out = net_io_output(s->io);
    int lines = 0;
    for (;;) {
        if (s->state == SMTPD_STATE_DATA) {
            if (!smtpd_data_consume(s, in))
                break;
            lines++;
            continue;
        }
        if (s->state != SMTPD_STATE_COMMAND)
            break;
        if (s->stopping) {
            smtpd_log(s, VIPMTA_LOG_INFO, "server stopping: 421 4.3.2, closing");
            smtpd_reply(s, "421 4.3.2 %s Service shutting down, closing transmission channel",
                        s->cfg->hostname);
            smtpd_session_close(s);
            break;
        }
        if (evbuffer_get_length(out) > SMTPD_OUTPUT_HIGH) {
            s->output_blocked = 1; /* resumed by smtpd_on_write */
            break;
        }
        if (!smtpd_session_line(s, in))
            break;
        lines++;
    }
    s->processing = 0;
    if (s->state == SMTPD_STATE_COMMAND) {
        if (s->peer_eof)
            smtpd_session_close(s);
        else if (lines)
            smtpd_session_arm(s, smtpd_session_command_timeout(s));
    }
}

static void smtpd_on_read(struct net_io *io, void *arg)
{
    struct smtpd_session *s = arg;
    if (s->state == SMTPD_STATE_CLOSING) {
        struct evbuffer *in = net_io_input(io);
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    if (s->state == SMTPD_STATE_DATA)
        smtpd_session_arm_data(s);
    smtpd_session_process(s);
}

static void smtpd_on_write(struct net_io *io, void *arg)
{
    struct smtpd_session *s = arg;
    (void)io;
    if (s->tls_switch && s->state == SMTPD_STATE_TLS) {
        smtpd_tls_switch(s); /* the 220 to STARTTLS is out */
        return;
    }
    if (s->state == SMTPD_STATE_CLOSING) {
        if (!s->flushed)
            smtpd_session_flushed(s);
        return;
    }
    if (s->output_blocked) {
        s->output_blocked = 0;
        smtpd_session_process(s);
    }
}

static void smtpd_on_event(struct net_io *io, short what, void *arg)
{
    struct smtpd_session *s = arg;
    (void)io;
    if (what & BEV_EVENT_CONNECTED) {
        smtpd_tls_established(s);
        return;
    }
    if (s->state == SMTPD_STATE_TLS && !s->tls_switch) {
        smtpd_tls_failed(s);
        smtpd_session_free(s);
        return;
    }
    if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
        switch (s->state) {
        case SMTPD_STATE_TLS:
            smtpd_session_free(s);
            return;
        case SMTPD_STATE_AUTH:
            s->peer_eof = 1; /* closed once the check reports */
            return;
        case SMTPD_STATE_CLOSING:
            smtpd_session_free(s);
            return;
        case SMTPD_STATE_DATA:
            smtpd_log(s, VIPMTA_LOG_NOTICE, "connection closed by the client during DATA, message dropped");
            smtpd_session_free(s);
            return;
        case SMTPD_STATE_COMMIT:
            if (s->msg) {
                /* a module holds the message: it is never acknowledged */
                smtpd_session_free(s);
                return;
            }
            s->peer_eof = 1; /* answer, then close, once the commit reports */
            return;
        case SMTPD_STATE_COMMAND:
            s->peer_eof = 1;
            smtpd_session_process(s); /* flushes replies for what was read, then closes */
            return;
        }
        return;
    }
    if (s->state != SMTPD_STATE_CLOSING)
        smtpd_log(s, VIPMTA_LOG_NOTICE, "connection lost%s: %s",
                  s->state == SMTPD_STATE_DATA ? " during DATA, message dropped" : "",
                  (what & BEV_EVENT_ERROR) ? strerror(EVUTIL_SOCKET_ERROR()) : "timeout");
    smtpd_session_drop(s);
}

static void smtpd_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct smtpd_session *s = arg;
    const struct vipmta_config *cfg = s->cfg;
    (void)fd;
    (void)what;
    switch (s->state) {
    case SMTPD_STATE_CLOSING:
        smtpd_session_free(s);
        return;
    case SMTPD_STATE_COMMIT:
        smtpd_hooks_timeout(s); /* a suspended message's deadline */
        return;
    case SMTPD_STATE_AUTH:
        return;
    case SMTPD_STATE_TLS:
        smtpd_log(s, VIPMTA_LOG_NOTICE, "timeout during the TLS handshake (command_timeout %us)",
                  cfg->smtp.command_timeout);
        smtpd_session_free(s);
        return;
    case SMTPD_STATE_DATA:
        if (s->data && time(NULL) >= s->data->deadline)
            smtpd_log(s, VIPMTA_LOG_NOTICE, "DATA not over within data_deadline %us, message "
                      "dropped: 421 4.4.2", cfg->smtp.data_deadline);
        else
            smtpd_log(s, VIPMTA_LOG_NOTICE,
                      "timeout during DATA (data_timeout %us), message dropped: 421 4.4.2",
                      cfg->smtp.data_timeout);
        smtpd_data_abort(s);
        smtpd_transaction_reset(s);
        s->state = SMTPD_STATE_COMMAND;
        break;
    case SMTPD_STATE_COMMAND:
        smtpd_log(s, VIPMTA_LOG_NOTICE, "timeout waiting for a command (%s %us): 421 4.4.2",
                  smtpd_server_busy(cfg) ? "busy_command_timeout" : "command_timeout",
                  smtpd_session_command_timeout(s));
        break;
    }
    smtpd_reply(s, "421 4.4.2 %s Error: timeout exceeded, closing connection", cfg->hostname);
    smtpd_session_close(s);
}
