/* route_lookup.c: DNS lookups for routing: MX (sorted, shuffled, null MX, implicit MX), then A/AAAA of each host. */
#include "route_internal.h"
#include "config/config_current.h"
#include "log/log.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct route_addrs {
    int status;                   /* ARES_* of the lookup (-1: not done) */
    size_t count;
    struct sockaddr_storage addr[ROUTE_MAX_ADDRS];
};

struct route_host {
    char name[256];
    unsigned preference;
    unsigned port;
    struct route_addrs v4, v6;
    struct route_job *job;
};

struct route_waiter {
    route_cb cb;
    void *arg;
    struct route_waiter *next;
};

/* One lookup in progress; callers asking for the same key meanwhile wait on it. */
struct route_job {
    char key[300];                /* cache key: the domain, or "route:" + the route's domain */
    char domain[256];
    int is_static;
    int implicit_mx;              /* no MX: the domain's own addresses (RFC 5321 5.1) */
    struct route_waiter *waiters;
    struct route_host hosts[ROUTE_MAX_HOSTS];
    size_t nhosts;
    unsigned pending;             /* queries outstanding */
    uint32_t ttl;                 /* smallest TTL of the records used */
    char temp_error[320];         /* the last temporary failure seen */
    unsigned mx_port;
    struct vipmta_config *cfg;    /* the config in force when the lookup started (held) */
    struct route_job *next, *prev;
};

/* lookups in progress */
static struct route_job *jobs;

/* ---- finishing a lookup ---- */

static void route_deliver(struct route_waiter *w, const struct route_result *res)
{
    while (w) {
        struct route_waiter *next = w->next;
        w->cb(w->arg, res);
        free(w);
        w = next;
    }
}

static void route_job_unlink(struct route_job *job)
{
    if (job->prev)
        job->prev->next = job->next;
    else if (jobs == job)
        jobs = job->next;
    if (job->next)
        job->next->prev = job->prev;
    job->next = job->prev = NULL;
}

static void route_job_finish(struct route_job *job, enum route_status status, uint32_t ttl,
                             const struct route_target *targets, size_t count,
                             const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void route_job_finish(struct route_job *job, enum route_status status, uint32_t ttl,
                             const struct route_target *targets, size_t count,
                             const char *fmt, ...)
{
    struct route_result res;
    memset(&res, 0, sizeof(res));
    res.status = status;
    res.targets = (struct route_target *)targets;
    res.count = count;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(res.error, sizeof(res.error), fmt, ap);
        va_end(ap);
    }
    route_job_unlink(job);
    /* an answer found under routes a reload replaced is not kept */
    if (job->cfg == config_current())
        route_cache_store(job->key, &res, ttl);
    if (status != ROUTE_OK)
        log_write("route", VIPMTA_LOG_INFO, "%s: %s", job->domain, res.error);
    struct route_waiter *w = job->waiters;
    job->waiters = NULL;
    route_deliver(w, &res);
    config_release(job->cfg);
    free(job);
}

static void route_add_targets(const struct route_host *h, const struct route_addrs *a,
                              struct route_target *out, size_t *n, size_t max)
{
    for (size_t i = 0; i < a->count && *n < max; i++) {
        struct route_target *t = &out[(*n)++];
        memset(t, 0, sizeof(*t));
        snprintf(t->host, sizeof(t->host), "%s", h->name);
        t->preference = h->preference;
        t->addr = a->addr[i];
        t->addr_len = a->addr[i].ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                         : sizeof(struct sockaddr_in);
    }
}

static int route_status_is_temporary(int status)
{
    return status != ARES_SUCCESS && status != ARES_ENODATA && status != ARES_ENOTFOUND;
}

