/* spool_sync.c: a small pool of helper threads that fdatasync a round's files in parallel. */
#include "spool_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

/* Helpers besides the calling (sync) thread. Parallel fdatasyncs let the
 * filesystem fold many files into one journal commit. */
#define SPOOL_SYNC_HELPERS 7
/* Rounds with fewer files are synced by the calling thread alone. */
#define SPOOL_SYNC_PARALLEL_MIN 8

static struct {
    pthread_mutex_t lock;
    pthread_cond_t go, done;
    pthread_t threads[SPOOL_SYNC_HELPERS];
    int started;
    int stop;
    unsigned generation;     /* bumped for each batch */
    struct spool_fdsync *v;
    size_t n;
    size_t next;             /* next index to take (atomic) */
    int busy;                /* helpers still working on this batch */
} pool = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .go = PTHREAD_COND_INITIALIZER,
    .done = PTHREAD_COND_INITIALIZER,
};

static void spool_pool_work(struct spool_fdsync *v, size_t n)
{
    for (;;) {
        size_t i = __atomic_fetch_add(&pool.next, 1, __ATOMIC_RELAXED);
        if (i >= n)
            break;
        v[i].error = fdatasync(v[i].fd) == 0 ? 0 : errno;
    }
}

static void *spool_pool_main(void *unused)
{
    (void)unused;
    unsigned seen = 0;
    pthread_mutex_lock(&pool.lock);
    for (;;) {
        while (!pool.stop && pool.generation == seen)
            pthread_cond_wait(&pool.go, &pool.lock);
        if (pool.stop)
            break;
        seen = pool.generation;
        struct spool_fdsync *v = pool.v;
        size_t n = pool.n;
        pthread_mutex_unlock(&pool.lock);
        spool_pool_work(v, n);
        pthread_mutex_lock(&pool.lock);
        if (--pool.busy == 0)
            pthread_cond_signal(&pool.done);
    }
    pthread_mutex_unlock(&pool.lock);
    return NULL;
}

int spool_pool_start(void)
{
    pool.stop = 0;
    pool.generation = 0;
    for (int i = 0; i < SPOOL_SYNC_HELPERS; i++) {
        int rc = pthread_create(&pool.threads[i], NULL, spool_pool_main, NULL);
        if (rc != 0) {
            spool_pool_stop();
            errno = rc;
            return -1;
        }
        pool.started++;
    }
    return 0;
}

void spool_pool_stop(void)
{
    pthread_mutex_lock(&pool.lock);
    pool.stop = 1;
    pthread_cond_broadcast(&pool.go);
    pthread_mutex_unlock(&pool.lock);
    for (int i = 0; i < pool.started; i++)
        pthread_join(pool.threads[i], NULL);
    pool.started = 0;
}

void spool_pool_fdatasync(struct spool_fdsync *v, size_t n)
{
    /* start writeback of every file first, so that the device sees the
     * whole round at once; each fdatasync then mostly waits */
    for (size_t i = 0; i < n; i++)
        sync_file_range(v[i].fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    if (n < SPOOL_SYNC_PARALLEL_MIN || pool.started == 0) {
        for (size_t i = 0; i < n; i++)
            v[i].error = fdatasync(v[i].fd) == 0 ? 0 : errno;
        return;
    }
    pthread_mutex_lock(&pool.lock);
    pool.v = v;
    pool.n = n;
    __atomic_store_n(&pool.next, 0, __ATOMIC_RELAXED);
    pool.busy = pool.started;
    pool.generation++;
    pthread_cond_broadcast(&pool.go);
    pthread_mutex_unlock(&pool.lock);
    spool_pool_work(v, n);
    pthread_mutex_lock(&pool.lock);
    while (pool.busy > 0)
        pthread_cond_wait(&pool.done, &pool.lock);
    pool.v = NULL;
    pthread_mutex_unlock(&pool.lock);
}
