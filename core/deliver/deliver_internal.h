/* deliver_internal.h: what the delivery files share: address formatting and the delivery log lines. */
#ifndef VIPMTA_CORE_DELIVER_INTERNAL_H
#define VIPMTA_CORE_DELIVER_INTERNAL_H

#include <stddef.h>
#include <sys/socket.h>
#include "vipmta_binding.h"
#include "vipmta_connection.h"

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

/* ---- deliver_hooks.c: the outbound hook family's calls ---- */

struct route_target;
enum queue_outcome;

/* One host a connection tries, as veto_host_connection and
 * connection_handle.host show it (host_record is opaque to modules). */
struct _host_record {
    const struct route_target *target;
};

/* CONN_ERROR_* bits for a connect-path failure (deliver_connect_status) or
 * a connect() errno (status DELIVER_CONNECT_CONNECT_FAILED). */
int deliver_hooks_conn_error(int status, int error);
/* veto_host_connection for `host` from (dr, slot): 1 to skip it, *module
 * naming the module that did. */
int deliver_hooks_veto_host(struct _host_record *host, domain_record *dr, ec_binding_slot slot,
                            int max_conns, int cur_conns, const char **module);
/* post_initiate_connection_smtp: `fd`, or -(CONN_ERROR_* bits). */
void deliver_hooks_initiated(domain_record *dr, ec_binding_slot slot, int fd_or_error);
/* log_client_connection_success / _failure (`err`: CONN_ERROR_* bits; addr may be NULL). */
void deliver_hooks_connect_result(const struct sockaddr *addr, int err, domain_record *dr,
                                  ec_binding_slot slot);
/* inc_outbound_connections (up) / dec_outbound_connections. */
void deliver_hooks_connection(int up, struct _connection_handle *h);
/* The log hook for a recipient's outcome (delivered, deferred, bounced),
 * with the message seen through it; told before the queue changes r, so a
 * module's move of the message (log_transient_failure_v1) takes r along. */
void deliver_hooks_outcome(struct queue_rcpt *r, enum queue_outcome o, const char *note);
/* Non-zero when a module registered a log hook for outcomes. */
int deliver_hooks_outcome_wanted(void);

#endif
