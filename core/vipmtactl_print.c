/* vipmtactl_print.c: vipmtactl's human output: aligned tables and key/value lines from the daemon's JSON replies. */
#include "vipmtactl.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CTL_MAX_COLS 12

/* A table of strings printed with columns padded to their widest cell. */
struct ctl_table {
    int ncols;
    char **cells; /* rows * ncols */
    size_t rows, cap;
};

static void ctl_table_row(struct ctl_table *t, ...)
{
    va_list ap;
    if (t->rows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **c = realloc(t->cells, cap * (size_t)t->ncols * sizeof(*c));
        if (!c) {
            fprintf(stderr, "vipmtactl: out of memory\n");
            exit(2);
        }
        t->cells = c;
        t->cap = cap;
    }
    va_start(ap, t);
    for (int i = 0; i < t->ncols; i++) {
        const char *s = va_arg(ap, const char *);
        t->cells[t->rows * (size_t)t->ncols + (size_t)i] = strdup(s ? s : "-");
    }
    va_end(ap);
    t->rows++;
}

static void ctl_table_free(struct ctl_table *t)
{
    for (size_t i = 0; i < t->rows * (size_t)t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->rows = t->cap = 0;
}

/* Prints and empties the table. */
static void ctl_table_print(FILE *out, struct ctl_table *t)
{
    size_t w[CTL_MAX_COLS] = {0};
    for (size_t r = 0; r < t->rows; r++)
        for (int c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * (size_t)t->ncols + (size_t)c];
            size_t l = s ? strlen(s) : 0;
            if (l > w[c])
                w[c] = l;
        }
    for (size_t r = 0; r < t->rows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * (size_t)t->ncols + (size_t)c];
            if (c == t->ncols - 1)
                fprintf(out, "%s\n", s ? s : "");
            else
                fprintf(out, "%-*s  ", (int)w[c], s ? s : "");
        }
    }
    ctl_table_free(t);
}

/* A number member as text (in a rotating set of buffers, so several fit in one call). */
static const char *ctl_num(const json_t *o, const char *key)
{
    static char bufs[CTL_MAX_COLS * 2][32];
    static int next;
    char *b = bufs[next++ % (CTL_MAX_COLS * 2)];
    const json_t *v = json_object_get(o, key);
    if (json_is_integer(v))
        snprintf(b, 32, "%lld", (long long)json_integer_value(v));
    else
        snprintf(b, 32, "-");
    return b;
}

static const char *ctl_str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "-";
}

