/* control_metrics.c: the Prometheus endpoint: an evhttp server on the daemon's loop answering GET /metrics from live counters. */
#include "control_metrics.h"
#include "queue/queue_domain.h"
#include "log/log.h"
#include "control_metrics_render.h"
#include "control_stats.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define METRICS_TIMEOUT_SECONDS 10
#define METRICS_MAX_HEADERS 8192
#define METRICS_MAX_BODY 1024

static struct evhttp *http;
static unsigned max_domains;

/* What one scrape collects from the live registries. */
struct control_metrics_collect {
    struct control_metrics_domain_sample *domains;
    size_t domain_count, domain_cap;
    struct control_metrics_module_sample *modules;
    size_t module_count, module_cap;
    uint64_t queued;
    int failed;
};

static void control_metrics_collect_domain(struct queue_domain *qd, void *arg)
{
    struct control_metrics_collect *c = arg;
    const domain_record *dr = &qd->record;

    c->queued += (uint64_t)qd->ready + qd->delayed;
    if (c->domain_count == c->domain_cap) {
        size_t cap = c->domain_cap ? c->domain_cap * 2 : 64;
        struct control_metrics_domain_sample *grown = realloc(c->domains, cap * sizeof(*grown));
        if (!grown) {
            c->failed = 1;
            return;
        }
        c->domains = grown;
        c->domain_cap = cap;
    }
    c->domains[c->domain_count++] = (struct control_metrics_domain_sample){
        .domain = dr->domain,
        .active = qd->ready,
        .delayed = qd->delayed,
        .connections = qd->connections,
        .deliveries = dr->deliveries,
        .transients = dr->transients,
        .failures = dr->failures,
        .attempts = dr->attempts,
    };
}

static void control_metrics_collect_module(const char *module, uint64_t vetoes, void *arg)
{
    struct control_metrics_collect *c = arg;

    if (c->module_count == c->module_cap) {
        size_t cap = c->module_cap ? c->module_cap * 2 : 8;
        struct control_metrics_module_sample *grown = realloc(c->modules, cap * sizeof(*grown));
        if (!grown) {
            c->failed = 1;
            return;
        }
        c->modules = grown;
        c->module_cap = cap;
    }
    c->modules[c->module_count++] = (struct control_metrics_module_sample){module, vetoes};
}

static int control_metrics_module_order(const void *a, const void *b)
{
    const struct control_metrics_module_sample *x = a, *y = b;
    return strcmp(x->module, y->module);
}

struct control_metrics_tls_collect {
    struct tls_stats_row rows[64];
    size_t count;
};

static void control_metrics_collect_tls(const struct tls_stats_row *row, void *arg)
{
    struct control_metrics_tls_collect *t = arg;
    if (t->count < sizeof(t->rows) / sizeof(t->rows[0]))
        t->rows[t->count++] = *row;
}

/* Renders the live counters; 0 with *text malloc'd, or -1 on out of memory. */
static int control_metrics_scrape(char **text, size_t *len)
{
    struct control_metrics_collect c = {0};
    struct control_metrics_binding_sample *bindings = NULL;
    struct control_metrics_snapshot s = {0};
    struct control_stats_series *series = NULL;
    int rc = -1;

    int slots = vipmta_binding_count();
    if (slots < 0)
        slots = 0;
    bindings = calloc((size_t)slots + 1, sizeof(*bindings));
    if (!bindings)
        goto out;
    queue_domain_foreach(control_metrics_collect_domain, &c);
    control_stats_foreach_module_veto(control_metrics_collect_module, &c);
    if (c.failed)
        goto out;
    for (int slot = 0; slot < slots; slot++) {
        const vipmta_binding *b = vipmta_binding_by_slot(slot);
        bindings[slot] = (struct control_metrics_binding_sample){
            .name = b && b->name ? b->name : "",
            .slot = slot,
            .suspended = b ? b->suspended : 0,
            .counters = *control_stats_binding(slot),
        };
    }
    if (c.module_count > 1)
        qsort(c.modules, c.module_count, sizeof(*c.modules), control_metrics_module_order);
    size_t shown = control_metrics_select_domains(c.domains, c.domain_count, max_domains);

    s.version = PACKAGE_VERSION;
    s.uptime_seconds = control_stats_uptime();
    s.totals = *control_stats_totals();
    s.bindings = bindings;
    s.binding_count = (size_t)slots;
    s.modules = c.modules;
    s.module_count = c.module_count;
    s.domains = c.domains;
    s.domain_count = shown;
    s.domains_omitted = c.domain_count - shown;
    s.queue_recipients = c.queued;
    control_stats_sync_snapshot(&s.sync);
    s.sync_bounds_usec = control_stats_sync_bounds_usec;
    struct control_metrics_tls_collect tls = {.count = 0};
    tls_stats_foreach(control_metrics_collect_tls, &tls);
    s.tls_rows = tls.rows;
    s.tls_row_count = tls.count;
    tls_stats_totals(&s.tls);
    spool_get_memory_stats(&s.spool_memory);
    series = control_stats_counters_snapshot(&s.series_count, &s.series_dropped);
    if (!series)
        goto out;
    s.series = series;
    rc = control_metrics_render(&s, text, len);
out:
    free(series);
    free(c.domains);
    free(c.modules);
    free(bindings);
    return rc;
}

