/* deliver.c: the delivery engine: connections per (domain, binding) within limits, targets in order, outcomes. */
#include "deliver.h"
#include "deliver_internal.h"
#include "binding/binding_table.h"
#include "config/config_current.h"
#include "queue/queue_domain.h"
#include "log/log.h"
#include "deliver_connect.h"
#include "queue/queue.h"
#include "route/route.h"
#include "deliver_client.h"
#include "control/control_stats.h"
#include "tls/tls.h"
#include "vipmta_tls.h"
#include "plugin/plugin_hooks.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Defaults when a domain record has no limits (tests). */
#define DELIVER_DEFAULT_PER_BINDING 32
#define DELIVER_DEFAULT_MESSAGES 100
/* One more connection per this many ready recipients, up to the limits. */
#define DELIVER_RCPTS_PER_CONN 8
/* Without limits, mail held by a veto is offered again after this long. */
#define DELIVER_VETO_RETRY 5
/* While a (domain, binding) stays vetoed, a summary line this often. */
#define DELIVER_VETO_SUMMARY_SECONDS 60
/* A connection without work stays open this long for more (then QUIT). */
#define DELIVER_IDLE_MS 2000

enum conn_state {
    CONN_RESOLVING, /* waiting for the route */
    CONN_CONNECTING,/* trying targets (transient, inside deliver_try_next) */
    CONN_SESSION,   /* an SMTP session runs */
    CONN_CANCELLED, /* shutdown while resolving: freed when the route answers */
};

struct deliver_lane;

struct deliver_conn {
    domain_record *dr;
    ec_binding_slot slot;
    enum conn_state state;
    struct deliver_lane *lane;
    struct deliver_conn *lane_next, *lane_prev;
    struct deliver_conn *all_next, *all_prev;
    struct route_target *targets;
    size_t ntargets, next_target;
    struct deliver_client_session *session;
    unsigned progress;       /* outcomes (not releases) in the current session */
    int last_vetoed;         /* the last failure was a veto */
    /* the vetoes among the failures of this connection's targets, and what
     * the last one said (vipmta_veto) */
    unsigned failures, vetoes_permanent;
    int veto_kind;
    unsigned veto_retry;
    char veto_reply[512];
    char veto_module[96];
    char source[DELIVER_ADDR_MAX];
    char destination[DELIVER_ADDR_MAX];
    char mx[256];
    char last_error[800];
    struct vipmta_config *cfg;                  /* held from start to end: the connection
                                                 * finishes on the config it started with */
    const struct config_domain_limits *limits;  /* the domain's, in cfg */
    /* TLS of the current session */
    enum config_tls_policy tls_policy;          /* of the domain or its route */
    int tls_clear_retry;                        /* opportunistic: this target again in clear */
    int tls_known;                              /* the session got as far as deciding */
    struct tls_info tls;                        /* tls.active 0: clear text */
    /* the outbound hooks */
    struct _host_record host;                   /* the target being tried */
    connection_handle handle;                   /* inc_/dec_outbound_connections */
};

/* The connections of one (domain, binding). */
struct deliver_lane {
    domain_record *dr;
    ec_binding_slot slot;
    struct deliver_conn *conns;
    unsigned vetoes;                /* vetoes in a row (0: not vetoed) */
    time_t veto_since, veto_logged; /* the first of them, and the last summary line */
    struct timeval throttled_until; /* check_outbound_conn_throttle: no new connection before */
    struct event *throttle_ev;      /* kicks the lane when that time comes */
    int throttled;                  /* a throttle episode is on (logged when it starts, ends) */
    struct deliver_lane *next;      /* hash chain */
    struct deliver_lane *wait_next; /* waiting for a connection under max_outbound_connections */
    unsigned waiting : 1;
};

static struct {
    int running;
    struct event_base *base;
    struct deliver_conn *all;
    unsigned open;                  /* connections (all states) */
    int saturated;                  /* max_outbound_connections reached (said once) */
    struct deliver_lane **lanes;
    size_t lane_buckets, lane_count;
    struct deliver_lane *wait_head, *wait_tail; /* lanes that wanted a connection, in order */
    struct event *resume_ev;        /* a connection was freed: serve the waiting lanes */
} d;

static void deliver_try_next(struct deliver_conn *c);

/* ---- lanes ---- */

static size_t deliver_lane_hash(const domain_record *dr, ec_binding_slot slot, size_t buckets)
{
    uint64_t x = (uint64_t)(uintptr_t)dr ^ ((uint64_t)(unsigned)slot * 0x9e3779b97f4a7c15ULL);
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)(x % buckets);
}

static struct deliver_lane *deliver_lane_get(domain_record *dr, ec_binding_slot slot)
{
    if (!d.lanes)
        return NULL;
    size_t b = deliver_lane_hash(dr, slot, d.lane_buckets);
    for (struct deliver_lane *l = d.lanes[b]; l; l = l->next)
        if (l->dr == dr && l->slot == slot)
            return l;
    if (d.lane_count >= d.lane_buckets * 2) {
        size_t nb = d.lane_buckets * 4;
        struct deliver_lane **grown = calloc(nb, sizeof(*grown));
        if (grown) {
            for (size_t i = 0; i < d.lane_buckets; i++) {
                while (d.lanes[i]) {
                    struct deliver_lane *l = d.lanes[i];
                    d.lanes[i] = l->next;
                    size_t h = deliver_lane_hash(l->dr, l->slot, nb);
                    l->next = grown[h];
                    grown[h] = l;
                }
            }
            free(d.lanes);
            d.lanes = grown;
            d.lane_buckets = nb;
            b = deliver_lane_hash(dr, slot, d.lane_buckets);
        }
    }
    struct deliver_lane *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->dr = dr;
    l->slot = slot;
    l->next = d.lanes[b];
    d.lanes[b] = l;
    d.lane_count++;
    return l;
}

