/* queue.h: the in-memory queue: per domain active/delayed recipients, scheduling and outcomes. */
#ifndef VIPMTA_QUEUE_H
#define VIPMTA_QUEUE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "config.h"
#include "domain_record.h"
#include "spool.h"

struct event_base;

/* One spooled message in memory (bodies stay on disk). */
struct queue_message {
    char id[SPOOL_ID_LEN + 1];
    char *sender;
    ec_binding_slot binding;      /* chosen binding */
    uint32_t rcpt_open;           /* recipients not yet final */
    uint64_t body_size;
    time_t received;
    unsigned is_dsn : 1;
    unsigned refs : 31;
};

/* One recipient of one message, queued on its domain record. */
struct queue_rcpt {
    struct queue_message *msg;
    domain_record *dr;
    char *address;
    struct queue_rcpt *next;      /* list link owned by the queue */
    time_t next_attempt;
    uint32_t index;               /* position in the envelope */
    uint16_t attempts;
    uint8_t in_flight;
};

/* Called when (dr, slot) has ready work and may want a connection. */
typedef void (*queue_ready_fn)(domain_record *dr, ec_binding_slot slot, void *arg);

int queue_init(struct event_base *base, const struct vipmta_config *cfg, queue_ready_fn ready,
               void *arg);
void queue_shutdown(void);

/* Takes ownership of `env` (a committed or recovered message): creates its
 * recipients on their domain records, active or delayed by next_attempt. */
void queue_add(struct spool_envelope *env);

/* Ready work for (dr, slot): up to `max` ready recipients of ONE message
 * (the oldest ready one), marked in flight. Returns the count (0: none). */
size_t queue_take(domain_record *dr, ec_binding_slot slot, struct queue_rcpt **out, size_t max);
/* Non-zero when (dr, slot) has ready work. */
int queue_has_ready(domain_record *dr, ec_binding_slot slot);

/* Outcomes for a taken recipient; `reply` is the remote text or our reason. */
void queue_delivered(struct queue_rcpt *r, const char *reply);
/* Retry later per dr->limits (bounce once max_queue_lifetime is over). */
void queue_deferred(struct queue_rcpt *r, const char *reply);
/* Bounce now: a DSN to the sender (none for the null sender or a DSN). */
void queue_failed(struct queue_rcpt *r, const char *reply);
/* Not attempted after all (connection lost before RCPT): back to ready, no attempt counted. */
void queue_release(struct queue_rcpt *r);
/* Every recipient of (dr, any binding) that is delayed becomes ready now. */
void queue_flush_domain(domain_record *dr);

struct queue_stats {
    uint64_t messages;
    uint64_t recipients;
    uint64_t active;
    uint64_t delayed;
    uint64_t in_flight;
};
void queue_get_stats(struct queue_stats *out);

#endif
