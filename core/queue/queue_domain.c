/* queue_domain.c: the registry of domain records, a hash table keyed by lower-case domain name. */
#include "queue_domain.h"
#include "config/config_current.h"
#include "vipmta_module.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static struct queue_domain **buckets;
static struct queue_domain *all;
static void (*forget_hook)(domain_record *dr);
static size_t bucket_count;
static size_t record_count;

static uint64_t queue_domain_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a over the lower-cased name */
    for (; *s; s++) {
        h ^= (unsigned char)tolower((unsigned char)*s);
        h *= 1099511628211ULL;
    }
    return h;
}

void queue_domain_registry_init(void)
{
    queue_domain_registry_free();
    bucket_count = 1024;
    buckets = calloc(bucket_count, sizeof(*buckets));
    if (!buckets)
        abort();
}

static void queue_domain_free(struct queue_domain *qd)
{
    free(qd->record.domain);
    free(qd->binding_connections);
    free(qd->lanes);
    free(qd->module_data);
    free(qd->last_error);
    free(qd);
}

void queue_domain_registry_free(void)
{
    for (size_t b = 0; b < bucket_count; b++) {
        struct queue_domain *qd = buckets[b];
        while (qd) {
            struct queue_domain *next = qd->next;
            queue_domain_free(qd);
            qd = next;
        }
    }
    free(buckets);
    buckets = NULL;
    all = NULL;
    bucket_count = record_count = 0;
}

struct queue_domain *queue_domain_all(void)
{
    return all;
}

size_t queue_domain_count(void)
{
    return record_count;
}

domain_record *queue_domain_find(const char *domain)
{
    if (!buckets || !domain)
        return NULL;
    for (struct queue_domain *qd = buckets[queue_domain_hash(domain) % bucket_count]; qd;
         qd = qd->next)
        if (strcasecmp(qd->record.domain, domain) == 0)
            return &qd->record;
    return NULL;
}

static void queue_domain_grow(void)
{
    size_t count = bucket_count * 4;
    struct queue_domain **grown = calloc(count, sizeof(*grown));
    if (!grown)
        return; /* keep the longer chains */
    for (size_t b = 0; b < bucket_count; b++) {
        struct queue_domain *qd = buckets[b];
        while (qd) {
            struct queue_domain *next = qd->next;
            size_t slot = queue_domain_hash(qd->record.domain) % count;
            qd->next = grown[slot];
            grown[slot] = qd;
            qd = next;
        }
    }
    free(buckets);
    buckets = grown;
    bucket_count = count;
}

