/* queue_internal.h: what queue.c and queue_dsn.c share. */
#ifndef VIPMTA_CORE_QUEUE_INTERNAL_H
#define VIPMTA_CORE_QUEUE_INTERNAL_H

#include "queue.h"

struct event_base;

/* ---- queue.c, for the bounce path ---- */

/* r is final on disk (its D/B record written, or its message about to be
 * removed): off the in-flight list and freed; its message's files are
 * removed when it was the last open recipient. */
void queue_final(struct queue_rcpt *r);
/* Drops r without delivery or DSN (the operator deleted its message): a B
 * record, then queue_final. */
void queue_drop(struct queue_rcpt *r);
/* Puts r (in no lane and not in the retry heap) on the in-flight list. */
void queue_fly(struct queue_rcpt *r);
/* Takes r off the in-flight list and queues it again `delay` seconds from now. */
void queue_requeue(struct queue_rcpt *r, unsigned delay);
/* Seconds to wait after try number `tries` (1, 2...) per the retry schedule
 * of r's domain (300 s without limits). */
unsigned queue_retry_delay(const struct queue_rcpt *r, unsigned tries);
/* Counts bounces waiting to be tried again (queue_stats.bounces_waiting). */
void queue_count_waiting_bounce(int delta);

/* ---- queue_dsn.c: bounces ---- */

/* Starts / stops the bounce path on the queue's loop. Stopping frees the
 * bounces waiting to be tried again; a bounce whose spool step is still
 * pending is cut loose from its recipient (freed by the queue) and ends
 * when the spool calls back. 0, or -1 on out of memory. */
int queue_dsn_init(struct event_base *base);
void queue_dsn_shutdown(void);
/* Bounces r (taken or detached; put in flight) with `reply` as the reason:
 * 1. spools the DSN's body and records "F IDX DSNID" in the original's
 *    ID.st (durable), 2. commits the DSN (durable), 3. records "B IDX"
 *    (durable), then queues the DSN and makes r final. When a step fails,
 *    r stays in flight and the bounce is tried again after the domain's
 *    retry schedule (docs/spool.md, "Bounces"). */
void queue_dsn_bounce(struct queue_rcpt *r, const char *reply);

/* Headers of a spooled body read for a DSN: at most this much. */
#define QUEUE_DSN_HEADER_MAX (64 * 1024)

#endif
