/* dns_ds.h: Momentum's domain records for vipmta: domain_record with its documented fields, and dns_get_domain. */
#ifndef VIPMTA_MOMENTUM_DNS_DS_H
#define VIPMTA_MOMENTUM_DNS_DS_H

#include "domain_record.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The record of a destination domain the queue knows (any case), NULL when
 * none. The delivery loop's thread only (Momentum: the Scheduler thread). */
domain_record *dns_get_domain(const char *domain);

#ifdef __cplusplus
}
#endif
#endif