/* Every address lookup is done: the targets, host by host (IPv4 first). */
static void route_job_assemble(struct route_job *job)
{
    size_t max = ROUTE_MAX_HOSTS * ROUTE_MAX_ADDRS * 2;
    struct route_target *targets = malloc(max * sizeof(*targets));
    size_t n = 0;
    int temporary = 0;

    if (!targets) {
        route_job_finish(job, ROUTE_TEMPFAIL, 0, NULL, 0, "451 4.3.0 out of memory");
        return;
    }
    for (size_t i = 0; i < job->nhosts; i++) {
        const struct route_host *h = &job->hosts[i];
        route_add_targets(h, &h->v4, targets, &n, max);
        route_add_targets(h, &h->v6, targets, &n, max);
        if (route_status_is_temporary(h->v4.status) || route_status_is_temporary(h->v6.status))
            temporary = 1;
    }
    if (n) {
        uint32_t ttl = job->ttl > ROUTE_TTL_MAX ? ROUTE_TTL_MAX : job->ttl;
        route_job_finish(job, ROUTE_OK, ttl, targets, n, NULL);
    } else if (temporary || job->is_static) {
        route_job_finish(job, ROUTE_TEMPFAIL, ROUTE_TEMPFAIL_TTL, NULL, 0,
                         "451 4.4.3 no address found for %s of %s%s%s",
                         job->is_static ? "the route hosts" : job->implicit_mx ? "the domain"
                                                                               : "the MX hosts",
                         job->domain, job->temp_error[0] ? ": " : "", job->temp_error);
    } else if (job->implicit_mx) {
        route_job_finish(job, ROUTE_PERMFAIL, ROUTE_NEGATIVE_TTL, NULL, 0,
                         "550 5.1.2 domain %s has no MX and no address records", job->domain);
    } else {
        route_job_finish(job, ROUTE_PERMFAIL, ROUTE_NEGATIVE_TTL, NULL, 0,
                         "550 5.1.2 no address records for the mail exchangers of %s", job->domain);
    }
    free(targets);
}

static void route_job_done_query(struct route_job *job)
{
    if (--job->pending == 0)
        route_job_assemble(job);
}

/* ---- address lookups ---- */

static void route_on_addr(struct route_host *h, int family, int status, unsigned char *abuf,
                          int alen)
{
    struct route_job *job = h->job;
    struct route_addrs *a = family == AF_INET ? &h->v4 : &h->v6;
    a->status = status;
    if (status == ARES_SUCCESS) {
        if (family == AF_INET) {
            struct ares_addrttl at[ROUTE_MAX_ADDRS];
            int n = ROUTE_MAX_ADDRS;
            struct hostent *he = NULL;
            if (ares_parse_a_reply(abuf, alen, &he, at, &n) == ARES_SUCCESS) {
                for (int i = 0; i < n; i++) {
                    struct sockaddr_in *sa = (struct sockaddr_in *)&a->addr[a->count++];
                    memset(sa, 0, sizeof(*sa));
                    sa->sin_family = AF_INET;
                    sa->sin_port = htons((uint16_t)h->port);
                    sa->sin_addr = at[i].ipaddr;
                    if ((uint32_t)at[i].ttl < job->ttl)
                        job->ttl = (uint32_t)(at[i].ttl < 0 ? 0 : at[i].ttl);
                }
            }
            if (he)
                ares_free_hostent(he);
        } else {
            struct ares_addr6ttl at[ROUTE_MAX_ADDRS];
            int n = ROUTE_MAX_ADDRS;
            struct hostent *he = NULL;
            if (ares_parse_aaaa_reply(abuf, alen, &he, at, &n) == ARES_SUCCESS) {
                for (int i = 0; i < n; i++) {
                    struct sockaddr_in6 *sa = (struct sockaddr_in6 *)&a->addr[a->count++];
                    memset(sa, 0, sizeof(*sa));
                    sa->sin6_family = AF_INET6;
                    sa->sin6_port = htons((uint16_t)h->port);
                    memcpy(&sa->sin6_addr, &at[i].ip6addr, sizeof(sa->sin6_addr));
                    if ((uint32_t)at[i].ttl < job->ttl)
                        job->ttl = (uint32_t)(at[i].ttl < 0 ? 0 : at[i].ttl);
                }
            }
            if (he)
                ares_free_hostent(he);
        }
    } else if (route_status_is_temporary(status)) {
        snprintf(job->temp_error, sizeof(job->temp_error), "%s %.200s: %s",
                 family == AF_INET ? "A" : "AAAA", h->name, ares_strerror(status));
    }
    route_job_done_query(job);
}

