/* domain_record.h: the public per-destination-domain record handed to outbound hooks (Momentum's documented fields). */
#ifndef VIPMTA_DOMAIN_RECORD_H
#define VIPMTA_DOMAIN_RECORD_H

#include <stdint.h>
#include <sys/time.h>
#include "vipmta_binding.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One record per destination domain known to the queue. The members are
 * the ones Momentum documents for its struct _domain_record (dns_ds.h), with
 * the same names, so ported module code compiles; modules read them and
 * never write them. Everything else the core keeps per domain (queue and
 * connection counts, limits) is read through the functions below.
 * Layout rule: this struct only grows at the end. */
typedef struct _domain_record {
    char *domain;                 /* lower-case domain name; always the first member */
    uint64_t expiry;              /* when the core may forget the record if it stays idle
                                   * (time_t seconds); 0 while mail or connections use it */
    struct timeval last_delivery; /* when a recipient was last delivered (2xx); 0 if never */
    uint32_t deliveries;          /* recipients delivered (2xx) */
    uint32_t attempts;            /* delivery attempts made */
    uint32_t transients;          /* attempts ending in a transient failure (4xx, connect, veto) */
    uint32_t failures;            /* recipients failed permanently (5xx, expiry) */
    int mxcnt;                    /* exchangers in the current route */
    uint8_t dns_failures;         /* consecutive lookups of the domain that failed (saturates) */
} domain_record;

struct vipmta_module_ctx;

/* Outbound connections open now to `dr` from binding `slot`, or from every
 * binding with EC_BINDING_SLOT_UNBOUND. */
uint32_t vipmta_domain_connections(const domain_record *dr, ec_binding_slot slot);
/* Recipients of `dr` ready to be attempted now (all bindings). */
uint32_t vipmta_domain_ready(const domain_record *dr);
/* Recipients of `dr` waiting for their next attempt time. */
uint32_t vipmta_domain_delayed(const domain_record *dr);

/* A module's private pointer on a domain record (NULL until set). */
void *vipmta_domain_record_get_data(const domain_record *dr, const struct vipmta_module_ctx *m);
void vipmta_domain_record_set_data(domain_record *dr, const struct vipmta_module_ctx *m, void *data);

#ifdef __cplusplus
}
#endif
#endif