static void deliver_lane_free(struct deliver_lane *l)
{
    if (l->throttle_ev)
        event_free(l->throttle_ev);
    free(l);
}

/* The queue forgets an idle domain record: its lanes go too (they have no
 * connection left; one may still wait for max_outbound_connections). */
static void deliver_forget_domain(domain_record *dr)
{
    int slots = vipmta_binding_count();
    for (int slot = 0; d.lanes && slot < slots; slot++) {
        struct deliver_lane **pp = &d.lanes[deliver_lane_hash(dr, slot, d.lane_buckets)];
        while (*pp && !((*pp)->dr == dr && (*pp)->slot == slot))
            pp = &(*pp)->next;
        struct deliver_lane *l = *pp;
        if (!l)
            continue;
        if (l->waiting) {
            struct deliver_lane **wp = &d.wait_head, *prev = NULL;
            while (*wp != l) {
                prev = *wp;
                wp = &(*wp)->wait_next;
            }
            *wp = l->wait_next;
            if (d.wait_tail == l)
                d.wait_tail = prev;
        }
        *pp = l->next;
        d.lane_count--;
        deliver_lane_free(l);
    }
}

static void deliver_lanes_free(void)
{
    for (size_t i = 0; d.lanes && i < d.lane_buckets; i++) {
        while (d.lanes[i]) {
            struct deliver_lane *l = d.lanes[i];
            d.lanes[i] = l->next;
            deliver_lane_free(l);
        }
    }
    free(d.lanes);
    d.lanes = NULL;
    d.lane_buckets = d.lane_count = 0;
    d.wait_head = d.wait_tail = NULL;
}

/* ---- max_outbound_connections ---- */

/* Non-zero when no connection may be opened now (said once per episode). */
static int deliver_saturated(void)
{
    const struct vipmta_config *cfg = config_current();
    unsigned cap = cfg && cfg->max_outbound_connections ? cfg->max_outbound_connections : 20000;
    if (d.open < cap) {
        if (d.saturated)
            log_write("delivery", VIPMTA_LOG_NOTICE, "outbound connections below "
                      "max_outbound_connections %u again", cap);
        d.saturated = 0;
        return 0;
    }
    if (!d.saturated)
        log_write("delivery", VIPMTA_LOG_WARNING, "max_outbound_connections %u reached: new "
                  "connections wait for open ones to close (raise it, or lower domain limits)",
                  cap);
    d.saturated = 1;
    return 1;
}

static void deliver_wait(struct deliver_lane *lane)
{
    if (lane->waiting)
        return;
    lane->waiting = 1;
    lane->wait_next = NULL;
    if (d.wait_tail)
        d.wait_tail->wait_next = lane;
    else
        d.wait_head = lane;
    d.wait_tail = lane;
}

/* Connections closed: the lanes that waited get theirs, first come first. */
static void deliver_on_resume(evutil_socket_t fd, short what, void *unused)
{
    (void)fd;
    (void)what;
    (void)unused;
    while (d.wait_head && d.running && !deliver_saturated()) {
        struct deliver_lane *lane = d.wait_head;
        d.wait_head = lane->wait_next;
        if (!d.wait_head)
            d.wait_tail = NULL;
        lane->waiting = 0;
        if (queue_has_ready(lane->dr, lane->slot))
            deliver_kick(lane->dr, lane->slot, NULL);
    }
}

/* ---- connection bookkeeping ---- */

static int deliver_slot_ok(const domain_record *dr, ec_binding_slot slot)
{
    return slot >= 0 && (size_t)slot < queue_domain_of(dr)->binding_slots;
}

static struct deliver_conn *deliver_conn_new(domain_record *dr, ec_binding_slot slot,
                                               struct deliver_lane *lane)
{
    struct deliver_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->dr = dr;
    c->slot = slot;
    c->lane = lane;
    c->lane_next = lane->conns;
    if (lane->conns)
        lane->conns->lane_prev = c;
    lane->conns = c;
    c->all_next = d.all;
    if (d.all)
        d.all->all_prev = c;
    d.all = c;
    d.open++;
    struct queue_domain *qd = queue_domain_of(dr);
    qd->connections++;
    qd->binding_connections[slot]++;
    /* the connection runs on the configuration in force now, to its end */
    c->cfg = config_hold();
    c->limits = c->cfg ? config_domain_limits(c->cfg, dr->domain) : NULL;
    control_stats_binding(slot)->open++;
    return c;
}

