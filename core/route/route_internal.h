/* route_internal.h: what the routing files share: address parsing, the answer cache, DNS lookups, the c-ares channel. */
#ifndef VIPMTA_CORE_ROUTE_INTERNAL_H
#define VIPMTA_CORE_ROUTE_INTERNAL_H

#include <stdint.h>
#include "config/config.h"
#include "route.h"

struct event_base;

#define ROUTE_MAX_HOSTS 16    /* MX hosts (or static route hosts) looked at */
#define ROUTE_MAX_ADDRS 8     /* addresses per host and family */
#define ROUTE_TTL_MAX 86400   /* positive answers are cached at most a day */
#define ROUTE_NEGATIVE_TTL 60 /* NXDOMAIN, null MX, no address */
#define ROUTE_TEMPFAIL_TTL 10 /* timeouts, SERVFAIL: asked again soon */

/* ---- route.c ---- */

/* An IP literal (IPv4, IPv6, "[IPv6]", "[IPv6:...]") with `port` into *ss;
 * 0, or -1 when `text` is not one. */
int route_parse_ip(const char *text, unsigned port, struct sockaddr_storage *ss, socklen_t *len);
/* Splits "host:port", "[v6]:port" or "host" (port = default_port); brackets
 * are kept in `host`. 0, or -1 when malformed. */
int route_split_hostport(const char *spec, char *host, size_t hostlen, unsigned *port,
                         unsigned default_port);

/* ---- route_cache.c: answers by key for their TTL, bounded ---- */

int route_cache_init(void);
void route_cache_free(void);
/* Calls cb with the cached answer for `key` and returns 1; 0 when none. */
int route_cache_answer(const char *key, route_cb cb, void *arg);
/* Keeps a copy of `res` for `ttl` seconds (0: not at all). */
void route_cache_store(const char *key, const struct route_result *res, uint32_t ttl);

/* ---- route_lookup.c: DNS lookups, shared by the callers of one key ---- */

/* Looks up the targets for `key` (joining a lookup in progress): the hosts
 * of static route `r` when given, else MX for `domain` (an address literal
 * "[...]" needs none). Destinations found through DNS get `mx_port`. `cb`
 * runs once, possibly before this returns; the answer is cached. */
void route_lookup_start(const char *key, const char *domain, const struct config_route *r,
                        unsigned mx_port, route_cb cb, void *arg);
/* Answers every lookup still pending with a temporary failure (shutdown). */
void route_lookup_abort_all(void);

/* ---- route_dns.c: the c-ares channel on the event loop ---- */

/* ares_callback's shape: status is an ARES_* code; abuf/alen the answer. */
typedef void (*route_dns_cb)(void *arg, int status, int timeouts, unsigned char *abuf, int alen);

/* Creates the channel (servers, timeout and tries from `dns`) and hooks its
 * sockets into `base`. 0, or -1 with errors appended. */
int route_dns_init(struct event_base *base, const struct config_dns *dns,
                   struct config_errors *errs);
/* Destroys the channel: pending queries end with ARES_EDESTRUCTION. */
void route_dns_shutdown(void);
/* Sends one query (class IN); `cb` runs on the loop thread, possibly before
 * this returns. */
void route_dns_query(const char *name, int type, route_dns_cb cb, void *arg);
/* The smallest TTL of the answer records of `type` in a DNS response
 * (UINT32_MAX when none). */
uint32_t route_dns_answer_ttl(const unsigned char *abuf, int alen, int type);

#endif
