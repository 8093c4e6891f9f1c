/* queue_domain.h: the registry of domain records, one per destination domain, with what the core keeps for each. */
#ifndef VIPMTA_CORE_QUEUE_DOMAIN_H
#define VIPMTA_CORE_QUEUE_DOMAIN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config/config.h"
#include "domain_record.h"

struct queue_lane;

/* One destination domain: the public record modules see, then the core's
 * own state of it. */
struct queue_domain {
    domain_record record;            /* first: a domain_record * is a struct queue_domain * */
    struct queue_domain *next;       /* hash chain of the registry */
    struct queue_domain *all_next;   /* every record, newest first (queue_domain_all) */
    struct queue_domain *all_prev;
    uint32_t ready;                  /* recipients ready to be attempted now */
    uint32_t delayed;                /* recipients waiting for their next attempt */
    uint32_t inflight;               /* recipients taken for delivery, no outcome yet */
    uint32_t connections;            /* outbound connections open, all bindings */
    uint32_t *binding_connections;   /* open outbound connections per binding slot */
    size_t binding_slots;            /* entries in binding_connections */
    struct queue_lane *lanes;        /* ready recipients per binding slot (queue.c) */
    int nlanes;
    const struct config_domain_limits *limits; /* the domain's limits in the config in force */
    void **module_data;              /* per module: vipmta_domain_record_{get,set}_data */
    size_t module_slots;
    char *last_error;                /* the last delivery failure's reply or reason */
    time_t last_error_at;
};

/* The core's state of a record the registry handed out. */
static inline struct queue_domain *queue_domain_of(const domain_record *dr)
{
    return (struct queue_domain *)(uintptr_t)dr;
}

/* An empty registry; call after binding_table_build. Limits come from the
 * config in force (config_current) when a record is created. */
void queue_domain_registry_init(void);
void queue_domain_registry_free(void);
/* The record for `domain` (case-insensitive), created on first use; NULL
 * when out of memory. */
domain_record *queue_domain_get(const char *domain);
/* The record or NULL. */
domain_record *queue_domain_find(const char *domain);
/* Records in the registry. */
size_t queue_domain_count(void);
/* The first of every record (walk with ->all_next); NULL when none. */
struct queue_domain *queue_domain_all(void);
/* Calls fn for every record. */
void queue_domain_foreach(void (*fn)(struct queue_domain *qd, void *arg), void *arg);
/* Remembers `text` (copied, truncated to 512 bytes) as the domain's last
 * delivery error, with the time; shown by vipmtactl. */
void queue_domain_set_last_error(domain_record *dr, const char *text);
/* Takes `qd` out of the registry and frees it (it must be idle: no mail, no
 * connection; queue.c decides). The forget hook runs first. */
void queue_domain_forget(struct queue_domain *qd);
/* Called with each record about to be forgotten (the delivery engine drops
 * what it keeps per domain). */
void queue_domain_set_forget_hook(void (*fn)(domain_record *dr));
/* Non-zero when a module keeps data on the record (it is never forgotten then). */
int queue_domain_has_module_data(const struct queue_domain *qd);

/* Points every record's limits into `cfg` (a reload, before `cfg` goes in
 * force: the one in force may be freed right after). */
void queue_domain_registry_apply_config(const struct vipmta_config *cfg);
/* Grows every record's binding_connections to `binding_count` slots (new
 * bindings after a reload; counts of existing slots kept). 0, or -1 when
 * out of memory. */
int queue_domain_registry_grow_bindings(int binding_count);

#endif
