/* queue.c: the in-memory queue: per (domain, binding) ready lists, the retry heap, outcomes. */
#include "queue_internal.h"
#include "config/config_current.h"
#include "binding/binding_choose.h"
#include "binding/binding_table.h"
#include "plugin/plugin_hooks.h"
#include "plugin/plugin_message.h"
#include "queue_domain.h"
#include "log/log.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

/* A domain record with no mail and no connection is forgotten after this
 * long (its counters go with it); the sweep looks every QUEUE_SWEEP_SECONDS. */
#define QUEUE_DOMAIN_IDLE_SECONDS 600
#define QUEUE_SWEEP_SECONDS 60
/* Without limits (or an empty schedule) a deferral waits this long. */
#define QUEUE_DEFAULT_RETRY 300
#define QUEUE_VETO_RETRY 5

/* Ready recipients of one (domain, binding): a FIFO. */
struct queue_lane {
    struct queue_rcpt *head, *tail;
    uint32_t count;
    uint8_t kick;      /* on the kick list */
    uint8_t held;      /* on the hold list: no new connection until held_until */
    time_t held_until;
};

/* A lane named in a list: the kick list or the hold list. */
struct queue_lane_ref {
    struct queue_domain *qd;
    int slot;
};

/* A growable list of lanes. */
struct queue_lane_list {
    struct queue_lane_ref *refs;
    size_t len, cap;
};

/* A delayed recipient in the retry heap (time copied for cache-friendly compares). */
struct queue_heap_entry {
    time_t at;
    struct queue_rcpt *r;
};

static struct {
    int running;
    struct event_base *base;
    const struct vipmta_config *cfg;
    queue_ready_fn ready;
    void *ready_arg;
    /* delayed recipients, min-heap by next attempt */
    struct queue_heap_entry *heap;
    size_t heap_len, heap_cap;
    struct event *timer;
    time_t timer_at; /* what the timer is armed for; 0: not armed */
    /* lanes that gained ready work since the last kick event */
    struct queue_lane_list kicks;
    struct event *kick_ev;
    /* lanes held after a veto, and the timer for the earliest to end */
    struct queue_lane_list held;
    struct event *hold_ev;
    struct event *sweep_ev;   /* forgets domain records that stay idle */
    int kick_armed;
    /* recipients taken and not yet given an outcome */
    struct queue_rcpt *in_flight;
    struct queue_stats stats;
} q;


static struct queue_lane *queue_lane_get(struct queue_domain *qd, int slot)
{
    if (slot < 0)
        return NULL;
    if (slot >= qd->nlanes) {
        int n = vipmta_binding_count();
        if (n <= slot)
            n = slot + 1;
        struct queue_lane *lanes = realloc(qd->lanes, (size_t)n * sizeof(*lanes));
        if (!lanes)
            return NULL;
        memset(lanes + qd->nlanes, 0, (size_t)(n - qd->nlanes) * sizeof(*lanes));
        qd->lanes = lanes;
        qd->nlanes = n;
    }
    return &qd->lanes[slot];
}

/* ---- ready notifications ---- */

static void queue_on_kick(evutil_socket_t fd, short what, void *unused)
{
    (void)fd;
    (void)what;
    (void)unused;
    q.kick_armed = 0;
    /* take the batch: kicks added by the callbacks go to the next event */
    struct queue_lane_ref *kicks = q.kicks.refs;
    size_t n = q.kicks.len;
    q.kicks = (struct queue_lane_list){0};
    for (size_t i = 0; i < n; i++)
        kicks[i].qd->lanes[kicks[i].slot].kick = 0;
    for (size_t i = 0; i < n && q.running; i++) {
        struct queue_domain *qd = kicks[i].qd;
        if (qd->lanes[kicks[i].slot].count && q.ready)
            q.ready(&qd->record, kicks[i].slot, q.ready_arg);
    }
    free(kicks);
}

/* Appends lane (qd, slot) to `list`: 0, or -1 when out of memory. */
static int queue_lane_list_add(struct queue_lane_list *list, struct queue_domain *qd, int slot)
{
    if (list->len == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 64;
        struct queue_lane_ref *grown = realloc(list->refs, cap * sizeof(*grown));
        if (!grown)
            return -1;
        list->refs = grown;
        list->cap = cap;
    }
    list->refs[list->len].qd = qd;
    list->refs[list->len].slot = slot;
    list->len++;
    return 0;
}

static void queue_kick(struct queue_domain *qd, int slot)
{
    struct queue_lane *lane = &qd->lanes[slot];
    if (lane->kick || lane->held)
        return;
    if (queue_lane_list_add(&q.kicks, qd, slot) != 0) {
        log_write("queue", VIPMTA_LOG_ERROR, "out of memory: %s not notified", qd->record.domain);
        return;
    }
    lane->kick = 1;
    if (!q.kick_armed && q.kick_ev) {
        event_active(q.kick_ev, EV_TIMEOUT, 0);
        q.kick_armed = 1;
    }
}

/* ---- lanes ---- */

/* The binding r's message goes out from: its own, unless that cannot be
 * used now and it was given it from a group that has another binding that
 * can (then it moves to that one: the binding_group_choose_binding hook,
 * then the core's choice). Mail pinned to a binding (by a rule,
 * X-Binding, a module, or the default binding) keeps it and waits for it. */
static ec_binding_slot queue_message_binding(struct queue_rcpt *r)
{
    struct queue_message *m = r->msg;
    if (m->group && !binding_available(m->binding)) {
        ec_binding_slot slot;
        if (has_core_binding_group_choose_binding_hook()) {
            ec_message view;
            queue_message_view(&view, r);
            view.may_rebind = 0;
            slot = binding_choose(&view, m->group, m->binding, EC_BINDING_SLOT_UNBOUND);
            plugin_message_release(&view);
        } else {
            slot = binding_group_choose(m->group);
        }
        if (slot != EC_BINDING_SLOT_UNBOUND)
            m->binding = slot;
    }
    return m->binding;
}

static struct queue_lane *queue_rcpt_lane(struct queue_rcpt *r, struct queue_domain **qd_out)
{
    struct queue_domain *qd = queue_domain_of(r->dr);
    struct queue_lane *lane = queue_lane_get(qd, queue_message_binding(r));
    *qd_out = qd;
    return lane;
}

