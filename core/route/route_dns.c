/* route_dns.c: the c-ares channel driven by libevent (socket state callback plus a timeout timer). */
#include "route_internal.h"
#include "log/log.h"

#include <ares.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

/* One socket c-ares asked us to watch. */
struct route_dns_sock {
    ares_socket_t fd;
    struct event *ev;
    struct route_dns_sock *next;
};

static struct {
    struct event_base *base;
    ares_channel channel;
    int have_channel;
    int lib_init;
    struct event *timer;
    struct route_dns_sock *socks;
} dns;

static void route_dns_rearm(void)
{
    struct timeval tv, *t;
    if (!dns.have_channel || !dns.timer)
        return;
    t = ares_timeout(dns.channel, NULL, &tv);
    if (t)
        evtimer_add(dns.timer, t);
    else
        evtimer_del(dns.timer);
}

static void route_dns_on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    ares_process_fd(dns.channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    route_dns_rearm();
}

static void route_dns_on_sock(evutil_socket_t fd, short what, void *arg)
{
    (void)arg;
    ares_process_fd(dns.channel, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
                    (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
    route_dns_rearm();
}

static void route_dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    (void)data;
    struct route_dns_sock **pp = &dns.socks, *s;
    while ((s = *pp) && s->fd != fd)
        pp = &s->next;
    if (!readable && !writable) {
        if (s) {
            *pp = s->next;
            event_free(s->ev);
            free(s);
        }
        return;
    }
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s) {
            log_write("route", VIPMTA_LOG_ERROR, "out of memory watching a DNS socket");
            return;
        }
        s->fd = fd;
        s->next = dns.socks;
        dns.socks = s;
    } else {
        event_free(s->ev);
    }
    short events = EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);
    s->ev = event_new(dns.base, fd, events, route_dns_on_sock, NULL);
    if (!s->ev || event_add(s->ev, NULL) != 0)
        log_write("route", VIPMTA_LOG_ERROR, "cannot watch DNS socket %d", (int)fd);
}

int route_dns_init(struct event_base *base, const struct config_dns *cfg,
                   struct config_errors *errs)
{
    struct ares_options opt;
    int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;

    route_dns_shutdown();
    int rc = ares_library_init(ARES_LIB_INIT_ALL);
    if (rc != ARES_SUCCESS) {
        config_errors_add(errs, "dns: cannot initialise c-ares: %s", ares_strerror(rc));
        return -1;
    }
    dns.lib_init = 1;
    dns.base = base;
    memset(&opt, 0, sizeof(opt));
    opt.sock_state_cb = route_dns_sock_state;
    opt.sock_state_cb_data = NULL;
    opt.timeout = cfg && cfg->timeout_ms ? (int)cfg->timeout_ms : 5000;
    opt.tries = cfg && cfg->tries ? (int)cfg->tries : 2;
    rc = ares_init_options(&dns.channel, &opt, mask);
    if (rc != ARES_SUCCESS) {
        config_errors_add(errs, "dns: cannot create the resolver: %s", ares_strerror(rc));
        route_dns_shutdown();
        return -1;
    }
    dns.have_channel = 1;
    if (cfg && cfg->server_count) {
        size_t len = 1;
        for (size_t i = 0; i < cfg->server_count; i++)
            len += strlen(cfg->servers[i]) + 1;
        char *csv = malloc(len);
        if (!csv) {
            config_errors_add(errs, "dns: out of memory");
            route_dns_shutdown();
            return -1;
        }
        csv[0] = '\0';
        for (size_t i = 0; i < cfg->server_count; i++) {
            if (i)
                strcat(csv, ",");
            strcat(csv, cfg->servers[i]);
        }
        rc = ares_set_servers_ports_csv(dns.channel, csv);
        if (rc != ARES_SUCCESS) {
            config_errors_add(errs, "dns.servers: \"%s\": %s (use \"ADDRESS\" or \"ADDRESS:PORT\", "
                       "\"[IPv6]:PORT\")", csv, ares_strerror(rc));
            free(csv);
            route_dns_shutdown();
            return -1;
        }
        free(csv);
    }
    dns.timer = evtimer_new(base, route_dns_on_timer, NULL);
    if (!dns.timer) {
        config_errors_add(errs, "dns: out of memory");
        route_dns_shutdown();
        return -1;
    }
    return 0;
}

void route_dns_shutdown(void)
{
    if (dns.have_channel) {
        dns.have_channel = 0; /* no timer re-arming from the callbacks below */
        ares_destroy(dns.channel);
    }
    while (dns.socks) {
        struct route_dns_sock *s = dns.socks;
        dns.socks = s->next;
        if (s->ev)
            event_free(s->ev);
        free(s);
    }
    if (dns.timer)
        event_free(dns.timer);
    dns.timer = NULL;
    if (dns.lib_init)
        ares_library_cleanup();
    dns.lib_init = 0;
}

void route_dns_query(const char *name, int type, route_dns_cb cb, void *arg)
{
    if (!dns.have_channel) {
        cb(arg, ARES_EDESTRUCTION, 0, NULL, 0);
        return;
    }
    ares_query(dns.channel, name, 1 /* C_IN */, type, cb, arg);
    route_dns_rearm();
}

uint32_t route_dns_answer_ttl(const unsigned char *abuf, int alen, int type)
{
    uint32_t best = UINT32_MAX;
    if (!abuf || alen < 12)
        return best;
    unsigned qd = (unsigned)abuf[4] << 8 | abuf[5];
    unsigned an = (unsigned)abuf[6] << 8 | abuf[7];
    const unsigned char *p = abuf + 12, *end = abuf + alen;
    char *name;
    long enclen;

    for (unsigned i = 0; i < qd; i++) {
        if (ares_expand_name(p, abuf, alen, &name, &enclen) != ARES_SUCCESS)
            return best;
        ares_free_string(name);
        p += enclen + 4;
        if (p > end)
            return best;
    }
    for (unsigned i = 0; i < an; i++) {
        if (p >= end || ares_expand_name(p, abuf, alen, &name, &enclen) != ARES_SUCCESS)
            return best;
        ares_free_string(name);
        p += enclen;
        if (end - p < 10)
            return best;
        int rtype = p[0] << 8 | p[1];
        uint32_t ttl = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7];
        unsigned rdlen = (unsigned)p[8] << 8 | p[9];
        p += 10;
        if ((size_t)(end - p) < rdlen)
            return best;
        if (rtype == type && ttl < best)
            best = ttl;
        p += rdlen;
    }
    return best;
}
