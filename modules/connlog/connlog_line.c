/* connlog_line.c: formats one connlog JSON line (time, domain, binding, slot, source, destination, fd, verdict). */
#include "connlog.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int connlog_format_addr(const struct sockaddr *sa, int len, char *buf, size_t size)
{
    char ip[INET6_ADDRSTRLEN];
    if (sa && sa->sa_family == AF_INET && len >= (int)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
        snprintf(buf, size, "%s:%u", ip, (unsigned)ntohs(s4->sin_port));
        return 0;
    }
    if (sa && sa->sa_family == AF_INET6 && len >= (int)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
        snprintf(buf, size, "[%s]:%u", ip, (unsigned)ntohs(s6->sin6_port));
        return 0;
    }
    if (size)
        buf[0] = '\0';
    return -1;
}

/* A JSON string, or null when absent or not valid UTF-8. */
static json_t *string_or_null(const char *s)
{
    json_t *v = s ? json_string(s) : NULL;
    return v ? v : json_null();
}

static json_t *addr_or_null(const struct sockaddr *sa, int len)
{
    char buf[INET6_ADDRSTRLEN + 10];
    return connlog_format_addr(sa, len, buf, sizeof(buf)) == 0 ? json_string(buf) : json_null();
}

json_t *connlog_event_json(const struct connlog_event *ev)
{
    char when[40];
    struct tm tm;
    time_t secs = ev->time.tv_sec;
    gmtime_r(&secs, &tm);
    size_t n = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof(when) - n, ".%03ldZ", (long)(ev->time.tv_usec / 1000));

    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = 0;
    bad |= json_object_set_new(o, "time", json_string(when));
    bad |= json_object_set_new(o, "domain", string_or_null(ev->domain));
    bad |= json_object_set_new(o, "binding", string_or_null(ev->binding));
    bad |= json_object_set_new(o, "slot", json_integer(ev->slot));
    bad |= json_object_set_new(o, "source", addr_or_null(ev->source, ev->source_len));
    bad |= json_object_set_new(o, "destination",
                               addr_or_null(ev->destination, ev->destination_len));
    bad |= json_object_set_new(o, "fd", json_integer(ev->fd));
    bad |= json_object_set_new(o, "verdict", string_or_null(ev->verdict));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int connlog_format_line(const struct connlog_event *ev, char *buf, size_t size)
{
    json_t *o = connlog_event_json(ev);
    if (!o)
        return -1;
    size_t n = json_dumpb(o, buf, size, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (n == 0 || n + 1 >= size)
        return -1;
    buf[n] = '\n';
    buf[n + 1] = '\0';
    return (int)(n + 1);
}