static long long ctl_int(const json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

/* "now", "in 5m", "2h ago" for an epoch time. */
static const char *ctl_when(long long t, char *buf, size_t len)
{
    long long d = t - (long long)time(NULL);
    const char *fmt = d > 0 ? "in %s" : "%s ago";
    long long a = d < 0 ? -d : d;
    char span[32];
    if (t == 0 || (d <= 0 && a < 1))
        return "now";
    if (a < 60)
        snprintf(span, sizeof(span), "%llds", a);
    else if (a < 3600)
        snprintf(span, sizeof(span), "%lldm%02llds", a / 60, a % 60);
    else if (a < 86400)
        snprintf(span, sizeof(span), "%lldh%02lldm", a / 3600, a % 3600 / 60);
    else
        snprintf(span, sizeof(span), "%lldd%02lldh", a / 86400, a % 86400 / 3600);
    if (d <= 0 && t != 0)
        fmt = "%s ago";
    snprintf(buf, len, fmt, span);
    return buf;
}

static void ctl_kv(FILE *out, const char *key, const char *fmt, ...)
{
    va_list ap;
    fprintf(out, "%-20s ", key);
    va_start(ap, fmt);
    vfprintf(out, fmt, ap);
    va_end(ap);
    fputc('\n', out);
}

static void ctl_print_status(FILE *out, const json_t *r)
{
    long long up = ctl_int(r, "uptime");
    const json_t *q = json_object_get(r, "queue");
    ctl_kv(out, "version", "%s", ctl_str(r, "version"));
    ctl_kv(out, "pid", "%s", ctl_num(r, "pid"));
    ctl_kv(out, "uptime", "%lldd %02lld:%02lld:%02lld (%lld s)", up / 86400, up % 86400 / 3600,
           up % 3600 / 60, up % 60, up);
    ctl_kv(out, "hostname", "%s", ctl_str(r, "hostname"));
    ctl_kv(out, "config", "%s", ctl_str(r, "config"));
    ctl_kv(out, "bindings", "%s", ctl_num(r, "bindings"));
    ctl_kv(out, "modules", "%s", ctl_num(r, "modules"));
    ctl_kv(out, "domains", "%s", ctl_num(r, "domains"));
    ctl_kv(out, "sessions", "%s", ctl_num(r, "sessions"));
    ctl_kv(out, "messages accepted", "%s", ctl_num(r, "messages_accepted"));
    ctl_kv(out, "recipients accepted", "%s", ctl_num(r, "recipients_accepted"));
    ctl_kv(out, "messages rejected", "%s", ctl_num(r, "messages_rejected"));
    ctl_kv(out, "connections", "%s (open now %s)", ctl_num(r, "connections"),
           ctl_num(r, "connections_open"));
    ctl_kv(out, "vetoes", "%s", ctl_num(r, "vetoes"));
    ctl_kv(out, "delivered", "%s", ctl_num(r, "delivered"));
    ctl_kv(out, "deferred", "%s", ctl_num(r, "deferred"));
    ctl_kv(out, "bounced", "%s", ctl_num(r, "bounced"));
    ctl_kv(out, "queue", "%s messages, %s recipients (%s ready, %s delayed, %s in flight)",
           ctl_num(q, "messages"), ctl_num(q, "recipients"), ctl_num(q, "active"),
           ctl_num(q, "delayed"), ctl_num(q, "in_flight"));
}

static void ctl_print_bindings(FILE *out, const json_t *r)
{
    struct ctl_table t = {.ncols = 9};
    const json_t *list = json_object_get(r, "bindings");
    size_t i;
    const json_t *b;
    ctl_table_row(&t, "NAME", "SLOT", "ADDRESS", "CONNECTIONS", "OPEN", "DELIVERED", "DEFERRED",
                  "BOUNCED", "VETOES");
    json_array_foreach(list, i, b) {
        char addr[128];
        const char *a4 = json_string_value(json_object_get(b, "address"));
        const char *a6 = json_string_value(json_object_get(b, "address6"));
        if (a4 && a6)
            snprintf(addr, sizeof(addr), "%s,%s", a4, a6);
        else
            snprintf(addr, sizeof(addr), "%s", a4 ? a4 : a6 ? a6 : "(any)");
        if (json_is_true(json_object_get(b, "suspended")))
            strncat(addr, " (suspended)", sizeof(addr) - strlen(addr) - 1);
        ctl_table_row(&t, ctl_str(b, "name"), ctl_num(b, "slot"), addr,
                      ctl_num(b, "connections"), ctl_num(b, "open"), ctl_num(b, "delivered"),
                      ctl_num(b, "deferred"), ctl_num(b, "bounced"), ctl_num(b, "vetoes"));
    }
    ctl_table_print(out, &t);
}

static void ctl_print_domains(FILE *out, const json_t *r)
{
    struct ctl_table t = {.ncols = 9};
    const json_t *list = json_object_get(r, "domains");
    size_t i;
    const json_t *d;
    ctl_table_row(&t, "DOMAIN", "QUEUED", "ACTIVE", "DELAYED", "CONNECTIONS", "DELIVERED",
                  "FAILED", "DEFERRED", "LAST ERROR");
    json_array_foreach(list, i, d) {
        char conns[256], err[700], when[48];
        const char *key;
        const json_t *v;
        int n = snprintf(conns, sizeof(conns), "%s", ctl_num(d, "connections"));
        const json_t *per = json_object_get(d, "binding_connections");
        const char *sep = " (";
        json_object_foreach((json_t *)per, key, v) {
            if (n > 0 && (size_t)n < sizeof(conns))
                n += snprintf(conns + n, sizeof(conns) - (size_t)n, "%s%s:%lld", sep, key,
                              (long long)json_integer_value(v));
            sep = ", ";
        }
        if (json_object_size(per) && n > 0 && (size_t)n < sizeof(conns))
            snprintf(conns + n, sizeof(conns) - (size_t)n, ")");
        const char *e = json_string_value(json_object_get(d, "last_error"));
        if (e)
            snprintf(err, sizeof(err), "%s (%s)", e,
                     ctl_when(ctl_int(d, "last_error_time"), when, sizeof(when)));
        else
            snprintf(err, sizeof(err), "-");
        ctl_table_row(&t, ctl_str(d, "domain"), ctl_num(d, "queued"), ctl_num(d, "active"),
                      ctl_num(d, "delayed"), conns, ctl_num(d, "deliveries"),
                      ctl_num(d, "failures"), ctl_num(d, "transients"), err);
    }
    ctl_table_print(out, &t);
}

static void ctl_print_modules(FILE *out, const json_t *r)
{
    struct ctl_table t = {.ncols = 4};
    size_t i, k;
    const json_t *m, *h;
    ctl_table_row(&t, "NAME", "VERSION", "VETOES", "HOOKS (position in chain)");
    json_array_foreach(json_object_get(r, "modules"), i, m) {
        char hooks[1024] = "";
        size_t n = 0;
        json_array_foreach(json_object_get(m, "hooks"), k, h) {
            if (n < sizeof(hooks))
                n += (size_t)snprintf(hooks + n, sizeof(hooks) - n, "%s%s (%lld of %lld)",
                                      k ? ", " : "", ctl_str(h, "hook"), ctl_int(h, "position"),
                                      ctl_int(h, "of"));
        }
        ctl_table_row(&t, ctl_str(m, "name"), ctl_str(m, "version"), ctl_num(m, "vetoes"),
                      k ? hooks : "(none)");
    }
    if (t.rows == 1)
        fprintf(out, "no modules loaded\n");
    else
        ctl_table_print(out, &t);
    ctl_table_free(&t);
    fprintf(out, "\nhook chains (call order):\n");
    json_array_foreach(json_object_get(r, "chains"), i, m) {
        fprintf(out, "  %s:", ctl_str(m, "hook"));
        const json_t *owners = json_object_get(m, "modules");
        if (!json_array_size(owners))
            fprintf(out, " (empty)");
        json_array_foreach(owners, k, h)
            fprintf(out, "%s %s", k ? "," : "", json_string_value(h));
        fputc('\n', out);
    }
}

static void ctl_rcpt_rows(struct ctl_table *t, const json_t *msg, int with_id)
{
    size_t k;
    const json_t *rc;
    int first = 1;
    json_array_foreach(json_object_get(msg, "recipients"), k, rc) {
        char when[48], sender[300];
        const char *state = ctl_str(rc, "state");
        const char *next = "-";
        if (!strcmp(state, "ready") || !strcmp(state, "delayed"))
            next = ctl_when(ctl_int(rc, "next_attempt"), when, sizeof(when));
        snprintf(sender, sizeof(sender), "<%s>", ctl_str(msg, "sender"));
        if (with_id)
            ctl_table_row(t, first ? ctl_str(msg, "id") : "", first ? sender : "",
                          ctl_str(rc, "address"), state, ctl_num(rc, "attempts"), next);
        else
            ctl_table_row(t, ctl_str(rc, "address"), state, ctl_num(rc, "attempts"), next);
        first = 0;
    }
}

static void ctl_print_queue(FILE *out, const char *sub, const json_t *r)
{
    if (!strcmp(sub, "list")) {
        struct ctl_table t = {.ncols = 6};
        size_t i;
        const json_t *msg;
        ctl_table_row(&t, "ID", "SENDER", "RECIPIENT", "STATE", "ATTEMPTS", "NEXT ATTEMPT");
        json_array_foreach(json_object_get(r, "messages"), i, msg)
            ctl_rcpt_rows(&t, msg, 1);
        if (t.rows > 1)
            ctl_table_print(out, &t);
        ctl_table_free(&t);
        fprintf(out, "%lld messages queued", ctl_int(r, "total"));
        if (ctl_int(r, "shown") < ctl_int(r, "total"))
            fprintf(out, " (first %lld shown; --limit N shows more)", ctl_int(r, "shown"));
        fputc('\n', out);
    } else if (!strcmp(sub, "show")) {
        const json_t *m = json_object_get(r, "message");
        char when[48];
        struct ctl_table t = {.ncols = 4};
        ctl_kv(out, "id", "%s", ctl_str(m, "id"));
        ctl_kv(out, "sender", "<%s>", ctl_str(m, "sender"));
        ctl_kv(out, "received", "%s", ctl_when(ctl_int(m, "received"), when, sizeof(when)));
        ctl_kv(out, "size", "%s bytes", ctl_num(m, "size"));
        ctl_kv(out, "client", "%s (helo %s)", ctl_str(m, "client"), ctl_str(m, "helo"));
        ctl_kv(out, "binding", "%s", ctl_str(m, "binding"));
        if (json_is_true(json_object_get(m, "dsn")))
            ctl_kv(out, "dsn", "yes (a bounce generated here)");
        if (json_object_get(m, "pending_operation"))
            ctl_kv(out, "pending operation", "%s (when the recipients in flight come back)",
                   ctl_str(m, "pending_operation"));
        fputc('\n', out);
        ctl_table_row(&t, "RECIPIENT", "STATE", "ATTEMPTS", "NEXT ATTEMPT");
        ctl_rcpt_rows(&t, m, 0);
        ctl_table_print(out, &t);
    } else if (!strcmp(sub, "flush")) {
        fprintf(out, "%s: %s delayed recipients are ready now\n", ctl_str(r, "domain"),
                ctl_num(r, "flushed"));
    } else {
        int del = !strcmp(sub, "delete");
        fprintf(out, "%s: %s %s recipients\n", ctl_str(r, "id"), del ? "deleted" : "bounced",
                ctl_num(r, del ? "deleted" : "bounced"));
        if (json_object_get(r, "note"))
            fprintf(out, "note: %s\n", ctl_str(r, "note"));
    }
}

void ctl_print_reply(FILE *out, const char *command, int argc, char **argv, const json_t *reply)
{
    if (!strcmp(command, "status"))
        ctl_print_status(out, reply);
    else if (!strcmp(command, "bindings"))
        ctl_print_bindings(out, reply);
    else if (!strcmp(command, "domains"))
        ctl_print_domains(out, reply);
    else if (!strcmp(command, "modules"))
        ctl_print_modules(out, reply);
    else if (!strcmp(command, "queue") && argc > 0)
        ctl_print_queue(out, argv[0], reply);
    else if (!strcmp(command, "reload"))
        fprintf(out, "reloaded\n");
    else if (!strcmp(command, "shutdown"))
        fprintf(out, "vipmta is stopping\n");
    else
        fprintf(out, "ok\n");
}
