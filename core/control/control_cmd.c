/* control_cmd.c: the control socket's commands (status, bindings, domains, queue, modules, reload, shutdown) as JSON replies. */
#include "binding/binding_table.h"
#include "control_internal.h"
#include "config/config_current.h"
#include "daemon/daemon.h"
#include "queue/queue_domain.h"
#include "plugin/plugin_hooks.h"
#include "log/log.h"
#include "plugin/plugin_loader.h"
#include "queue/queue.h"
#include "spool/spool.h"
#include "control_stats.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Default and largest `queue list --limit`. */
#define CONTROL_LIST_DEFAULT 100
#define CONTROL_LIST_MAX 100000

static json_t *control_ok(void)
{
    return json_pack("{s:b}", "ok", 1);
}

/* Sets key to a new value (a NULL value is skipped, i.e. out of memory). */
static void control_set(json_t *obj, const char *key, json_t *value)
{
    if (value)
        json_object_set_new(obj, key, value);
}

static json_t *control_uint(uint64_t v)
{
    return json_integer((json_int_t)v);
}

static json_t *control_str(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* ---- status ---- */

static json_t *control_status(void)
{
    const struct vipmta_config *cfg = config_current();
    const struct control_stats_totals *t = control_stats_totals();
    struct queue_stats qs;
    uint64_t delivered = 0, deferred = 0, bounced = 0, conns = 0, vetoes = 0, open = 0;

    queue_get_stats(&qs);
    for (int i = 0; i < vipmta_binding_count(); i++) {
        const struct control_stats_binding *b = control_stats_binding(i);
        open += b->open;
        delivered += b->delivered;
        deferred += b->deferred;
        bounced += b->bounced;
        conns += b->connections;
        vetoes += b->vetoes;
    }
    json_t *r = control_ok();
    control_set(r, "version", json_string(PACKAGE_VERSION));
    control_set(r, "pid", json_integer(getpid()));
    control_set(r, "hostname", control_str(cfg ? cfg->hostname : NULL));
    control_set(r, "config", control_str(cfg ? cfg->path : NULL));
    control_set(r, "uptime", json_integer((json_int_t)control_stats_uptime()));
    control_set(r, "bindings", json_integer(vipmta_binding_count()));
    control_set(r, "modules", json_integer((json_int_t)plugin_loader_count()));
    control_set(r, "domains", json_integer((json_int_t)queue_domain_count()));
    control_set(r, "sessions", control_uint(t->sessions));
    control_set(r, "messages_accepted", control_uint(t->messages_accepted));
    control_set(r, "recipients_accepted", control_uint(t->recipients_accepted));
    control_set(r, "messages_rejected", control_uint(t->messages_rejected));
    control_set(r, "connections", control_uint(conns));
    control_set(r, "connections_open", control_uint(open));
    control_set(r, "vetoes", control_uint(vetoes));
    control_set(r, "delivered", control_uint(delivered));
    control_set(r, "deferred", control_uint(deferred));
    control_set(r, "bounced", control_uint(bounced));
    control_set(r, "queue", json_pack("{s:I, s:I, s:I, s:I, s:I}",
                                      "messages", (json_int_t)qs.messages,
                                      "recipients", (json_int_t)qs.recipients,
                                      "active", (json_int_t)qs.active,
                                      "delayed", (json_int_t)qs.delayed,
                                      "in_flight", (json_int_t)qs.in_flight));
    return r;
}

/* ---- bindings ---- */

static json_t *control_bindings(void)
{
    int n = vipmta_binding_count();
    json_t *list = json_array();
    uint64_t *queued = calloc(n > 0 ? (size_t)n : 1, sizeof(*queued));
    if (!list || !queued) {
        json_decref(list);
        free(queued);
        return control_error("out of memory");
    }
    queue_count_by_binding(queued, n);
    for (int i = 0; i < n; i++) {
        const vipmta_binding *b = vipmta_binding_by_slot(i);
        const struct control_stats_binding *s = control_stats_binding(i);
        char a4[INET_ADDRSTRLEN] = "", a6[INET6_ADDRSTRLEN] = "";
        if (!b)
            continue;
        if (b->has_addr4)
            inet_ntop(AF_INET, &b->addr4.sin_addr, a4, sizeof(a4));
        if (b->has_addr6)
            inet_ntop(AF_INET6, &b->addr6.sin6_addr, a6, sizeof(a6));
        json_t *o = json_object();
        if (!o)
            continue;
        control_set(o, "name", control_str(b->name));
        control_set(o, "slot", json_integer(i));
        control_set(o, "address", b->has_addr4 ? json_string(a4) : json_null());
        control_set(o, "address6", b->has_addr6 ? json_string(a6) : json_null());
        control_set(o, "group", control_str(b->group));
        control_set(o, "suspended", json_boolean(b->suspended));
        /* active: mail leaves from it; suspended: its address is not on this
         * host; absent: not in the configuration (kept for queued mail) */
        control_set(o, "state", json_string(b->absent ? "absent" : b->suspended ? "suspended"
                                                                               : "active"));
        control_set(o, "queued", control_uint(queued[i]));
        control_set(o, "connections", control_uint(s->connections));
        control_set(o, "connect_failures", control_uint(s->connect_failures));
        control_set(o, "open", control_uint(s->open));
        control_set(o, "delivered", control_uint(s->delivered));
        control_set(o, "deferred", control_uint(s->deferred));
        control_set(o, "bounced", control_uint(s->bounced));
        control_set(o, "vetoes", control_uint(s->vetoes));
        json_array_append_new(list, o);
    }
    free(queued);
    json_t *r = control_ok();
    control_set(r, "bindings", list);
    return r;
}

/* ---- domains ---- */

static void control_collect_domain(struct queue_domain *qd, void *arg)
{
    json_t *list = arg;
    const domain_record *dr = &qd->record;
    time_t when = qd->last_error_at;
    const char *err = qd->last_error;
    json_t *o = json_object();
    json_t *per = json_object();
    if (!o || !per) {
        json_decref(o);
        json_decref(per);
        return;
    }
    for (size_t i = 0; i < qd->binding_slots; i++) {
        const char *name = config_get_binding_name_from_id((ec_binding_slot)i);
        if (qd->binding_connections[i] && name)
            json_object_set_new(per, name, json_integer(qd->binding_connections[i]));
    }
    control_set(o, "domain", json_string(dr->domain));
    control_set(o, "queued", control_uint((uint64_t)qd->ready + qd->delayed));
    control_set(o, "active", control_uint(qd->ready));
    control_set(o, "delayed", control_uint(qd->delayed));
    control_set(o, "connections", control_uint(qd->connections));
    control_set(o, "binding_connections", per);
    control_set(o, "deliveries", control_uint(dr->deliveries));
    control_set(o, "failures", control_uint(dr->failures));
    control_set(o, "transients", control_uint(dr->transients));
    control_set(o, "attempts", control_uint(dr->attempts));
    control_set(o, "last_error", control_str(err));
    control_set(o, "last_error_time", err ? json_integer((json_int_t)when) : json_null());
    json_array_append_new(list, o);
}

static int control_cmp_domain(const void *a, const void *b)
{
    const char *x = json_string_value(json_object_get(*(json_t *const *)a, "domain"));
    const char *y = json_string_value(json_object_get(*(json_t *const *)b, "domain"));
    return strcmp(x ? x : "", y ? y : "");
}

/* A copy of `list` sorted by the string member `key`. */
static json_t *control_sorted(json_t *list, int (*cmp)(const void *, const void *))
{
    size_t n = json_array_size(list);
    json_t **items = malloc((n ? n : 1) * sizeof(*items));
    json_t *out = json_array();
    if (!items || !out) {
        free(items);
        json_decref(out);
        return list;
    }
    for (size_t i = 0; i < n; i++)
        items[i] = json_array_get(list, i);
    qsort(items, n, sizeof(*items), cmp);
    for (size_t i = 0; i < n; i++)
        json_array_append(out, items[i]);
    free(items);
    json_decref(list);
    return out;
}

static json_t *control_domains(const json_t *args)
{
    json_t *list = json_array();
    if (!list)
        return control_error("out of memory");
    if (json_array_size(args) > 1)
        return json_decref(list), control_error("domains takes at most one argument (a domain)");
    const char *only = json_string_value(json_array_get(args, 0));
    if (only) {
        domain_record *dr = queue_domain_find(only);
        if (!dr) {
            json_decref(list);
            return control_error("no domain %s is known (mail for it was never queued since "
                                 "the start)", only);
        }
        control_collect_domain(queue_domain_of(dr), list);
    } else {
        queue_domain_foreach(control_collect_domain, list);
        list = control_sorted(list, control_cmp_domain);
    }
    json_t *r = control_ok();
    control_set(r, "domains", list);
    return r;
}

/* ---- modules ---- */

static void control_collect_veto(const char *module, uint64_t vetoes, void *arg)
{
    json_object_set_new(arg, module, control_uint(vetoes));
}

static json_t *control_modules(void)
{
    size_t nchains;
    struct vipmta_hook *const *chains = plugin_hooks_all(&nchains);
    json_t *vetoes = json_object();
    json_t *list = json_array();
    json_t *chain_list = json_array();
    if (!vetoes || !list || !chain_list) {
        json_decref(vetoes);
        json_decref(list);
        json_decref(chain_list);
        return control_error("out of memory");
    }
    control_stats_foreach_module_veto(control_collect_veto, vetoes);
    for (size_t i = 0; i < plugin_loader_count(); i++) {
        const vipmta_module_ctx *m = plugin_loader_get(i);
        const vipmta_module_descriptor *d = plugin_loader_descriptor(m);
        const char *name = plugin_loader_label(m); /* NAME or NAME:INSTANCE, as hooks say */
        json_t *hooks = json_array();
        for (size_t c = 0; hooks && c < nchains; c++)
            for (int e = 0; e < chains[c]->count; e++)
                if (name && strcmp(chains[c]->owners[e], name) == 0)
                    json_array_append_new(hooks, json_pack("{s:s, s:i, s:i}", "hook",
                                                           chains[c]->name, "position", e + 1,
                                                           "of", chains[c]->count));
        json_t *v = name ? json_object_get(vetoes, name) : NULL;
        json_t *o = json_object();
        if (!o) {
            json_decref(hooks);
            continue;
        }
        control_set(o, "name", control_str(name));
        control_set(o, "version", control_str(d ? d->version : NULL));
        control_set(o, "description", control_str(d ? d->description : NULL));
        control_set(o, "file", control_str(plugin_loader_file(m)));
        control_set(o, "hooks", hooks);
        control_set(o, "vetoes", v ? json_incref(v) : json_integer(0));
        json_array_append_new(list, o);
    }
    for (size_t c = 0; c < nchains; c++) {
        json_t *owners = json_array();
        for (int e = 0; owners && e < chains[c]->count; e++)
            json_array_append_new(owners, json_string(chains[c]->owners[e]));
        json_array_append_new(chain_list, json_pack("{s:s, s:o*}", "hook", chains[c]->name,
                                                    "modules", owners));
    }
    json_decref(vetoes);
    json_t *r = control_ok();
    control_set(r, "modules", list);
    control_set(r, "chains", chain_list);
    return r;
}

/* ---- queue ---- */

struct control_rcpt {
    const struct queue_rcpt *r;
    enum queue_rcpt_where where;
};

struct control_rcpts {
    struct control_rcpt *v;
    size_t n, cap;
    const char *only; /* a message id, or NULL for all */
    int oom;
};

static void control_collect_rcpt(const struct queue_rcpt *r, enum queue_rcpt_where where,
                                 void *arg)
{
    struct control_rcpts *c = arg;
    if (c->only && strcmp(r->msg->id, c->only) != 0)
        return;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 256;
        struct control_rcpt *v = realloc(c->v, cap * sizeof(*v));
        if (!v) {
            c->oom = 1;
            return;
        }
        c->v = v;
        c->cap = cap;
    }
    c->v[c->n].r = r;
    c->v[c->n].where = where;
    c->n++;
}