/* Makes r ready: at the tail (new work) or the head (released work). */
static int queue_make_ready(struct queue_rcpt *r, int at_head)
{
    struct queue_domain *qd;
    struct queue_lane *lane = queue_rcpt_lane(r, &qd);
    if (!lane)
        return -1;
    if (at_head) {
        r->next = lane->head;
        lane->head = r;
        if (!lane->tail)
            lane->tail = r;
    } else {
        r->next = NULL;
        if (lane->tail)
            lane->tail->next = r;
        else
            lane->head = r;
        lane->tail = r;
    }
    lane->count++;
    qd->ready++;
    q.stats.active++;
    if (binding_available(r->msg->binding))
        queue_kick(qd, r->msg->binding); /* else its mail waits: nothing to start */
    return 0;
}

/* ---- lanes held after a veto ---- */

/* Arms the hold timer for the earliest hold to end. */
static void queue_hold_arm(void)
{
    time_t first = 0;
    for (size_t i = 0; i < q.held.len; i++) {
        time_t t = q.held.refs[i].qd->lanes[q.held.refs[i].slot].held_until;
        if (!first || t < first)
            first = t;
    }
    if (!first || !q.hold_ev)
        return;
    time_t now = time(NULL);
    struct timeval tv = {first > now ? first - now : 0, 0};
    event_add(q.hold_ev, &tv);
}

static void queue_on_hold_end(evutil_socket_t fd, short what, void *unused)
{
    (void)fd;
    (void)what;
    (void)unused;
    time_t now = time(NULL);
    for (size_t i = 0; i < q.held.len;) {
        struct queue_domain *qd = q.held.refs[i].qd;
        int slot = q.held.refs[i].slot;
        struct queue_lane *lane = &qd->lanes[slot];
        if (lane->held_until > now) {
            i++;
            continue;
        }
        lane->held = 0;
        q.held.refs[i] = q.held.refs[--q.held.len];
        if (lane->count && binding_available(slot))
            queue_kick(qd, slot);
    }
    queue_hold_arm();
}

/* ---- forgetting idle domains ---- */

/* Non-zero when nothing refers to qd: no mail in any state, no connection, no
 * lane waiting for a kick or held by a veto, no module data. */
static int queue_domain_idle(const struct queue_domain *qd)
{
    if (qd->ready || qd->delayed || qd->inflight || qd->connections ||
        queue_domain_has_module_data(qd))
        return 0;
    for (int s = 0; s < qd->nlanes; s++)
        if (qd->lanes[s].count || qd->lanes[s].kick || qd->lanes[s].held)
            return 0;
    return 1;
}

void queue_sweep_domains(time_t now, unsigned idle_seconds)
{
    for (struct queue_domain *qd = queue_domain_all(), *next; qd; qd = next) {
        next = qd->all_next;
        if (!queue_domain_idle(qd)) {
            qd->record.expiry = 0;
            continue;
        }
        if (!qd->record.expiry) {
            qd->record.expiry = (uint64_t)(now + (time_t)idle_seconds);
            continue;
        }
        if ((uint64_t)now >= qd->record.expiry)
            queue_domain_forget(qd);
    }
}

static void queue_on_sweep(evutil_socket_t fd, short what, void *unused)
{
    (void)fd;
    (void)what;
    (void)unused;
    queue_sweep_domains(time(NULL), QUEUE_DOMAIN_IDLE_SECONDS);
}

/* ---- retry heap and timer ---- */

static void queue_heap_up(size_t i)
{
    struct queue_heap_entry e = q.heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (q.heap[parent].at <= e.at)
            break;
        q.heap[i] = q.heap[parent];
        i = parent;
    }
    q.heap[i] = e;
}

static void queue_heap_down(size_t i)
{
    struct queue_heap_entry e = q.heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= q.heap_len)
            break;
        if (c + 1 < q.heap_len && q.heap[c + 1].at < q.heap[c].at)
            c++;
        if (q.heap[c].at >= e.at)
            break;
        q.heap[i] = q.heap[c];
        i = c;
    }
    q.heap[i] = e;
}

/* Arms the timer for the earliest delayed recipient, if earlier than armed. */
static void queue_timer_arm(void)
{
    if (!q.heap_len || !q.timer)
        return;
    time_t at = q.heap[0].at;
    if (q.timer_at && q.timer_at <= at)
        return;
    struct timeval now, tv = {0, 0};
    gettimeofday(&now, NULL);
    if (at > now.tv_sec) {
        int64_t us = ((int64_t)at - now.tv_sec) * 1000000 - now.tv_usec;
        tv.tv_sec = (time_t)(us / 1000000);
        tv.tv_usec = (suseconds_t)(us % 1000000);
    }
    event_add(q.timer, &tv);
    q.timer_at = at;
}

static int queue_make_delayed(struct queue_rcpt *r)
{
    if (q.heap_len == q.heap_cap) {
        size_t cap = q.heap_cap ? q.heap_cap * 2 : 1024;
        struct queue_heap_entry *h = realloc(q.heap, cap * sizeof(*h));
        if (!h)
            return -1;
        q.heap = h;
        q.heap_cap = cap;
    }
    r->next = NULL;
    q.heap[q.heap_len].at = r->next_attempt;
    q.heap[q.heap_len].r = r;
    queue_heap_up(q.heap_len++);
    queue_domain_of(r->dr)->delayed++;
    q.stats.delayed++;
    queue_timer_arm();
    return 0;
}

/* A delayed recipient leaves the heap (already removed from it). */
static void queue_undelay(struct queue_rcpt *r)
{
    queue_domain_of(r->dr)->delayed--;
    q.stats.delayed--;
    if (queue_make_ready(r, 0) != 0) {
        /* out of memory for a lane: keep it delayed, retry in a minute */
        r->next_attempt = time(NULL) + 60;
        queue_make_delayed(r);
    }
}