static void control_metrics_reply_text(struct evhttp_request *req, int code, const char *reason,
                               const char *text)
{
    struct evbuffer *body = evbuffer_new();

    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; charset=utf-8");
    if (body)
        evbuffer_add(body, text, strlen(text));
    evhttp_send_reply(req, code, reason, body);
    if (body)
        evbuffer_free(body);
}

static void control_metrics_on_request(struct evhttp_request *req, void *arg)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    char *text = NULL;
    size_t len = 0;

    (void)arg;
    if (!path || strcmp(path, "/metrics") != 0) {
        control_metrics_reply_text(req, 404, "Not Found", "not found: the metrics are at /metrics\n");
        return;
    }
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(headers, "Allow", "GET, HEAD");
        control_metrics_reply_text(req, 405, "Method Not Allowed", "method not allowed: use GET\n");
        return;
    }
    if (control_metrics_scrape(&text, &len) != 0) {
        log_write("metrics", VIPMTA_LOG_ERROR, "out of memory rendering the metrics");
        control_metrics_reply_text(req, 500, "Internal Server Error", "out of memory\n");
        return;
    }
    struct evbuffer *body = evbuffer_new();
    if (!body || evbuffer_add(body, text, len) != 0) {
        free(text);
        if (body)
            evbuffer_free(body);
        control_metrics_reply_text(req, 500, "Internal Server Error", "out of memory\n");
        return;
    }
    free(text);
    evhttp_add_header(headers, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    evhttp_add_header(headers, "Cache-Control", "no-store");
    evhttp_send_reply(req, 200, "OK", body);
    evbuffer_free(body);
}

/* A listening, non-blocking socket on address:port; -1 with errno set. */
static int control_metrics_listen_socket(const char *address, unsigned port)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    int one = 1;

    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, address, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        sslen = sizeof(*in4);
    } else if (inet_pton(AF_INET6, address, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        sslen = sizeof(*in6);
    } else {
        errno = EINVAL;
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sslen) != 0 || listen(fd, 16) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int control_metrics_start(struct event_base *base, const struct vipmta_config *cfg,
                  struct config_errors *errs)
{
    const struct config_metrics *m = &cfg->metrics;
    const char *lb = strchr(m->address ? m->address : "", ':') ? "[" : "";
    const char *rb = *lb ? "]" : "";

    if (!m->enabled)
        return 0;
    max_domains = m->max_domains;
    int fd = control_metrics_listen_socket(m->address, m->port);
    if (fd < 0) {
        int e = errno;
        config_errors_add(errs, "metrics.address/metrics.port: cannot listen on %s%s%s:%u for the "
                   "metrics endpoint: %s%s", lb, m->address, rb, m->port, strerror(e),
                   e == EADDRINUSE ? " (another process uses that port: choose another "
                   "metrics.port, or stop it)" : "");
        return -1;
    }
    http = evhttp_new(base);
    if (!http) {
        close(fd);
        config_errors_add(errs, "metrics: cannot create the HTTP server (out of memory)");
        return -1;
    }
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                         EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                         EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                         EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_timeout(http, METRICS_TIMEOUT_SECONDS);
    evhttp_set_max_headers_size(http, METRICS_MAX_HEADERS);
    evhttp_set_max_body_size(http, METRICS_MAX_BODY);
    evhttp_set_gencb(http, control_metrics_on_request, NULL);
    if (!evhttp_accept_socket_with_handle(http, fd)) {
        close(fd);
        evhttp_free(http);
        http = NULL;
        config_errors_add(errs, "metrics: cannot accept on %s%s%s:%u", lb, m->address, rb, m->port);
        return -1;
    }
    log_write("metrics", VIPMTA_LOG_NOTICE, "serving http://%s%s%s:%u/metrics", lb, m->address,
              rb, m->port);
    return 0;
}

void control_metrics_stop(void)
{
    if (http)
        evhttp_free(http);
    http = NULL;
}