/* Takes c off the lists and the counters (it may live on, cancelled). */
static void deliver_conn_unlink(struct deliver_conn *c)
{
    if (!c->lane)
        return;
    if (c->lane_prev)
        c->lane_prev->lane_next = c->lane_next;
    else
        c->lane->conns = c->lane_next;
    if (c->lane_next)
        c->lane_next->lane_prev = c->lane_prev;
    if (c->all_prev)
        c->all_prev->all_next = c->all_next;
    else
        d.all = c->all_next;
    if (c->all_next)
        c->all_next->all_prev = c->all_prev;
    c->lane = NULL;
    d.open--;
    if (d.wait_head && d.resume_ev)
        event_active(d.resume_ev, EV_TIMEOUT, 0);
    struct queue_domain *qd = queue_domain_of(c->dr);
    qd->connections--;
    qd->binding_connections[c->slot]--;
    control_stats_binding(c->slot)->open--;
}

static void deliver_conn_free(struct deliver_conn *c)
{
    deliver_conn_unlink(c);
    config_release(c->cfg);
    free(c->targets);
    free(c);
}

static void deliver_ctx(const struct deliver_conn *c, struct deliver_log_ctx *ctx)
{
    ctx->domain = c->dr->domain;
    ctx->slot = c->slot;
    ctx->source = c->source[0] ? c->source : NULL;
    ctx->destination = c->destination[0] ? c->destination : NULL;
    ctx->mx = c->mx[0] ? c->mx : NULL;
    ctx->tls_known = c->tls_known;
    ctx->tls = c->tls_known && c->tls.active ? &c->tls : NULL;
}

/* Counts one recipient outcome for c's binding; remembers a failure's reply
 * as the domain's last error. */
static void deliver_count_outcome(struct deliver_conn *c, enum queue_outcome o, const char *reply)
{
    struct control_stats_binding *st = control_stats_binding(c->slot);
    switch (o) {
    case QUEUE_OUTCOME_DELIVERED:
        st->delivered++;
        return;
    case QUEUE_OUTCOME_BOUNCED:
        st->bounced++;
        break;
    case QUEUE_OUTCOME_DEFERRED:
        st->deferred++;
        break;
    case QUEUE_OUTCOME_DELETED:
        return;
    }
    if (reply)
        queue_domain_set_last_error(c->dr, reply);
}

/* The outcome the queue decided for r (told once, before r changes): one
 * delivery log line and the counters, so that both say the same. */
static void deliver_settled(const struct queue_rcpt *r, enum queue_outcome o, const char *reason,
                            void *arg)
{
    struct deliver_conn *c = arg;
    struct deliver_log_ctx ctx;
    deliver_ctx(c, &ctx);
    deliver_log_rcpt(&ctx, r, queue_outcome_name(o), reason);
    deliver_count_outcome(c, o, reason);
    /* the log hooks: told before the queue changes r, which stays the
     * queue's (a module moving its message marks it) */
    if (deliver_hooks_outcome_wanted())
        deliver_hooks_outcome((struct queue_rcpt *)(uintptr_t)r, o, reason);
}

/* Gives every ready recipient of (dr, slot) the outcome (no destination usable):
 * bounced when `failed`, else deferred (soon, when the last try was vetoed). */
static void deliver_settle_ready(struct deliver_conn *c, int failed, const char *reply)
{
    struct queue_rcpt *rs[DELIVER_CLIENT_MAX_RCPTS];
    size_t n, total = 0;

    while ((n = queue_take(c->dr, c->slot, rs, DELIVER_CLIENT_MAX_RCPTS)) > 0) {
        c->dr->attempts++;
        for (size_t i = 0; i < n; i++) {
            if (failed) {
                deliver_settled(rs[i], QUEUE_OUTCOME_BOUNCED, reply, c);
                queue_failed(rs[i], reply);
            } else if (c->last_vetoed) {
                queue_vetoed(rs[i], reply, deliver_settled, c);
            } else {
                queue_deferred(rs[i], reply, deliver_settled, c);
            }
        }
        total += n;
    }
    if (total)
        log_write("delivery", VIPMTA_LOG_INFO, "%s (binding %s): %zu recipients %s: %s",
                  c->dr->domain, config_get_binding_name_from_id(c->slot), total,
                  failed ? "failed" : "not delivered", reply);
}

/* ---- SMTP session callbacks ---- */

static size_t deliver_take(void *arg, struct queue_rcpt **out, size_t max)
{
    struct deliver_conn *c = arg;
    /* after a reload a connection finishes what it has, but takes no new
     * work: that goes out on a connection made under the new config */
    if (!d.running || c->cfg != config_current())
        return 0;
    size_t n = queue_take(c->dr, c->slot, out, max);
    if (n)
        c->dr->attempts++;
    return n;
}

static void deliver_outcome(void *arg, struct queue_rcpt *r, enum deliver_client_outcome o,
                             const char *reply)
{
    struct deliver_conn *c = arg;

    if (o == DELIVER_CLIENT_RELEASED) {
        queue_release(r);
        return;
    }
    c->progress++;
    switch (o) {
    case DELIVER_CLIENT_DELIVERED:
        deliver_settled(r, QUEUE_OUTCOME_DELIVERED, reply, c);
        queue_delivered(r, reply);
        break;
    case DELIVER_CLIENT_FAILED:
        deliver_settled(r, QUEUE_OUTCOME_BOUNCED, reply, c);
        queue_failed(r, reply);
        break;
    default:
        queue_deferred(r, reply, deliver_settled, c); /* the queue decides: deferred or bounced */
        break;
    }
}

