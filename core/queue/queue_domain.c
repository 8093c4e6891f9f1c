/* queue_domain.c: the registry of domain records, a hash table keyed by lower-case domain name. */
#include "queue_domain.h"
#include "vipmta_module.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct queue_domain_entry {
    domain_record record; /* first: a domain_record* is a queue_domain_entry* */
    struct queue_domain_entry *next;
    size_t module_slots; /* entries allocated in record.module_data */
    size_t binding_slots; /* entries allocated in record.binding_connections */
    char *last_error;    /* the last delivery failure's reply or reason */
    time_t last_error_at;
};

static const struct vipmta_config *queue_domain_cfg;
static struct queue_domain_entry **buckets;
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

void queue_domain_registry_init(const struct vipmta_config *cfg)
{
    queue_domain_registry_free();
    queue_domain_cfg = cfg;
    bucket_count = 1024;
    buckets = calloc(bucket_count, sizeof(*buckets));
    if (!buckets)
        abort();
}

void queue_domain_registry_free(void)
{
    for (size_t b = 0; b < bucket_count; b++) {
        struct queue_domain_entry *e = buckets[b];
        while (e) {
            struct queue_domain_entry *next = e->next;
            free(e->record.domain);
            free(e->record.binding_connections);
            free(e->record.module_data);
            free(e->last_error);
            free(e);
            e = next;
        }
    }
    free(buckets);
    buckets = NULL;
    bucket_count = record_count = 0;
}

size_t queue_domain_count(void)
{
    return record_count;
}

domain_record *queue_domain_find(const char *domain)
{
    if (!buckets || !domain)
        return NULL;
    for (struct queue_domain_entry *e = buckets[queue_domain_hash(domain) % bucket_count]; e; e = e->next)
        if (strcasecmp(e->record.domain, domain) == 0)
            return &e->record;
    return NULL;
}

static void queue_domain_grow(void)
{
    size_t count = bucket_count * 4;
    struct queue_domain_entry **grown = calloc(count, sizeof(*grown));
    if (!grown)
        return; /* keep the longer chains */
    for (size_t b = 0; b < bucket_count; b++) {
        struct queue_domain_entry *e = buckets[b];
        while (e) {
            struct queue_domain_entry *next = e->next;
            size_t slot = queue_domain_hash(e->record.domain) % count;
            e->next = grown[slot];
            grown[slot] = e;
            e = next;
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
        queue_domain_registry_init(queue_domain_cfg);
    struct queue_domain_entry *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    dr = &e->record;
    dr->domain = strdup(domain);
    int bindings = vipmta_binding_count();
    dr->binding_connections = calloc(bindings > 0 ? (size_t)bindings : 1, sizeof(uint32_t));
    if (!dr->domain || !dr->binding_connections) {
        free(dr->domain);
        free(dr->binding_connections);
        free(e);
        return NULL;
    }
    e->binding_slots = bindings > 0 ? (size_t)bindings : 1;
    for (char *p = dr->domain; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    dr->limits = queue_domain_cfg ? config_domain_limits(queue_domain_cfg, dr->domain) : NULL;
    size_t slot = queue_domain_hash(dr->domain) % bucket_count;
    e->next = buckets[slot];
    buckets[slot] = e;
    if (++record_count > bucket_count * 2)
        queue_domain_grow();
    return dr;
}

void queue_domain_foreach(void (*fn)(domain_record *dr, void *arg), void *arg)
{
    for (size_t b = 0; b < bucket_count; b++)
        for (struct queue_domain_entry *e = buckets[b]; e; e = e->next)
            fn(&e->record, arg);
}

static void queue_domain_apply_limits(domain_record *dr, void *arg)
{
    dr->limits = config_domain_limits(arg, dr->domain);
}

void queue_domain_registry_apply_config(const struct vipmta_config *cfg)
{
    queue_domain_cfg = cfg;
    queue_domain_foreach(queue_domain_apply_limits, (void *)cfg);
}

/* One private pointer per entry of the config's `modules` list
 * (vipmta_module_index is the position in that list). */
static size_t queue_domain_module_slots(void)
{
    return queue_domain_cfg ? queue_domain_cfg->module_count : 0;
}

void *vipmta_domain_record_get_data(const domain_record *dr, const struct vipmta_module_ctx *m)
{
    int i = m ? vipmta_module_index(m) : -1;
    const struct queue_domain_entry *e = (const struct queue_domain_entry *)dr;
    if (!dr || i < 0 || (size_t)i >= e->module_slots)
        return NULL;
    return dr->module_data[i];
}

void vipmta_domain_record_set_data(domain_record *dr, const struct vipmta_module_ctx *m,
                                   void *data)
{
    int i = m ? vipmta_module_index(m) : -1;
    struct queue_domain_entry *e = (struct queue_domain_entry *)dr;
    if (!dr || i < 0)
        return;
    if ((size_t)i >= e->module_slots) {
        size_t n = queue_domain_module_slots();
        if (n <= (size_t)i)
            n = (size_t)i + 1;
        void **grown = realloc(dr->module_data, n * sizeof(void *));
        if (!grown)
            return;
        memset(grown + e->module_slots, 0, (n - e->module_slots) * sizeof(void *));
        dr->module_data = grown;
        e->module_slots = n;
    }
    dr->module_data[i] = data;
}

void queue_domain_set_last_error(domain_record *dr, const char *text)
{
    struct queue_domain_entry *e = (struct queue_domain_entry *)dr;
    size_t n = strlen(text);
    if (n > 512)
        n = 512;
    e->last_error_at = time(NULL);
    /* a batch of recipients fails with one reply: keep the copy we have */
    if (e->last_error && strlen(e->last_error) == n && memcmp(e->last_error, text, n) == 0)
        return;
    char *copy = realloc(e->last_error, n + 1);
    if (!copy)
        return;
    memcpy(copy, text, n);
    copy[n] = '\0';
    e->last_error = copy;
}

const char *queue_domain_last_error(const domain_record *dr, time_t *when)
{
    const struct queue_domain_entry *e = (const struct queue_domain_entry *)dr;
    if (when)
        *when = e->last_error_at;
    return e->last_error;
}

int queue_domain_registry_grow_bindings(int binding_count)
{
    size_t n = binding_count > 0 ? (size_t)binding_count : 1;
    int rc = 0;
    for (size_t b = 0; b < bucket_count; b++) {
        for (struct queue_domain_entry *e = buckets[b]; e; e = e->next) {
            if (e->binding_slots >= n)
                continue;
            uint32_t *grown = realloc(e->record.binding_connections, n * sizeof(*grown));
            if (!grown) {
                rc = -1; /* this record keeps its array: the caller gives up */
                continue;
            }
            memset(grown + e->binding_slots, 0, (n - e->binding_slots) * sizeof(*grown));
            e->record.binding_connections = grown;
            e->binding_slots = n;
        }
    }
    return rc;
}