static void queue_on_timer(evutil_socket_t fd, short what, void *unused)
{
    (void)fd;
    (void)what;
    (void)unused;
    q.timer_at = 0;
    time_t now = time(NULL);
    while (q.heap_len && q.heap[0].at <= now) {
        struct queue_rcpt *r = q.heap[0].r;
        q.heap[0] = q.heap[--q.heap_len];
        if (q.heap_len)
            queue_heap_down(0);
        queue_undelay(r);
    }
    queue_timer_arm();
}

/* ---- init / shutdown ---- */

int queue_init(struct event_base *base, queue_ready_fn ready, void *arg)
{
    if (q.running)
        queue_shutdown();
    memset(&q, 0, sizeof(q));
    q.base = base;
    q.ready = ready;
    q.ready_arg = arg;
    q.timer = evtimer_new(base, queue_on_timer, NULL);
    q.kick_ev = event_new(base, -1, 0, queue_on_kick, NULL);
    q.hold_ev = evtimer_new(base, queue_on_hold_end, NULL);
    q.sweep_ev = event_new(base, -1, EV_PERSIST, queue_on_sweep, NULL);
    struct timeval sweep_every = {QUEUE_SWEEP_SECONDS, 0};
    if (q.sweep_ev)
        event_add(q.sweep_ev, &sweep_every);
    if (!q.timer || !q.kick_ev || !q.hold_ev || !q.sweep_ev) {
        if (q.sweep_ev)
            event_free(q.sweep_ev);
        if (q.timer)
            event_free(q.timer);
        if (q.kick_ev)
            event_free(q.kick_ev);
        if (q.hold_ev)
            event_free(q.hold_ev);
        memset(&q, 0, sizeof(q));
        return -1;
    }
    if (queue_dsn_init(base) != 0) {
        event_free(q.timer);
        event_free(q.kick_ev);
        memset(&q, 0, sizeof(q));
        return -1;
    }
    q.running = 1;
    return 0;
}

/* Frees r's memory and drops its message when it was the last (no spool change). */
static void queue_rcpt_free(struct queue_rcpt *r)
{
    struct queue_message *m = r->msg;
    free(r);
    q.stats.recipients--;
    if (--m->refs == 0) {
        free(m);
        q.stats.messages--;
    }
}

/* Frees the ready recipients of a domain and its lanes (shutdown). */
static void queue_drop_lanes(struct queue_domain *qd, void *unused)
{
    (void)unused;
    for (int s = 0; s < qd->nlanes; s++) {
        struct queue_rcpt *r = qd->lanes[s].head;
        while (r) {
            struct queue_rcpt *next = r->next;
            qd->ready--;
            queue_rcpt_free(r);
            r = next;
        }
    }
    free(qd->lanes);
    qd->lanes = NULL;
    qd->nlanes = 0;
}

void queue_shutdown(void)
{
    if (!q.running)
        return;
    q.running = 0;
    queue_dsn_shutdown(); /* before the in-flight recipients its bounces hold are freed */
    queue_domain_foreach(queue_drop_lanes, NULL);
    for (size_t i = 0; i < q.heap_len; i++) {
        queue_domain_of(q.heap[i].r->dr)->delayed--;
        queue_rcpt_free(q.heap[i].r);
    }
    while (q.in_flight) {
        struct queue_rcpt *r = q.in_flight;
        q.in_flight = r->next;
        queue_rcpt_free(r);
    }
    free(q.heap);
    free(q.kicks.refs);
    free(q.held.refs);
    event_free(q.timer);
    event_free(q.kick_ev);
    event_free(q.hold_ev);
    event_free(q.sweep_ev);
    memset(&q, 0, sizeof(q));
}

/* ---- adding ---- */

/* The binding of a message being queued: the one its envelope names when it
 * can be used, else another of the group it was chosen from, else still the
 * one it names (its mail waits for it). A name the configuration no longer
 * has (a binding removed before a restart) becomes an absent binding: its
 * mail waits too, and never leaves from another address. */
static ec_binding_slot queue_choose_binding(const struct spool_envelope *env)
{
    const char *name = env->binding && *env->binding ? env->binding : "default";
    ec_binding_slot slot = config_get_binding_id_from_name(name);
    if (slot != EC_BINDING_SLOT_UNBOUND && binding_available(slot))
        return slot;
    if (env->binding_group && *env->binding_group) {
        ec_binding_slot other;
        if (has_core_binding_group_choose_binding_hook()) {
            /* a module chooses, seeing the message through a pending recipient */
            const char *rcpt = env->rcpts[0].address;
            for (size_t i = 0; i < env->rcpt_count; i++)
                if (env->rcpts[i].state == SPOOL_RCPT_PENDING) {
                    rcpt = env->rcpts[i].address;
                    break;
                }
            ec_message view;
            plugin_message_init_queued(&view, env->id, env->sender, rcpt, slot,
                                       env->binding_group, env->body_size, env->added_headers,
                                       env->added_headers_len);
            other = binding_choose(&view, env->binding_group, slot, EC_BINDING_SLOT_UNBOUND);
            plugin_message_release(&view);
        } else {
            other = binding_group_choose(env->binding_group);
        }
        if (other != EC_BINDING_SLOT_UNBOUND)
            return other;
    }
    if (slot != EC_BINDING_SLOT_UNBOUND)
        return slot;
    slot = binding_table_add_absent(name);
    if (slot != EC_BINDING_SLOT_UNBOUND)
        log_write("queue", VIPMTA_LOG_WARNING, "%s: binding \"%s\" is not in the configuration: "
                  "its mail waits for it (vipmtactl bindings lists it)", env->id, name);
    return slot;
}