static void deliver_session_done(void *arg, enum deliver_client_end end, const char *reason)
{
    struct deliver_conn *c = arg;
    c->session = NULL;

    if (end == DELIVER_CLIENT_END_TLS_FAILED && !c->tls_clear_retry &&
        c->tls_policy == CONFIG_TLS_POLICY_OPPORTUNISTIC && d.running && c->next_target > 0) {
        /* opportunistic: a host whose TLS is broken gets the mail in clear */
        log_write("delivery", VIPMTA_LOG_NOTICE, "%s (binding %s): %s; trying %s again without "
                  "TLS (tls \"opportunistic\")", c->dr->domain,
                  config_get_binding_name_from_id(c->slot), reason, c->destination);
        c->tls_clear_retry = 1;
        c->next_target--;
        deliver_try_next(c);
        return;
    }
    if (end == DELIVER_CLIENT_END_UNUSABLE || end == DELIVER_CLIENT_END_TLS_FAILED ||
        (end == DELIVER_CLIENT_END_LOST && c->progress == 0)) {
        struct deliver_log_ctx ctx;
        deliver_ctx(c, &ctx);
        deliver_log_conn(&ctx, "connect_failed", reason);
        log_write("delivery", VIPMTA_LOG_INFO, "%s (binding %s): %s", c->dr->domain,
                  config_get_binding_name_from_id(c->slot), reason);
        snprintf(c->last_error, sizeof(c->last_error), "%s", reason);
        c->last_vetoed = 0;
        c->failures++;
        if (d.running) {
            deliver_try_next(c);
            return;
        }
    } else if (end == DELIVER_CLIENT_END_LOST) {
        log_write("delivery", VIPMTA_LOG_INFO, "%s (binding %s): %s", c->dr->domain,
                  config_get_binding_name_from_id(c->slot), reason);
    }
    domain_record *dr = c->dr;
    ec_binding_slot slot = c->slot;
    deliver_conn_free(c);
    if (d.running && queue_has_ready(dr, slot))
        deliver_kick(dr, slot, NULL);
}

/* The public view of c's TLS state (strings point into c). */
static void deliver_tls_public(const struct deliver_conn *c, vipmta_tls_info *out)
{
    memset(out, 0, sizeof(*out));
    out->settled = c->tls_known;
    out->encrypted = c->tls_known && c->tls.active;
    out->version = out->encrypted ? c->tls.version : "";
    out->cipher = out->encrypted ? c->tls.cipher : "";
    out->cipher_bits = out->encrypted ? c->tls.bits : 0;
    out->verified = out->encrypted && c->tls.verified;
    out->resumed = out->encrypted && c->tls.resumed;
    out->verify_error = out->encrypted ? c->tls.verify_error : "";
    out->peer_name = c->mx;
    out->policy = config_tls_policy_name(c->tls_clear_retry ? CONFIG_TLS_POLICY_NONE : c->tls_policy);
}

static void deliver_tls_settled(void *arg, const struct tls_info *info)
{
    struct deliver_conn *c = arg;
    c->tls_known = 1;
    if (info)
        c->tls = *info;
    else
        memset(&c->tls, 0, sizeof(c->tls));
    tls_stats_connection(TLS_STATS_OUTBOUND, info);
    char desc[200];
    tls_info_describe(info, desc, sizeof(desc));
    log_write("delivery", VIPMTA_LOG_INFO, "%s (binding %s): %s %s: %s%s%s", c->dr->domain,
              config_get_binding_name_from_id(c->slot), c->mx, c->destination, desc,
              info && !info->verified && info->verify_error[0] ? ", not verified: " : "",
              info && !info->verified ? info->verify_error : "");
    if (has_vipmta_outbound_tls_hook() && c->session) {
        vipmta_tls_info pub;
        deliver_tls_public(c, &pub);
        call_vipmta_outbound_tls_hook(c->dr, c->slot, deliver_client_fd(c->session), &pub);
    }
}

/* The TCP connection is up (or could not be): the connection hooks. */
static void deliver_connected(void *arg, int error)
{
    struct deliver_conn *c = arg;
    const struct sockaddr *dst = (const struct sockaddr *)&c->host.target->addr;
    if (error) {
        deliver_hooks_connect_result(dst, deliver_hooks_conn_error(DELIVER_CONNECT_CONNECT_FAILED,
                                                                   error), c->dr, c->slot);
        return;
    }
    deliver_hooks_connect_result(dst, 0, c->dr, c->slot);
    deliver_hooks_connection(1, &c->handle);
}

/* The established connection ends (its socket still open). */
static void deliver_ending(void *arg)
{
    struct deliver_conn *c = arg;
    deliver_hooks_connection(0, &c->handle);
}

static const struct deliver_client_ops deliver_client_callbacks = {
    .take = deliver_take,
    .outcome = deliver_outcome,
    .done = deliver_session_done,
    .tls_settled = deliver_tls_settled,
    .connected = deliver_connected,
    .ending = deliver_ending,
};

/* ---- connecting ---- */