static int control_cmp_rcpt(const void *a, const void *b)
{
    const struct queue_rcpt *x = ((const struct control_rcpt *)a)->r;
    const struct queue_rcpt *y = ((const struct control_rcpt *)b)->r;
    int c = strcmp(x->msg->id, y->msg->id);
    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

static const char *control_where_name(enum queue_rcpt_where w)
{
    switch (w) {
    case QUEUE_RCPT_READY:
        return "ready";
    case QUEUE_RCPT_DELAYED:
        return "delayed";
    case QUEUE_RCPT_IN_FLIGHT:
        return "in_flight";
    }
    return "unknown";
}

static json_t *control_rcpt_json(const struct control_rcpt *cr)
{
    const struct queue_rcpt *r = cr->r;
    return json_pack("{s:s, s:i, s:s, s:s, s:i, s:I}", "address", r->address, "index",
                     (int)r->index, "domain", r->dr->domain, "state",
                     control_where_name(cr->where), "attempts", (int)r->attempts,
                     "next_attempt", (json_int_t)r->next_attempt);
}

static json_t *control_message_json(const struct queue_message *m)
{
    const char *binding = config_get_binding_name_from_id(m->binding);
    json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:b, s:o}", "id", m->id, "sender", m->sender,
                          "received", (json_int_t)m->received, "size", (json_int_t)m->body_size,
                          "dsn", (int)m->is_dsn, "binding", control_str(binding));
    if (o && (m->op_delete || m->op_bounce))
        control_set(o, "pending_operation", json_string(m->op_delete ? "delete" : "bounce"));
    return o;
}