void queue_add(struct spool_envelope *env)
{
    if (!env)
        return;
    if (!q.running) {
        log_write("queue", VIPMTA_LOG_WARNING, "%s: queue not running; stays in the spool",
                  env->id);
        spool_envelope_free(env);
        return;
    }
    uint32_t pending = 0;
    for (size_t i = 0; i < env->rcpt_count; i++)
        pending += env->rcpts[i].state == SPOOL_RCPT_PENDING;
    if (pending == 0) {
        spool_remove(env->id);
        spool_envelope_free(env);
        return;
    }
    const char *sender = env->sender ? env->sender : "";
    const char *group = env->binding_group && *env->binding_group ? env->binding_group : NULL;
    size_t slen = strlen(sender), glen = group ? strlen(group) + 1 : 0;
    size_t auth_len = env->auth_user ? strlen(env->auth_user) + 1 : 0;
    size_t hlen = env->added_headers ? env->added_headers_len : 0;
    ec_binding_slot binding = queue_choose_binding(env);
    struct queue_message *m = binding == EC_BINDING_SLOT_UNBOUND ? NULL
                              : malloc(sizeof(*m) + slen + 1 + glen + auth_len + hlen + 1);
    if (!m) {
        log_write("queue", VIPMTA_LOG_ERROR, "%s: out of memory: stays in the spool until the "
                  "next start", env->id);
        spool_envelope_free(env);
        return;
    }
    memcpy(m->id, env->id, sizeof(m->id));
    m->sender = (char *)(m + 1);
    memcpy(m->sender, sender, slen + 1);
    m->group = group ? memcpy(m->sender + slen + 1, group, glen) : NULL;
    m->auth_user = auth_len ? memcpy(m->sender + slen + 1 + glen, env->auth_user, auth_len) : NULL;
    m->added_headers = NULL;
    m->added_headers_len = (uint32_t)hlen;
    if (hlen) {
        m->added_headers = m->sender + slen + 1 + glen + auth_len;
        memcpy(m->added_headers, env->added_headers, hlen);
        m->added_headers[hlen] = '\0';
    }
    m->binding = binding;
    m->rcpt_open = pending;
    m->body_size = env->body_size;
    m->received = env->received;
    m->is_dsn = env->is_dsn != 0;
    m->smtputf8 = env->smtputf8 != 0;
    m->eightbit = env->eightbit != 0;
    m->refs = 0;
    m->moving = 0;
    m->op_delete = m->op_bounce = 0;
    q.stats.messages++;

    time_t now = time(NULL);
    const struct vipmta_config *cfg = config_current();
    const char *fallback = cfg && cfg->hostname ? cfg->hostname : "localhost";
    for (size_t i = 0; i < env->rcpt_count; i++) {
        const struct spool_rcpt *sr = &env->rcpts[i];
        if (sr->state != SPOOL_RCPT_PENDING)
            continue;
        if (!sr->address) {
            log_write("queue", VIPMTA_LOG_ERROR, "%s: recipient %zu has no address: stays in "
                      "the spool", env->id, i);
            continue;
        }
        const char *at = strrchr(sr->address, '@');
        domain_record *dr = queue_domain_get(at && at[1] ? at + 1 : fallback);
        size_t alen = strlen(sr->address);
        struct queue_rcpt *r = dr ? malloc(sizeof(*r) + alen + 1) : NULL;
        if (!r) {
            log_write("queue", VIPMTA_LOG_ERROR, "%s: recipient %zu: out of memory: stays in the "
                      "spool until the next start", env->id, i);
            continue;
        }
        r->msg = m;
        r->dr = dr;
        r->address = (char *)(r + 1);
        memcpy(r->address, sr->address, alen + 1);
        r->next = r->prev = NULL;
        r->next_attempt = sr->next_attempt;
        r->index = (uint32_t)i;
        r->attempts = sr->attempts > 0xffff ? 0xffff : (uint16_t)sr->attempts;
        r->in_flight = 0;
        r->retry_now = 0;
        m->refs++;
        q.stats.recipients++;
        int rc = r->next_attempt > now ? queue_make_delayed(r) : queue_make_ready(r, 0);
        if (rc != 0) {
            log_write("queue", VIPMTA_LOG_ERROR, "%s: recipient %zu: out of memory: stays in the "
                      "spool until the next start", env->id, i);
            free(r);
            q.stats.recipients--;
            m->refs--;
        }
    }
    if (m->refs == 0) {
        free(m);
        q.stats.messages--;
    }
    spool_envelope_free(env);
}

/* ---- taking and outcomes ---- */

/* Takes ready recipient *link (after `last`, NULL at the head) out of
 * `lane` of `qd`, with the counts; returns it, unlinked. */
static struct queue_rcpt *queue_lane_cut(struct queue_domain *qd, struct queue_lane *lane,
                                         struct queue_rcpt **link, struct queue_rcpt *last)
{
    struct queue_rcpt *r = *link;
    *link = r->next;
    if (!*link)
        lane->tail = last;
    lane->count--;
    qd->ready--;
    q.stats.active--;
    r->next = NULL;
    return r;
}

size_t queue_take(domain_record *dr, ec_binding_slot slot, struct queue_rcpt **out, size_t max)
{
    struct queue_domain *qd = queue_domain_of(dr);
    if (!dr || slot < 0 || slot >= qd->nlanes || max == 0)
        return 0;
    struct queue_lane *lane = &qd->lanes[slot];
    const struct queue_message *m = lane->head ? lane->head->msg : NULL;
    size_t n = 0;
    while (n < max && lane->head && lane->head->msg == m) {
        struct queue_rcpt *r = lane->head;
        lane->head = r->next;
        if (!lane->head)
            lane->tail = NULL;
        lane->count--;
        r->in_flight = 1;
        r->prev = NULL;
        r->next = q.in_flight;
        if (q.in_flight)
            q.in_flight->prev = r;
        q.in_flight = r;
        out[n++] = r;
    }
    qd->ready -= (uint32_t)n;
    qd->inflight += (uint32_t)n;
    q.stats.active -= n;
    q.stats.in_flight += n;
    return n;
}

int queue_has_ready(domain_record *dr, ec_binding_slot slot)
{
    struct queue_domain *qd = queue_domain_of(dr);
    return dr && slot >= 0 && slot < qd->nlanes && qd->lanes[slot].count > 0 &&
           !qd->lanes[slot].held;
}

/* Takes r off the in-flight list. */
static void queue_land(struct queue_rcpt *r)
{
    if (!r->in_flight)
        return;
    if (r->prev)
        r->prev->next = r->next;
    else
        q.in_flight = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->next = r->prev = NULL;
    r->in_flight = 0;
    queue_domain_of(r->dr)->inflight--;
    q.stats.in_flight--;
}

