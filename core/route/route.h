/* route.h: where mail for a domain goes: static routes, else MX (RFC 5321 5.1) via c-ares. */
#ifndef VIPMTA_CORE_ROUTE_H
#define VIPMTA_CORE_ROUTE_H

#include <stddef.h>
#include <sys/socket.h>
#include "config/config.h"

struct event_base;

struct route_target {
    char host[256];                /* MX host name or the static route's host */
    unsigned preference;           /* MX preference; static routes: position */
    struct sockaddr_storage addr;  /* with port */
    socklen_t addr_len;
};

enum route_status {
    ROUTE_OK = 0,
    ROUTE_TEMPFAIL,   /* DNS timeout / SERVFAIL: retry later */
    ROUTE_PERMFAIL,   /* NXDOMAIN, null MX (RFC 7505), no address: bounce */
};

struct route_result {
    enum route_status status;
    char error[256];               /* why, for logs and DSNs */
    struct route_target *targets;  /* in the order to try */
    size_t count;
};

typedef void (*route_cb)(void *arg, const struct route_result *result);

/* DNS servers from cfg; routes come from the config in force at each
 * lookup. 0, or -1 with errors appended. */
int route_init(struct event_base *base, const struct vipmta_config *cfg, struct config_errors *errs);
void route_shutdown(void);
/* Checks the static routes of `cfg` (a reload validates with it): 0, or -1
 * with errors appended. */
int route_check_config(const struct vipmta_config *cfg, struct config_errors *errs);
/* A new config went in force (reload): routes by it from now on (routes and
 * dns.mx_port; the DNS servers, timeout and tries stay those of route_init)
 * and forgets cached answers. Lookups in flight finish for their callers. */
int route_config_changed(void);
/* Resolves `domain`; `cb` runs on the loop thread, possibly before this
 * returns (static routes, cached answers). The result is valid during cb. */
void route_resolve(const char *domain, route_cb cb, void *arg);

#endif
