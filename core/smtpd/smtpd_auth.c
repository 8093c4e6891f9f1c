/* smtpd_auth.c: SMTP AUTH PLAIN and LOGIN (RFC 4954): the exchange, the check off the loop, failures counted and slowed per client address. */
#include "smtpd_session.h"
#include "tls/tls.h"
#include "tls/tls_auth.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>

#define SMTPD_AUTH_USER_MAX 255
#define SMTPD_AUTH_PASSWORD_MAX 1024
/* Client addresses whose failures are remembered at most (then the table starts over). */
#define SMTPD_AUTH_TABLE_MAX 65536
#define SMTPD_AUTH_BUCKETS 1024

enum smtpd_auth_step {
    AUTH_WAIT_PLAIN,      /* 334 sent: the PLAIN response comes */
    AUTH_WAIT_USER,       /* LOGIN: the user name comes */
    AUTH_WAIT_PASSWORD,   /* LOGIN: the password comes */
    AUTH_CHECKING,        /* the worker checks the password */
    AUTH_DELAYING,        /* a failure is answered after a delay */
};

struct smtpd_auth {
    enum smtpd_auth_step step;
    const char *mech;
    char user[SMTPD_AUTH_USER_MAX + 1];
    struct tls_auth_job *job;
    struct event *delay;
    int disconnect;       /* the address is over auth_max_failures: close after the 535 */
};

/* Failed AUTH attempts of one client address within the window. */
struct smtpd_auth_failures {
    struct smtpd_auth_failures *next;
    time_t first;
    unsigned count;
    char addr[INET6_ADDRSTRLEN];
};

static struct smtpd_auth_failures *failures[SMTPD_AUTH_BUCKETS];
static size_t failure_entries;

static size_t smtpd_auth_hash(const char *addr)
{
    uint32_t h = 2166136261u;
    for (; *addr; addr++)
        h = (h ^ (unsigned char)*addr) * 16777619u;
    return h % SMTPD_AUTH_BUCKETS;
}

/* The record of `addr` (expired ones are dropped on the way); created when `create`. */
static struct smtpd_auth_failures *smtpd_auth_record(const char *addr, unsigned window, int create)
{
    time_t now = time(NULL);
    struct smtpd_auth_failures **pp = &failures[smtpd_auth_hash(addr)];
    while (*pp) {
        struct smtpd_auth_failures *f = *pp;
        if (now - f->first >= (time_t)window) {
            *pp = f->next;
            free(f);
            failure_entries--;
            continue;
        }
        if (strcmp(f->addr, addr) == 0)
            return f;
        pp = &f->next;
    }
    if (!create)
        return NULL;
    if (failure_entries >= SMTPD_AUTH_TABLE_MAX) {
        for (size_t b = 0; b < SMTPD_AUTH_BUCKETS; b++) {
            while (failures[b]) {
                struct smtpd_auth_failures *f = failures[b];
                failures[b] = f->next;
                free(f);
            }
        }
        failure_entries = 0;
        log_write("smtpd", VIPMTA_LOG_WARNING, "AUTH failures from %d addresses: the table of "
                  "failed addresses starts over", SMTPD_AUTH_TABLE_MAX);
        pp = &failures[smtpd_auth_hash(addr)];
    }
    struct smtpd_auth_failures *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->first = now;
    snprintf(f->addr, sizeof(f->addr), "%s", addr);
    *pp = f;
    failure_entries++;
    return f;
}

static int smtpd_auth_client_loopback(const struct smtpd_session *s)
{
    if (s->addr.ss_family == AF_INET)
        return ((const unsigned char *)&((const struct sockaddr_in *)&s->addr)->sin_addr)[0] == 127;
    if (s->addr.ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)&s->addr)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return 0;
}

int smtpd_auth_offered(const struct smtpd_session *s)
{
    const struct config_listen *l = smtpd_tls_listener(s);
    if (!l || !l->auth || !tls_runtime_credentials(s->cfg))
        return 0;
    return s->tls || (l->auth_without_tls && smtpd_auth_client_loopback(s));
}

