/* control_client_print.c: vipmtactl's human output: aligned tables and key/value lines from the daemon's JSON replies. */
#include "control_client.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CTL_MAX_COLS 12

/* A table of strings printed with columns padded to their widest cell. */
struct control_client_table {
    int ncols;
    char **cells; /* rows * ncols */
    size_t rows, cap;
};

static void control_client_table_row(struct control_client_table *t, ...)
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

static void control_client_table_free(struct control_client_table *t)
{
    for (size_t i = 0; i < t->rows * (size_t)t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->rows = t->cap = 0;
}

/* Prints and empties the table. */
static void control_client_table_print(FILE *out, struct control_client_table *t)
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
    control_client_table_free(t);
}

/* A number member as text (in a rotating set of buffers, so several fit in one call). */
static const char *control_client_num(const json_t *o, const char *key)
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

static const char *control_client_str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "-";
}

static long long control_client_int(const json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

/* "now", "in 5m", "2h ago" for an epoch time. */
static const char *control_client_when(long long t, char *buf, size_t len)
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

static void control_client_kv(FILE *out, const char *key, const char *fmt, ...)
{
    va_list ap;
    fprintf(out, "%-20s ", key);
    va_start(ap, fmt);
    vfprintf(out, fmt, ap);
    va_end(ap);
    fputc('\n', out);
}

static void control_client_print_status(FILE *out, const json_t *r)
{
    long long up = control_client_int(r, "uptime");
    const json_t *q = json_object_get(r, "queue");
    control_client_kv(out, "version", "%s", control_client_str(r, "version"));
    control_client_kv(out, "pid", "%s", control_client_num(r, "pid"));
    control_client_kv(out, "uptime", "%lldd %02lld:%02lld:%02lld (%lld s)", up / 86400, up % 86400 / 3600,
           up % 3600 / 60, up % 60, up);
    control_client_kv(out, "hostname", "%s", control_client_str(r, "hostname"));
    control_client_kv(out, "config", "%s", control_client_str(r, "config"));
    control_client_kv(out, "bindings", "%s", control_client_num(r, "bindings"));
    control_client_kv(out, "modules", "%s", control_client_num(r, "modules"));
    control_client_kv(out, "domains", "%s", control_client_num(r, "domains"));
    control_client_kv(out, "sessions", "%s", control_client_num(r, "sessions"));
    control_client_kv(out, "messages accepted", "%s", control_client_num(r, "messages_accepted"));
    control_client_kv(out, "recipients accepted", "%s", control_client_num(r, "recipients_accepted"));
    control_client_kv(out, "messages rejected", "%s", control_client_num(r, "messages_rejected"));
    control_client_kv(out, "connections", "%s (open now %s)", control_client_num(r, "connections"),
           control_client_num(r, "connections_open"));
    control_client_kv(out, "vetoes", "%s", control_client_num(r, "vetoes"));
    control_client_kv(out, "delivered", "%s", control_client_num(r, "delivered"));
    control_client_kv(out, "deferred", "%s", control_client_num(r, "deferred"));
    control_client_kv(out, "bounced", "%s", control_client_num(r, "bounced"));
    control_client_kv(out, "queue", "%s messages, %s recipients (%s ready, %s delayed, %s in flight)",
           control_client_num(q, "messages"), control_client_num(q, "recipients"), control_client_num(q, "active"),
           control_client_num(q, "delayed"), control_client_num(q, "in_flight"));
}

static void control_client_print_bindings(FILE *out, const json_t *r)
{
    struct control_client_table t = {.ncols = 12};
    const json_t *list = json_object_get(r, "bindings");
    size_t i;
    const json_t *b;
    control_client_table_row(&t, "NAME", "SLOT", "ADDRESS", "STATE", "QUEUED", "CONNECTIONS", "OPEN",
                  "DELIVERED", "DEFERRED", "BOUNCED", "VETOES", "MOVED");
    json_array_foreach(list, i, b) {
        char addr[128];
        const char *a4 = json_string_value(json_object_get(b, "address"));
        const char *a6 = json_string_value(json_object_get(b, "address6"));
        if (a4 && a6)
            snprintf(addr, sizeof(addr), "%s,%s", a4, a6);
        else
            snprintf(addr, sizeof(addr), "%s", a4 ? a4 : a6 ? a6 : "(any)");
        const char *state = json_string_value(json_object_get(b, "state"));
        /* vetoes: "N", or "N (P permanent, O other binding)" when some said more */
        char vetoes[96];
        snprintf(vetoes, sizeof(vetoes), "%s", control_client_num(b, "vetoes"));
        const char *perm = control_client_num(b, "vetoes_permanent");
        const char *other = control_client_num(b, "vetoes_other_binding");
        if (strcmp(perm, "0") != 0 || strcmp(other, "0") != 0)
            snprintf(vetoes + strlen(vetoes), sizeof(vetoes) - strlen(vetoes),
                     " (%s permanent, %s other binding)", perm, other);
        control_client_table_row(&t, control_client_str(b, "name"), control_client_num(b, "slot"),
                                 addr, state ? state : "?", control_client_num(b, "queued"),
                                 control_client_num(b, "connections"), control_client_num(b, "open"),
                                 control_client_num(b, "delivered"), control_client_num(b, "deferred"),
                                 control_client_num(b, "bounced"), vetoes,
                                 control_client_num(b, "moved_out"));
    }
    control_client_table_print(out, &t);
}

static void control_client_print_domains(FILE *out, const json_t *r)
{
    struct control_client_table t = {.ncols = 9};
    const json_t *list = json_object_get(r, "domains");
    size_t i;
    const json_t *d;
    control_client_table_row(&t, "DOMAIN", "QUEUED", "ACTIVE", "DELAYED", "CONNECTIONS", "DELIVERED",
                  "FAILED", "DEFERRED", "LAST ERROR");
    json_array_foreach(list, i, d) {
        char conns[256], err[700], when[48];
        const char *key;
        const json_t *v;
        int n = snprintf(conns, sizeof(conns), "%s", control_client_num(d, "connections"));
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
                     control_client_when(control_client_int(d, "last_error_time"), when, sizeof(when)));
        else
            snprintf(err, sizeof(err), "-");
        control_client_table_row(&t, control_client_str(d, "domain"), control_client_num(d, "queued"), control_client_num(d, "active"),
                      control_client_num(d, "delayed"), conns, control_client_num(d, "deliveries"),
                      control_client_num(d, "failures"), control_client_num(d, "transients"), err);
    }
    control_client_table_print(out, &t);
}