/* The binding's EHLO name in the connection's config, else its hostname. */
static const char *deliver_ehlo_name(const struct deliver_conn *c)
{
    const char *name = config_get_binding_name_from_id(c->slot);
    for (size_t i = 0; c->cfg && name && i < c->cfg->binding_count; i++)
        if (strcmp(c->cfg->bindings[i].name, name) == 0 && c->cfg->bindings[i].ehlo)
            return c->cfg->bindings[i].ehlo;
    return c->cfg && c->cfg->hostname ? c->cfg->hostname : "localhost";
}

/* Every destination was vetoed by a module: the lane's mail is held as it is
 * for veto_retry (queue_hold: no per-recipient work or log), and the veto is
 * logged once when it starts and then once a minute while it lasts. */
static void deliver_hold_vetoed(struct deliver_conn *c, const char *reply)
{
    struct deliver_lane *lane = c->lane;
    unsigned seconds = c->veto_retry                            ? c->veto_retry
                       : c->limits && c->limits->veto_retry ? c->limits->veto_retry
                                                            : DELIVER_VETO_RETRY;
    size_t waiting = queue_hold(c->dr, c->slot, seconds, reply, deliver_settled, c);
    time_t now = time(NULL);
    if (lane->vetoes++ == 0)
        lane->veto_since = now;
    if (lane->vetoes > 1 && now - lane->veto_logged < DELIVER_VETO_SUMMARY_SECONDS)
        return;
    lane->veto_logged = now;
    struct deliver_log_ctx ctx;
    deliver_ctx(c, &ctx);
    deliver_log_veto(&ctx, reply, lane->vetoes, waiting);
    log_write("delivery", VIPMTA_LOG_NOTICE, "%s (binding %s): %zu recipients wait, vetoed %u "
              "time(s) in %lld s, tried again every %u s: %s", c->dr->domain,
              config_get_binding_name_from_id(c->slot), waiting, lane->vetoes,
              (long long)(now - lane->veto_since), seconds, reply);
}

/* A connection got through: a veto of its lane is over. */
static void deliver_veto_over(struct deliver_conn *c)
{
    struct deliver_lane *lane = c->lane;
    if (!lane || !lane->vetoes)
        return;
    log_write("delivery", VIPMTA_LOG_NOTICE, "%s (binding %s): no longer vetoed (%u veto(es) in "
              "%lld s)", c->dr->domain, config_get_binding_name_from_id(c->slot), lane->vetoes,
              (long long)(time(NULL) - lane->veto_since));
    lane->vetoes = 0;
}

/* Every target failed, the last for a veto: what the vetoes said. Permanent
 * (every failure a permanent veto): the ready mail bounces with the module's
 * reply. Another binding (the last veto): mail from a group moves to another
 * binding of it. What is left waits (transient), for the module's
 * retry_after or the domain's veto_retry. */
static void deliver_vetoed(struct deliver_conn *c, const char *reply)
{
    const char *binding = config_get_binding_name_from_id(c->slot);
    if (c->vetoes_permanent && c->vetoes_permanent == c->failures) {
        char text[600];
        if (c->veto_reply[0] && c->veto_reply[0] == '5')
            snprintf(text, sizeof(text), "%s", c->veto_reply);
        else
            snprintf(text, sizeof(text), "550 5.7.1 vetoed by module %s", c->veto_module);
        log_write("delivery", VIPMTA_LOG_NOTICE, "%s (binding %s): vetoed permanently by module "
                  "\"%s\": the ready recipients bounce: %s", c->dr->domain, binding,
                  c->veto_module, c->last_error[0] ? c->last_error : text);
        deliver_settle_ready(c, 1, text);
        return;
    }
    if (c->veto_reply[0])
        reply = c->veto_reply;
    if (c->veto_kind == VIPMTA_VETO_OTHER_BINDING) {
        size_t rcpts = 0;
        size_t moved = queue_rebind_lane(c->dr, c->slot, &rcpts);
        control_stats_binding(c->slot)->moved_out += moved;
        log_write("delivery", VIPMTA_LOG_NOTICE, "%s (binding %s): module \"%s\" asked for another "
                  "binding: %zu messages (%zu recipients) moved%s", c->dr->domain, binding,
                  c->veto_module, moved, rcpts, queue_has_ready(c->dr, c->slot)
                  ? "; the others (pinned, or no other binding of their group usable) wait" : "");
        if (!queue_has_ready(c->dr, c->slot))
            return;
    }
    deliver_hold_vetoed(c, reply);
}

/* Every target failed: unless another connection of the lane is at work,
 * the ready mail is deferred (it stays queued). Frees c. */
static void deliver_all_failed(struct deliver_conn *c)
{
    int others = 0;
    for (struct deliver_conn *o = c->lane ? c->lane->conns : NULL; o; o = o->lane_next)
        if (o != c && o->state == CONN_SESSION)
            others = 1;
    if (!others && d.running) {
        char reply[1024];
        const char *why = c->last_error[0] ? c->last_error : "no destination";
        if (c->ntargets > 1)
            snprintf(reply, sizeof(reply), "451 %s all %zu destinations failed; last: %s",
                     c->last_vetoed ? "4.4.5" : "4.4.1", c->ntargets, why);
        else
            snprintf(reply, sizeof(reply), "451 %s %s", c->last_vetoed ? "4.4.5" : "4.4.1", why);
        c->source[0] = '\0';
        if (c->last_vetoed)
            deliver_vetoed(c, reply);
        else
            deliver_settle_ready(c, 0, reply);
    }
    deliver_conn_free(c);
}