void queue_fly(struct queue_rcpt *r)
{
    if (r->in_flight)
        return;
    r->in_flight = 1;
    r->prev = NULL;
    r->next = q.in_flight;
    if (q.in_flight)
        q.in_flight->prev = r;
    q.in_flight = r;
    q.stats.in_flight++;
}

void queue_requeue(struct queue_rcpt *r, unsigned delay)
{
    queue_land(r);
    r->next_attempt = time(NULL) + (time_t)delay;
    if (queue_make_delayed(r) != 0 && queue_make_ready(r, 0) != 0)
        log_write("queue", VIPMTA_LOG_ERROR, "%s: recipient %u: out of memory: dropped "
                  "until the next start", r->msg->id, r->index);
}

void queue_count_waiting_bounce(int delta)
{
    q.stats.bounces_waiting += (uint64_t)(int64_t)delta;
}

unsigned queue_retry_delay(const struct queue_rcpt *r, unsigned tries)
{
    const struct config_domain_limits *lim = queue_domain_of(r->dr)->limits;
    if (!lim || !lim->retry_schedule || !lim->retry_count)
        return QUEUE_DEFAULT_RETRY;
    unsigned i = tries ? tries - 1u : 0;
    if (i >= lim->retry_count)
        i = lim->retry_count - 1;
    return lim->retry_schedule[i];
}

void queue_final(struct queue_rcpt *r)
{
    struct queue_message *m = r->msg;
    queue_land(r);
    m->rcpt_open--;
    if (m->refs == 1 && m->rcpt_open == 0)
        spool_remove(m->id);
    queue_rcpt_free(r);
}

void queue_delivered(struct queue_rcpt *r, const char *reply)
{
    (void)reply;
    gettimeofday(&r->dr->last_delivery, NULL);
    /* the last open recipient: removing the message records the outcome
     * (its removal is durable once the removal thread has synced queue/) */
    if (r->msg->refs == 1 && r->msg->rcpt_open == 1) {
        r->dr->deliveries++;
        queue_final(r);
        return;
    }
    if (spool_record_delivered(r->msg->id, r->index, NULL, NULL) != 0) {
        /* not recorded: the message must stay (a duplicate beats a loss) */
        log_write("queue", VIPMTA_LOG_ERROR, "%s: recipient %u: cannot record the delivery: %s",
                  r->msg->id, r->index, strerror(errno));
        r->msg->rcpt_open++; /* keeps the files */
    }
    r->dr->deliveries++;
    queue_final(r);
}

static void queue_bounce(struct queue_rcpt *r, const char *reply)
{
    struct queue_message *m = r->msg;
    r->dr->failures++;
    if (m->sender[0] && !m->is_dsn && !m->op_delete) {
        /* the DSN is durable before r is final (queue_dsn.c) */
        queue_dsn_bounce(r, reply ? reply : "5.0.0 delivery failed");
        return;
    }
    /* no DSN: losing the B record only means bouncing it again */
    if (spool_record_bounced(m->id, r->index, NULL, NULL) != 0) {
        log_write("queue", VIPMTA_LOG_ERROR, "%s: recipient %u: cannot record the bounce: %s",
                  m->id, r->index, strerror(errno));
        m->rcpt_open++;
    }
    queue_final(r);
}

void queue_failed(struct queue_rcpt *r, const char *reply)
{
    queue_bounce(r, reply);
}

void queue_drop(struct queue_rcpt *r)
{
    struct queue_message *m = r->msg;
    /* the last open recipient: removing the message is the record */
    if (!(m->refs == 1 && m->rcpt_open == 1) &&
        spool_record_bounced(m->id, r->index, NULL, NULL) != 0) {
        log_write("queue", VIPMTA_LOG_ERROR, "%s: recipient %u: cannot record the deletion: %s",
                  m->id, r->index, strerror(errno));
        m->rcpt_open++;
    }
    queue_final(r);
}

const char *queue_outcome_name(enum queue_outcome o)
{
    switch (o) {
    case QUEUE_OUTCOME_DELIVERED:
        return "delivered";
    case QUEUE_OUTCOME_DEFERRED:
        return "deferred";
    case QUEUE_OUTCOME_BOUNCED:
        return "bounced";
    case QUEUE_OUTCOME_DELETED:
        break;
    }
    return "deleted";
}

/* An attempt ended undelivered for a message the operator deleted or bounced
 * meanwhile: carries that out now (telling `told`) and returns the outcome
 * (r is consumed); -1 when there is nothing to carry out. */
static int queue_operator_pending(struct queue_rcpt *r, const char *reply, queue_outcome_fn told,
                                  void *arg)
{
    struct queue_message *m = r->msg;
    if (m->op_delete) {
        if (told)
            told(r, QUEUE_OUTCOME_DELETED, reply, arg);
        log_write("queue", VIPMTA_LOG_NOTICE, "%s: recipient <%s> dropped: the message was "
                  "deleted by the operator during the attempt", m->id, r->address);
        queue_drop(r);
        return QUEUE_OUTCOME_DELETED;
    }
    if (m->op_bounce) {
        if (told)
            told(r, QUEUE_OUTCOME_BOUNCED, QUEUE_OPERATOR_BOUNCE, arg);
        queue_bounce(r, QUEUE_OPERATOR_BOUNCE);
        return QUEUE_OUTCOME_BOUNCED;
    }
    return -1;
}

/* "4.4.7 message expired after N days in the queue: REPLY" when r's message
 * has been queued longer than its domain's max_queue_lifetime, else NULL. */
static const char *queue_expiry(const struct queue_rcpt *r, const char *reply, time_t now,
                                char *text, size_t size)
{
    const struct config_domain_limits *lim = queue_domain_of(r->dr)->limits;
    if (!lim || !lim->max_queue_lifetime ||
        now - r->msg->received <= (time_t)lim->max_queue_lifetime)
        return NULL;
    snprintf(text, size, "4.4.7 message expired after %lld days in the queue: %s",
             (long long)((now - r->msg->received) / 86400), reply ? reply : "");
    return text;
}

/* The one place a transient failure's outcome is decided: carried out by
 * the operator's pending delete or bounce, bounced when the message outlived
 * max_queue_lifetime, else deferred. */