static void route_on_a(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    route_on_addr(arg, AF_INET, status, abuf, alen);
}

static void route_on_aaaa(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    route_on_addr(arg, AF_INET6, status, abuf, alen);
}

/* Starts the address lookups of every host (IP literals need none). */
static void route_job_resolve_hosts(struct route_job *job)
{
    job->pending = 1; /* held until every query is sent */
    for (size_t i = 0; i < job->nhosts; i++) {
        struct route_host *h = &job->hosts[i];
        socklen_t len;
        h->job = job;
        h->v4.status = h->v6.status = ARES_ENODATA;
        if (route_parse_ip(h->name, h->port, &h->v4.addr[0], &len) == 0) {
            h->v4.status = ARES_SUCCESS;
            h->v4.count = 1;
            if (h->v4.addr[0].ss_family == AF_INET6) {
                h->v6 = h->v4;
                h->v4.count = 0;
            }
            continue;
        }
        job->pending += 2;
        route_dns_query(h->name, ns_t_a, route_on_a, h);
        route_dns_query(h->name, ns_t_aaaa, route_on_aaaa, h);
    }
    route_job_done_query(job);
}

/* ---- MX ---- */

static int route_mx_cmp(const void *a, const void *b)
{
    const struct route_host *x = a, *y = b;
    return (x->preference > y->preference) - (x->preference < y->preference);
}

/* Shuffles runs of equal preference (RFC 5321 5.1: spread the load). */
static void route_shuffle_equal(struct route_host *h, size_t n)
{
    for (size_t start = 0; start < n;) {
        size_t end = start + 1;
        while (end < n && h[end].preference == h[start].preference)
            end++;
        for (size_t i = end - 1; i > start; i--) {
            size_t j = start + (size_t)random() % (i - start + 1);
            if (j != i) {
                struct route_host tmp = h[i];
                h[i] = h[j];
                h[j] = tmp;
            }
        }
        start = end;
    }
}

static void route_on_mx(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    struct route_job *job = arg;
    struct ares_mx_reply *mx = NULL;

    if (status == ARES_SUCCESS) {
        int rc = ares_parse_mx_reply(abuf, alen, &mx);
        if (rc != ARES_SUCCESS)
            status = rc == ARES_ENODATA ? ARES_ENODATA : ARES_EBADRESP;
    }
    if (status == ARES_ENOTFOUND) {
        route_job_finish(job, ROUTE_PERMFAIL, ROUTE_NEGATIVE_TTL, NULL, 0,
                         "550 5.1.2 domain %s does not exist (NXDOMAIN)", job->domain);
        return;
    }
    if (status == ARES_ENODATA) {
        /* no MX: the domain itself is the exchanger (RFC 5321 5.1) */
        job->implicit_mx = 1;
        job->nhosts = 1;
        snprintf(job->hosts[0].name, sizeof(job->hosts[0].name), "%s", job->domain);
        job->hosts[0].port = job->mx_port;
        route_job_resolve_hosts(job);
        return;
    }
    if (status != ARES_SUCCESS) {
        route_job_finish(job, ROUTE_TEMPFAIL, ROUTE_TEMPFAIL_TTL, NULL, 0,
                         "451 4.4.3 MX lookup for %s failed: %s", job->domain, ares_strerror(status));
        return;
    }

    size_t records = 0, nulls = 0;
    for (struct ares_mx_reply *m = mx; m; m = m->next) {
        records++;
        if (m->host[0] == '\0' || strcmp(m->host, ".") == 0) {
            nulls++;
            continue;
        }
        if (job->nhosts == ROUTE_MAX_HOSTS)
            continue;
        struct route_host *h = &job->hosts[job->nhosts++];
        snprintf(h->name, sizeof(h->name), "%s", m->host);
        h->preference = m->priority;
        h->port = job->mx_port;
    }
    ares_free_data(mx);
    uint32_t ttl = route_dns_answer_ttl(abuf, alen, ns_t_mx);
    if (ttl < job->ttl)
        job->ttl = ttl;
    if (job->nhosts == 0) {
        /* RFC 7505: a single "." exchanger means the domain takes no mail */
        route_job_finish(job, ROUTE_PERMFAIL, ttl < ROUTE_NEGATIVE_TTL ? ttl : ROUTE_NEGATIVE_TTL,
                         NULL, 0, "556 5.1.10 domain %s does not accept mail (null MX)", job->domain);
        return;
    }
    if (nulls)
        log_write("route", VIPMTA_LOG_INFO, "%s: ignoring %zu null MX among %zu records",
                  job->domain, nulls, records);
    qsort(job->hosts, job->nhosts, sizeof(job->hosts[0]), route_mx_cmp);
    route_shuffle_equal(job->hosts, job->nhosts);
    route_job_resolve_hosts(job);
}