/* veto_host_connection for the host c is about to try: 1 when a module
 * refused it (logged; it counts as a veto of the lane when every host is). */
static int deliver_host_vetoed(struct deliver_conn *c)
{
    const struct config_domain_limits *lim = c->limits;
    int max = lim && lim->max_connections_per_binding ? (int)lim->max_connections_per_binding
                                                      : DELIVER_DEFAULT_PER_BINDING;
    int cur = 0;
    for (struct deliver_conn *o = c->lane ? c->lane->conns : NULL; o; o = o->lane_next)
        if (o != c && o->state == CONN_SESSION && strcmp(o->destination, c->destination) == 0)
            cur++;
    const char *who = NULL;
    if (!deliver_hooks_veto_host(&c->host, c->dr, c->slot, max, cur, &who))
        return 0;
    log_write("delivery", VIPMTA_LOG_INFO, "%s (binding %s): host %s %s skipped by module \"%s\" "
              "(veto_host_connection)", c->dr->domain, config_get_binding_name_from_id(c->slot),
              c->mx, c->destination, who);
    snprintf(c->last_error, sizeof(c->last_error), "host %s %s refused by module \"%s\" "
             "(veto_host_connection)", c->mx, c->destination, who);
    queue_domain_set_last_error(c->dr, c->last_error);
    c->last_vetoed = 1;
    c->failures++;
    c->veto_kind = VIPMTA_VETO_TRANSIENT; /* a skipped host is no post-bind veto */
    c->veto_retry = 0;
    c->veto_reply[0] = '\0';
    snprintf(c->veto_module, sizeof(c->veto_module), "%s", who);
    return 1;
}

static void deliver_try_next(struct deliver_conn *c)
{
    const struct config_domain_limits *lim = c->limits;
    const struct config_route *route = c->cfg ? config_route_for(c->cfg, c->dr->domain) : NULL;
    char policy_source[300];
    if (route)
        snprintf(policy_source, sizeof(policy_source), "route \"%s\"", route->domain);
    else
        snprintf(policy_source, sizeof(policy_source), "domain %s", c->dr->domain);
    c->tls_policy = c->cfg ? config_tls_policy_for(c->cfg, c->dr->domain, route)
                           : CONFIG_TLS_POLICY_NONE;
    c->state = CONN_CONNECTING;
    while (c->next_target < c->ntargets && d.running) {
        const struct route_target *t = &c->targets[c->next_target++];
        struct deliver_connect_result res;
        c->source[0] = '\0';
        c->tls_known = 0;
        int clear_retry = c->tls_clear_retry;
        c->tls_clear_retry = 0;
        deliver_format_addr((const struct sockaddr *)&t->addr, c->destination,
                             sizeof(c->destination));
        snprintf(c->mx, sizeof(c->mx), "%s", t->host);
        c->host.target = t;
        if (has_core_veto_host_connection_hook() && deliver_host_vetoed(c))
            continue;
        int fd = deliver_connect(c->dr, c->slot, (const struct sockaddr *)&t->addr, t->addr_len,
                                  &res);
        int conn_error = fd < 0 ? deliver_hooks_conn_error(res.status, res.error) : 0;
        deliver_hooks_initiated(c->dr, c->slot, fd >= 0 ? fd : -conn_error);
        if (fd < 0) {
            deliver_hooks_connect_result((const struct sockaddr *)&t->addr, conn_error, c->dr,
                                         c->slot);
            struct deliver_log_ctx ctx;
            deliver_ctx(c, &ctx);
            int vetoed = res.status == DELIVER_CONNECT_VETOED;
            c->failures++;
            if (vetoed) {
                struct control_stats_binding *st = control_stats_binding(c->slot);
                st->connections++;
                st->vetoes++;
                st->vetoes_permanent += res.veto_kind == VIPMTA_VETO_PERMANENT;
                st->vetoes_other_binding += res.veto_kind == VIPMTA_VETO_OTHER_BINDING;
                control_stats_module_veto(res.veto_module);
                c->vetoes_permanent += res.veto_kind == VIPMTA_VETO_PERMANENT;
                c->veto_kind = res.veto_kind;
                c->veto_retry = res.veto_retry;
                snprintf(c->veto_reply, sizeof(c->veto_reply), "%s", res.veto_reply);
                snprintf(c->veto_module, sizeof(c->veto_module), "%s", res.veto_module);
            } else {
                control_stats_binding(c->slot)->connect_failures++;
            }
            queue_domain_set_last_error(c->dr, res.message);
            /* a veto is logged for the lane (deliver_hold_vetoed), not per try */
            if (!vetoed) {
                deliver_log_conn(&ctx, "connect_failed", res.message);
                log_write("delivery", VIPMTA_LOG_INFO, "%s: %s", c->dr->domain, res.message);
            }
            snprintf(c->last_error, sizeof(c->last_error), "%s", res.message);
            c->last_vetoed = vetoed;
            continue;
        }
        control_stats_binding(c->slot)->connections++;
        deliver_veto_over(c);
        struct sockaddr_storage local;
        socklen_t llen = sizeof(local);
        if (getsockname(fd, (struct sockaddr *)&local, &llen) == 0)
            deliver_format_addr((struct sockaddr *)&local, c->source, sizeof(c->source));
        struct deliver_client_params p = {
            .fd = fd,
            .ehlo_name = deliver_ehlo_name(c),
            .peer = c->destination,
            .connect_timeout = lim ? lim->connect_timeout : 0,
            .command_timeout = lim ? lim->command_timeout : 0,
            .data_timeout = lim ? lim->data_timeout : 0,
            .idle_timeout_ms = DELIVER_IDLE_MS,
            .max_messages = lim && lim->messages_per_connection ? lim->messages_per_connection
                                                                : DELIVER_DEFAULT_MESSAGES,
            .cfg = c->cfg,
            .tls_policy = clear_retry ? CONFIG_TLS_POLICY_NONE : (int)c->tls_policy,
            .tls_host = t->host,
            .policy_source = policy_source,
            .auth_user = route ? route->auth_user : NULL,
            .auth_password = route ? route->auth_password : NULL,
        };
        c->tls_clear_retry = clear_retry;
        c->progress = 0;
        c->handle = (connection_handle){
            .host = &c->host,
            .binding_slot = c->slot,
            .offset = (int)(c->next_target - 1),
            .conn = (connection *)c,
            .domain = c->dr,
            .fd = fd,
        };
        c->state = CONN_SESSION;
        c->session = deliver_client_start(d.base, &p, &deliver_client_callbacks, c);
        if (c->session)
            return;
        c->state = CONN_CONNECTING;
        snprintf(c->last_error, sizeof(c->last_error), "out of memory starting a session to %s",
                 c->destination);
        c->last_vetoed = 0;
        c->failures++;
    }
    deliver_all_failed(c);
}