static int control_parse_count(const char *s, long *out)
{
    char *end;
    if (!s || !*s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end || errno || v < 1 || v > CONTROL_LIST_MAX)
        return -1;
    *out = v;
    return 0;
}

static json_t *control_queue_list(const json_t *args)
{
    long limit = CONTROL_LIST_DEFAULT;
    for (size_t i = 1; i < json_array_size(args); i++) {
        const char *a = json_string_value(json_array_get(args, i));
        if (a && strcmp(a, "--limit") == 0 && i + 1 < json_array_size(args)) {
            const char *v = json_string_value(json_array_get(args, ++i));
            if (control_parse_count(v, &limit) != 0)
                return control_error("queue list --limit: expected a number from 1 to %d, "
                                     "found \"%s\"", CONTROL_LIST_MAX, v ? v : "");
        } else {
            return control_error("queue list: unknown argument \"%s\" (usage: queue list "
                                 "[--limit N])", a ? a : "");
        }
    }
    struct control_rcpts c = {0};
    queue_foreach_rcpt(control_collect_rcpt, &c);
    if (c.oom) {
        free(c.v);
        return control_error("out of memory");
    }
    if (c.n)
        qsort(c.v, c.n, sizeof(*c.v), control_cmp_rcpt);
    json_t *list = json_array();
    json_t *msg = NULL, *rcpts = NULL;
    size_t messages = 0;
    for (size_t i = 0; i < c.n; i++) {
        if (i == 0 || c.v[i].r->msg != c.v[i - 1].r->msg) {
            messages++;
            msg = NULL;
            if ((long)messages <= limit) {
                msg = control_message_json(c.v[i].r->msg);
                rcpts = json_array();
                control_set(msg, "recipients", rcpts);
                json_array_append_new(list, msg);
            }
        }
        if (msg && rcpts)
            json_array_append_new(rcpts, control_rcpt_json(&c.v[i]));
    }
    free(c.v);
    json_t *r = control_ok();
    control_set(r, "messages", list);
    control_set(r, "total", json_integer((json_int_t)messages));
    control_set(r, "shown", json_integer((json_int_t)json_array_size(list)));
    control_set(r, "limit", json_integer(limit));
    return r;
}

