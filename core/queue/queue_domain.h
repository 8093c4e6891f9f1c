/* queue_domain.h: the registry of domain records, one per destination domain. */
#ifndef VIPMTA_CORE_QUEUE_DOMAIN_H
#define VIPMTA_CORE_QUEUE_DOMAIN_H

#include "config/config.h"
#include "domain_record.h"

#include <time.h>

/* Uses `cfg` for per-domain limits; call after binding_table_build. */
void queue_domain_registry_init(const struct vipmta_config *cfg);
void queue_domain_registry_free(void);
/* The record for `domain` (case-insensitive), created on first use. */
domain_record *queue_domain_get(const char *domain);
/* The record or NULL. */
domain_record *queue_domain_find(const char *domain);
/* Records in the registry. */
size_t queue_domain_count(void);
/* Calls fn for every record. */
void queue_domain_foreach(void (*fn)(domain_record *dr, void *arg), void *arg);
/* Remembers `text` (copied, truncated to 512 bytes) as the domain's last
 * delivery error, with the time; shown by vipmtactl. */
void queue_domain_set_last_error(domain_record *dr, const char *text);
/* The last error (NULL when none) and when it happened. */
const char *queue_domain_last_error(const domain_record *dr, time_t *when);
/* Re-applies limits from a new config (reload). */
void queue_domain_registry_apply_config(const struct vipmta_config *cfg);
/* Grows every record's binding_connections to `binding_count` slots (new
 * bindings after a reload; counts of existing slots kept). 0, or -1 when
 * out of memory. */
int queue_domain_registry_grow_bindings(int binding_count);

#endif
