/* spool_mem.c: small message bodies kept in memory from acceptance to delivery (a bound, counted), and the one reader of a body for delivery and DSNs. */
#include "spool_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A body held in memory; readers hold a reference, so removing the message
 * while one still reads it is safe. */
struct spool_mem_blob {
    unsigned refs;
    size_t len;
    char *data;
};

struct spool_mem_entry {
    struct spool_mem_entry *next;
    char id[SPOOL_ID_LEN + 1];
    struct spool_mem_blob *blob;
};

/* Loop thread only. */
static struct {
    size_t limit;                  /* spool_set_memory */
    size_t used;                   /* body bytes held: writers' and kept ones */
    struct spool_mem_entry **buckets;
    size_t nbuckets, count;
    struct spool_memory_stats stats;
} mem = {.limit = SPOOL_MEMORY_DEFAULT};

void spool_set_memory(size_t bytes)
{
    mem.limit = bytes;
}

size_t spool_mem_message_max(void)
{
    return mem.limit / 64;
}

int spool_mem_take(size_t len)
{
    if (!mem.limit || mem.used + len > mem.limit)
        return -1;
    mem.used += len;
    return 0;
}

void spool_mem_give_back(size_t len)
{
    mem.used = len > mem.used ? 0 : mem.used - len;
}

static size_t spool_mem_hash(const char *id)
{
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < SPOOL_ID_LEN; i++)
        h = (h ^ (unsigned char)id[i]) * 1099511628211ULL;
    return (size_t)h;
}

static int spool_mem_grow(void)
{
    size_t n = mem.nbuckets ? mem.nbuckets * 2 : 256;
    struct spool_mem_entry **b = calloc(n, sizeof(*b));
    if (!b)
        return -1;
    for (size_t i = 0; i < mem.nbuckets; i++) {
        while (mem.buckets[i]) {
            struct spool_mem_entry *e = mem.buckets[i];
            mem.buckets[i] = e->next;
            size_t k = spool_mem_hash(e->id) & (n - 1);
            e->next = b[k];
            b[k] = e;
        }
    }
    free(mem.buckets);
    mem.buckets = b;
    mem.nbuckets = n;
    return 0;
}

static void spool_mem_unref(struct spool_mem_blob *blob)
{
    if (--blob->refs)
        return;
    spool_mem_give_back(blob->len);
    free(blob->data);
    free(blob);
}

void spool_mem_keep(const char *id, struct spool_buf *body)
{
    struct spool_mem_entry *e = NULL;
    struct spool_mem_blob *blob = NULL;
    if ((mem.count >= mem.nbuckets && spool_mem_grow() != 0) || !(e = calloc(1, sizeof(*e))) ||
        !(blob = calloc(1, sizeof(*blob)))) {
        free(e);
        spool_mem_give_back(body->len); /* delivery reads the file instead */
        spool_buf_free(body);
        return;
    }
    memcpy(e->id, id, SPOOL_ID_LEN);
    blob->refs = 1;
    blob->len = body->len;
    blob->data = body->data;
    body->data = NULL;
    body->len = body->cap = 0;
    e->blob = blob;
    size_t k = spool_mem_hash(id) & (mem.nbuckets - 1);
    e->next = mem.buckets[k];
    mem.buckets[k] = e;
    mem.count++;
    mem.stats.kept++;
}

static struct spool_mem_entry **spool_mem_find(const char *id)
{
    if (!mem.nbuckets)
        return NULL;
    struct spool_mem_entry **pp = &mem.buckets[spool_mem_hash(id) & (mem.nbuckets - 1)];
    for (; *pp; pp = &(*pp)->next)
        if (memcmp((*pp)->id, id, SPOOL_ID_LEN) == 0)
            return pp;
    return NULL;
}

void spool_mem_drop(const char *id)
{
    struct spool_mem_entry **pp = spool_mem_find(id);
    if (!pp)
        return;
    struct spool_mem_entry *e = *pp;
    *pp = e->next;
    mem.count--;
    spool_mem_unref(e->blob);
    free(e);
}

void spool_mem_clear(void)
{
    for (size_t i = 0; i < mem.nbuckets; i++) {
        while (mem.buckets[i]) {
            struct spool_mem_entry *e = mem.buckets[i];
            mem.buckets[i] = e->next;
            spool_mem_unref(e->blob);
            free(e);
        }
    }
    free(mem.buckets);
    mem.buckets = NULL;
    mem.nbuckets = mem.count = 0;
}

void spool_mem_spilled(void)
{
    mem.stats.spilled++;
}

void spool_get_memory_stats(struct spool_memory_stats *out)
{
    *out = mem.stats;
    out->bodies = mem.count;
    out->bytes = mem.used;
    out->limit = mem.limit;
}

/* ---- reading a body: from memory, else from its file (one path for all sizes) ---- */

struct spool_body {
    struct spool_mem_blob *blob;   /* in memory, or NULL: fd */
    size_t pos;
    int fd;
};

struct spool_body *spool_body_open(const char *id)
{
    if (!id || !spool_id_valid(id)) {
        errno = EINVAL;
        return NULL;
    }
    struct spool_body *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->fd = -1;
    struct spool_mem_entry **pp = spool_mem_find(id);
    if (pp) {
        b->blob = (*pp)->blob;
        b->blob->refs++;
        mem.stats.reads_memory++;
        return b;
    }
    b->fd = spool_open_body(id);
    if (b->fd < 0) {
        int saved = errno;
        free(b);
        errno = saved;
        return NULL;
    }
    mem.stats.reads_file++;
    return b;
}

ssize_t spool_body_read(struct spool_body *b, void *buf, size_t len)
{
    if (b->blob) {
        size_t n = b->blob->len - b->pos;
        if (n > len)
            n = len;
        memcpy(buf, b->blob->data + b->pos, n);
        b->pos += n;
        return (ssize_t)n;
    }
    for (;;) {
        ssize_t n = read(b->fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        return n;
    }
}

void spool_body_close(struct spool_body *b)
{
    if (!b)
        return;
    if (b->blob)
        spool_mem_unref(b->blob);
    if (b->fd >= 0)
        close(b->fd);
    free(b);
}