static int control_id_ok(const char *id)
{
    if (!id || strlen(id) != SPOOL_ID_LEN)
        return 0;
    for (const char *p = id; *p; p++)
        if (!isdigit((unsigned char)*p) && !(*p >= 'a' && *p <= 'f'))
            return 0;
    return 1;
}

static const char *control_disk_state(enum spool_rcpt_state s)
{
    switch (s) {
    case SPOOL_RCPT_DELIVERED:
        return "delivered";
    case SPOOL_RCPT_BOUNCED:
        return "bounced";
    case SPOOL_RCPT_PENDING:
        break;
    }
    return "pending";
}

static json_t *control_queue_show(const char *id)
{
    struct control_rcpts c = {.only = id};
    char errbuf[256] = "";
    queue_foreach_rcpt(control_collect_rcpt, &c);
    if (c.oom) {
        free(c.v);
        return control_error("out of memory");
    }
    struct spool_envelope *env = spool_read_envelope(id, errbuf, sizeof(errbuf));
    if (!c.n && !env) {
        free(c.v);
        return control_error("no message %s in the queue (vipmtactl queue list shows the ids)",
                             id);
    }
    qsort(c.v, c.n, sizeof(*c.v), control_cmp_rcpt);
    json_t *msg;
    if (c.n) {
        msg = control_message_json(c.v[0].r->msg);
    } else {
        msg = json_pack("{s:s, s:s, s:I, s:I, s:b, s:o}", "id", env->id, "sender",
                        env->sender ? env->sender : "", "received", (json_int_t)env->received,
                        "size", (json_int_t)env->body_size, "dsn", env->is_dsn,
                        "binding", control_str(env->binding));
    }
    if (!msg) {
        free(c.v);
        spool_envelope_free(env);
        return control_error("out of memory");
    }
    json_t *rcpts = json_array();
    if (env) {
        control_set(msg, "client", control_str(env->client_addr));
        control_set(msg, "helo", control_str(env->helo));
        control_set(msg, "binding_group", control_str(env->binding_group));
        /* every recipient on disk, with the queue's view of the open ones */
        for (size_t i = 0; i < env->rcpt_count; i++) {
            const struct control_rcpt *live = NULL;
            for (size_t k = 0; k < c.n; k++)
                if (c.v[k].r->index == i)
                    live = &c.v[k];
            if (live) {
                json_array_append_new(rcpts, control_rcpt_json(live));
                continue;
            }
            const char *addr = env->rcpts[i].address ? env->rcpts[i].address : "";
            const char *at = strrchr(addr, '@');
            const char *state = control_disk_state(env->rcpts[i].state);
            json_array_append_new(rcpts, json_pack("{s:s, s:i, s:s, s:s, s:i, s:I}", "address",
                                                   addr, "index", (int)i, "domain",
                                                   at ? at + 1 : "", "state",
                                                   strcmp(state, "pending") ? state
                                                                            : "not_queued",
                                                   "attempts", (int)env->rcpts[i].attempts,
                                                   "next_attempt",
                                                   (json_int_t)env->rcpts[i].next_attempt));
        }
    } else {
        control_set(msg, "spool_error", json_string(errbuf));
        for (size_t k = 0; k < c.n; k++)
            json_array_append_new(rcpts, control_rcpt_json(&c.v[k]));
    }
    control_set(msg, "recipients", rcpts);
    free(c.v);
    spool_envelope_free(env);
    json_t *r = control_ok();
    control_set(r, "message", msg);
    return r;
}