/* ---- starting ---- */

static struct route_job *route_job_find(const char *key)
{
    for (struct route_job *j = jobs; j; j = j->next)
        if (strcasecmp(j->key, key) == 0)
            return j;
    return NULL;
}

static void route_lookup_fail(route_cb cb, void *arg, const char *domain)
{
    struct route_result res;
    memset(&res, 0, sizeof(res));
    res.status = ROUTE_TEMPFAIL;
    snprintf(res.error, sizeof(res.error), "451 4.3.0 out of memory routing %s", domain);
    cb(arg, &res);
}

void route_lookup_start(const char *key, const char *domain, const struct config_route *r,
                        unsigned mx_port, route_cb cb, void *arg)
{
    struct route_waiter *w = malloc(sizeof(*w));
    if (!w) {
        route_lookup_fail(cb, arg, domain);
        return;
    }
    w->cb = cb;
    w->arg = arg;
    struct route_job *job = route_job_find(key);
    if (job) {
        w->next = job->waiters;
        job->waiters = w;
        return;
    }
    job = calloc(1, sizeof(*job));
    if (!job) {
        free(w);
        route_lookup_fail(cb, arg, domain);
        return;
    }
    w->next = NULL;
    job->waiters = w;
    job->ttl = UINT32_MAX;
    job->mx_port = mx_port;
    job->cfg = config_hold();
    snprintf(job->key, sizeof(job->key), "%s", key);
    snprintf(job->domain, sizeof(job->domain), "%s", domain);
    job->next = jobs;
    if (jobs)
        jobs->prev = job;
    jobs = job;

    if (r) {
        job->is_static = 1;
        for (size_t i = 0; i < r->host_count && job->nhosts < ROUTE_MAX_HOSTS; i++) {
            struct route_host *h = &job->hosts[job->nhosts];
            if (route_split_hostport(r->hosts[i], h->name, sizeof(h->name), &h->port,
                                     mx_port) != 0)
                continue;
            h->preference = (unsigned)i;
            job->nhosts++;
        }
        route_job_resolve_hosts(job);
        return;
    }
    if (domain[0] == '[') {
        /* an address literal domain ("user@[192.0.2.1]") */
        job->nhosts = 1;
        snprintf(job->hosts[0].name, sizeof(job->hosts[0].name), "%s", domain);
        job->hosts[0].port = mx_port;
        route_job_resolve_hosts(job);
        return;
    }
    route_dns_query(domain, ns_t_mx, route_on_mx, job);
}

void route_lookup_abort_all(void)
{
    while (jobs)
        route_job_finish(jobs, ROUTE_TEMPFAIL, 0, NULL, 0, "451 4.3.2 shutting down");
}
