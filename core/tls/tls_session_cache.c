/* tls_session_cache.c: outbound TLS sessions kept per destination for resumption, bounded and aged (loop thread). */
#include "tls.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TLS_SESSION_BUCKETS 1024

struct tls_session_entry {
    struct tls_session_entry *next;           /* hash chain */
    struct tls_session_entry *older, *newer;  /* insertion order, for eviction */
    SSL_SESSION *sess;
    time_t stored;
    char key[];
};

static struct {
    struct tls_session_entry *buckets[TLS_SESSION_BUCKETS];
    struct tls_session_entry *oldest, *newest;
    size_t count, max;
    unsigned lifetime;
} cache = {.max = 1000, .lifetime = 3600};

static size_t tls_session_hash(const char *key)
{
    uint32_t h = 2166136261u;
    for (; *key; key++)
        h = (h ^ (unsigned char)*key) * 16777619u;
    return h % TLS_SESSION_BUCKETS;
}

static void tls_session_unlink(struct tls_session_entry *e)
{
    struct tls_session_entry **pp = &cache.buckets[tls_session_hash(e->key)];
    while (*pp && *pp != e)
        pp = &(*pp)->next;
    if (*pp)
        *pp = e->next;
    if (e->older)
        e->older->newer = e->newer;
    else
        cache.oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        cache.newest = e->older;
    cache.count--;
    SSL_SESSION_free(e->sess);
    free(e);
}

static struct tls_session_entry *tls_session_find(const char *key)
{
    for (struct tls_session_entry *e = cache.buckets[tls_session_hash(key)]; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

void tls_session_cache_configure(size_t max_entries, unsigned lifetime_seconds)
{
    cache.max = max_entries;
    cache.lifetime = lifetime_seconds ? lifetime_seconds : 1;
    while (cache.count > cache.max)
        tls_session_unlink(cache.oldest);
}

SSL_SESSION *tls_session_cache_get(const char *key)
{
    struct tls_session_entry *e = tls_session_find(key);
    if (!e)
        return NULL;
    time_t now = time(NULL);
    if (now - e->stored > (time_t)cache.lifetime || !SSL_SESSION_is_resumable(e->sess) ||
        (time_t)SSL_SESSION_get_time(e->sess) + (time_t)SSL_SESSION_get_timeout(e->sess) < now) {
        tls_session_unlink(e);
        return NULL;
    }
    SSL_SESSION_up_ref(e->sess);
    return e->sess;
}

void tls_session_cache_put(const char *key, SSL_SESSION *sess)
{
    struct tls_session_entry *old = tls_session_find(key);
    if (old)
        tls_session_unlink(old);
    if (!cache.max) {
        SSL_SESSION_free(sess);
        return;
    }
    while (cache.count >= cache.max && cache.oldest)
        tls_session_unlink(cache.oldest);
    size_t klen = strlen(key);
    struct tls_session_entry *e = malloc(sizeof(*e) + klen + 1);
    if (!e) {
        SSL_SESSION_free(sess);
        return;
    }
    memcpy(e->key, key, klen + 1);
    e->sess = sess;
    e->stored = time(NULL);
    size_t b = tls_session_hash(key);
    e->next = cache.buckets[b];
    cache.buckets[b] = e;
    e->newer = NULL;
    e->older = cache.newest;
    if (cache.newest)
        cache.newest->newer = e;
    else
        cache.oldest = e;
    cache.newest = e;
    cache.count++;
}

size_t tls_session_cache_count(void)
{
    return cache.count;
}

void tls_session_cache_free(void)
{
    while (cache.oldest)
        tls_session_unlink(cache.oldest);
}
