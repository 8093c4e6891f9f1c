/* queue.h: the in-memory queue: per domain active/delayed recipients, scheduling and outcomes. */
#ifndef VIPMTA_CORE_QUEUE_H
#define VIPMTA_CORE_QUEUE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "config/config.h"
#include "domain_record.h"
#include "spool/spool.h"

struct event_base;

/* One spooled message in memory (bodies stay on disk). One allocation: the
 * sender, group and auth_user strings live right after the struct. */
struct queue_message {
    char id[SPOOL_ID_LEN + 1];
    char *sender;
    char *group;                  /* the binding group `binding` was chosen from (the mail
                                   * may move within it), NULL: pinned to `binding` */
    ec_binding_slot binding;      /* the binding its mail leaves from (or waits for) */
    uint32_t rcpt_open;           /* recipients not yet final (on disk) */
    uint64_t body_size;
    time_t received;
    unsigned is_dsn : 1;
    unsigned smtputf8 : 1;        /* received with SMTPUTF8: internationalized addresses */
    unsigned eightbit : 1;        /* 8-bit body: needs 8BITMIME at the next hop */
    unsigned refs : 26;           /* struct queue_rcpt alive for it (queued or in flight); the
                                   * message is freed at 0, and its files removed when
                                   * rcpt_open is 0 too */
    unsigned moving : 1;          /* its ready recipients are being moved to m->binding */
    unsigned op_delete : 1;       /* deleted by the operator while recipients were in
                                   * flight: they are dropped (no DSN) unless delivered */
    unsigned op_bounce : 1;       /* bounced by the operator while recipients were in
                                   * flight: they bounce when the attempt ends undelivered */
    char *auth_user;              /* the SMTP AUTH user it came from (delivery log), NULL: none;
                                   * in the same allocation, after the group */
    char *added_headers;          /* header fields modules added at acceptance (each ending
                                   * with CRLF), sent before the body; NULL: none; in the same
                                   * allocation, after auth_user */
    uint32_t added_headers_len;
};

/* One recipient of one message, queued on its domain record. One
 * allocation: the address lives right after the struct. */
struct queue_rcpt {
    struct queue_message *msg;
    domain_record *dr;
    char *address;
    struct queue_rcpt *next;      /* list link owned by the queue */
    time_t next_attempt;
    uint32_t index;               /* position in the envelope */
    uint16_t attempts;
    uint8_t in_flight;
    uint8_t retry_now;            /* being deferred, its message moved: ready again at once */
    struct queue_rcpt *prev;      /* in-flight list link owned by the queue */
};

/* Called when (dr, slot) has ready work and may want a connection. Always
 * from the event loop (a zero-timeout event), never from inside a queue_*
 * call, so it may call queue_take and the outcome functions freely. One call
 * per (dr, slot) per loop iteration however much work arrived; not repeated
 * while the work just sits there (poll queue_has_ready when a connection frees up). */
typedef void (*queue_ready_fn)(domain_record *dr, ec_binding_slot slot, void *arg);

/* Starts the queue on `base`; `ready` is told when work becomes ready. The
 * hostname for DSNs comes from the config in force. 0, or -1 on out of memory. */
int queue_init(struct event_base *base, queue_ready_fn ready, void *arg);
/* Frees everything in memory (recipients in flight too); spooled files stay. */
void queue_shutdown(void);
/* Takes ownership of `env` (a committed or recovered message): creates its
 * recipients on their domain records, active or delayed by next_attempt.
 * Only PENDING recipients are queued; the envelope is freed (nothing of it is
 * kept). A message with no pending recipient is removed from the spool.
 * Binding: env->binding when it can be used, else another of
 * env->binding_group when one can, else env->binding all the same: its mail
 * waits for it (a name no longer configured is added as an absent binding,
 * binding_table_add_absent). Never a binding the envelope does not name or
 * allow through its group. Recipients whose domain record cannot be
 * had (out of memory) are logged and not queued: their message then stays in
 * the spool until the next start. */
void queue_add(struct spool_envelope *env);

/* Ready work for (dr, slot): up to `max` ready recipients of ONE message
 * (the oldest ready one), marked in flight. Returns the count (0: none). */