domain_record *queue_domain_get(const char *domain)
{
    domain_record *dr = queue_domain_find(domain);
    if (dr || !domain)
        return dr;
    if (!buckets)
        queue_domain_registry_init();
    struct queue_domain *qd = calloc(1, sizeof(*qd));
    if (!qd)
        return NULL;
    int bindings = vipmta_binding_count();
    qd->binding_slots = bindings > 0 ? (size_t)bindings : 1;
    qd->record.domain = strdup(domain);
    qd->binding_connections = calloc(qd->binding_slots, sizeof(uint32_t));
    if (!qd->record.domain || !qd->binding_connections) {
        queue_domain_free(qd);
        return NULL;
    }
    for (char *p = qd->record.domain; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    const struct vipmta_config *cfg = config_current();
    qd->limits = cfg ? config_domain_limits(cfg, qd->record.domain) : NULL;
    size_t slot = queue_domain_hash(qd->record.domain) % bucket_count;
    qd->next = buckets[slot];
    buckets[slot] = qd;
    qd->all_next = all;
    if (all)
        all->all_prev = qd;
    all = qd;
    if (++record_count > bucket_count * 2)
        queue_domain_grow();
    return &qd->record;
}

void queue_domain_set_forget_hook(void (*fn)(domain_record *dr))
{
    forget_hook = fn;
}

int queue_domain_has_module_data(const struct queue_domain *qd)
{
    for (size_t i = 0; i < qd->module_slots; i++)
        if (qd->module_data[i])
            return 1;
    return 0;
}

void queue_domain_forget(struct queue_domain *qd)
{
    if (forget_hook)
        forget_hook(&qd->record);
    struct queue_domain **pp = &buckets[queue_domain_hash(qd->record.domain) % bucket_count];
    while (*pp && *pp != qd)
        pp = &(*pp)->next;
    if (*pp)
        *pp = qd->next;
    if (qd->all_prev)
        qd->all_prev->all_next = qd->all_next;
    else
        all = qd->all_next;
    if (qd->all_next)
        qd->all_next->all_prev = qd->all_prev;
    record_count--;
    queue_domain_free(qd);
}

void queue_domain_foreach(void (*fn)(struct queue_domain *qd, void *arg), void *arg)
{
    for (struct queue_domain *qd = all, *next; qd; qd = next) {
        next = qd->all_next;
        fn(qd, arg);
    }
}

static void queue_domain_apply_limits(struct queue_domain *qd, void *arg)
{
    qd->limits = config_domain_limits(arg, qd->record.domain);
}

void queue_domain_registry_apply_config(const struct vipmta_config *cfg)
{
    queue_domain_foreach(queue_domain_apply_limits, (void *)cfg);
}

uint32_t vipmta_domain_connections(const domain_record *dr, ec_binding_slot slot)
{
    const struct queue_domain *qd = queue_domain_of(dr);
    if (!dr)
        return 0;
    if (slot == EC_BINDING_SLOT_UNBOUND)
        return qd->connections;
    return slot >= 0 && (size_t)slot < qd->binding_slots ? qd->binding_connections[slot] : 0;
}

uint32_t vipmta_domain_ready(const domain_record *dr)
{
    return dr ? queue_domain_of(dr)->ready : 0;
}

uint32_t vipmta_domain_delayed(const domain_record *dr)
{
    return dr ? queue_domain_of(dr)->delayed : 0;
}

void *vipmta_domain_record_get_data(const domain_record *dr, const struct vipmta_module_ctx *m)
{
    int i = m ? vipmta_module_index(m) : -1;
    const struct queue_domain *qd = queue_domain_of(dr);
    if (!dr || i < 0 || (size_t)i >= qd->module_slots)
        return NULL;
    return qd->module_data[i];
}

void vipmta_domain_record_set_data(domain_record *dr, const struct vipmta_module_ctx *m,
                                   void *data)
{
    int i = m ? vipmta_module_index(m) : -1;
    struct queue_domain *qd = queue_domain_of(dr);
    if (!dr || i < 0)
        return;
    if ((size_t)i >= qd->module_slots) {
        /* one pointer per entry of the config's `modules` list
         * (vipmta_module_index is the position in that list) */
        const struct vipmta_config *cfg = config_current();
        size_t n = cfg ? cfg->module_count : 0;
        if (n <= (size_t)i)
            n = (size_t)i + 1;
        void **grown = realloc(qd->module_data, n * sizeof(void *));
        if (!grown)
            return;
        memset(grown + qd->module_slots, 0, (n - qd->module_slots) * sizeof(void *));
        qd->module_data = grown;
        qd->module_slots = n;
    }
    qd->module_data[i] = data;
}

void queue_domain_set_last_error(domain_record *dr, const char *text)
{
    struct queue_domain *qd = queue_domain_of(dr);
    size_t n = strlen(text);
    if (n > 512)
        n = 512;
    qd->last_error_at = time(NULL);
    /* a batch of recipients fails with one reply: keep the copy we have */
    if (qd->last_error && strlen(qd->last_error) == n && memcmp(qd->last_error, text, n) == 0)
        return;
    char *copy = realloc(qd->last_error, n + 1);
    if (!copy)
        return;
    memcpy(copy, text, n);
    copy[n] = '\0';
    qd->last_error = copy;
}

int queue_domain_registry_grow_bindings(int binding_count)
{
    size_t n = binding_count > 0 ? (size_t)binding_count : 1;
    int rc = 0;
    for (struct queue_domain *qd = all; qd; qd = qd->all_next) {
        if (qd->binding_slots >= n)
            continue;
        uint32_t *grown = realloc(qd->binding_connections, n * sizeof(*grown));
        if (!grown) {
            rc = -1; /* this record keeps its array: the caller gives up */
            continue;
        }
        memset(grown + qd->binding_slots, 0, (n - qd->binding_slots) * sizeof(*grown));
        qd->binding_connections = grown;
        qd->binding_slots = n;
    }
    return rc;
}