static int deliver_count_hosts(const struct route_result *res)
{
    int n = 0;
    for (size_t i = 0; i < res->count; i++) {
        size_t j = 0;
        while (j < i && strcmp(res->targets[j].host, res->targets[i].host) != 0)
            j++;
        n += j == i;
    }
    return n;
}

static void deliver_on_route(void *arg, const struct route_result *res)
{
    struct deliver_conn *c = arg;
    if (c->state == CONN_CANCELLED || !d.running) {
        deliver_conn_free(c);
        return;
    }
    if (res->status == ROUTE_OK)
        c->dr->dns_failures = 0;
    else if (c->dr->dns_failures < UINT8_MAX)
        c->dr->dns_failures++;
    if (res->status == ROUTE_OK && res->count) {
        c->targets = malloc(res->count * sizeof(*c->targets));
        if (c->targets) {
            memcpy(c->targets, res->targets, res->count * sizeof(*c->targets));
            c->ntargets = res->count;
            c->dr->mxcnt = deliver_count_hosts(res);
            deliver_try_next(c);
            return;
        }
        snprintf(c->last_error, sizeof(c->last_error), "451 4.3.0 out of memory");
        deliver_all_failed(c);
        return;
    }
    const char *why = res->error[0] ? res->error : "451 4.4.3 no route";
    deliver_hooks_connect_result(NULL, strstr(why, "null MX") ? CONN_ERROR_SMTP_NULL_MX
                                                              : CONN_ERROR_MX_LOOKUP_FAILED,
                                 c->dr, c->slot);
    deliver_settle_ready(c, res->status == ROUTE_PERMFAIL, why);
    deliver_conn_free(c);
}

/* ---- public ---- */

int deliver_init(struct event_base *base, struct config_errors *errs)
{
    deliver_shutdown();
    d.base = base;
    d.lane_buckets = 256;
    d.lanes = calloc(d.lane_buckets, sizeof(*d.lanes));
    d.resume_ev = event_new(base, -1, 0, deliver_on_resume, NULL);
    if (!d.lanes || !d.resume_ev) {
        config_errors_add(errs, "delivery: out of memory");
        free(d.lanes);
        d.lanes = NULL;
        if (d.resume_ev)
            event_free(d.resume_ev);
        d.resume_ev = NULL;
        d.lane_buckets = 0;
        return -1;
    }
    queue_domain_set_forget_hook(deliver_forget_domain);
    d.running = 1;
    return 0;
}

static void deliver_on_throttle_end(evutil_socket_t fd, short what, void *arg)
{
    struct deliver_lane *lane = arg;
    (void)fd;
    (void)what;
    if (d.running && queue_has_ready(lane->dr, lane->slot))
        deliver_kick(lane->dr, lane->slot, NULL);
}

/* check_outbound_conn_throttle for a new connection of `lane`: non-zero
 * while a module holds its new connections (until the time it gave, 1 s
 * when it gave none or one past); logged when an episode starts and ends. */