size_t queue_take(domain_record *dr, ec_binding_slot slot, struct queue_rcpt **out, size_t max);
/* Non-zero when (dr, slot) has ready work. */
int queue_has_ready(domain_record *dr, ec_binding_slot slot);

/* What became of a recipient. The queue decides it once, where the outcome
 * is applied, and tells the caller (queue_outcome_fn), so that the delivery
 * log, the binding and domain counters and the metrics all agree. */
enum queue_outcome {
    QUEUE_OUTCOME_DELIVERED,
    QUEUE_OUTCOME_DEFERRED,
    QUEUE_OUTCOME_BOUNCED,   /* a 5xx, expiry (max_queue_lifetime), or the operator's bounce */
    QUEUE_OUTCOME_DELETED,   /* the operator deleted its message during the attempt */
};
/* "delivered", "deferred", "bounced", "deleted" (the delivery log's words). */
const char *queue_outcome_name(enum queue_outcome o);
/* Told the outcome decided for r, once, before r changes: `reason` is what
 * the sender's DSN will say for a bounce (for an expiry, "4.4.7 message
 * expired after N days in the queue: REPLY"), else the reply given. */
typedef void (*queue_outcome_fn)(const struct queue_rcpt *r, enum queue_outcome o,
                                 const char *reason, void *arg);

/* Outcomes for a taken recipient; `reply` is the remote text or our reason.
 * queue_delivered frees `r`; queue_failed frees it once the bounce is
 * durable; queue_deferred frees it when it expired, else keeps it (delayed);
 * queue_release keeps it (ready). Either way it belongs to the queue again:
 * only queue_take hands it out anew. */
void queue_delivered(struct queue_rcpt *r, const char *reply);
/* Retry later per dr->limits (bounce once max_queue_lifetime is over):
 * attempts++, next_attempt = now + retry_schedule[min(attempts, count) - 1]
 * (300 s without limits), a T record in ID.st. Past max_queue_lifetime since
 * the message arrived it bounces instead with "4.4.7 message expired after N
 * days in the queue: REPLY"; when the operator deleted or bounced the message
 * during the attempt, that is carried out. `told` (may be NULL) hears the
 * outcome; it is also returned. */
enum queue_outcome queue_deferred(struct queue_rcpt *r, const char *reply, queue_outcome_fn told,
                                  void *arg);
/* Like queue_deferred, for mail whose connection a post-bind module vetoed:
 * tried again after the domain's veto_retry, without advancing the retry
 * schedule (no remote was asked); still bounced after max_queue_lifetime. */
enum queue_outcome queue_vetoed(struct queue_rcpt *r, const char *reply, queue_outcome_fn told,
                                void *arg);
/* A veto: a module refused the connections for (dr, slot). Its ready mail
 * stays ready as it is (no attempt counted, no record written): no new
 * connection is made for it for `seconds`, then it is offered again. A
 * recipient past its domain's max_queue_lifetime is bounced ("4.4.7 message
 * expired after N days in the queue: REPLY"), told first like queue_deferred
 * tells. Returns how many recipients wait. */
size_t queue_hold(domain_record *dr, ec_binding_slot slot, unsigned seconds, const char *reply,
                  queue_outcome_fn told, void *arg);
/* Bounce now: a DSN to the sender (none for the null sender or a DSN). The
 * DSN is spooled as a new message (null sender, is_dsn, the original's
 * binding), and the recipient is final (its B record) only once the DSN is
 * durable; the DSN is queued after that. When the DSN cannot be spooled, the
 * recipient stays in the spool (not final) and the bounce is tried again
 * (docs/spool.md, "Bounces"). One DSN per failed recipient. */
void queue_failed(struct queue_rcpt *r, const char *reply);
/* Not attempted after all (connection lost before RCPT): back to ready, no attempt counted. */
void queue_release(struct queue_rcpt *r);
/* Every recipient of (dr, any binding) that is delayed becomes ready now. */
void queue_flush_domain(domain_record *dr);

/* Moves message m to binding `slot` (a module's choice: the log hooks'
 * ec_message_change_binding_slot): in its group when `in_group`, else
 * pinned to it. Its ready recipients go to that binding's lanes (kicked
 * when it can be used), the delayed ones follow when due, those in flight
 * when their attempt ends; `current` (NULL: none), a recipient in flight
 * being deferred (queue_deferred's `told`), is made ready there at once
 * instead of waiting. Recorded in the spool (an M record). */