static void control_client_print_modules(FILE *out, const json_t *r)
{
    struct control_client_table t = {.ncols = 4};
    size_t i, k;
    const json_t *m, *h;
    control_client_table_row(&t, "NAME", "VERSION", "VETOES", "HOOKS (position in chain)");
    json_array_foreach(json_object_get(r, "modules"), i, m) {
        char hooks[1024] = "";
        size_t n = 0;
        json_array_foreach(json_object_get(m, "hooks"), k, h) {
            if (n < sizeof(hooks))
                n += (size_t)snprintf(hooks + n, sizeof(hooks) - n, "%s%s (%lld of %lld)",
                                      k ? ", " : "", control_client_str(h, "hook"), control_client_int(h, "position"),
                                      control_client_int(h, "of"));
        }
        control_client_table_row(&t, control_client_str(m, "name"), control_client_str(m, "version"), control_client_num(m, "vetoes"),
                      k ? hooks : "(none)");
    }
    if (t.rows == 1)
        fprintf(out, "no modules loaded\n");
    else
        control_client_table_print(out, &t);
    control_client_table_free(&t);
    fprintf(out, "\nhook chains (call order):\n");
    json_array_foreach(json_object_get(r, "chains"), i, m) {
        fprintf(out, "  %s:", control_client_str(m, "hook"));
        const json_t *owners = json_object_get(m, "modules");
        if (!json_array_size(owners))
            fprintf(out, " (empty)");
        json_array_foreach(owners, k, h)
            fprintf(out, "%s %s", k ? "," : "", json_string_value(h));
        fputc('\n', out);
    }
}

