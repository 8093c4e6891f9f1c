/* connlog_line.c: formats the connlog JSON lines: a connection (time, domain, binding, slot, source, destination, fd, verdict) and its TLS state. */
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

/* Length of the UTF-8 sequence starting at s (1-4), or 0 when it is not a
 * well-formed one (overlong forms, surrogates, beyond U+10FFFF). */
static size_t utf8_sequence(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF)
        return (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0))
            return 0;
        return 3;
    }
    if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90))
            return 0;
        return 4;
    }
    return 0;
}

/* The output being built: stops growing (and marks itself full) at the end. */
struct line_out {
    char *buf;
    size_t size, len;
    int full;
};

static void out_bytes(struct line_out *o, const char *p, size_t n)
{
    if (o->full || o->len + n >= o->size) {
        o->full = 1;
        return;
    }
    memcpy(o->buf + o->len, p, n);
    o->len += n;
}

static void out_text(struct line_out *o, const char *s)
{
    out_bytes(o, s, strlen(s));
}

/* A JSON string, or null when absent or not valid UTF-8. */
static void out_string(struct line_out *o, const char *s)
{
    if (!s) {
        out_text(o, "null");
        return;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t n = utf8_sequence(p);
        if (!n) {
            out_text(o, "null");
            return;
        }
        p += n;
    }
    out_bytes(o, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            out_bytes(o, esc, 2);
        } else if (*p < 0x20 || *p == 0x7F) {
            snprintf(esc, sizeof(esc), "\\u%04x", *p);
            out_bytes(o, esc, 6);
        } else {
            out_bytes(o, (const char *)p, 1);
        }
    }
    out_bytes(o, "\"", 1);
}

static void out_addr(struct line_out *o, const struct sockaddr *sa, int len)
{
    char buf[INET6_ADDRSTRLEN + 10];
    if (connlog_format_addr(sa, len, buf, sizeof(buf)) != 0) {
        out_text(o, "null");
        return;
    }
    out_bytes(o, "\"", 1);
    out_text(o, buf);
    out_bytes(o, "\"", 1);
}

static void out_int(struct line_out *o, long long v)
{
    char buf[24];
    int n = snprintf(buf, sizeof(buf), "%lld", v);
    out_bytes(o, buf, (size_t)n);
}

/* "2024-01-01T12:00:00.123Z"; the part before the milliseconds is kept
 * from the last call with the same second (one gmtime_r per second). */
static void format_time(const struct timeval *tv, char *out, size_t size)
{
    static time_t cached_sec = (time_t)-1;
    static char cached[32];
    if (tv->tv_sec != cached_sec) {
        struct tm tm;
        time_t secs = tv->tv_sec;
        gmtime_r(&secs, &tm);
        if (strftime(cached, sizeof(cached), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
            cached[0] = '\0';
        cached_sec = tv->tv_sec;
    }
    snprintf(out, size, "%s.%03ldZ", cached, (long)(tv->tv_usec / 1000));
}

/* Written by hand, members in a fixed order: building a Jansson object for
 * every connection cost several microseconds on the connect path. */
int connlog_format_line(const struct connlog_event *ev, char *buf, size_t size)
{
    struct line_out o = {buf, size, 0, 0};
    char when[40];

    format_time(&ev->time, when, sizeof(when));
    out_text(&o, "{\"time\":\"");
    out_text(&o, when);
    out_text(&o, "\",\"domain\":");
    out_string(&o, ev->domain);
    out_text(&o, ",\"binding\":");
    out_string(&o, ev->binding);
    out_text(&o, ",\"slot\":");
    out_int(&o, ev->slot);
    out_text(&o, ",\"source\":");
    out_addr(&o, ev->source, ev->source_len);
    out_text(&o, ",\"destination\":");
    out_addr(&o, ev->destination, ev->destination_len);
    out_text(&o, ",\"fd\":");
    out_int(&o, ev->fd);
    out_text(&o, ",\"verdict\":");
    out_string(&o, ev->verdict);
    out_text(&o, "}\n");
    if (o.full || size == 0)
        return -1;
    buf[o.len] = '\0';
    return (int)o.len;
}

int connlog_format_tls_line(const struct connlog_tls_event *ev, char *buf, size_t size)
{
    struct line_out o = {buf, size, 0, 0};
    char when[40];

    format_time(&ev->time, when, sizeof(when));
    out_text(&o, "{\"time\":\"");
    out_text(&o, when);
    out_text(&o, "\",\"event\":\"tls\",\"domain\":");
    out_string(&o, ev->domain);
    out_text(&o, ",\"binding\":");
    out_string(&o, ev->binding);
    out_text(&o, ",\"slot\":");
    out_int(&o, ev->slot);
    out_text(&o, ",\"fd\":");
    out_int(&o, ev->fd);
    out_text(&o, ",\"peer_name\":");
    out_string(&o, ev->peer_name);
    out_text(&o, ",\"policy\":");
    out_string(&o, ev->policy);
    out_text(&o, ev->encrypted ? ",\"tls\":true,\"version\":" : ",\"tls\":false,\"version\":");
    out_string(&o, ev->encrypted ? ev->version : NULL);
    out_text(&o, ",\"cipher\":");
    out_string(&o, ev->encrypted ? ev->cipher : NULL);
    out_text(&o, ",\"bits\":");
    out_int(&o, ev->encrypted ? ev->bits : 0);
    out_text(&o, ev->encrypted && ev->verified ? ",\"verified\":true" : ",\"verified\":false");
    out_text(&o, ev->encrypted && ev->resumed ? ",\"resumed\":true" : ",\"resumed\":false");
    out_text(&o, ",\"verify_error\":");
    out_string(&o, ev->encrypted && ev->verify_error && *ev->verify_error ? ev->verify_error : NULL);
    out_text(&o, "}\n");
    if (o.full || size == 0)
        return -1;
    buf[o.len] = '\0';
    return (int)o.len;
}
