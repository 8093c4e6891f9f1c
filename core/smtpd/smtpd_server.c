/* smtpd_server.c: the ESMTP listeners, the session registry, per-client limits at connect, start/stop. */
#include "smtpd.h"
#include "smtpd_session.h"
#include "config/config_current.h"
#include "control/control_stats.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#define SMTPD_BACKLOG 511
#define SMTPD_IP_BUCKETS 256
/* Seconds accepting pauses after running out of file descriptors. */
#define SMTPD_ACCEPT_PAUSE 1
/* Seconds smtpd_server_stop, called outside the loop, runs it for sessions to finish. */
#define SMTPD_STOP_GRACE 10

/* Sessions open from one client address. */
struct smtpd_ip_count {
    struct smtpd_ip_count *next;
    int family;
    unsigned char addr[16];
    unsigned count;
};

struct smtpd_listener {
    struct evconnlistener *lev;
    char name[INET6_ADDRSTRLEN + 16];
    char address[INET6_ADDRSTRLEN]; /* as in the config, to find its entry after a reload */
    unsigned port;
    int implicit_tls;               /* started as an implicit-TLS listener */
};

static struct event_base *server_base;
static struct smtpd_listener *listeners;
static size_t listener_count;
static struct event *accept_pause;
static struct smtpd_session *sessions;
static unsigned session_count;
static int stopping;
static int busy; /* smtpd_server_busy(), as last checked */
static int draining; /* smtpd_server_stop is running the loop until the sessions are gone */
static struct smtpd_ip_count *ip_counts[SMTPD_IP_BUCKETS];

struct event_base *smtpd_base(void)
{
    return server_base;
}

unsigned smtpd_server_session_count(void)
{
    return session_count;
}

/* The key sessions from `sa` are counted under for max_sessions_per_ip: the
 * IPv4 address (IPv4-mapped IPv6 counts as IPv4), or the IPv6 network of
 * `v6_prefix` bits (one client usually has a whole /64). */
int smtpd_client_key(const struct sockaddr *sa, unsigned v6_prefix, unsigned char key[16],
                     int *family)
{
    memset(key, 0, 16);
    if (sa->sa_family == AF_INET) {
        memcpy(key, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        *family = AF_INET;
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            memcpy(key, s6->sin6_addr.s6_addr + 12, 4);
            *family = AF_INET;
        } else {
            memcpy(key, s6->sin6_addr.s6_addr, 16);
            *family = AF_INET6;
            for (unsigned bit = v6_prefix < 128 ? v6_prefix : 128; bit < 128; bit++)
                key[bit / 8] &= (unsigned char)~(0x80u >> (bit % 8));
        }
        return 0;
    }
    return -1;
}

static struct smtpd_ip_count **smtpd_ip_slot(const struct sockaddr *sa, unsigned v6_prefix,
                                             int create)
{
    unsigned char key[16];
    int family;
    if (smtpd_client_key(sa, v6_prefix, key, &family) != 0)
        return NULL;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < sizeof(key); i++)
        h = (h ^ key[i]) * 16777619u;
    struct smtpd_ip_count **pp = &ip_counts[h % SMTPD_IP_BUCKETS];
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->family == family && memcmp((*pp)->addr, key, 16) == 0)
            return pp;
    if (!create)
        return NULL;
    struct smtpd_ip_count *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->family = family;
    memcpy(c->addr, key, 16);
    *pp = c;
    return pp;
}

static unsigned smtpd_ip_sessions(const struct sockaddr *sa, unsigned v6_prefix)
{
    struct smtpd_ip_count **pp = smtpd_ip_slot(sa, v6_prefix, 0);
    return pp ? (*pp)->count : 0;
}

static void smtpd_server_check_busy(void);

void smtpd_registry_remove(struct smtpd_session *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else if (sessions == s)
        sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    if (session_count)
        session_count--;
    /* counted at connect under the key of the config the session holds */
    struct smtpd_ip_count **pp =
        smtpd_ip_slot((const struct sockaddr *)&s->addr, s->cfg->smtp.ipv6_prefix, 0);
    if (pp && --(*pp)->count == 0) {
        struct smtpd_ip_count *dead = *pp;
        *pp = dead->next;
        free(dead);
    }
    smtpd_server_check_busy();
    if (draining && session_count == 0)
        event_base_loopbreak(server_base);
}

