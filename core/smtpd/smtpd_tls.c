/* smtpd_tls.c: TLS on the SMTP server: STARTTLS (RFC 3207), implicit TLS (RFC 8314), require_tls, the handshake's end. */
#include "smtpd_session.h"
#include "tls/tls.h"
#include "net/net_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>

const struct config_listen *smtpd_tls_listener(const struct smtpd_session *s)
{
    if (s->listen_index < 0 || (size_t)s->listen_index >= s->cfg->listen_count)
        return NULL;
    return &s->cfg->listen[s->listen_index];
}

/* The server context for this session, NULL when its listener has no TLS. */
static SSL_CTX *smtpd_tls_ctx(const struct smtpd_session *s)
{
    const struct config_listen *l = smtpd_tls_listener(s);
    if (!l || l->tls == CONFIG_LISTEN_TLS_NONE)
        return NULL;
    return tls_server_ctx(s->cfg, (size_t)s->listen_index);
}

/* A TLS server bufferevent on `fd` (the handshake starts when it reads). */
static struct bufferevent *smtpd_tls_bev(struct smtpd_session *s, int fd)
{
    SSL *ssl = SSL_new(smtpd_tls_ctx(s));
    if (!ssl)
        return NULL;
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        smtpd_base(), fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        SSL_free(ssl);
        return NULL;
    }
    /* a client that closes without close_notify has just closed */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

int smtpd_tls_open(struct smtpd_session *s, int fd)
{
    const struct config_listen *l = smtpd_tls_listener(s);
    if (l && l->tls == CONFIG_LISTEN_TLS_IMPLICIT) {
        if (!smtpd_tls_ctx(s))
            return -1;
        struct bufferevent *bev = smtpd_tls_bev(s, fd);
        if (!bev)
            return -1;
        if (!(s->io = net_io_bev_new(bev))) {
            bufferevent_setfd(bev, -1); /* the caller closes fd */
            bufferevent_free(bev);
            return -1;
        }
        /* the greeting queued now goes out once the handshake is done */
        s->state = SMTPD_STATE_TLS;
        return 0;
    }
    s->io = net_io_socket_new(smtpd_base(), fd);
    return s->io ? 0 : -1;
}

void smtpd_tls_ehlo(struct smtpd_session *s)
{
    if (!s->tls && smtpd_tls_ctx(s))
        smtpd_reply(s, "250-STARTTLS");
    if (smtpd_auth_offered(s) && !s->auth_user)
        smtpd_reply(s, "250-AUTH PLAIN LOGIN");
}

void smtpd_tls_command(struct smtpd_session *s)
{
    if (s->tls) {
        smtpd_reply(s, "503 5.5.1 Error: TLS is already active");
        smtpd_session_error(s);
        return;
    }
    if (!smtpd_tls_ctx(s)) {
        smtpd_reply(s, "502 5.5.1 Error: STARTTLS is not offered here");
        smtpd_session_error(s);
        return;
    }
    if (s->sender) {
        smtpd_reply(s, "503 5.5.1 Error: STARTTLS in a mail transaction (send RSET first)");
        smtpd_session_error(s);
        return;
    }
    /* whatever the client sent after STARTTLS in clear is thrown away, never
     * run: it would count as sent over TLS (CVE-2011-0411) */
    struct evbuffer *in = net_io_input(s->io);
    size_t pipelined = evbuffer_get_length(in);
    if (pipelined) {
        smtpd_log(s, VIPMTA_LOG_NOTICE, "discarded %zu octets sent in clear after STARTTLS "
                  "(pipelined before the handshake)", pipelined);
        evbuffer_drain(in, pipelined);
    }
    smtpd_reply(s, "220 2.0.0 Ready to start TLS");
    s->state = SMTPD_STATE_TLS;
    s->tls_switch = 1;
    /* nothing more is read in clear: what follows is the handshake */
    net_io_disable(s->io, EV_READ);
    smtpd_session_arm(s, s->cfg->smtp.command_timeout);
}

