/* domain_record.h: the public per-destination-domain record handed to outbound hooks. */
#ifndef VIPMTA_DOMAIN_RECORD_H
#define VIPMTA_DOMAIN_RECORD_H

#include <stdint.h>
#include "vipmta_binding.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Per-domain delivery limits, from the `domains` config ("*" gives defaults). */
struct vipmta_domain_limits {
    unsigned max_connections_per_binding; /* open outbound connections per binding (32) */
    unsigned max_connections;             /* open outbound connections in total (0 = no cap) */
    unsigned messages_per_connection;     /* messages sent on one connection before QUIT (100) */
    unsigned connect_timeout;             /* seconds to establish TCP and get the greeting (60) */
    unsigned command_timeout;             /* seconds per SMTP command reply (300) */
    unsigned data_timeout;                /* seconds for the reply to the final dot (600) */
    const unsigned *retry_schedule;       /* seconds between attempts; the last repeats */
    unsigned retry_count;                 /* entries in retry_schedule */
    unsigned max_queue_lifetime;          /* seconds before a deferred recipient bounces (5 days) */
    unsigned veto_retry;                  /* seconds before mail is tried again after a
                                           * post-bind veto (5); vetoes do not advance the
                                           * retry schedule */
};

/* One record per destination domain known to the queue. Names follow
 * Momentum's struct _domain_record, so ported module code compiles.
 * Layout rule: this struct only grows at the end. */
typedef struct _domain_record {
    char *domain;             /* lower-case domain name; always the first member */
    uint32_t deliveries;      /* recipients delivered (2xx) */
    uint32_t attempts;        /* delivery attempts made */
    uint32_t transients;      /* attempts ending in a transient failure (4xx, connect, veto) */
    uint32_t failures;        /* recipients failed permanently (5xx, expiry) */
    int mxcnt;                /* exchangers in the current route */

    uint32_t active_count;    /* recipients ready to be attempted now */
    uint32_t delayed_count;   /* recipients waiting for their next-attempt time */
    uint32_t connections;     /* outbound connections open now, all bindings */
    uint32_t *binding_connections;   /* per binding slot, vipmta_binding_count() entries */
    const struct vipmta_domain_limits *limits;
    void **module_data;       /* per-module private pointers: use vipmta_domain_record_{get,set}_data */
    void *core_private;       /* the core's own state; modules must not touch it */
} domain_record;

struct vipmta_module_ctx;

/* A module's private pointer on a domain record (NULL until set). */
void *vipmta_domain_record_get_data(const domain_record *dr, const struct vipmta_module_ctx *m);
void vipmta_domain_record_set_data(domain_record *dr, const struct vipmta_module_ctx *m, void *data);

#ifdef __cplusplus
}
#endif
#endif