int smtpd_server_busy(const struct vipmta_config *cfg)
{
    const struct config_smtp_limits *lim = &cfg->smtp;
    return lim->max_sessions && (uint64_t)session_count * 100 >=
                                    (uint64_t)lim->max_sessions * lim->busy_percent;
}

/* Entering or leaving the busy state: said once each way; on entering,
 * every session waiting for a command gets the short busy timeout now, so
 * that idle sessions cannot hold every slot for command_timeout. */
static void smtpd_server_check_busy(void)
{
    const struct vipmta_config *cfg = config_current();
    int now_busy = cfg && smtpd_server_busy(cfg);
    if (now_busy == busy)
        return;
    busy = now_busy;
    if (!busy) {
        log_write("smtpd", VIPMTA_LOG_NOTICE, "no longer busy: %u sessions; command_timeout %us "
                  "again", session_count, cfg ? cfg->smtp.command_timeout : 0);
        return;
    }
    log_write("smtpd", VIPMTA_LOG_WARNING, "busy: %u sessions of max_sessions %u: clients waiting "
              "to send a command get busy_command_timeout %us", session_count,
              cfg->smtp.max_sessions, cfg->smtp.busy_command_timeout);
    for (struct smtpd_session *s = sessions; s; s = s->next)
        if (s->state == SMTPD_STATE_COMMAND && !s->processing)
            smtpd_session_arm(s, smtpd_session_command_timeout(s));
}

static int smtpd_client_may_relay(const struct sockaddr *sa)
{
    struct sockaddr_in mapped;
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            memset(&mapped, 0, sizeof(mapped));
            mapped.sin_family = AF_INET;
            memcpy(&mapped.sin_addr, s6->sin6_addr.s6_addr + 12, 4);
            sa = (const struct sockaddr *)&mapped;
        }
    }
    const struct vipmta_config *cfg = config_current();
    for (size_t i = 0; i < cfg->relay_from_count; i++)
        if (config_cidr_match(&cfg->relay_from[i], sa))
            return 1;
    return 0;
}

/* Refuses a connection over a session limit with one 421 line, without a session. */
static void smtpd_refuse(int fd, const char *addr, const char *why)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "421 4.7.0 %s Error: too many connections%s%s, try again later\r\n",
                     config_current()->hostname, why, addr);
    if (n > 0)
        (void)send(fd, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1,
                   MSG_NOSIGNAL | MSG_DONTWAIT);
    close(fd);
}

/* The entry of the config in force for listener `l` (its TLS and AUTH settings): the one
 * at its address and port; -1 when a reload removed it (until the restart it waits for). */
static int smtpd_listen_index(const struct smtpd_listener *l)
{
    const struct vipmta_config *cfg = config_current();
    for (size_t i = 0; cfg && i < cfg->listen_count; i++)
        if (cfg->listen[i].port == l->port && strcmp(cfg->listen[i].address, l->address) == 0)
            return (int)i;
    return -1;
}