void smtpd_tls_switch(struct smtpd_session *s)
{
    s->tls_switch = 0;
    /* the plain connection lets go of the socket (it must not close it) */
    int fd = net_io_release_fd(s->io);
    struct bufferevent *bev = smtpd_tls_bev(s, fd);
    s->io = bev ? net_io_bev_new(bev) : NULL;
    if (!s->io) {
        if (bev) {
            bufferevent_setfd(bev, -1);
            bufferevent_free(bev);
        }
        smtpd_log(s, VIPMTA_LOG_ERROR, "STARTTLS: out of memory starting TLS, closing");
        close(fd);
        smtpd_session_free(s);
        return;
    }
    smtpd_session_setup_io(s);
}

void smtpd_tls_established(struct smtpd_session *s)
{
    struct tls_info *info = calloc(1, sizeof(*info));
    if (!info) {
        smtpd_log(s, VIPMTA_LOG_ERROR, "TLS: out of memory, closing");
        smtpd_reply(s, "421 4.3.0 %s Error: out of memory, closing connection", s->cfg->hostname);
        s->state = SMTPD_STATE_COMMAND;
        smtpd_session_close(s);
        return;
    }
    tls_info_from_ssl(bufferevent_openssl_get_ssl(net_io_bev(s->io)), info);
    s->tls = info;
    tls_stats_connection(TLS_STATS_INBOUND, info);
    char desc[160];
    tls_info_describe(info, desc, sizeof(desc));
    smtpd_log(s, VIPMTA_LOG_INFO, "TLS established: %s%s%s", desc, info->sni[0] ? ", SNI " : "",
              info->sni);
    /* RFC 3207 4.2: forget everything the client said before TLS */
    smtpd_transaction_reset(s);
    free(s->helo);
    s->helo = NULL;
    s->esmtp = 0;
    smtpd_auth_free(s);
    free(s->auth_user);
    s->auth_user = NULL;
    s->state = SMTPD_STATE_COMMAND;
    smtpd_session_arm(s, s->cfg->smtp.command_timeout);
    smtpd_session_process(s);
}

void smtpd_tls_failed(struct smtpd_session *s)
{
    char why[256] = "";
    unsigned long e;
    while ((e = bufferevent_get_openssl_error(net_io_bev(s->io))) != 0) {
        if (!why[0]) {
            const char *r = ERR_reason_error_string(e);
            if (r)
                snprintf(why, sizeof(why), "%s", r);
            else
                ERR_error_string_n(e, why, sizeof(why));
        }
    }
    tls_stats_handshake_failed(TLS_STATS_INBOUND);
    smtpd_log(s, VIPMTA_LOG_NOTICE, "TLS handshake failed: %s", why[0] ? why : "connection closed");
}

int smtpd_tls_required(struct smtpd_session *s, const char *verb)
{
    const struct config_listen *l = smtpd_tls_listener(s);
    if (s->tls || !l || !l->require_tls)
        return 0;
    smtpd_log(s, VIPMTA_LOG_INFO, "reject: %s before STARTTLS (require_tls): 530 5.7.0", verb);
    smtpd_reply(s, "530 5.7.0 Must issue a STARTTLS command first");
    smtpd_session_error(s);
    return 1;
}

void smtpd_tls_received(const struct smtpd_session *s, char *protocol, size_t plen, char *comment,
                        size_t clen)
{
    /* RFC 3848 and RFC 6531: ESMTP, ESMTPS, ESMTPA, ESMTPSA, UTF8SMTP... */
    snprintf(protocol, plen, "%s%s%s%s", s->smtputf8 ? "UTF8" : "", s->esmtp ? "ESMTP" : "SMTP",
             s->esmtp && s->tls ? "S" : "", s->esmtp && s->auth_user ? "A" : "");
    comment[0] = '\0';
    if (s->tls && clen)
        snprintf(comment, clen, "(using %s with cipher %s (%d bits))", s->tls->version,
                 s->tls->cipher, s->tls->bits);
}
