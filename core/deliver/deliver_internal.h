/* deliver_internal.h: what the delivery files share: address formatting and the delivery log lines. */
#ifndef VIPMTA_CORE_DELIVER_INTERNAL_H
#define VIPMTA_CORE_DELIVER_INTERNAL_H

#include <stddef.h>
#include <sys/socket.h>
#include "vipmta_binding.h"

struct queue_rcpt;
struct tls_info;

/* Room for "[IPv6]:PORT" and a NUL. */
#define DELIVER_ADDR_MAX 64

/* "192.0.2.1" / "2001:db8::1". */
void deliver_format_ip(const struct sockaddr *sa, char *buf, size_t len);
/* "192.0.2.1:25" / "[2001:db8::1]:25". */
void deliver_format_addr(const struct sockaddr *sa, char *buf, size_t len);

/* Where an attempt went; NULL members are logged as null. */
struct deliver_log_ctx {
    const char *domain;
    ec_binding_slot slot;
    const char *source;      /* local address:port after connect */
    const char *destination; /* "ip:port" */
    const char *mx;          /* the exchanger's (or route host's) name */
    const struct tls_info *tls; /* the connection's TLS (NULL: clear text or not known) */
    int tls_known;           /* the connection got as far as deciding on TLS */
};

/* One delivery log line for recipient `r` ("delivered", "deferred", "bounced"). */
void deliver_log_rcpt(const struct deliver_log_ctx *ctx, const struct queue_rcpt *r,
                       const char *outcome, const char *reply);
/* A (domain, binding) vetoed by a module: one line when it starts and one a
 * minute while it lasts, with "vetoes" (since it started) and "waiting"
 * (recipients held): the mail it holds is not logged per recipient. */
void deliver_log_veto(const struct deliver_log_ctx *ctx, const char *reply, unsigned vetoes,
                      size_t waiting);
/* One line for a connection attempt that carried no recipient
 * ("connect_failed"): id and rcpt are null. */
void deliver_log_conn(const struct deliver_log_ctx *ctx, const char *outcome, const char *reply);

#endif