static void smtpd_accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                            int salen, void *arg)
{
    struct smtpd_listener *l = arg;
    (void)lev;
    char addr[INET6_ADDRSTRLEN] = "?";
    if (stopping) {
        close(fd);
        return;
    }
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)sa)->sin_addr, addr, sizeof(addr));
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)sa)->sin6_addr, addr, sizeof(addr));
    const struct config_smtp_limits *lim = &config_current()->smtp;
    if (lim->max_sessions && session_count >= lim->max_sessions) {
        log_write("smtpd", VIPMTA_LOG_NOTICE,
                  "client=%s: refused: too many sessions (%u, max_sessions %u): 421 4.7.0",
                  addr, session_count, lim->max_sessions);
        smtpd_refuse(fd, "", "");
        return;
    }
    unsigned from_ip = smtpd_ip_sessions(sa, lim->ipv6_prefix);
    if (lim->max_sessions_per_ip && from_ip >= lim->max_sessions_per_ip) {
        int v6 = sa->sa_family == AF_INET6 && strchr(addr, ':');
        log_write("smtpd", VIPMTA_LOG_NOTICE,
                  "client=%s: refused: too many sessions from this %s (%u, max_sessions_per_ip "
                  "%u%s): 421 4.7.0", addr, v6 ? "network" : "address", from_ip,
                  lim->max_sessions_per_ip, v6 ? ", per IPv6 network of ipv6_prefix bits" : "");
        smtpd_refuse(fd, addr, " from ");
        return;
    }
    struct smtpd_ip_count **pp = smtpd_ip_slot(sa, lim->ipv6_prefix, 1);
    if (!pp) {
        log_write("smtpd", VIPMTA_LOG_ERROR, "client=%s: refused: out of memory", addr);
        close(fd);
        return;
    }
    int index = smtpd_listen_index(l);
    if (index < 0 && l->implicit_tls) {
        log_write("smtpd", VIPMTA_LOG_ERROR, "client=%s: refused: implicit-TLS listener %s is no "
                  "longer in the configuration (restart to apply the listen change)", addr, l->name);
        close(fd);
        return;
    }
    (*pp)->count++;
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct smtpd_session *s = smtpd_session_new(fd, sa, (socklen_t)salen, smtpd_client_may_relay(sa),
                                                index);
    if (s)
        control_stats_totals()->sessions++;
    if (!s) {
        log_write("smtpd", VIPMTA_LOG_ERROR, "client=%s: refused: cannot create a session: %s",
                  addr, strerror(errno));
        if (--(*pp)->count == 0) {
            struct smtpd_ip_count *dead = *pp;
            *pp = dead->next;
            free(dead);
        }
        close(fd);
        return;
    }
    s->next = sessions;
    if (sessions)
        sessions->prev = s;
    sessions = s;
    session_count++;
    smtpd_server_check_busy();
}

static void smtpd_accept_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (stopping)
        return;
    for (size_t i = 0; i < listener_count; i++)
        if (listeners[i].lev)
            evconnlistener_enable(listeners[i].lev);
}

static void smtpd_accept_error(struct evconnlistener *lev, void *arg)
{
    struct smtpd_listener *l = arg;
    int err = EVUTIL_SOCKET_ERROR();
    log_write("smtpd", VIPMTA_LOG_ERROR, "accept on %s failed: %s", l->name, strerror(err));
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        /* no descriptors: pause every listener instead of spinning */
        for (size_t i = 0; i < listener_count; i++)
            if (listeners[i].lev)
                evconnlistener_disable(listeners[i].lev);
        struct timeval tv = {SMTPD_ACCEPT_PAUSE, 0};
        if (accept_pause)
            evtimer_add(accept_pause, &tv);
    }
    (void)lev;
}

/* Opens cfg->listen[i]; 0, or -1 with an error appended. */
static int smtpd_listen_one(const struct vipmta_config *cfg, size_t i, struct config_errors *errs)
{
    const struct config_listen *cl = &cfg->listen[i];
    struct smtpd_listener *l = &listeners[i];
    struct sockaddr_storage ss;
    socklen_t sslen;
    int v6 = strchr(cl->address, ':') != NULL;

    memset(&ss, 0, sizeof(ss));
    snprintf(l->name, sizeof(l->name), v6 ? "[%s]:%u" : "%s:%u", cl->address, cl->port);
    snprintf(l->address, sizeof(l->address), "%s", cl->address);
    l->port = cl->port;
    l->implicit_tls = cl->tls == CONFIG_LISTEN_TLS_IMPLICIT;
    if (cl->port == 0 || cl->port > 65535) {
        config_errors_add(errs, "listen[%zu]: %s: invalid port %u", i, l->name, cl->port);
        return -1;
    }
    if (v6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)cl->port);
        if (inet_pton(AF_INET6, cl->address, &s6->sin6_addr) != 1) {
            config_errors_add(errs, "listen[%zu]: %s: not an IPv6 address literal", i, l->name);
            return -1;
        }
        sslen = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)cl->port);
        if (inet_pton(AF_INET, cl->address, &s4->sin_addr) != 1) {
            config_errors_add(errs, "listen[%zu]: %s: not an IPv4 address literal", i, l->name);
            return -1;
        }
        sslen = sizeof(*s4);
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        config_errors_add(errs, "listen[%zu]: %s: socket: %s", i, l->name, strerror(errno));
        return -1;
    }
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        (v6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0)) {
        config_errors_add(errs, "listen[%zu]: %s: setsockopt: %s", i, l->name, strerror(errno));
        close(fd);
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&ss, sslen) != 0) {
        config_errors_add(errs, "listen[%zu]: cannot listen on %s: %s", i, l->name, strerror(errno));
        close(fd);
        return -1;
    }
    if (listen(fd, SMTPD_BACKLOG) != 0) {
        config_errors_add(errs, "listen[%zu]: cannot listen on %s: %s", i, l->name, strerror(errno));
        close(fd);
        return -1;
    }
    l->lev = evconnlistener_new(server_base, smtpd_accept_cb, l,
                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
    if (!l->lev) {
        config_errors_add(errs, "listen[%zu]: %s: cannot create the listener", i, l->name);
        close(fd);
        return -1;
    }
    evconnlistener_set_error_cb(l->lev, smtpd_accept_error);
    return 0;
}