static json_t *control_queue_op(const char *op, const char *id)
{
    struct queue_op_result res;
    int rc = strcmp(op, "delete") == 0 ? queue_delete_message(id, &res)
                                       : queue_bounce_message(id, &res);
    if (rc != 0) {
        if (errno == ENOENT)
            return control_error("no message %s in the queue (vipmtactl queue list shows the "
                                 "ids)", id);
        return control_error("queue %s %s: %s", op, id, strerror(errno));
    }
    log_write("control", VIPMTA_LOG_NOTICE, "vipmtactl queue %s %s: %zu recipients now, %zu in "
              "flight", op, id, res.done, res.in_flight);
    json_t *r = control_ok();
    control_set(r, "id", json_string(id));
    control_set(r, strcmp(op, "delete") == 0 ? "deleted" : "bounced", control_uint(res.done));
    control_set(r, "in_flight", control_uint(res.in_flight));
    if (res.in_flight)
        control_set(r, "note", json_sprintf("%zu recipients are being delivered right now: "
                                            "each is %s when its attempt ends, unless the "
                                            "attempt delivered it", res.in_flight,
                                            strcmp(op, "delete") == 0 ? "deleted" : "bounced"));
    return r;
}

static json_t *control_queue(const json_t *args)
{
    const char *sub = json_string_value(json_array_get(args, 0));
    const char *arg = json_string_value(json_array_get(args, 1));
    if (!sub)
        return control_error("queue: expected a subcommand: list [--limit N], show ID, flush "
                             "DOMAIN, delete ID, bounce ID");
    if (strcmp(sub, "list") == 0)
        return control_queue_list(args);
    if (strcmp(sub, "show") && strcmp(sub, "flush") && strcmp(sub, "delete") &&
        strcmp(sub, "bounce"))
        return control_error("queue: unknown subcommand \"%s\" (list, show, flush, delete, "
                             "bounce)", sub);
    if (!arg || json_array_size(args) != 2)
        return control_error("queue %s: expected exactly one %s", sub,
                             strcmp(sub, "flush") == 0 ? "domain" : "message id");
    if (strcmp(sub, "flush") == 0) {
        domain_record *dr = queue_domain_find(arg);
        if (!dr)
            return control_error("queue flush: no domain %s in the queue (vipmtactl domains "
                                 "lists them)", arg);
        size_t n = queue_flush_domain_count(dr);
        log_write("control", VIPMTA_LOG_NOTICE, "vipmtactl queue flush %s: %zu recipients ready "
                  "now", dr->domain, n);
        json_t *r = control_ok();
        control_set(r, "domain", json_string(dr->domain));
        control_set(r, "flushed", control_uint(n));
        return r;
    }
    if (!control_id_ok(arg))
        return control_error("queue %s: \"%s\" is not a message id (%d lower-case hex digits; "
                             "vipmtactl queue list shows them)", sub, arg, SPOOL_ID_LEN);
    if (strcmp(sub, "show") == 0)
        return control_queue_show(arg);
    return control_queue_op(sub, arg);
}

