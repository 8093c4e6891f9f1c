/* dkimmod_pool.c: the dkim module's signing workers: threads taking jobs from one queue, resizable on reload, draining the queue when stopped. */
#include "dkimmod.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

struct pool_job {
    struct pool_job *next;
    void *job;
};

struct pool_thread {
    struct pool_thread *next;
    pthread_t tid;
};

struct dkimmod_pool {
    pthread_mutex_t lock;
    pthread_cond_t work;   /* a job arrived, or the pool shrinks or stops */
    struct pool_job *head, *tail;
    size_t queued;
    size_t running;
    int target;            /* threads wanted */
    int alive;             /* threads running their loop */
    int stopping;
    dkimmod_job_fn fn;
    struct pool_thread *threads; /* every thread started, joined at the end */
};

static void *pool_main(void *arg)
{
    struct dkimmod_pool *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->head && !p->stopping && p->alive <= p->target)
            pthread_cond_wait(&p->work, &p->lock);
        if (!p->head && (p->stopping || p->alive > p->target))
            break;
        if (p->alive > p->target && !p->stopping)
            break; /* shrinking: the others take the queue */
        struct pool_job *j = p->head;
        p->head = j->next;
        if (!p->head)
            p->tail = NULL;
        p->queued--;
        p->running++;
        pthread_mutex_unlock(&p->lock);
        p->fn(j->job);
        free(j);
        pthread_mutex_lock(&p->lock);
        p->running--;
    }
    p->alive--;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* Starts one more thread (the lock held). */
static int start_thread(struct dkimmod_pool *p)
{
    struct pool_thread *t = calloc(1, sizeof(*t));
    if (!t)
        return -1;
    /* workers take no signal: the daemon handles them on its loop */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&t->tid, NULL, pool_main, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        free(t);
        errno = rc;
        return -1;
    }
    t->next = p->threads;
    p->threads = t;
    p->alive++;
    return 0;
}

struct dkimmod_pool *dkimmod_pool_new(int workers, dkimmod_job_fn fn)
{
    struct dkimmod_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    p->fn = fn;
    if (dkimmod_pool_resize(p, workers) != 0) {
        int e = errno;
        dkimmod_pool_free(p);
        errno = e;
        return NULL;
    }
    return p;
}

int dkimmod_pool_resize(struct dkimmod_pool *p, int workers)
{
    int rc = 0;
    pthread_mutex_lock(&p->lock);
    p->target = workers < 1 ? 1 : workers;
    while (p->alive < p->target && rc == 0)
        rc = start_thread(p);
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    return rc;
}

int dkimmod_pool_submit(struct dkimmod_pool *p, void *job)
{
    struct pool_job *j = malloc(sizeof(*j));
    if (!j)
        return -1;
    j->job = job;
    j->next = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->stopping || p->alive == 0) {
        pthread_mutex_unlock(&p->lock);
        free(j);
        return -1;
    }
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    p->queued++;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

size_t dkimmod_pool_backlog(struct dkimmod_pool *p)
{
    pthread_mutex_lock(&p->lock);
    size_t n = p->queued + p->running;
    pthread_mutex_unlock(&p->lock);
    return n;
}

void dkimmod_pool_free(struct dkimmod_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_broadcast(&p->work);
    struct pool_thread *threads = p->threads;
    p->threads = NULL;
    pthread_mutex_unlock(&p->lock);
    while (threads) {
        struct pool_thread *t = threads;
        threads = t->next;
        pthread_join(t->tid, NULL);
        free(t);
    }
    /* no thread was left to run these (none could be started) */
    while (p->head) {
        struct pool_job *j = p->head;
        p->head = j->next;
        p->fn(j->job);
        free(j);
    }
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
