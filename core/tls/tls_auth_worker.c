/* tls_auth_worker.c: AUTH password checks on a worker thread (hashing takes milliseconds), completed on the event loop. */
#include "tls_auth.h"
#include "log/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

struct tls_auth_job {
    struct tls_auth_job *next;
    struct tls_credentials *creds; /* a reference, released on the loop */
    char *user, *password;
    size_t user_len, password_len;
    tls_auth_done_fn done;         /* NULL once cancelled */
    void *arg;
    int ok;
};

static struct {
    int started, stopping;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct tls_auth_job *todo, *todo_tail, *finished;
    int efd;
    struct event *ev;
    struct event_base *base;
} w = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER, .efd = -1};

static void tls_auth_wipe(char *s, size_t n)
{
    if (!s)
        return;
    volatile char *p = s;
    for (size_t i = 0; i < n; i++)
        p[i] = 0;
    free(s);
}

static void tls_auth_job_free(struct tls_auth_job *job)
{
    tls_auth_wipe(job->user, job->user_len);
    tls_auth_wipe(job->password, job->password_len);
    tls_credentials_release(job->creds);
    free(job);
}

static void *tls_auth_main(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&w.lock);
    for (;;) {
        while (!w.todo && !w.stopping)
            pthread_cond_wait(&w.wake, &w.lock);
        if (w.stopping)
            break;
        struct tls_auth_job *job = w.todo;
        w.todo = job->next;
        if (!w.todo)
            w.todo_tail = NULL;
        int wanted = job->done != NULL;
        pthread_mutex_unlock(&w.lock);
        job->ok = wanted ? tls_credentials_check(job->creds, job->user, job->password) : 0;
        pthread_mutex_lock(&w.lock);
        job->next = w.finished;
        w.finished = job;
        uint64_t one = 1;
        (void)!write(w.efd, &one, sizeof(one));
    }
    pthread_mutex_unlock(&w.lock);
    return NULL;
}

/* On the loop: calls `done` for every finished job that is still wanted. */
static void tls_auth_on_finished(evutil_socket_t fd, short what, void *arg)
{
    uint64_t n;
    (void)what;
    (void)arg;
    (void)!read(fd, &n, sizeof(n));
    pthread_mutex_lock(&w.lock);
    struct tls_auth_job *list = w.finished;
    w.finished = NULL;
    pthread_mutex_unlock(&w.lock);
    while (list) {
        struct tls_auth_job *job = list;
        list = job->next;
        pthread_mutex_lock(&w.lock);
        tls_auth_done_fn done = job->done;
        pthread_mutex_unlock(&w.lock);
        if (done)
            done(job->arg, job->ok);
        tls_auth_job_free(job);
    }
}

static int tls_auth_worker_start(struct event_base *base)
{
    if (w.started)
        return w.base == base ? 0 : -1;
    w.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w.efd < 0)
        return -1;
    w.ev = event_new(base, w.efd, EV_READ | EV_PERSIST, tls_auth_on_finished, NULL);
    if (!w.ev || event_add(w.ev, NULL) != 0) {
        if (w.ev)
            event_free(w.ev);
        w.ev = NULL;
        close(w.efd);
        w.efd = -1;
        return -1;
    }
    w.stopping = 0;
    if (pthread_create(&w.thread, NULL, tls_auth_main, NULL) != 0) {
        event_free(w.ev);
        w.ev = NULL;
        close(w.efd);
        w.efd = -1;
        return -1;
    }
    w.base = base;
    w.started = 1;
    return 0;
}

struct tls_auth_job *tls_auth_check_async(struct event_base *base, const struct tls_credentials *c,
                                          const char *user, const char *password,
                                          tls_auth_done_fn done, void *arg)
{
    if (!base || !c || tls_auth_worker_start(base) != 0)
        return NULL;
    struct tls_auth_job *job = calloc(1, sizeof(*job));
    if (!job)
        return NULL;
    job->user_len = strlen(user);
    job->password_len = strlen(password);
    job->user = strdup(user);
    job->password = strdup(password);
    if (!job->user || !job->password) {
        tls_auth_job_free(job);
        return NULL;
    }
    job->creds = tls_credentials_ref((struct tls_credentials *)c);
    job->done = done;
    job->arg = arg;
    pthread_mutex_lock(&w.lock);
    if (w.todo_tail)
        w.todo_tail->next = job;
    else
        w.todo = job;
    w.todo_tail = job;
    pthread_cond_signal(&w.wake);
    pthread_mutex_unlock(&w.lock);
    return job;
}

void tls_auth_cancel(struct tls_auth_job *job)
{
    if (!job)
        return;
    pthread_mutex_lock(&w.lock);
    job->done = NULL;
    pthread_mutex_unlock(&w.lock);
}

void tls_auth_worker_stop(void)
{
    if (!w.started)
        return;
    pthread_mutex_lock(&w.lock);
    w.stopping = 1;
    pthread_cond_signal(&w.wake);
    pthread_mutex_unlock(&w.lock);
    pthread_join(w.thread, NULL);
    struct tls_auth_job *lists[2] = {w.todo, w.finished};
    for (int i = 0; i < 2; i++) {
        while (lists[i]) {
            struct tls_auth_job *job = lists[i];
            lists[i] = job->next;
            tls_auth_job_free(job);
        }
    }
    w.todo = w.todo_tail = w.finished = NULL;
    event_free(w.ev);
    w.ev = NULL;
    close(w.efd);
    w.efd = -1;
    w.base = NULL;
    w.started = 0;
}