static enum queue_outcome queue_defer(struct queue_rcpt *r, const char *reply, int vetoed,
                                      queue_outcome_fn told, void *arg)
{
    struct queue_message *m = r->msg;
    int op = queue_operator_pending(r, reply, told, arg);
    if (op >= 0)
        return (enum queue_outcome)op;
    const struct config_domain_limits *lim = queue_domain_of(r->dr)->limits;
    time_t now = time(NULL);
    char text[1024];
    const char *expired = queue_expiry(r, reply, now, text, sizeof(text));
    if (expired) {
        if (told)
            told(r, QUEUE_OUTCOME_BOUNCED, expired, arg);
        queue_bounce(r, expired);
        return QUEUE_OUTCOME_BOUNCED;
    }
    if (told)
        told(r, QUEUE_OUTCOME_DEFERRED, reply, arg);
    r->dr->transients++;
    queue_land(r);
    if (r->retry_now) {
        /* a module moved its message (log_transient_failure_v1): tried again
         * from the new binding right away */
        r->retry_now = 0;
        if (!vetoed && r->attempts < 0xffff)
            r->attempts++;
        r->next_attempt = now;
        if (!vetoed)
            spool_record_deferred(m->id, r->index, r->attempts, now);
        if (queue_make_ready(r, 0) == 0)
            return QUEUE_OUTCOME_DEFERRED;
    }
    unsigned delay;
    if (vetoed) {
        delay = lim && lim->veto_retry ? lim->veto_retry : QUEUE_VETO_RETRY;
    } else {
        if (r->attempts < 0xffff)
            r->attempts++;
        delay = queue_retry_delay(r, r->attempts);
    }
    r->next_attempt = now + (time_t)delay;
    /* a veto is not recorded: it would grow ID.st every few seconds, and
     * losing it only means a retry right after a restart */
    if (!vetoed && spool_record_deferred(m->id, r->index, r->attempts, r->next_attempt) != 0)
        log_write("queue", VIPMTA_LOG_WARNING, "%s: recipient %u: cannot record the deferral "
                  "(an earlier retry after a restart): %s", m->id, r->index, strerror(errno));
    if (queue_make_delayed(r) != 0) {
        log_write("queue", VIPMTA_LOG_ERROR, "%s: recipient %u: out of memory: retried now",
                  m->id, r->index);
        queue_make_ready(r, 0);
    }
    return QUEUE_OUTCOME_DEFERRED;
}

enum queue_outcome queue_deferred(struct queue_rcpt *r, const char *reply, queue_outcome_fn told,
                                  void *arg)
{
    return queue_defer(r, reply, 0, told, arg);
}

enum queue_outcome queue_vetoed(struct queue_rcpt *r, const char *reply, queue_outcome_fn told,
                                void *arg)
{
    return queue_defer(r, reply, 1, told, arg);
}

size_t queue_hold(domain_record *dr, ec_binding_slot slot, unsigned seconds, const char *reply,
                  queue_outcome_fn told, void *arg)
{
    struct queue_domain *qd = queue_domain_of(dr);
    if (!dr || slot < 0 || slot >= qd->nlanes)
        return 0;
    struct queue_lane *lane = &qd->lanes[slot];
    time_t now = time(NULL);
    char text[1024];
    size_t waiting = 0;
    /* recipients past max_queue_lifetime leave now, as a deferral would make them */
    for (struct queue_rcpt **link = &lane->head, *last = NULL; *link;) {
        struct queue_rcpt *r = *link;
        const char *why = queue_expiry(r, reply, now, text, sizeof(text));
        if (!why) {
            waiting++;
            last = r;
            link = &r->next;
            lane->tail = last;
            continue;
        }
        queue_lane_cut(qd, lane, link, last);
        if (told)
            told(r, QUEUE_OUTCOME_BOUNCED, why, arg);
        queue_bounce(r, why);
    }
    if (!lane->head)
        lane->tail = NULL;
    lane->held_until = now + (time_t)(seconds ? seconds : 1);
    if (!lane->held) {
        if (queue_lane_list_add(&q.held, qd, slot) != 0)
            return waiting; /* not held: tried again at the next kick */
        lane->held = 1;
    }
    dr->transients++;
    queue_hold_arm();
    return waiting;
}

void queue_release(struct queue_rcpt *r)
{
    if (queue_operator_pending(r, NULL, NULL, NULL) >= 0)
        return;
    queue_land(r);
    if (queue_make_ready(r, 1) != 0) {
        r->next_attempt = time(NULL) + 60;
        if (queue_make_delayed(r) != 0)
            log_write("queue", VIPMTA_LOG_ERROR, "%s: recipient %u: out of memory: dropped "
                      "until the next start", r->msg->id, r->index);
    }
}

void queue_flush_domain(domain_record *dr)
{
    size_t kept = 0, moved = 0;
    struct queue_rcpt **due = NULL;
    for (size_t i = 0; i < q.heap_len; i++)
        if (q.heap[i].r->dr == dr)
            moved++;
    if (!moved)
        return;
    due = malloc(moved * sizeof(*due));
    if (!due) {
        log_write("queue", VIPMTA_LOG_ERROR, "%s: out of memory: not flushed", dr->domain);
        return;
    }
    moved = 0;
    for (size_t i = 0; i < q.heap_len; i++) {
        if (q.heap[i].r->dr == dr)
            due[moved++] = q.heap[i].r;
        else
            q.heap[kept++] = q.heap[i];
    }
    q.heap_len = kept;
    for (size_t i = q.heap_len / 2; i-- > 0;)
        queue_heap_down(i);
    time_t now = time(NULL);
    for (size_t i = 0; i < moved; i++) {
        due[i]->next_attempt = now;
        queue_undelay(due[i]);
    }
    free(due);
}

/* ---- moving mail between bindings ---- */

/* Takes the ready recipients of the messages marked `moving` out of every
 * domain's lane of binding `from` and makes them ready again (in their
 * message's binding's lane now); clears the marks of those moved. Returns
 * how many recipients moved. */