static void smtpd_close_listeners(void)
{
    for (size_t i = 0; i < listener_count; i++)
        if (listeners[i].lev)
            evconnlistener_free(listeners[i].lev);
    free(listeners);
    listeners = NULL;
    listener_count = 0;
    if (accept_pause) {
        event_free(accept_pause);
        accept_pause = NULL;
    }
}

int smtpd_server_start(struct event_base *base, const struct vipmta_config *cfg,
                      struct config_errors *errs)
{
    if (listeners) {
        config_errors_add(errs, "smtp server: already started");
        return -1;
    }
    server_base = base;
    stopping = 0;
    if (cfg->listen_count == 0) {
        config_errors_add(errs, "listen: no address to listen on");
        return -1;
    }
    listeners = calloc(cfg->listen_count, sizeof(*listeners));
    accept_pause = evtimer_new(base, smtpd_accept_resume, NULL);
    if (!listeners || !accept_pause || smtpd_hooks_init(base) != 0) {
        config_errors_add(errs, "smtp server: out of memory");
        smtpd_close_listeners();
        return -1;
    }
    listener_count = cfg->listen_count;
    int failed = 0;
    for (size_t i = 0; i < cfg->listen_count; i++)
        if (smtpd_listen_one(cfg, i, errs) != 0)
            failed = 1;
    if (failed) {
        smtpd_close_listeners();
        return -1;
    }
    for (size_t i = 0; i < listener_count; i++)
        log_write("smtpd", VIPMTA_LOG_INFO, "listening on %s%s", listeners[i].name,
                  cfg->listen[i].tls == CONFIG_LISTEN_TLS_IMPLICIT   ? " (implicit TLS)"
                  : cfg->listen[i].tls == CONFIG_LISTEN_TLS_STARTTLS ? " (STARTTLS)"
                                                                     : "");
    return 0;
}

static void smtpd_stop_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    event_base_loopbreak(server_base);
}

/* Called outside the loop (the daemon has left it): run it until the sessions
 * are gone or the grace period is over, then drop what is left. */
static void smtpd_stop_drain(void)
{
    struct event *deadline = evtimer_new(server_base, smtpd_stop_deadline, NULL);
    if (deadline && session_count) {
        struct timeval tv = {SMTPD_STOP_GRACE, 0};
        evtimer_add(deadline, &tv);
        draining = 1;
        event_base_dispatch(server_base);
        draining = 0;
    }
    if (deadline)
        event_free(deadline);
    struct smtpd_session *s = sessions, *next;
    for (; s; s = next) {
        next = s->next;
        smtpd_session_drop_now(s);
    }
}

void smtpd_server_stop(void)
{
    if (stopping || !server_base)
        return;
    stopping = 1;
    smtpd_close_listeners();
    log_write("smtpd", VIPMTA_LOG_INFO, "stopping: no new sessions; %u open", session_count);
    struct smtpd_session *s = sessions, *next;
    for (; s; s = next) {
        next = s->next;
        smtpd_session_stop(s);
    }
    /* the loop has been told to exit (the daemon stops us after leaving it):
     * nobody else will run it for the sessions to finish */
    if (session_count && (event_base_got_exit(server_base) || event_base_got_break(server_base)))
        smtpd_stop_drain();
}