/* Strict base64 (RFC 4648, padding required); -1 when malformed or too long. */
static long smtpd_auth_base64(const char *in, size_t len, char *out, size_t cap)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (len % 4)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        unsigned v = 0;
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            char c = in[i + k];
            const char *p = c ? strchr(alphabet, c) : NULL;
            if (c == '=' && i + 4 == len && k >= 2) {
                pad++;
                v <<= 6;
                continue;
            }
            if (!p || pad)
                return -1;
            v = v << 6 | (unsigned)(p - alphabet);
        }
        size_t n = 3 - (size_t)pad;
        if (o + n > cap)
            return -1;
        out[o++] = (char)(v >> 16);
        if (n > 1)
            out[o++] = (char)(v >> 8 & 0xff);
        if (n > 2)
            out[o++] = (char)(v & 0xff);
    }
    return (long)o;
}

static void smtpd_auth_wipe(void *p, size_t n)
{
    volatile unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = 0;
}

void smtpd_auth_free(struct smtpd_session *s)
{
    struct smtpd_auth *a = s->auth;
    if (!a)
        return;
    tls_auth_cancel(a->job);
    if (a->delay)
        event_free(a->delay);
    smtpd_auth_wipe(a, sizeof(*a));
    free(a);
    s->auth = NULL;
}

/* Back to commands after the exchange (whatever its end). */
static void smtpd_auth_end(struct smtpd_session *s)
{
    smtpd_auth_free(s);
    if (s->state == SMTPD_STATE_AUTH) {
        s->state = SMTPD_STATE_COMMAND;
        smtpd_session_arm(s, s->cfg->smtp.command_timeout);
        smtpd_session_process(s); /* what the client sent meanwhile */
    }
}

static void smtpd_auth_answer_failure(evutil_socket_t fd, short what, void *arg)
{
    struct smtpd_session *s = arg;
    (void)fd;
    (void)what;
    smtpd_reply(s, "535 5.7.8 Error: authentication failed");
    if (s->auth && s->auth->disconnect) {
        smtpd_reply(s, "421 4.7.0 %s Error: too many failed authentication attempts from %s, "
                    "closing connection", s->cfg->hostname, s->addr_str);
        smtpd_auth_free(s);
        s->state = SMTPD_STATE_COMMAND;
        smtpd_session_close(s);
        return;
    }
    smtpd_auth_end(s);
}

static void smtpd_auth_done(void *arg, int ok)
{
    struct smtpd_session *s = arg;
    struct smtpd_auth *a = s->auth;
    if (!a || s->state != SMTPD_STATE_AUTH)
        return;
    a->job = NULL;
    char user[SMTPD_AUTH_USER_MAX + 1];
    smtpd_printable(a->user, user, sizeof(user));
    tls_stats_auth(ok);
    if (ok) {
        s->auth_user = strdup(a->user);
        if (!s->auth_user) {
            smtpd_reply(s, "454 4.7.0 Error: out of memory, try again");
            smtpd_auth_end(s);
            return;
        }
        smtpd_log(s, VIPMTA_LOG_NOTICE, "AUTH %s user=%s: authenticated", a->mech, user);
        smtpd_reply(s, "235 2.7.0 Authentication successful");
        smtpd_auth_end(s);
        return;
    }
    const struct config_tls *t = &s->cfg->tls;
    struct smtpd_auth_failures *f = smtpd_auth_record(s->addr_str, t->auth_failure_window, 1);
    unsigned n = f ? ++f->count : 1;
    a->disconnect = n >= t->auth_max_failures;
    unsigned shift = n > 4 ? 3 : n - 1;
    unsigned ms = t->auth_failure_delay_ms << shift;
    smtpd_log(s, VIPMTA_LOG_NOTICE, "AUTH %s user=%s: failed (%u from this address in %u s, "
              "answered in %u ms%s)", a->mech, user, n, t->auth_failure_window, ms,
              a->disconnect ? ", disconnecting: auth_max_failures reached" : "");
    a->step = AUTH_DELAYING;
    a->delay = evtimer_new(smtpd_base(), smtpd_auth_answer_failure, s);
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    if (!a->delay || evtimer_add(a->delay, &tv) != 0)
        smtpd_auth_answer_failure(-1, 0, s);
}

