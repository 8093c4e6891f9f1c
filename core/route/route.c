/* route.c: where mail for a domain goes: static routes, address literals, else MX (route_lookup.c), cached. */
#include "route.h"
#include "log/log.h"
#include "route_internal.h"
#include "config/config_current.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static int running;

static unsigned route_mx_port(const struct vipmta_config *cfg)
{
    return cfg && cfg->dns.mx_port ? cfg->dns.mx_port : 25;
}

/* ---- address helpers ---- */

int route_parse_ip(const char *text, unsigned port, struct sockaddr_storage *ss,
                          socklen_t *len)
{
    char buf[INET6_ADDRSTRLEN + 8];
    size_t n = strlen(text);
    if (n >= sizeof(buf))
        return -1;
    memcpy(buf, text, n + 1);
    if (buf[0] == '[' && n > 2 && buf[n - 1] == ']') {
        memmove(buf, buf + 1, n - 2);
        buf[n - 2] = '\0';
        if (strncasecmp(buf, "IPv6:", 5) == 0)
            memmove(buf, buf + 5, strlen(buf + 5) + 1);
    }
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, buf, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *len = sizeof(*a4);
        return 0;
    }
    if (inet_pton(AF_INET6, buf, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*a6);
        return 0;
    }
    return -1;
}

int route_split_hostport(const char *spec, char *host, size_t hostlen, unsigned *port,
                                unsigned default_port)
{
    const char *colon;
    size_t n;
    *port = default_port;
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (!close)
            return -1;
        n = (size_t)(close - spec) + 1; /* keep the brackets: route_parse_ip strips them */
        colon = close[1] == ':' ? close + 1 : NULL;
        if (!colon && close[1])
            return -1;
    } else {
        colon = strrchr(spec, ':');
        if (colon && strchr(spec, ':') != colon)
            colon = NULL; /* a bare IPv6 literal */
        n = colon ? (size_t)(colon - spec) : strlen(spec);
    }
    if (n == 0 || n >= hostlen)
        return -1;
    memcpy(host, spec, n);
    host[n] = '\0';
    if (colon) {
        char *end;
        unsigned long p = strtoul(colon + 1, &end, 10);
        if (colon[1] == '\0' || *end || p == 0 || p > 65535)
            return -1;
        *port = (unsigned)p;
    }
    return 0;
}

/* ---- public ---- */

int route_init(struct event_base *base, const struct vipmta_config *cfg,
               struct config_errors *errs)
{
    route_shutdown();
    /* static routes are checked here, once, so a typo is a startup error */
    if (route_check_config(cfg, errs) != 0)
        return -1;
    if (route_cache_init() != 0) {
        config_errors_add(errs, "route: out of memory");
        return -1;
    }
    if (route_dns_init(base, cfg ? &cfg->dns : NULL, errs) != 0) {
        route_cache_free();
        return -1;
    }
    srandom((unsigned)time(NULL) ^ (unsigned)getpid());
    running = 1;
    return 0;
}

void route_shutdown(void)
{
    running = 0;
    /* pending lookups end with ARES_EDESTRUCTION: their callers get TEMPFAIL */
    route_dns_shutdown();
    route_lookup_abort_all();
    route_cache_free();
}

static void route_fail_now(const char *domain, route_cb cb, void *arg, const char *why)
{
    struct route_result res;
    memset(&res, 0, sizeof(res));
    res.status = ROUTE_TEMPFAIL;
    snprintf(res.error, sizeof(res.error), "%s (%s)", why, domain);
    cb(arg, &res);
}

/* Static route hosts that are all IP literals: no DNS, no cache, no
 * allocation. Returns 1 when it answered. */
static int route_static_literals(const struct config_route *r, unsigned mx_port, route_cb cb,
                                 void *arg)
{
    struct route_target targets[ROUTE_MAX_HOSTS];
    size_t n = 0;
    for (size_t i = 0; i < r->host_count && n < ROUTE_MAX_HOSTS; i++) {
        char host[256];
        unsigned port;
        struct route_target *t = &targets[n];
        if (route_split_hostport(r->hosts[i], host, sizeof(host), &port, mx_port) != 0)
            continue;
        if (route_parse_ip(host, port, &t->addr, &t->addr_len) != 0)
            return 0;
        snprintf(t->host, sizeof(t->host), "%s", host);
        t->preference = (unsigned)i;
        n++;
    }
    struct route_result res;
    memset(&res, 0, sizeof(res));
    res.status = n ? ROUTE_OK : ROUTE_TEMPFAIL;
    res.targets = targets;
    res.count = n;
    if (!n)
        snprintf(res.error, sizeof(res.error), "451 4.4.3 the route for %s has no usable host",
                 r->domain);
    cb(arg, &res);
    return 1;
}

void route_resolve(const char *domain, route_cb cb, void *arg)
{
    if (!running) {
        route_fail_now(domain, cb, arg, "451 4.3.2 routing is not running");
        return;
    }
    const struct vipmta_config *cfg = config_current();
    const struct config_route *r = cfg ? config_route_for(cfg, domain) : NULL;
    unsigned mx_port = route_mx_port(cfg);
    if (r && route_static_literals(r, mx_port, cb, arg))
        return;
    char key[300];
    snprintf(key, sizeof(key), "%s%s", r ? "route:" : "", r ? r->domain : domain);
    if (route_cache_answer(key, cb, arg))
        return;
    route_lookup_start(key, domain, r, mx_port, cb, arg);
}

int route_check_config(const struct vipmta_config *cfg, struct config_errors *errs)
{
    int rc = 0;
    for (size_t i = 0; cfg && i < cfg->route_count; i++) {
        const struct config_route *r = &cfg->routes[i];
        for (size_t j = 0; j < r->host_count; j++) {
            char host[256];
            unsigned port;
            if (route_split_hostport(r->hosts[j], host, sizeof(host), &port, 25) != 0) {
                config_errors_add(errs, "routes.%s[%zu]: \"%s\" is not HOST, HOST:PORT or [IPv6]:PORT",
                           r->domain, j, r->hosts[j]);
                rc = -1;
            }
        }
    }
    return rc;
}

int route_config_changed(void)
{
    if (!running)
        return -1;
    /* answers cached under the old routes must not outlive them; lookups in
     * flight finish for their callers but are not cached (route_lookup.c) */
    route_cache_free();
    return route_cache_init();
}