static size_t queue_move_marked(ec_binding_slot from)
{
    size_t moved = 0;
    for (struct queue_domain *qd = queue_domain_all(); qd; qd = qd->all_next) {
        if (from < 0 || from >= qd->nlanes)
            continue;
        struct queue_lane *lane = &qd->lanes[from];
        struct queue_rcpt *take = NULL, **take_tail = &take;
        for (struct queue_rcpt **link = &lane->head, *last = NULL; *link;) {
            struct queue_rcpt *r = *link;
            if (!r->msg->moving || r->msg->binding == from) {
                last = r;
                link = &r->next;
                lane->tail = last;
                continue;
            }
            queue_lane_cut(qd, lane, link, last);
            *take_tail = r;
            take_tail = &r->next;
        }
        if (!lane->head)
            lane->tail = NULL;
        while (take) {
            struct queue_rcpt *r = take;
            take = r->next;
            if (queue_make_ready(r, 0) != 0) {
                r->next_attempt = time(NULL) + 60;
                queue_make_delayed(r);
            }
            moved++;
        }
    }
    return moved;
}

/* Gives m binding `slot` (pinned unless in_group) and records it. */
static void queue_set_binding(struct queue_message *m, ec_binding_slot slot, int in_group)
{
    m->binding = slot;
    if (!in_group)
        m->group = NULL;
    const char *name = config_get_binding_name_from_id(slot);
    if (spool_record_binding(m->id, name ? name : "default", m->group) != 0)
        log_write("queue", VIPMTA_LOG_WARNING, "%s: cannot record its move to binding %s (after "
                  "a restart it goes back to its old binding): %s", m->id, name ? name : "?",
                  strerror(errno));
}

void queue_move_message(struct queue_message *m, ec_binding_slot slot, int in_group,
                        struct queue_rcpt *current)
{
    ec_binding_slot from = m->binding;
    if (slot == from && (in_group || !m->group))
        return;
    queue_set_binding(m, slot, in_group);
    if (current && current->in_flight)
        current->retry_now = 1;
    if (slot == from)
        return;
    m->moving = 1;
    size_t n = queue_move_marked(from);
    m->moving = 0;
    const char *old = config_get_binding_name_from_id(from);
    const char *now = config_get_binding_name_from_id(slot);
    log_write("queue", VIPMTA_LOG_INFO, "%s: moved from binding %s to %s%s (%zu recipients ready "
              "now)", m->id, old ? old : "?", now ? now : "?", in_group ? "" : " (pinned)", n);
}

size_t queue_rebind_lane(domain_record *dr, ec_binding_slot slot, size_t *recipients)
{
    struct queue_domain *qd = queue_domain_of(dr);
    struct queue_message **moved = NULL;
    size_t messages = 0, cap = 0;
    if (recipients)
        *recipients = 0;
    if (!dr || slot < 0 || slot >= qd->nlanes)
        return 0;
    /* each message of the lane once: the first of its recipients shows it */
    for (struct queue_rcpt *r = qd->lanes[slot].head; r; r = r->next) {
        struct queue_message *m = r->msg;
        if (m->moving || m->binding != slot || !m->group)
            continue;
        if (messages == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct queue_message **g = realloc(moved, ncap * sizeof(*g));
            if (!g)
                break; /* the others stay (held) */
            moved = g;
            cap = ncap;
        }
        ec_message view;
        queue_message_view(&view, r);
        view.may_rebind = 0;
        ec_binding_slot to = binding_choose(&view, m->group, slot, EC_BINDING_SLOT_UNBOUND);
        plugin_message_release(&view);
        if (to == EC_BINDING_SLOT_UNBOUND || to == slot)
            continue;
        queue_set_binding(m, to, 1);
        m->moving = 1;
        moved[messages++] = m;
    }
    size_t n = messages ? queue_move_marked(slot) : 0;
    for (size_t i = 0; i < messages; i++)
        moved[i]->moving = 0;
    free(moved);
    if (recipients)
        *recipients = n;
    return messages;
}

/* vipmta_message_set_binding on a delivery-side view: the message moves. */
static int queue_view_rebind(ec_message *view, ec_binding_slot slot, const char *group)
{
    struct queue_rcpt *r = view->owner;
    queue_move_message(r->msg, slot, group != NULL, r);
    return 0;
}

void queue_message_view(ec_message *view, struct queue_rcpt *r)
{
    const struct queue_message *m = r->msg;
    plugin_message_init_queued(view, m->id, m->sender, r->address, m->binding, m->group,
                               m->body_size, m->added_headers, m->added_headers_len);
    view->owner = r;
    view->rebind = queue_view_rebind;
    view->may_rebind = 1;
}

void queue_bindings_changed(void)
{
    for (struct queue_domain *qd = queue_domain_all(); qd; qd = qd->all_next) {
        for (int slot = 0; slot < qd->nlanes; slot++) {
            struct queue_lane *lane = &qd->lanes[slot];
            if (!lane->count)
                continue;
            if (binding_available(slot)) {
                queue_kick(qd, slot);
                continue;
            }
            /* take the lane's recipients out; each goes back where its
             * message now goes (another binding of its group, or here) */
            struct queue_rcpt *r = lane->head;
            lane->head = lane->tail = NULL;
            qd->ready -= lane->count;
            q.stats.active -= lane->count;
            lane->count = 0;
            while (r) {
                struct queue_rcpt *next = r->next;
                if (queue_make_ready(r, 0) != 0) {
                    r->next_attempt = time(NULL) + 60;
                    queue_make_delayed(r);
                }
                r = next;
            }
        }
    }
}

struct queue_binding_counts {
    uint64_t *counts;
    int n;
};

/* Counts r under its message's binding. */
static void queue_count_rcpt(const struct queue_rcpt *r, enum queue_rcpt_where where, void *arg)
{
    struct queue_binding_counts *c = arg;
    (void)where;
    if (r->msg->binding >= 0 && r->msg->binding < c->n)
        c->counts[r->msg->binding]++;
}

void queue_count_by_binding(uint64_t *counts, int n)
{
    struct queue_binding_counts c = {counts, n};
    memset(counts, 0, (size_t)n * sizeof(*counts));
    queue_foreach_rcpt(queue_count_rcpt, &c);
}

void queue_get_stats(struct queue_stats *out)
{
    *out = q.stats;
}

/* ---- for vipmtactl ---- */