/* Hands user/password to the worker; the session waits in SMTPD_STATE_AUTH. */
static void smtpd_auth_check(struct smtpd_session *s, const char *user, const char *password)
{
    struct smtpd_auth *a = s->auth;
    snprintf(a->user, sizeof(a->user), "%s", user);
    a->step = AUTH_CHECKING;
    s->state = SMTPD_STATE_AUTH;
    smtpd_session_arm(s, 0);
    a->job = tls_auth_check_async(smtpd_base(), tls_runtime_credentials(s->cfg), user, password,
                                  smtpd_auth_done, s);
    if (!a->job) {
        smtpd_log(s, VIPMTA_LOG_ERROR, "AUTH: cannot start the check (out of memory or no "
                  "thread): 454 4.7.0");
        smtpd_reply(s, "454 4.7.0 Temporary authentication failure, try again");
        smtpd_auth_end(s);
    }
}

/* PLAIN: [authzid] NUL authcid NUL passwd (RFC 4616). */
static void smtpd_auth_plain(struct smtpd_session *s, const char *b64, size_t len)
{
    char buf[SMTPD_AUTH_USER_MAX * 2 + SMTPD_AUTH_PASSWORD_MAX + 3];
    long n = len == 1 && b64[0] == '=' ? 0 : smtpd_auth_base64(b64, len, buf, sizeof(buf) - 1);
    if (n < 0) {
        smtpd_reply(s, "501 5.5.2 Error: cannot decode the AUTH PLAIN response (base64)");
        smtpd_auth_end(s);
        return;
    }
    buf[n] = '\0';
    const char *authzid = buf;
    const char *authcid = memchr(buf, '\0', (size_t)n);
    const char *passwd = authcid && authcid + 1 < buf + n ? memchr(authcid + 1, '\0',
                                                                  (size_t)(buf + n - authcid - 1))
                                                          : NULL;
    if (!authcid || !passwd || !authcid[1] || strlen(authcid + 1) > SMTPD_AUTH_USER_MAX ||
        memchr(passwd + 1, '\0', (size_t)(buf + n - passwd - 1))) {
        smtpd_auth_wipe(buf, sizeof(buf));
        smtpd_reply(s, "501 5.5.2 Error: malformed AUTH PLAIN response (authzid NUL user NUL "
                    "password)");
        smtpd_auth_end(s);
        return;
    }
    authcid++;
    passwd++;
    if (*authzid && strcmp(authzid, authcid) != 0) {
        /* acting for another user is not offered: a failure like any other */
        smtpd_auth_check(s, authcid, "");
    } else {
        smtpd_auth_check(s, authcid, passwd);
    }
    smtpd_auth_wipe(buf, sizeof(buf));
}

int smtpd_auth_continue(struct smtpd_session *s, const char *line, size_t len)
{
    struct smtpd_auth *a = s->auth;
    if (!a || (a->step != AUTH_WAIT_PLAIN && a->step != AUTH_WAIT_USER &&
               a->step != AUTH_WAIT_PASSWORD))
        return 0;
    if (len == 1 && line[0] == '*') {
        smtpd_reply(s, "501 5.7.0 Authentication cancelled");
        smtpd_auth_end(s);
        return 1;
    }
    if (a->step == AUTH_WAIT_PLAIN) {
        smtpd_auth_plain(s, line, len);
        return 1;
    }
    char buf[SMTPD_AUTH_PASSWORD_MAX + 1];
    long n = smtpd_auth_base64(line, len, buf, a->step == AUTH_WAIT_USER ? SMTPD_AUTH_USER_MAX
                                                                         : SMTPD_AUTH_PASSWORD_MAX);
    if (n < 0 || memchr(buf, '\0', (size_t)n) || (a->step == AUTH_WAIT_USER && n == 0)) {
        smtpd_auth_wipe(buf, sizeof(buf));
        smtpd_reply(s, "501 5.5.2 Error: cannot decode the AUTH LOGIN response (base64)");
        smtpd_auth_end(s);
        return 1;
    }
    buf[n] = '\0';
    if (a->step == AUTH_WAIT_USER) {
        memcpy(a->user, buf, (size_t)n + 1); /* n <= SMTPD_AUTH_USER_MAX */
        a->step = AUTH_WAIT_PASSWORD;
        smtpd_reply(s, "334 UGFzc3dvcmQ6"); /* "Password:" */
        return 1;
    }
    char user[SMTPD_AUTH_USER_MAX + 1];
    snprintf(user, sizeof(user), "%s", a->user);
    smtpd_auth_check(s, user, buf);
    smtpd_auth_wipe(buf, sizeof(buf));
    return 1;
}

