/* queue_internal.h: what queue.c and queue_dsn.c share. */
#ifndef VIPMTA_CORE_QUEUE_INTERNAL_H
#define VIPMTA_CORE_QUEUE_INTERNAL_H

#include "queue.h"

/* Spools a DSN for recipient `rcpt` of `msg` that failed with `reply`, and
 * queues it once durable. Errors are logged (the bounce record stays). */
void queue_dsn_send(const struct queue_message *msg, const char *rcpt, const char *reply);

/* Headers of a spooled body read for a DSN: at most this much. */
#define QUEUE_DSN_HEADER_MAX (64 * 1024)

#endif
