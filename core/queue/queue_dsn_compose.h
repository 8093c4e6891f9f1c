/* queue_dsn_compose.h: composes RFC 3464 delivery status notifications (bounces); pure, no I/O. */
#ifndef VIPMTA_CORE_QUEUE_DSN_COMPOSE_H
#define VIPMTA_CORE_QUEUE_DSN_COMPOSE_H

#include <stddef.h>
#include <time.h>

struct queue_dsn_recipient {
    const char *address;      /* the failed recipient */
    const char *status;       /* enhanced status, "5.1.1" (derived from the reply when absent) */
    const char *diagnostic;   /* "smtp; 550 5.1.1 no such user" or our own reason */
    const char *remote_mta;   /* MX host that answered, or NULL */
};

struct queue_dsn_request {
    const char *reporting_mta;       /* our hostname */
    const char *queue_id;            /* the original message's id */
    const char *original_sender;     /* the DSN goes to this address */
    time_t arrival;                  /* when we accepted the original */
    const struct queue_dsn_recipient *rcpts;
    size_t rcpt_count;
    const char *original_headers;    /* the original header section (may be NULL) */
    size_t original_headers_len;
    time_t now;                      /* the DSN's Date: (0: the current time) */
};

/* A complete message (header section + multipart/report body, CRLF line
 * ends, lines under 1000 octets) in a malloc'd, NUL-terminated buffer; *len
 * gets its size (without the NUL). NULL on out of memory. Text taken from
 * the request is sanitised: control characters (CR, LF, ...) never reach the
 * output, long diagnostics are folded and cut, original header lines over 998
 * octets are cut. Status: when absent or malformed it is derived from an
 * "smtp; NNN X.Y.Z" diagnostic, else "4.0.0"/"5.0.0" from the reply code,
 * else "5.0.0". */
char *queue_dsn_compose(const struct queue_dsn_request *req, size_t *len);

#endif