void queue_foreach_rcpt(void (*fn)(const struct queue_rcpt *r, enum queue_rcpt_where where,
                                   void *arg),
                        void *arg)
{
    for (struct queue_domain *qd = queue_domain_all(); qd; qd = qd->all_next)
        for (int s = 0; s < qd->nlanes; s++)
            for (struct queue_rcpt *r = qd->lanes[s].head; r; r = r->next)
                fn(r, QUEUE_RCPT_READY, arg);
    for (size_t i = 0; i < q.heap_len; i++)
        fn(q.heap[i].r, QUEUE_RCPT_DELAYED, arg);
    for (struct queue_rcpt *r = q.in_flight; r; r = r->next)
        fn(r, QUEUE_RCPT_IN_FLIGHT, arg);
}

/* Counts r when it belongs to message `id`, remembering the message. */
static void queue_match(struct queue_rcpt *r, const char *id, size_t *count,
                        struct queue_message **msg)
{
    if (strcmp(r->msg->id, id) == 0) {
        (*count)++;
        *msg = r->msg;
    }
}

/* Takes every queued (ready or delayed, not in flight) recipient of message
 * `id` out of the lanes and the heap into a new array (*out, res->done of
 * them); counts the ones in flight (res->in_flight). The message, or NULL
 * with errno (ENOENT: no such message; ENOMEM: nothing changed). */
static struct queue_message *queue_detach_message(const char *id, struct queue_rcpt ***out,
                                                  struct queue_op_result *res)
{
    size_t queued = 0, flying = 0;
    struct queue_message *msg = NULL;
    for (struct queue_domain *qd = queue_domain_all(); qd; qd = qd->all_next)
        for (int s = 0; s < qd->nlanes; s++)
            for (struct queue_rcpt *r = qd->lanes[s].head; r; r = r->next)
                queue_match(r, id, &queued, &msg);
    for (size_t i = 0; i < q.heap_len; i++)
        queue_match(q.heap[i].r, id, &queued, &msg);
    for (struct queue_rcpt *r = q.in_flight; r; r = r->next)
        queue_match(r, id, &flying, &msg);
    *out = NULL;
    memset(res, 0, sizeof(*res));
    res->in_flight = flying;
    if (!msg) {
        errno = ENOENT;
        return NULL;
    }
    if (!queued)
        return msg;
    struct queue_rcpt **list = malloc(queued * sizeof(*list));
    if (!list) {
        errno = ENOMEM;
        return NULL;
    }
    size_t got = 0;
    for (struct queue_domain *qd = queue_domain_all(); qd; qd = qd->all_next) {
        for (int s = 0; s < qd->nlanes; s++) {
            struct queue_lane *lane = &qd->lanes[s];
            struct queue_rcpt **link = &lane->head, *last = NULL;
            while (*link) {
                struct queue_rcpt *r = *link;
                if (strcmp(r->msg->id, id) != 0) {
                    last = r;
                    link = &r->next;
                    continue;
                }
                list[got++] = queue_lane_cut(qd, lane, link, last);
            }
        }
    }
    size_t kept = 0, before = q.heap_len;
    for (size_t i = 0; i < q.heap_len; i++) {
        struct queue_rcpt *r = q.heap[i].r;
        if (strcmp(r->msg->id, id) == 0) {
            queue_domain_of(r->dr)->delayed--;
            q.stats.delayed--;
            list[got++] = r;
        } else {
            q.heap[kept++] = q.heap[i];
        }
    }
    q.heap_len = kept;
    if (kept != before)
        for (size_t i = q.heap_len / 2; i-- > 0;)
            queue_heap_down(i);
    *out = list;
    res->done = got;
    return msg;
}

int queue_delete_message(const char *id, struct queue_op_result *res)
{
    struct queue_rcpt **list;
    struct queue_message *m = queue_detach_message(id, &list, res);
    if (!m)
        return -1;
    size_t n = res->done, flying = res->in_flight;
    if (flying) {
        /* the delivery engine holds some: never free those; drop the rest
         * (final on disk) and the others when their attempt ends */
        m->op_delete = 1;
        for (size_t i = 0; i < n; i++)
            queue_drop(list[i]);
        log_write("queue", VIPMTA_LOG_NOTICE, "%s: deleted by the operator: %zu recipients "
                  "dropped, %zu in flight (dropped when their attempt ends undelivered)",
                  id, n, flying);
    } else {
        char mid[SPOOL_ID_LEN + 1];
        memcpy(mid, m->id, sizeof(mid));
        if (spool_remove(mid) != 0) {
            /* cannot hand it to the reaper: make every recipient final
             * instead, so recovery removes the message */
            log_write("queue", VIPMTA_LOG_ERROR, "%s: cannot remove it from the spool (%s): "
                      "its recipients are recorded as final instead", mid, strerror(errno));
            for (size_t i = 0; i < n; i++)
                spool_record_bounced(mid, list[i]->index, NULL, NULL);
        }
        m->rcpt_open = 0;
        for (size_t i = 0; i < n; i++)
            queue_rcpt_free(list[i]); /* the last one frees m */
        log_write("queue", VIPMTA_LOG_NOTICE, "%s: deleted by the operator: %zu recipients "
                  "dropped, removed from the spool", mid, n);
    }
    free(list);
    return 0;
}

int queue_bounce_message(const char *id, struct queue_op_result *res)
{
    struct queue_rcpt **list;
    struct queue_message *m = queue_detach_message(id, &list, res);
    if (!m)
        return -1;
    size_t n = res->done;
    log_write("queue", VIPMTA_LOG_NOTICE, "%s: bounced by the operator: %zu recipients now, "
              "%zu in flight (bounced when their attempt ends undelivered)", id, n,
              res->in_flight);
    if (res->in_flight)
        m->op_bounce = 1;
    for (size_t i = 0; i < n; i++)
        queue_bounce(list[i], QUEUE_OPERATOR_BOUNCE);
    free(list);
    return 0;
}

size_t queue_flush_domain_count(domain_record *dr)
{
    uint32_t before = queue_domain_of(dr)->delayed;
    queue_flush_domain(dr);
    uint32_t after = queue_domain_of(dr)->delayed;
    return before > after ? before - after : 0;
}