void queue_move_message(struct queue_message *m, ec_binding_slot slot, int in_group,
                        struct queue_rcpt *current);
/* A post-bind veto asked for another binding: every message with ready
 * recipients in (dr, slot) whose binding came from a group gets another
 * binding of that group, `slot` excluded (binding_choose: the
 * binding_group_choose_binding hook, then the core's choice) and moves
 * there (recorded). Mail pinned to `slot`, or whose group has no other
 * binding that can be used now, stays. Returns how many messages moved;
 * *recipients (may be NULL) gets how many ready recipients of the lane
 * moved. */
size_t queue_rebind_lane(domain_record *dr, ec_binding_slot slot, size_t *recipients);
/* An ec_message for the delivery-side hooks: r's message seen through r;
 * vipmta_message_set_binding on it moves the message (queue_move_message,
 * r being `current` when it is in flight). Release with
 * plugin_message_release. */
struct _ec_message;
void queue_message_view(struct _ec_message *view, struct queue_rcpt *r);

/* The bindings changed (a reload, or their addresses were checked again):
 * mail waiting on a binding that cannot be used moves to another of its
 * group when one can be used now, and (domain, binding) pairs that can be
 * used and have ready mail are told (queue_ready_fn). */
void queue_bindings_changed(void);
/* Forgets the domain records that have been idle (no mail in any state, no
 * connection, no module data) since a sweep at least `idle_seconds` ago:
 * memory stays bounded by the domains in use, not every domain ever seen.
 * The queue runs it every minute with 10 minutes; tests call it. */
void queue_sweep_domains(time_t now, unsigned idle_seconds);
/* Recipients in memory per binding slot (ready, delayed and in flight), into
 * counts[0..n) (zeroed first). */
void queue_count_by_binding(uint64_t *counts, int n);

struct queue_stats {
    uint64_t messages;
    uint64_t recipients;
    uint64_t active;
    uint64_t delayed;
    uint64_t in_flight;        /* being delivered, or being bounced (the DSN not yet durable) */
    uint64_t bounces_waiting;  /* added: of those, bounces whose DSN could not be spooled, waiting
                                * to be tried again */
};
void queue_get_stats(struct queue_stats *out);

/* ---- for vipmtactl (the control socket); event loop only ---- */

/* Where a queued recipient is. */
enum queue_rcpt_where { QUEUE_RCPT_READY, QUEUE_RCPT_DELAYED, QUEUE_RCPT_IN_FLIGHT };
/* Calls fn for every recipient in memory (ready, delayed, in flight), in no
 * particular order. fn must not change the queue. */
void queue_foreach_rcpt(void (*fn)(const struct queue_rcpt *r, enum queue_rcpt_where where,
                                   void *arg),
                        void *arg);

/* What queue_delete_message / queue_bounce_message did. */
struct queue_op_result {
    size_t done;      /* recipients deleted / bounced now */
    size_t in_flight; /* recipients being delivered right now: left to the delivery engine
                       * and handled when their attempt ends (deleted / bounced unless it
                       * delivered them) */
};
/* Removes message `id` without delivery: its queued recipients are dropped
 * (no DSN) and, when none is in flight, its files are removed from the spool
 * (ID.env first, durable once the reaper has synced queue/). Recipients in
 * flight are never freed here: the message is marked, and each is dropped
 * when its attempt ends undelivered. Logged. 0, or -1 (errno ENOENT) when no
 * recipient of `id` is in the queue. */
int queue_delete_message(const char *id, struct queue_op_result *res);
/* Bounces every open recipient of message `id` now with QUEUE_OPERATOR_BOUNCE
 * as the reason (a DSN to the sender, as queue_failed does); recipients in
 * flight bounce when their attempt ends undelivered. Logged. 0, or -1 (errno
 * ENOENT) as above. */
#define QUEUE_OPERATOR_BOUNCE "5.0.0 bounced by the operator (vipmtactl queue bounce)"
int queue_bounce_message(const char *id, struct queue_op_result *res);
/* Like queue_flush_domain; returns how many delayed recipients became ready. */
size_t queue_flush_domain_count(domain_record *dr);

#endif
