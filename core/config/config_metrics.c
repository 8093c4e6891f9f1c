/* config_metrics.c: validates the `metrics` config section (the Prometheus endpoint's address, port, domain cap). */
#include "config_internal.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_DEFAULT_PORT 9465
#define METRICS_DEFAULT_MAX_DOMAINS 1000

/* Non-zero when the literal `addr` is 127.0.0.0/8 or ::1 (or ::ffff:127.x.y.z). */
static int config_metrics_is_loopback(const char *addr)
{
    unsigned char buf[16];
    static const unsigned char v6_loop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    if (inet_pton(AF_INET, addr, buf) == 1)
        return buf[0] == 127;
    if (inet_pton(AF_INET6, addr, buf) == 1)
        return memcmp(buf, v6_loop, 16) == 0 ||
               (memcmp(buf, v4_mapped, 12) == 0 && buf[12] == 127);
    return 0;
}

static int config_metrics_is_wildcard(const char *addr)
{
    return strcmp(addr, "0.0.0.0") == 0 || strcmp(addr, "::") == 0;
}

/* An SMTP listener on the same port and an overlapping address cannot coexist. */
static void config_metrics_check_listeners(struct config_ctx *c, const struct vipmta_config *cfg)
{
    const struct config_metrics *m = &cfg->metrics;
    for (size_t i = 0; i < cfg->listen_count; i++) {
        const struct config_listen *l = &cfg->listen[i];
        if (!l->address || l->port != m->port)
            continue;
        if (strcmp(l->address, m->address) == 0 || config_metrics_is_wildcard(l->address) ||
            config_metrics_is_wildcard(m->address)) {
            config_error(c, "metrics.port", "%u is also the port of the SMTP listener listen[%zu] "
                      "(%s): choose another port for metrics", m->port, i, l->address);
            return;
        }
    }
}

void config_parse_metrics(struct config_ctx *c, struct vipmta_config *cfg, const json_t *v)
{
    static const char *const keys[] = {"address", "port", "allow_non_loopback", "max_domains",
                                       NULL};
    struct config_metrics *m = &cfg->metrics;
    unsigned long long x;

    m->port = METRICS_DEFAULT_PORT;
    m->max_domains = METRICS_DEFAULT_MAX_DOMAINS;
    if (!v || json_is_null(v))
        return;
    if (!json_is_object(v)) {
        config_error(c, "metrics", "expected an object such as {\"address\": \"127.0.0.1\", "
                  "\"port\": 9465} (or null to disable), found %s", config_type_name(v));
        return;
    }
    m->enabled = 1;
    config_check_keys(c, v, "metrics", keys);
    int bad_address = config_get_string(c, v, "address", "metrics", &m->address) != 0;
    x = m->port;
    if (config_get_uint(c, v, "port", "metrics", 1, 65535, &x) == 0)
        m->port = (unsigned)x;
    config_get_bool(c, v, "allow_non_loopback", "metrics", &m->allow_non_loopback);
    x = m->max_domains;
    if (config_get_uint(c, v, "max_domains", "metrics", 0, 1000000, &x) == 0)
        m->max_domains = (unsigned)x;
    if (bad_address)
        return;
    if (!m->address) {
        m->address = strdup("127.0.0.1");
        if (!m->address) {
            config_error(c, "metrics", "out of memory");
            return;
        }
    }
    unsigned char buf[16];
    if (inet_pton(AF_INET, m->address, buf) != 1 && inet_pton(AF_INET6, m->address, buf) != 1) {
        config_error(c, "metrics.address", "\"%s\" is not an IPv4 or IPv6 address (a literal such as "
                  "127.0.0.1 or ::1; host names are not looked up)", m->address);
        return;
    }
    if (!m->allow_non_loopback && !config_metrics_is_loopback(m->address)) {
        config_error(c, "metrics.address", "\"%s\" is not a loopback address: the metrics endpoint "
                  "has no authentication and shows destination domains from mail traffic, so it "
                  "listens on 127.0.0.0/8 or ::1 only; set \"allow_non_loopback\": true to listen "
                  "there anyway (and restrict access with a firewall)", m->address);
        return;
    }
    config_metrics_check_listeners(c, cfg);
}
