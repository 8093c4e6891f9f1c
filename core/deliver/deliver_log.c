/* deliver_log.c: the JSON delivery log lines (one per recipient attempt or failed connection) and address formatting. */
#include "deliver_internal.h"
#include "log/log.h"
#include "queue/queue.h"
#include "tls/tls.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void deliver_format_ip(const struct sockaddr *sa, char *buf, size_t len)
{
    const void *a = sa->sa_family == AF_INET6
                        ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                        : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
    if ((sa->sa_family != AF_INET && sa->sa_family != AF_INET6) ||
        !inet_ntop(sa->sa_family, a, buf, (socklen_t)len))
        snprintf(buf, len, "?");
}

void deliver_format_addr(const struct sockaddr *sa, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];
    deliver_format_ip(sa, ip, sizeof(ip));
    if (sa->sa_family == AF_INET6)
        snprintf(buf, len, "[%s]:%u", ip,
                 (unsigned)ntohs(((const struct sockaddr_in6 *)sa)->sin6_port));
    else
        snprintf(buf, len, "%s:%u", ip,
                 (unsigned)ntohs(((const struct sockaddr_in *)sa)->sin_port));
}

/* A JSON string, or null; bytes that are not valid UTF-8 become '?'. */
static json_t *deliver_json_str(const char *s)
{
    if (!s)
        return json_null();
    json_t *j = json_string(s);
    if (j)
        return j;
    char *copy = strdup(s);
    if (!copy)
        return json_null();
    for (unsigned char *p = (unsigned char *)copy; *p; p++)
        if (*p >= 0x80)
            *p = '?';
    j = json_string(copy);
    free(copy);
    return j ? j : json_null();
}

/* "tls": {"version", "cipher", "bits", "verified", "resumed"}, false in clear, null when the
 * connection did not get that far. */
static json_t *deliver_log_tls(const struct deliver_log_ctx *ctx)
{
    if (!ctx->tls_known)
        return json_null();
    if (!ctx->tls || !ctx->tls->active)
        return json_false();
    json_t *t = json_object();
    if (!t)
        return json_null();
    json_object_set_new(t, "version", deliver_json_str(ctx->tls->version));
    json_object_set_new(t, "cipher", deliver_json_str(ctx->tls->cipher));
    json_object_set_new(t, "bits", json_integer(ctx->tls->bits));
    json_object_set_new(t, "verified", json_boolean(ctx->tls->verified));
    json_object_set_new(t, "resumed", json_boolean(ctx->tls->resumed));
    return t;
}

/* One line; `extra` (NULL or an object, taken) adds its members at the end. */
static void deliver_log_write(const struct deliver_log_ctx *ctx, const char *id,
                              const char *rcpt, const char *outcome, const char *reply,
                              const char *auth_user, json_t *extra)
{
    json_t *o = json_object();
    if (!o)
        return;
    json_object_set_new(o, "id", deliver_json_str(id));
    json_object_set_new(o, "rcpt", deliver_json_str(rcpt));
    json_object_set_new(o, "domain", deliver_json_str(ctx->domain));
    json_object_set_new(o, "binding", deliver_json_str(config_get_binding_name_from_id(ctx->slot)));
    json_object_set_new(o, "slot", json_integer(ctx->slot));
    json_object_set_new(o, "source", deliver_json_str(ctx->source));
    json_object_set_new(o, "destination", deliver_json_str(ctx->destination));
    json_object_set_new(o, "mx", deliver_json_str(ctx->mx));
    json_object_set_new(o, "tls", deliver_log_tls(ctx));
    if (auth_user)
        json_object_set_new(o, "auth_user", deliver_json_str(auth_user));
    json_object_set_new(o, "outcome", deliver_json_str(outcome));
    json_object_set_new(o, "reply", deliver_json_str(reply));
    if (extra)
        json_object_update(o, extra);
    json_decref(extra);
    log_delivery(o);
}

/* The value of tag `tag` (d, s, a) of an unfolded DKIM-Signature value, white
 * space removed; NULL when absent. */
static json_t *deliver_log_dkim_tag(const char *v, size_t len, const char *tag)
{
    size_t tl = strlen(tag);
    for (size_t i = 0; i < len;) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == '\r' || v[i] == '\n'))
            i++;
        size_t end = i;
        while (end < len && v[end] != ';')
            end++;
        if (end - i > tl && strncmp(v + i, tag, tl) == 0 &&
            (v[i + tl] == '=' || v[i + tl] == ' ' || v[i + tl] == '\t')) {
            char out[256];
            size_t o = 0;
            for (size_t k = i + tl; k < end && o < sizeof(out) - 1; k++)
                if (v[k] != '=' && v[k] != ' ' && v[k] != '\t' && v[k] != '\r' && v[k] != '\n')
                    out[o++] = v[k];
            out[o] = '\0';
            return deliver_json_str(out);
        }
        i = end + 1;
    }
    return json_null();
}

/* "dkim": [{"d", "s", "a"}] for each DKIM-Signature field a module added at
 * acceptance (what the message left with); NULL when it has none. */
static json_t *deliver_log_dkim(const struct queue_message *m)
{
    static const char name[] = "DKIM-Signature:";
    json_t *sigs = NULL;
    const char *h = m->added_headers, *end = h ? h + m->added_headers_len : NULL;
    while (h && h < end) {
        /* one field: up to a line end not followed by white space */
        const char *f = h;
        while (f < end && !(f[0] == '\n' && (f + 1 == end || (f[1] != ' ' && f[1] != '\t'))))
            f++;
        const char *next = f < end ? f + 1 : end;
        if ((size_t)(next - h) > sizeof(name) - 1 && strncasecmp(h, name, sizeof(name) - 1) == 0) {
            const char *v = h + sizeof(name) - 1;
            size_t vl = (size_t)(next - v);
            json_t *sig = json_pack("{s:o, s:o, s:o}", "d", deliver_log_dkim_tag(v, vl, "d"),
                                    "s", deliver_log_dkim_tag(v, vl, "s"), "a",
                                    deliver_log_dkim_tag(v, vl, "a"));
            if (!sigs)
                sigs = json_array();
            if (sigs && sig)
                json_array_append_new(sigs, sig);
            else
                json_decref(sig);
        }
        h = next;
    }
    return sigs;
}

void deliver_log_rcpt(const struct deliver_log_ctx *ctx, const struct queue_rcpt *r,
                       const char *outcome, const char *reply)
{
    json_t *dkim = deliver_log_dkim(r->msg);
    deliver_log_write(ctx, r->msg->id, r->address, outcome, reply, r->msg->auth_user,
                      dkim ? json_pack("{s:o}", "dkim", dkim) : NULL);
}

void deliver_log_conn(const struct deliver_log_ctx *ctx, const char *outcome, const char *reply)
{
    deliver_log_write(ctx, NULL, NULL, outcome, reply, NULL, NULL);
}

void deliver_log_veto(const struct deliver_log_ctx *ctx, const char *reply, unsigned vetoes,
                      size_t waiting)
{
    deliver_log_write(ctx, NULL, NULL, "vetoed", reply, NULL,
                      json_pack("{s:I, s:I}", "vetoes", (json_int_t)vetoes, "waiting",
                                (json_int_t)waiting));
}