static void control_client_rcpt_rows(struct control_client_table *t, const json_t *msg, int with_id)
{
    size_t k;
    const json_t *rc;
    int first = 1;
    json_array_foreach(json_object_get(msg, "recipients"), k, rc) {
        char when[48], sender[300];
        const char *state = control_client_str(rc, "state");
        const char *next = "-";
        if (!strcmp(state, "ready") || !strcmp(state, "delayed"))
            next = control_client_when(control_client_int(rc, "next_attempt"), when, sizeof(when));
        snprintf(sender, sizeof(sender), "<%s>", control_client_str(msg, "sender"));
        if (with_id)
            control_client_table_row(t, first ? control_client_str(msg, "id") : "", first ? sender : "",
                          control_client_str(rc, "address"), state, control_client_num(rc, "attempts"), next);
        else
            control_client_table_row(t, control_client_str(rc, "address"), state, control_client_num(rc, "attempts"), next);
        first = 0;
    }
}

static void control_client_print_queue(FILE *out, const char *sub, const json_t *r)
{
    if (!strcmp(sub, "list")) {
        struct control_client_table t = {.ncols = 6};
        size_t i;
        const json_t *msg;
        control_client_table_row(&t, "ID", "SENDER", "RECIPIENT", "STATE", "ATTEMPTS", "NEXT ATTEMPT");
        json_array_foreach(json_object_get(r, "messages"), i, msg)
            control_client_rcpt_rows(&t, msg, 1);
        if (t.rows > 1)
            control_client_table_print(out, &t);
        control_client_table_free(&t);
        fprintf(out, "%lld messages queued", control_client_int(r, "total"));
        if (control_client_int(r, "shown") < control_client_int(r, "total"))
            fprintf(out, " (first %lld shown; --limit N shows more)", control_client_int(r, "shown"));
        fputc('\n', out);
    } else if (!strcmp(sub, "show")) {
        const json_t *m = json_object_get(r, "message");
        char when[48];
        struct control_client_table t = {.ncols = 4};
        control_client_kv(out, "id", "%s", control_client_str(m, "id"));
        control_client_kv(out, "sender", "<%s>", control_client_str(m, "sender"));
        control_client_kv(out, "received", "%s", control_client_when(control_client_int(m, "received"), when, sizeof(when)));
        control_client_kv(out, "size", "%s bytes", control_client_num(m, "size"));
        control_client_kv(out, "client", "%s (helo %s)", control_client_str(m, "client"), control_client_str(m, "helo"));
        control_client_kv(out, "binding", "%s", control_client_str(m, "binding"));
        if (json_is_true(json_object_get(m, "dsn")))
            control_client_kv(out, "dsn", "yes (a bounce generated here)");
        if (json_object_get(m, "pending_operation"))
            control_client_kv(out, "pending operation", "%s (when the recipients in flight come back)",
                   control_client_str(m, "pending_operation"));
        fputc('\n', out);
        control_client_table_row(&t, "RECIPIENT", "STATE", "ATTEMPTS", "NEXT ATTEMPT");
        control_client_rcpt_rows(&t, m, 0);
        control_client_table_print(out, &t);
    } else if (!strcmp(sub, "flush")) {
        fprintf(out, "%s: %s delayed recipients are ready now\n", control_client_str(r, "domain"),
                control_client_num(r, "flushed"));
    } else {
        int del = !strcmp(sub, "delete");
        fprintf(out, "%s: %s %s recipients\n", control_client_str(r, "id"), del ? "deleted" : "bounced",
                control_client_num(r, del ? "deleted" : "bounced"));
        if (json_object_get(r, "note"))
            fprintf(out, "note: %s\n", control_client_str(r, "note"));
    }
}

void control_client_print_reply(FILE *out, const char *command, int argc, char **argv, const json_t *reply)
{
    if (!strcmp(command, "status"))
        control_client_print_status(out, reply);
    else if (!strcmp(command, "bindings"))
        control_client_print_bindings(out, reply);
    else if (!strcmp(command, "domains"))
        control_client_print_domains(out, reply);
    else if (!strcmp(command, "modules"))
        control_client_print_modules(out, reply);
    else if (!strcmp(command, "queue") && argc > 0)
        control_client_print_queue(out, argv[0], reply);
    else if (!strcmp(command, "reload"))
        fprintf(out, "reloaded\n");
    else if (!strcmp(command, "shutdown"))
        fprintf(out, "vipmta is stopping\n");
    else
        fprintf(out, "ok\n");
}