/* ---- reload, shutdown, dispatch ---- */

static json_t *control_reload(void)
{
    struct config_errors errs = {0};
    log_write("control", VIPMTA_LOG_NOTICE, "vipmtactl reload");
    if (daemon_reload(&errs) == 0) {
        config_errors_clear(&errs);
        return control_ok();
    }
    json_t *list = json_array();
    for (size_t i = 0; list && i < errs.count; i++)
        json_array_append_new(list, json_string(errs.messages[i]));
    json_t *r = control_error("reload failed: still running on the old configuration%s%s",
                              errs.count ? ": " : "", errs.count ? errs.messages[0] : "");
    control_set(r, "errors", list);
    config_errors_clear(&errs);
    return r;
}

static int control_nargs(const json_t *args, size_t max)
{
    return json_array_size(args) <= max;
}

json_t *control_execute(const json_t *request, enum control_after *after)
{
    const json_t *cmd = json_object_get(request, "command");
    const json_t *args = json_object_get(request, "args");
    *after = CONTROL_AFTER_NOTHING;
    if (!json_is_string(cmd))
        return control_error("bad request: \"command\" must be a string (status, bindings, "
                             "domains, queue, modules, reload, shutdown)");
    if (args && !json_is_array(args))
        return control_error("bad request: \"args\" must be a list of strings");
    for (size_t i = 0; i < json_array_size(args); i++)
        if (!json_is_string(json_array_get(args, i)))
            return control_error("bad request: args[%zu] must be a string", i);
    const char *c = json_string_value(cmd);
    if (strcmp(c, "queue") == 0)
        return control_queue(args);
    if (strcmp(c, "domains") == 0)
        return control_domains(args);
    int known = !strcmp(c, "status") || !strcmp(c, "bindings") || !strcmp(c, "modules") ||
                !strcmp(c, "reload") || !strcmp(c, "shutdown");
    if (!known)
        return control_error("unknown command \"%s\" (status, bindings, domains, queue, modules, "
                             "reload, shutdown)", c);
    if (!control_nargs(args, 0))
        return control_error("%s takes no arguments", c);
    if (strcmp(c, "status") == 0)
        return control_status();
    if (strcmp(c, "bindings") == 0)
        return control_bindings();
    if (strcmp(c, "modules") == 0)
        return control_modules();
    if (strcmp(c, "reload") == 0)
        return control_reload();
    log_write("control", VIPMTA_LOG_NOTICE, "vipmtactl shutdown requested");
    *after = CONTROL_AFTER_STOP;
    json_t *r = control_ok();
    control_set(r, "stopping", json_true());
    return r;
}