void smtpd_auth_command(struct smtpd_session *s, const char *arg)
{
    const struct config_listen *l = smtpd_tls_listener(s);
    const struct config_tls *t = &s->cfg->tls;
    if (!l || !l->auth || !tls_runtime_credentials(s->cfg)) {
        smtpd_reply(s, "502 5.5.1 Error: authentication is not offered here");
        smtpd_session_error(s);
        return;
    }
    if (!s->esmtp) {
        smtpd_reply(s, "503 5.5.1 Error: send EHLO first");
        smtpd_session_error(s);
        return;
    }
    if (s->auth_user) {
        smtpd_reply(s, "503 5.5.1 Error: already authenticated");
        smtpd_session_error(s);
        return;
    }
    if (s->sender) {
        smtpd_reply(s, "503 5.5.1 Error: AUTH is not allowed in a mail transaction");
        smtpd_session_error(s);
        return;
    }
    if (!smtpd_auth_offered(s)) {
        smtpd_log(s, VIPMTA_LOG_INFO, "reject: AUTH before STARTTLS: 538 5.7.11");
        smtpd_reply(s, "538 5.7.11 Encryption required for requested authentication mechanism "
                    "(STARTTLS first)");
        smtpd_session_error(s);
        return;
    }
    struct smtpd_auth_failures *f = smtpd_auth_record(s->addr_str, t->auth_failure_window, 0);
    if (f && f->count >= t->auth_max_failures) {
        smtpd_log(s, VIPMTA_LOG_NOTICE, "reject: AUTH from an address with %u failures in the "
                  "last %u s (auth_max_failures %u): 421 4.7.0", f->count, t->auth_failure_window,
                  t->auth_max_failures);
        smtpd_reply(s, "421 4.7.0 %s Error: too many failed authentication attempts from %s, "
                    "try again later", s->cfg->hostname, s->addr_str);
        smtpd_session_close(s);
        return;
    }
    size_t mlen = strcspn(arg, " ");
    const char *ir = arg[mlen] ? arg + mlen + 1 : NULL;
    const char *mech = mlen == 5 && strncasecmp(arg, "PLAIN", 5) == 0   ? "PLAIN"
                       : mlen == 5 && strncasecmp(arg, "LOGIN", 5) == 0 ? "LOGIN"
                                                                        : NULL;
    if (!mech) {
        smtpd_reply(s, "504 5.5.4 Error: unsupported authentication mechanism (PLAIN and LOGIN "
                    "are offered)");
        smtpd_session_error(s);
        return;
    }
    s->auth = calloc(1, sizeof(*s->auth));
    if (!s->auth) {
        smtpd_reply(s, "454 4.7.0 Error: out of memory, try again");
        return;
    }
    s->auth->mech = mech;
    if (mech[0] == 'P') {
        s->auth->step = AUTH_WAIT_PLAIN;
        if (ir)
            smtpd_auth_plain(s, ir, strlen(ir));
        else
            smtpd_reply(s, "334 ");
        return;
    }
    s->auth->step = AUTH_WAIT_USER;
    if (ir)
        smtpd_auth_continue(s, ir, strlen(ir));
    else
        smtpd_reply(s, "334 VXNlcm5hbWU6"); /* "Username:" */
}
