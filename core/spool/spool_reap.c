/* spool_reap.c: removes finished messages' files on a thread of its own, so unlinks never stall the event loop. */
#include "spool_internal.h"
#include "log/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Unlinking can block for a long time: on a filesystem mounted with
 * `discard`, freeing a file's blocks waits for the device. The loop hands
 * ids here; the thread removes them in batches:
 *   1. every batch member's ID.env (the commit point: the message is gone),
 *   2. one fsync of queue/, so the removals are durable together,
 *   3. their ID.st and ID.body (leftovers after a crash are orphans that
 *      recovery deletes).
 * Woken by a first hand-off, the thread lets removals gather for
 * SPOOL_REAP_GATHER_MS before a batch, so that one directory fsync serves many
 * messages (a removal only bounds how much a crash delivers again; it never
 * makes mail safe, so waiting costs nothing but those milliseconds).
 * spool_reap_flush() waits until everything handed over so far is removed. */

struct spool_reap_item {
    struct spool_reap_item *next;
    char id[SPOOL_ID_LEN + 1];
    int kept;                      /* its ID.env could not be removed: nothing is */
};

/* Ids removed per batch at most (bounds the time the loop's flush may wait). */
#define SPOOL_REAP_BATCH 512
/* How long removals gather before a batch (no flush or stop waiting). */
#define SPOOL_REAP_GATHER_MS 20

static struct {
    pthread_mutex_t lock;
    pthread_cond_t work, idle;
    pthread_t thread;
    int running;
    int stop;
    int busy;                      /* the thread is removing a batch */
    int flushing;                  /* spool_reap_flush callers waiting */
    struct spool_reap_item *head, **tail;
    struct spool_reap_item *batch, **batch_tail; /* this loop iteration's (loop thread) */
} rp = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .work = PTHREAD_COND_INITIALIZER,
    .idle = PTHREAD_COND_INITIALIZER,
};

/* 0, or -1 (logged) when the file exists and cannot be removed. */
static int spool_reap_unlink(const char *id, const char *ext)
{
    char name[SPOOL_ID_LEN + 8];
    spool_name(name, id, ext);
    if (unlinkat(spool_queue_fd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (strcmp(ext, "env") == 0)
        log_write("spool", VIPMTA_LOG_ERROR, "%s/queue/%s: cannot remove: %s; the message "
                  "stays whole in the spool and comes back at the next start (its last "
                  "recipients may then be delivered again)", spool_dir_path(), name,
                  strerror(errno));
    else
        log_write("spool", VIPMTA_LOG_ERROR, "%s/queue/%s: cannot remove: %s (deleted at the "
                  "next start)", spool_dir_path(), name, strerror(errno));
    return -1;
}

/* Removes one message now (no batch, no sync). */
static void spool_reap_one(const char *id)
{
    if (spool_reap_unlink(id, "env") != 0)
        return; /* a message without its body would be quarantined at the next start */
    spool_reap_unlink(id, "st");
    spool_reap_unlink(id, "body");
}

/* Removes every message of `list` (see the steps above) and frees the items. */
static void spool_reap_batch(struct spool_reap_item *list)
{
    for (struct spool_reap_item *it = list; it; it = it->next)
        it->kept = spool_reap_unlink(it->id, "env") != 0;
    if (fsync(spool_queue_fd) != 0)
        log_write("spool", VIPMTA_LOG_WARNING, "%s/queue: fsync after removals: %s (a crash now "
                  "may deliver those messages again)", spool_dir_path(), strerror(errno));
    while (list) {
        struct spool_reap_item *it = list;
        list = it->next;
        if (!it->kept) {
            spool_reap_unlink(it->id, "st");
            spool_reap_unlink(it->id, "body");
        }
        free(it);
    }
}

/* Takes up to SPOOL_REAP_BATCH items off the list (lock held). */
static struct spool_reap_item *spool_reap_take(void)
{
    struct spool_reap_item *list = rp.head, **cut = &rp.head;
    for (int n = 0; *cut && n < SPOOL_REAP_BATCH; n++)
        cut = &(*cut)->next;
    rp.head = *cut;
    *cut = NULL;
    if (!rp.head)
        rp.tail = &rp.head;
    return list;
}

/* Lets removals gather for SPOOL_REAP_GATHER_MS unless someone waits for
 * them (lock held; hand-offs to a non-empty list do not signal). */
static void spool_reap_gather(void)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += SPOOL_REAP_GATHER_MS * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (!rp.stop && !rp.flushing &&
           pthread_cond_timedwait(&rp.work, &rp.lock, &until) != ETIMEDOUT)
        ;
}

static void *spool_reap_main(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&rp.lock);
    for (;;) {
        while (!rp.head && !rp.stop)
            pthread_cond_wait(&rp.work, &rp.lock);
        if (!rp.head)
            break; /* stopping and drained */
        spool_reap_gather();
        struct spool_reap_item *list = spool_reap_take();
        rp.busy = 1;
        pthread_mutex_unlock(&rp.lock);
        spool_reap_batch(list);
        pthread_mutex_lock(&rp.lock);
        rp.busy = 0;
        if (!rp.head)
            pthread_cond_broadcast(&rp.idle);
    }
    pthread_cond_broadcast(&rp.idle);
    pthread_mutex_unlock(&rp.lock);
    return NULL;
}

int spool_reap_start(void)
{
    rp.head = rp.batch = NULL;
    rp.tail = &rp.head;
    rp.batch_tail = &rp.batch;
    rp.stop = 0;
    rp.busy = 0;
    int rc = pthread_create(&rp.thread, NULL, spool_reap_main, NULL);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    rp.running = 1;
    return 0;
}

void spool_reap_handoff(void)
{
    if (!rp.batch)
        return;
    pthread_mutex_lock(&rp.lock);
    int wake = !rp.head; /* else the thread is gathering or busy: it comes back */
    *rp.tail = rp.batch;
    rp.tail = rp.batch_tail;
    if (wake)
        pthread_cond_signal(&rp.work);
    pthread_mutex_unlock(&rp.lock);
    rp.batch = NULL;
    rp.batch_tail = &rp.batch;
}

void spool_reap_stop(void)
{
    if (!rp.running)
        return;
    spool_reap_handoff();
    pthread_mutex_lock(&rp.lock);
    rp.stop = 1;
    pthread_cond_signal(&rp.work);
    pthread_mutex_unlock(&rp.lock);
    pthread_join(rp.thread, NULL);
    rp.running = 0;
}

int spool_reap_add(const char *id)
{
    if (!rp.running) {
        spool_reap_one(id);
        return 0;
    }
    struct spool_reap_item *it = calloc(1, sizeof(*it));
    if (!it) {
        spool_reap_one(id);
        return 0;
    }
    memcpy(it->id, id, SPOOL_ID_LEN);
    /* with the others of this loop iteration (spool_handoff) */
    int first = !rp.batch;
    *rp.batch_tail = it;
    rp.batch_tail = &it->next;
    if (first)
        spool_handoff_soon();
    return 0;
}

void spool_reap_flush(void)
{
    if (!rp.running)
        return;
    spool_reap_handoff();
    pthread_mutex_lock(&rp.lock);
    rp.flushing++;
    pthread_cond_signal(&rp.work); /* ends a gathering wait */
    while (rp.head || rp.busy)
        pthread_cond_wait(&rp.idle, &rp.lock);
    rp.flushing--;
    pthread_mutex_unlock(&rp.lock);
}
