/* queue.c: the in-memory queue: per (domain, binding) ready lists, the retry heap, outcomes. */
#include "queue_internal.h"
#include "config/config_current.h"
#include "binding/binding_table.h"
#include "queue_domain.h"
#include "log/log.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

/* Without limits (or an empty schedule) a deferral waits this long. */
#define QUEUE_DEFAULT_RETRY 300
#define QUEUE_VETO_RETRY 5

/* Ready recipients of one (domain, binding): a FIFO. */
struct queue_lane {
    struct queue_rcpt *head, *tail;
    uint32_t count;
    uint8_t kick; /* on the kick list */
};

/* A delayed recipient in the retry heap (time copied for cache-friendly compares). */
struct queue_heap_entry {
    time_t at;
    struct queue_rcpt *r;
};

struct queue_kick {
    struct queue_domain *qd;
    int slot;
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
    struct queue_kick *kicks;
    size_t kick_len, kick_cap;
    struct event *kick_ev;
    int kick_armed;
    /* recipients taken and not yet given an outcome */
    struct queue_rcpt *in_flight;
    struct queue_stats stats;
} q;


static struct queue_lane *queue_lane_get(struct queue_domain *qd, int slot)
{
    if (slot < 0)
        slot = 0;
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
    struct queue_kick *kicks = q.kicks;
    size_t n = q.kick_len;
    q.kicks = NULL;
    q.kick_len = q.kick_cap = 0;
    for (size_t i = 0; i < n; i++)
        kicks[i].qd->lanes[kicks[i].slot].kick = 0;
    for (size_t i = 0; i < n && q.running; i++) {
        struct queue_domain *qd = kicks[i].qd;
        if (qd->lanes[kicks[i].slot].count && q.ready)
            q.ready(&qd->record, kicks[i].slot, q.ready_arg);
    }
    free(kicks);
}

static void queue_kick(struct queue_domain *qd, int slot)
{
    struct queue_lane *lane = &qd->lanes[slot];
    if (lane->kick)
        return;
    if (q.kick_len == q.kick_cap) {
        size_t cap = q.kick_cap ? q.kick_cap * 2 : 64;
        struct queue_kick *k = realloc(q.kicks, cap * sizeof(*k));
        if (!k) {
            log_write("queue", VIPMTA_LOG_ERROR, "out of memory: %s not notified",
                      qd->record.domain);
            return;
        }
        q.kicks = k;
        q.kick_cap = cap;
    }
    q.kicks[q.kick_len].qd = qd;
    q.kicks[q.kick_len].slot = slot;
    q.kick_len++;
    lane->kick = 1;
    if (!q.kick_armed && q.kick_ev) {
        event_active(q.kick_ev, EV_TIMEOUT, 0);
        q.kick_armed = 1;
    }
}

/* ---- lanes ---- */

static struct queue_lane *queue_rcpt_lane(struct queue_rcpt *r, struct queue_domain **qd_out)
{
    struct queue_domain *qd = queue_domain_of(r->dr);
    struct queue_lane *lane = queue_lane_get(qd, r->msg->binding);
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
    queue_kick(qd, r->msg->binding < 0 ? 0 : r->msg->binding);
    return 0;
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
    if (!q.timer || !q.kick_ev) {
        if (q.timer)
            event_free(q.timer);
        if (q.kick_ev)
            event_free(q.kick_ev);
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
    free(q.kicks);
    event_free(q.timer);
    event_free(q.kick_ev);
    memset(&q, 0, sizeof(q));
}

/* ---- adding ---- */

static ec_binding_slot queue_choose_binding(const struct spool_envelope *env)
{
    if (env->binding && *env->binding) {
        ec_binding_slot slot = config_get_binding_id_from_name(env->binding);
        const vipmta_binding *b = vipmta_binding_by_slot(slot);
        if (b && !b->suspended)
            return slot;
    }
    if (env->binding_group && *env->binding_group) {
        ec_binding_slot slot = binding_group_choose(env->binding_group);
        if (slot != EC_BINDING_SLOT_UNBOUND)
            return slot;
    }
    return VIPMTA_BINDING_DEFAULT_SLOT;
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
    size_t slen = strlen(sender);
    struct queue_message *m = malloc(sizeof(*m) + slen + 1);
    if (!m) {
        log_write("queue", VIPMTA_LOG_ERROR, "%s: out of memory: stays in the spool until the "
                  "next start", env->id);
        spool_envelope_free(env);
        return;
    }
    memcpy(m->id, env->id, sizeof(m->id));
    m->sender = (char *)(m + 1);
    memcpy(m->sender, sender, slen + 1);
    m->binding = queue_choose_binding(env);
    m->rcpt_open = pending;
    m->body_size = env->body_size;
    m->received = env->received;
    m->is_dsn = env->is_dsn != 0;
    m->refs = 0;
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
    q.stats.active -= n;
    q.stats.in_flight += n;
    return n;
}

int queue_has_ready(domain_record *dr, ec_binding_slot slot)
{
    struct queue_domain *qd = queue_domain_of(dr);
    return dr && slot >= 0 && slot < qd->nlanes && qd->lanes[slot].count > 0;
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
    if (lim && lim->max_queue_lifetime && now - m->received > (time_t)lim->max_queue_lifetime) {
        char text[1024];
        snprintf(text, sizeof(text), "4.4.7 message expired after %lld days in the queue: %s",
                 (long long)((now - m->received) / 86400), reply ? reply : "");
        if (told)
            told(r, QUEUE_OUTCOME_BOUNCED, text, arg);
        queue_bounce(r, text);
        return QUEUE_OUTCOME_BOUNCED;
    }
    if (told)
        told(r, QUEUE_OUTCOME_DEFERRED, reply, arg);
    r->dr->transients++;
    queue_land(r);
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

void queue_get_stats(struct queue_stats *out)
{
    *out = q.stats;
}

/* ---- added for vipmtactl ---- */

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
                *link = r->next;
                r->next = NULL;
                lane->count--;
                qd->ready--;
                q.stats.active--;
                list[got++] = r;
            }
            lane->tail = last;
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