static int deliver_throttled(struct deliver_lane *lane)
{
    struct timeval now, later = {0, 0};
    gettimeofday(&now, NULL);
    if (timercmp(&now, &lane->throttled_until, <))
        return 1;
    if (!call_core_check_outbound_conn_throttle_hook(lane->slot, lane->dr, &now, &later)) {
        if (lane->throttled)
            log_write("delivery", VIPMTA_LOG_NOTICE, "%s (binding %s): no longer throttled "
                      "(check_outbound_conn_throttle)", lane->dr->domain,
                      config_get_binding_name_from_id(lane->slot));
        lane->throttled = 0;
        return 0;
    }
    if (!timercmp(&later, &now, >)) {
        later = now;
        later.tv_sec += 1;
    }
    lane->throttled_until = later;
    if (!lane->throttle_ev)
        lane->throttle_ev = evtimer_new(d.base, deliver_on_throttle_end, lane);
    struct timeval wait;
    timersub(&later, &now, &wait);
    if (lane->throttle_ev)
        evtimer_add(lane->throttle_ev, &wait);
    if (!lane->throttled) {
        const char *who =
            plugin_hooks_last_stop_owner(&plugin_hook_core_check_outbound_conn_throttle);
        log_write("delivery", VIPMTA_LOG_NOTICE, "%s (binding %s): new connections throttled by "
                  "module \"%s\" for %ld.%03ld s (check_outbound_conn_throttle; logged again "
                  "when it ends)", lane->dr->domain, config_get_binding_name_from_id(lane->slot),
                  who, (long)wait.tv_sec, (long)(wait.tv_usec / 1000));
    }
    lane->throttled = 1;
    return 1;
}

void deliver_kick(domain_record *dr, ec_binding_slot slot, void *arg)
{
    (void)arg;
    /* a binding that cannot be used now makes no connection: its mail waits
     * (binding_table.h), never to leave from another address */
    if (!d.running || !dr || !deliver_slot_ok(dr, slot) || !binding_available(slot))
        return;
    struct deliver_lane *lane = deliver_lane_get(dr, slot);
    if (!lane) {
        log_write("delivery", VIPMTA_LOG_ERROR, "%s: out of memory", dr->domain);
        return;
    }
    /* idle connections first; those made under a config a reload replaced
     * are closed instead (their route and limits may be stale) */
    for (struct deliver_conn *c = lane->conns; c && queue_has_ready(dr, slot); c = c->lane_next) {
        if (c->state != CONN_SESSION || !c->session || !deliver_client_is_idle(c->session))
            continue;
        if (c->cfg == config_current())
            deliver_client_wake(c->session);
        else
            deliver_client_close_idle(c->session);
    }
    if (!queue_has_ready(dr, slot))
        return;

    struct queue_domain *qd = queue_domain_of(dr);
    const struct config_domain_limits *lim = qd->limits;
    unsigned per_binding = lim && lim->max_connections_per_binding
                               ? lim->max_connections_per_binding
                               : DELIVER_DEFAULT_PER_BINDING;
    unsigned total_cap = lim ? lim->max_connections : 0;
    unsigned want = (qd->ready + DELIVER_RCPTS_PER_CONN - 1) / DELIVER_RCPTS_PER_CONN;
    if (want < 1)
        want = 1;
    if (want > per_binding)
        want = per_binding;
    unsigned have = qd->binding_connections[slot];
    unsigned opens = want > have ? want - have : 0;

    for (unsigned i = 0; i < opens && d.running && queue_has_ready(dr, slot); i++) {
        if (qd->binding_connections[slot] >= per_binding ||
            (total_cap && qd->connections >= total_cap))
            break;
        if (deliver_saturated()) {
            deliver_wait(lane); /* served as connections close, in order */
            break;
        }
        if (has_core_check_outbound_conn_throttle_hook() && deliver_throttled(lane))
            break; /* kicked again when the module's time comes */
        struct deliver_conn *c = deliver_conn_new(dr, slot, lane);
        if (!c) {
            log_write("delivery", VIPMTA_LOG_ERROR, "%s: out of memory", dr->domain);
            return;
        }
        if (has_core_inc_outbound_conn_throttle_hook())
            call_core_inc_outbound_conn_throttle_hook(slot, dr);
        c->state = CONN_RESOLVING;
        route_resolve(dr->domain, deliver_on_route, c); /* may finish (and free c) at once */
    }
}

void deliver_shutdown(void)
{
    int was_running = d.running;
    d.running = 0;
    while (d.all) {
        struct deliver_conn *c = d.all;
        if (c->session) {
            struct deliver_client_session *s = c->session;
            c->session = NULL;
            deliver_client_abort(s); /* releases its recipients */
            deliver_conn_free(c);
        } else if (c->state == CONN_RESOLVING) {
            deliver_conn_unlink(c); /* freed when the route answers */
            c->state = CONN_CANCELLED;
        } else {
            deliver_conn_free(c);
        }
    }
    deliver_lanes_free();
    queue_domain_set_forget_hook(NULL);
    if (d.resume_ev)
        event_free(d.resume_ev);
    d.resume_ev = NULL;
    if (was_running)
        log_write("delivery", VIPMTA_LOG_INFO, "delivery stopped");
}

int vipmta_outbound_tls_info(int fd, vipmta_tls_info *out)
{
    for (struct deliver_conn *c = d.all; c && fd >= 0; c = c->all_next) {
        if (c->state == CONN_SESSION && c->session && deliver_client_fd(c->session) == fd) {
            deliver_tls_public(c, out);
            return 0;
        }
    }
    return -1;
}
