/* spool.c: the spool's writers, outcome records and the group-commit sync thread. */
#include "spool_internal.h"
#include "log/log.h"
#include "control/control_stats.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int spool_queue_fd = -1;
int spool_quarantine_fd = -1;
int spool_verify_crc = 1;

/* One unit of work for the sync thread: files to make durable, then `done`.
 * A commit brings its envelope's text, and its body's too when the body was
 * kept in memory: the sync thread writes those files itself, so the loop
 * does no file I/O for them. Files the loop wrote (a large body, outcome
 * records) it closed right after writing; the sync thread reopens them by
 * name (fsync works on the inode), so a slow round never piles up open
 * descriptors. */
struct spool_sync_item {
    struct spool_sync_item *next;
    char id[SPOOL_ID_LEN + 1];
    int commit;                    /* ID.body + ID.env (a commit), else ID.st (a record) */
    int error;
    unsigned created;              /* commit: files this item created (SPOOL_MADE_*) */
    struct spool_buf env;          /* commit: the envelope's text */
    struct spool_buf body;         /* commit: the body, when it was kept in memory */
    spool_done_cb done;
    void *arg;
};
#define SPOOL_MADE_BODY 1
#define SPOOL_MADE_ENV 2

/* Files per batch opened by the sync thread at once (bounds its descriptors). */
#define SPOOL_SYNC_BATCH 256

enum spool_sync_method { SPOOL_SYNC_FSYNC, SPOOL_SYNC_SYNCFS };

static struct {
    char *dir;
    struct event_base *base;
    struct event *wake_ev;         /* the loop's side of `wake_fd` */
    struct event *handoff_ev;      /* activated by the first item of a loop iteration */
    struct spool_sync_item *batch, **batch_tail; /* items of this iteration (loop thread) */
    int wake_fd;                   /* eventfd: the sync thread signals finished rounds */
    int dir_lock_fd;               /* spool_dir itself, flock()ed: one daemon per spool */
    pthread_t thread;
    int thread_running;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct spool_sync_item *pending, **pending_tail;  /* waiting for the next round */
    struct spool_sync_item *finished, **finished_tail; /* synced, callbacks not yet run */
    int stop;
    int hold;                      /* spool_sync_hold: rounds wait */
    enum spool_sync_method method;
    struct spool_stats stats;
} sp = {
    .wake_fd = -1,
    .dir_lock_fd = -1,
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .cond = PTHREAD_COND_INITIALIZER,
};

/* ---- ids ---- */

/* Microseconds since the epoch (13 hex digits) and a counter (3 hex digits):
 * unique within the process and sorted by time. A clash with a file left by
 * an earlier run is caught by O_EXCL and the next id is used. */
static void spool_new_id(char out[SPOOL_ID_LEN + 1])
{
    static uint64_t last_us;
    static unsigned counter;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    uint64_t us = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
    if (us > last_us) {
        last_us = us;
        counter = 0;
    } else if (++counter > 0xfff) {
        last_us++;
        counter = 0;
    }
    snprintf(out, SPOOL_ID_LEN + 1, "%013" PRIx64 "%03x", (uint64_t)(last_us & 0xfffffffffffffull), counter);
}

/* ---- the sync thread ---- */

/* Record items of one message in a round share one ID.st sync: a small
 * open-addressing set of the ids seen. */
static int spool_seen_add(struct spool_sync_item **set, size_t cap, struct spool_sync_item *it,
                          struct spool_sync_item **first)
{
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < SPOOL_ID_LEN; i++)
        h = (h ^ (unsigned char)it->id[i]) * 1099511628211ULL;
    for (size_t i = (size_t)h & (cap - 1);; i = (i + 1) & (cap - 1)) {
        if (!set[i]) {
            set[i] = it;
            return 0;
        }
        if (memcmp(set[i]->id, it->id, SPOOL_ID_LEN) == 0) {
            *first = set[i];
            return 1;
        }
    }
}

/* Creates `ext` of the item and writes `b` to it; the fd, or -1 (the
 * item's error set). */
static int spool_sync_create(struct spool_sync_item *it, const char *ext, const struct spool_buf *b,
                             unsigned made)
{
    char name[SPOOL_ID_LEN + 8];
    spool_name(name, it->id, ext);
    int fd = openat(spool_queue_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        if (!it->error)
            it->error = errno;
        return -1;
    }
    it->created |= made;
    if (spool_write_all(fd, b->data, b->len) != 0) {
        if (!it->error)
            it->error = errno;
        close(fd);
        return -1;
    }
    return fd;
}

/* Opens what `it` has to make durable into v (at most 2 entries): a
 * commit's files (created and written here when their text came along),
 * else its ID.st (a record; it may be gone: the message was removed
 * meanwhile, which is fine). Returns the count. */
static size_t spool_sync_open(struct spool_sync_item *it, struct spool_fdsync *v)
{
    char name[SPOOL_ID_LEN + 8];
    size_t k = 0;
    int fd;
    if (it->commit) {
        if (it->body.data) {
            fd = spool_sync_create(it, "body", &it->body, SPOOL_MADE_BODY);
        } else {
            spool_name(name, it->id, "body");
            fd = openat(spool_queue_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
            if (fd < 0 && !it->error)
                it->error = errno;
        }
        if (fd < 0)
            return 0;
        v[k++] = (struct spool_fdsync){.fd = fd, .owner = it};
        fd = spool_sync_create(it, "env", &it->env, SPOOL_MADE_ENV);
        if (fd >= 0)
            v[k++] = (struct spool_fdsync){.fd = fd, .owner = it};
        return k;
    }
    spool_name(name, it->id, "st");
    fd = openat(spool_queue_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno != ENOENT && !it->error)
            it->error = errno;
        return 0;
    }
    v[k++] = (struct spool_fdsync){.fd = fd, .owner = it};
    return k;
}

/* Makes the files of items[0..n) durable, SPOOL_SYNC_BATCH descriptors at a
 * time (fdatasync on the helpers; with syncfs they are only written here);
 * errors go to their owners. Records of one message in one round share one
 * ID.st sync (share[i]: an earlier item of the same message). */
static size_t spool_sync_files(struct spool_sync_item **items, struct spool_sync_item **share,
                               size_t n, enum spool_sync_method method)
{
    struct spool_fdsync v[SPOOL_SYNC_BATCH];
    size_t k = 0, files = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || k + 2 > SPOOL_SYNC_BATCH) {
            if (method == SPOOL_SYNC_FSYNC)
                spool_pool_fdatasync(v, k);
            for (size_t j = 0; j < k; j++) {
                if (v[j].error && !v[j].owner->error)
                    v[j].owner->error = v[j].error;
                close(v[j].fd);
            }
            files += k;
            k = 0;
            if (i == n)
                break;
        }
        if (!share[i])
            k += spool_sync_open(items[i], v + k);
    }
    return files;
}

static void spool_sync_round(struct spool_sync_item *list, enum spool_sync_method method)
{
    struct timespec t0, t1;
    size_t items = 0, files = 0;
    int round_error = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (struct spool_sync_item *it = list; it; it = it->next)
        items++;
    size_t cap = 16;
    while (cap < 2 * items)
        cap *= 2;
    struct spool_sync_item **seen = calloc(cap, sizeof(*seen));
    struct spool_sync_item **share = calloc(items, sizeof(*share));
    struct spool_sync_item **v = calloc(items, sizeof(*v));
    if (!seen || !share || !v) {
        round_error = ENOMEM;
    } else {
        size_t i = 0;
        for (struct spool_sync_item *it = list; it; it = it->next, i++) {
            v[i] = it;
            if (!it->commit)
                spool_seen_add(seen, cap, it, &share[i]);
        }
        files = spool_sync_files(v, share, items, method);
        if (method == SPOOL_SYNC_SYNCFS) {
            /* one syncfs covers data and directory entries alike */
            if (syncfs(spool_queue_fd) != 0)
                round_error = errno;
        } else if (fsync(spool_queue_fd) != 0) {
            /* one directory sync for every entry created in this round */
            round_error = errno;
        }
        for (i = 0; i < items; i++)
            if (share[i] && !v[i]->error)
                v[i]->error = share[i]->error;
    }
    for (struct spool_sync_item *it = list; it; it = it->next)
        if (round_error && !it->error)
            it->error = round_error;
    free(seen);
    free(share);
    free(v);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    control_stats_sync_observe((uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000 +
                                  (t1.tv_nsec - t0.tv_nsec) / 1000));
    pthread_mutex_lock(&sp.lock);
    sp.stats.sync_rounds++;
    sp.stats.synced_items += files;
    sp.stats.sync_usec += (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000 +
                                     (t1.tv_nsec - t0.tv_nsec) / 1000);
    pthread_mutex_unlock(&sp.lock);
}

/* Appends a synced round to the finished list (lock held). */
static void spool_add_finished(struct spool_sync_item *list)
{
    *sp.finished_tail = list;
    while (*sp.finished_tail)
        sp.finished_tail = &(*sp.finished_tail)->next;
}

static void *spool_sync_main(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&sp.lock);
    for (;;) {
        while ((!sp.pending || sp.hold) && !sp.stop)
            pthread_cond_wait(&sp.cond, &sp.lock);
        if (!sp.pending)
            break; /* stopping and drained */
        /* the whole backlog is one round */
        struct spool_sync_item *list = sp.pending;
        sp.pending = NULL;
        sp.pending_tail = &sp.pending;
        enum spool_sync_method method = sp.method;
        pthread_mutex_unlock(&sp.lock);

        spool_sync_round(list, method);

        pthread_mutex_lock(&sp.lock);
        spool_add_finished(list);
        uint64_t one = 1;
        if (write(sp.wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
            log_write("spool", VIPMTA_LOG_ERROR, "cannot wake the event loop: %s", strerror(errno));
    }
    pthread_mutex_unlock(&sp.lock);
    return NULL;
}

/* Runs the callbacks of finished rounds, in order (loop thread). */
static void spool_run_finished(void)
{
    pthread_mutex_lock(&sp.lock);
    struct spool_sync_item *list = sp.finished;
    sp.finished = NULL;
    sp.finished_tail = &sp.finished;
    pthread_mutex_unlock(&sp.lock);
    while (list) {
        struct spool_sync_item *it = list;
        list = it->next;
        if (it->commit && it->error) {
            char name[SPOOL_ID_LEN + 8];
            log_write("spool", VIPMTA_LOG_ERROR, "%s/queue/%s: cannot make the message durable: "
                      "%s", sp.dir, it->id, strerror(it->error));
            /* only what is ours: a body created by the loop, or files this
             * item created (never a clashing file of someone else's) */
            if (it->created & SPOOL_MADE_ENV) {
                spool_name(name, it->id, "env");
                unlinkat(spool_queue_fd, name, 0);
            }
            if (!it->body.data || (it->created & SPOOL_MADE_BODY)) {
                spool_name(name, it->id, "body");
                unlinkat(spool_queue_fd, name, 0);
            }
        }
        if (it->commit && it->body.data) {
            if (it->error) {
                spool_mem_give_back(it->body.len);
                spool_buf_free(&it->body);
            } else {
                spool_mem_keep(it->id, &it->body); /* for delivery */
            }
        }
        spool_buf_free(&it->env);
        if (it->done)
            it->done(it->arg, it->error);
        free(it);
    }
}

static void spool_on_wake(evutil_socket_t fd, short what, void *unused)
{
    (void)what;
    (void)unused;
    uint64_t n;
    if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN && errno != EINTR)
        log_write("spool", VIPMTA_LOG_ERROR, "wake-up read: %s", strerror(errno));
    spool_run_finished();
}

/* Hands this iteration's items to the sync thread, and the removals to the
 * reap thread: one lock and one wake-up each per loop iteration, however
 * many messages it committed or finished. */
static void spool_handoff(void)
{
    if (sp.batch) {
        pthread_mutex_lock(&sp.lock);
        *sp.pending_tail = sp.batch;
        sp.pending_tail = sp.batch_tail;
        pthread_cond_signal(&sp.cond);
        pthread_mutex_unlock(&sp.lock);
        sp.batch = NULL;
        sp.batch_tail = &sp.batch;
    }
    spool_reap_handoff();
}

static void spool_on_handoff(evutil_socket_t fd, short what, void *unused)
{
    (void)fd;
    (void)what;
    (void)unused;
    spool_handoff();
}

void spool_handoff_soon(void)
{
    if (sp.handoff_ev)
        event_active(sp.handoff_ev, EV_TIMEOUT, 0); /* runs after this iteration's callbacks */
}

/* Hands an item to the next round, at the end of this loop iteration with
 * the others of the iteration. With the thread stopped (shutdown), the item
 * is synced and completed by spool_shutdown's drain. */
static void spool_enqueue(struct spool_sync_item *it)
{
    if (sp.thread_running && sp.handoff_ev) {
        int first = !sp.batch;
        *sp.batch_tail = it;
        sp.batch_tail = &it->next;
        if (first)
            spool_handoff_soon();
        return;
    }
    pthread_mutex_lock(&sp.lock);
    *sp.pending_tail = it;
    sp.pending_tail = &it->next;
    pthread_cond_signal(&sp.cond);
    pthread_mutex_unlock(&sp.lock);
}

static struct spool_sync_item *spool_item_new(const char *id, spool_done_cb done, void *arg)
{
    struct spool_sync_item *it = calloc(1, sizeof(*it));
    if (!it)
        return NULL;
    memcpy(it->id, id, SPOOL_ID_LEN);
    it->done = done;
    it->arg = arg;
    return it;
}

/* ---- init / shutdown ---- */

static int spool_mkdir(const char *path, char *errbuf, size_t errlen)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        snprintf(errbuf, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int spool_open_dir(const char *dir, const char *sub, char *errbuf, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    if (spool_mkdir(path, errbuf, errlen) != 0)
        return -1;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        snprintf(errbuf, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    /* writable? create and remove a probe file */
    int probe = openat(fd, ".probe", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (probe < 0) {
        snprintf(errbuf, errlen, "%s is not writable: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    close(probe);
    unlinkat(fd, ".probe", 0);
    return fd;
}

/* Takes the spool for this process: an exclusive flock() on the directory
 * itself (no file to own or clean up; the kernel drops it when the process
 * dies, kill -9 included). Two daemons on one spool would deliver and remove
 * each other's messages. */
static int spool_lock_dir(const char *dir, char *errbuf, size_t errlen)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        snprintf(errbuf, errlen, "cannot open it: %s", strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        close(fd);
        if (err == EWOULDBLOCK)
            snprintf(errbuf, errlen, "in use by another vipmta process (it holds the spool's "
                     "lock): stop that one first, or give this one a spool_dir of its own");
        else
            snprintf(errbuf, errlen, "cannot lock it: %s", strerror(err));
        return -1;
    }
    sp.dir_lock_fd = fd;
    return 0;
}

static void spool_close_all(void)
{
    if (sp.wake_ev)
        event_free(sp.wake_ev);
    sp.wake_ev = NULL;
    if (sp.handoff_ev)
        event_free(sp.handoff_ev);
    sp.handoff_ev = NULL;
    if (sp.wake_fd >= 0)
        close(sp.wake_fd);
    sp.wake_fd = -1;
    if (spool_queue_fd >= 0)
        close(spool_queue_fd);
    if (spool_quarantine_fd >= 0)
        close(spool_quarantine_fd);
    spool_queue_fd = spool_quarantine_fd = -1;
    if (sp.dir_lock_fd >= 0)
        close(sp.dir_lock_fd); /* releases the lock */
    sp.dir_lock_fd = -1;
    free(sp.dir);
    sp.dir = NULL;
    sp.base = NULL;
}

int spool_init(const char *spool_dir, struct event_base *base, char *errbuf, size_t errlen)
{
    if (sp.dir) {
        snprintf(errbuf, errlen, "spool already initialised");
        return -1;
    }
    if (!spool_dir || !*spool_dir || !base) {
        snprintf(errbuf, errlen, "no spool directory or event loop");
        return -1;
    }
    if (spool_mkdir(spool_dir, errbuf, errlen) != 0)
        return -1;
    if (spool_lock_dir(spool_dir, errbuf, errlen) != 0)
        return -1;
    sp.dir = strdup(spool_dir);
    sp.base = base;
    sp.pending = sp.finished = sp.batch = NULL;
    sp.pending_tail = &sp.pending;
    sp.batch_tail = &sp.batch;
    sp.finished_tail = &sp.finished;
    sp.stop = 0;
    memset(&sp.stats, 0, sizeof(sp.stats));
    if (!sp.dir)
        goto nomem;
    if ((spool_queue_fd = spool_open_dir(spool_dir, "queue", errbuf, errlen)) < 0 ||
        (spool_quarantine_fd = spool_open_dir(spool_dir, "quarantine", errbuf, errlen)) < 0)
        goto fail;
    sp.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (sp.wake_fd < 0) {
        snprintf(errbuf, errlen, "eventfd: %s", strerror(errno));
        goto fail;
    }
    sp.wake_ev = event_new(base, sp.wake_fd, EV_READ | EV_PERSIST, spool_on_wake, NULL);
    if (!sp.wake_ev || event_add(sp.wake_ev, NULL) != 0)
        goto nomem;
    sp.handoff_ev = event_new(base, -1, 0, spool_on_handoff, NULL);
    if (!sp.handoff_ev)
        goto nomem;
    if (spool_pool_start() != 0) {
        snprintf(errbuf, errlen, "cannot start the sync helpers: %s", strerror(errno));
        goto fail;
    }
    if (spool_reap_start() != 0) {
        spool_pool_stop();
        snprintf(errbuf, errlen, "cannot start the removal thread: %s", strerror(errno));
        goto fail;
    }
    int rc = pthread_create(&sp.thread, NULL, spool_sync_main, NULL);
    if (rc != 0) {
        spool_reap_stop();
        spool_pool_stop();
        snprintf(errbuf, errlen, "cannot start the sync thread: %s", strerror(rc));
        goto fail;
    }
    sp.thread_running = 1;
    return 0;
nomem:
    snprintf(errbuf, errlen, "out of memory");
fail:
    spool_close_all();
    return -1;
}

void spool_shutdown(void)
{
    if (!sp.dir)
        return;
    spool_handoff(); /* what this iteration handed over */
    if (sp.thread_running) {
        pthread_mutex_lock(&sp.lock);
        sp.stop = 1;
        pthread_cond_signal(&sp.cond);
        pthread_mutex_unlock(&sp.lock);
        pthread_join(sp.thread, NULL);
        sp.thread_running = 0;
    }
    /* completions may queue more work (a DSN, a record): drain it here */
    for (;;) {
        spool_run_finished();
        pthread_mutex_lock(&sp.lock);
        struct spool_sync_item *list = sp.pending;
        sp.pending = NULL;
        sp.pending_tail = &sp.pending;
        pthread_mutex_unlock(&sp.lock);
        if (!list)
            break;
        spool_sync_round(list, sp.method);
        pthread_mutex_lock(&sp.lock);
        spool_add_finished(list);
        pthread_mutex_unlock(&sp.lock);
    }
    spool_reap_stop();
    spool_pool_stop();
    spool_mem_clear();
    spool_close_all();
}

int spool_set_sync_method(const char *method)
{
    enum spool_sync_method m;
    if (method && strcmp(method, "fsync") == 0)
        m = SPOOL_SYNC_FSYNC;
    else if (method && strcmp(method, "syncfs") == 0)
        m = SPOOL_SYNC_SYNCFS;
    else
        return -1;
    pthread_mutex_lock(&sp.lock);
    sp.method = m;
    pthread_mutex_unlock(&sp.lock);
    return 0;
}

void spool_sync_hold(int on)
{
    if (!on)
        spool_handoff(); /* tests: what they committed meanwhile is one round */
    pthread_mutex_lock(&sp.lock);
    sp.hold = on != 0;
    pthread_cond_signal(&sp.cond);
    pthread_mutex_unlock(&sp.lock);
}

void spool_set_verify_crc(int on)
{
    spool_verify_crc = on != 0;
}

void spool_get_stats(struct spool_stats *out)
{
    pthread_mutex_lock(&sp.lock);
    *out = sp.stats;
    pthread_mutex_unlock(&sp.lock);
}

/* ---- writers ---- */

struct spool_writer {
    int fd;                        /* the body's file, -1 while the body is in memory */
    char id[SPOOL_ID_LEN + 1];
    uint64_t size;
    uint32_t crc;
    unsigned char high;  /* every byte written, OR-ed: bit 7 set means 8-bit content */
    unsigned in_memory : 1;        /* the body is in `mem` (no file yet) */
    unsigned file_made : 1;        /* the body's file was created by this writer */
    struct spool_buf mem;
};

/* Creates the body's file (O_EXCL: a clash with a file left by an earlier
 * run takes the next id while nothing was acknowledged). 0, or -1 with errno. */
static int spool_writer_create(struct spool_writer *w, int new_ids)
{
    char name[SPOOL_ID_LEN + 8];
    for (int tries = 0; tries < 100; tries++) {
        if (new_ids)
            spool_new_id(w->id);
        spool_name(name, w->id, "body");
        w->fd = openat(spool_queue_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (w->fd >= 0 || errno != EEXIST || !new_ids)
            break;
    }
    w->file_made = w->fd >= 0;
    return w->fd >= 0 ? 0 : -1;
}

struct spool_writer *spool_writer_open(void)
{
    if (spool_queue_fd < 0) {
        errno = EBADF;
        return NULL;
    }
    struct spool_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->fd = -1;
    if (spool_mem_message_max() > 0) {
        /* in memory until it is too large: the file is made at the commit */
        spool_new_id(w->id);
        w->in_memory = 1;
        return w;
    }
    if (spool_writer_create(w, 1) == 0)
        return w;
    int saved = errno;
    free(w);
    errno = saved;
    return NULL;
}

const char *spool_writer_id(const struct spool_writer *w)
{
    return w->id;
}

ssize_t spool_writer_pread(const struct spool_writer *w, void *buf, size_t len, uint64_t offset)
{
    if (offset >= w->size)
        return 0;
    if (len > w->size - offset)
        len = (size_t)(w->size - offset);
    if (w->mem.data) {
        memcpy(buf, w->mem.data + offset, len);
        return (ssize_t)len;
    }
    if (w->fd < 0) {
        errno = EBADF;
        return -1;
    }
    for (;;) {
        ssize_t n = pread(w->fd, buf, len, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue;
        return n;
    }
}

uint64_t spool_writer_size(const struct spool_writer *w)
{
    return w->size;
}

/* The body outgrew the memory bound: to its file, with what was kept. */
static int spool_writer_spill(struct spool_writer *w)
{
    w->in_memory = 0;
    int rc = spool_writer_create(w, 0);
    if (rc == 0 && w->mem.len)
        rc = spool_write_all(w->fd, w->mem.data, w->mem.len);
    int saved = errno;
    spool_mem_give_back(w->mem.len);
    spool_buf_free(&w->mem);
    errno = saved;
    return rc;
}

int spool_writer_write(struct spool_writer *w, const void *data, size_t len)
{
    if (w->in_memory) {
        if (w->size + len <= spool_mem_message_max() && spool_mem_take(len) == 0) {
            if (spool_buf_add(&w->mem, data, len) != 0) {
                spool_mem_give_back(len);
                return -1;
            }
        } else {
            spool_mem_spilled();
            if (spool_writer_spill(w) != 0)
                return -1;
        }
    }
    if (!w->in_memory && spool_write_all(w->fd, data, len) != 0)
        return -1;
    w->crc = spool_crc32(w->crc, data, len);
    for (size_t i = 0; i < len && !(w->high & 0x80); i++)
        w->high |= ((const unsigned char *)data)[i];
    w->size += len;
    return 0;
}

/* No more writes: closes the body's file, if any. */
static void spool_writer_end(struct spool_writer *w)
{
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
    }
    if (w->in_memory && !w->mem.data)
        w->mem.data = calloc(1, 1); /* an empty body is still a body in memory */
    w->in_memory = 0;
}

int spool_writer_close_body(struct spool_writer *w)
{
    if (!w)
        return 0;
    if (w->in_memory && spool_writer_spill(w) != 0)
        return -1;
    spool_writer_end(w);
    return 0;
}

/* Removes the body's file, if this writer made one (an open descriptor
 * still reads it). */
static void spool_writer_remove_file(struct spool_writer *w)
{
    if (!w->file_made)
        return;
    char name[SPOOL_ID_LEN + 8];
    spool_name(name, w->id, "body");
    unlinkat(spool_queue_fd, name, 0);
    w->file_made = 0;
}

void spool_writer_unlink(struct spool_writer *w)
{
    if (w)
        spool_writer_remove_file(w);
}

void spool_writer_abort(struct spool_writer *w)
{
    if (!w)
        return;
    spool_writer_end(w);
    spool_writer_remove_file(w);
    spool_mem_give_back(w->mem.len);
    spool_buf_free(&w->mem);
    free(w);
}

int spool_writer_commit(struct spool_writer *w, struct spool_envelope *env, spool_done_cb done,
                        void *arg)
{
    struct spool_sync_item *it = NULL;
    int saved;

    /* a message without recipients (or with an empty one) would only be
     * quarantined at the next start: refuse it now */
    errno = 0;
    if (!env->rcpts || env->rcpt_count == 0) {
        errno = EINVAL;
        goto fail;
    }
    for (size_t i = 0; i < env->rcpt_count; i++)
        if (!env->rcpts[i].address || !env->rcpts[i].address[0]) {
            errno = EINVAL;
            goto fail;
        }
    memcpy(env->id, w->id, SPOOL_ID_LEN + 1);
    env->body_size = w->size;
    env->body_crc = w->crc;
    env->eightbit = (w->high & 0x80) != 0;
    if (env->received == 0)
        env->received = time(NULL);
    if (!(it = spool_item_new(w->id, done, arg)) || spool_env_format(env, &it->env) != 0)
        goto fail;
    int body_in_memory = w->in_memory || w->mem.data;
    spool_writer_end(w);
    if (body_in_memory) {
        if (!w->mem.data && !(w->mem.data = calloc(1, 1)))
            goto fail;
        it->body = w->mem; /* the sync thread writes it; kept for delivery after */
        w->mem = (struct spool_buf){0};
    }
    it->commit = 1;
    free(w);
    spool_enqueue(it);
    return 0;
fail:
    saved = errno;
    if (it)
        spool_buf_free(&it->env);
    free(it);
    spool_writer_abort(w);
    errno = saved ? saved : EIO;
    return -1;
}

/* ---- outcome records ---- */

/* Appends one line to ID.st (created if needed). 0, or -1 with errno. */
static int spool_st_append(const char *id, const char *line, size_t len)
{
    char name[SPOOL_ID_LEN + 8];
    spool_name(name, id, "st");
    int fd = openat(spool_queue_fd, name, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    int rc = spool_write_all(fd, line, len);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

/* Appends `line` to ID.st and queues it for the next group sync; `done` runs
 * once it is durable. */
static int spool_record_synced(const char *id, const char *line, size_t len, spool_done_cb done,
                               void *arg)
{
    if (spool_queue_fd < 0 || !id || !spool_id_valid(id)) {
        errno = EINVAL;
        return -1;
    }
    struct spool_sync_item *it = spool_item_new(id, done, arg);
    if (!it)
        return -1;
    if (spool_st_append(id, line, len) != 0) {
        int saved = errno;
        free(it);
        errno = saved;
        return -1;
    }
    /* records of one message in one round share one fdatasync */
    spool_enqueue(it);
    return 0;
}

static int spool_record_final(const char *id, char kind, unsigned rcpt_index, spool_done_cb done,
                              void *arg)
{
    char line[64];
    int len = snprintf(line, sizeof(line), "%c %u %lld\n", kind, rcpt_index, (long long)time(NULL));
    return spool_record_synced(id, line, (size_t)len, done, arg);
}

int spool_record_bouncing(const char *id, unsigned rcpt_index, const char *dsn_id,
                          spool_done_cb done, void *arg)
{
    char line[64];
    if (!dsn_id || strlen(dsn_id) != SPOOL_ID_LEN || !spool_id_valid(dsn_id)) {
        errno = EINVAL;
        return -1;
    }
    int len = snprintf(line, sizeof(line), "F %u %s\n", rcpt_index, dsn_id);
    return spool_record_synced(id, line, (size_t)len, done, arg);
}

int spool_record_delivered(const char *id, unsigned rcpt_index, spool_done_cb done, void *arg)
{
    return spool_record_final(id, 'D', rcpt_index, done, arg);
}

int spool_record_bounced(const char *id, unsigned rcpt_index, spool_done_cb done, void *arg)
{
    return spool_record_final(id, 'B', rcpt_index, done, arg);
}

int spool_record_binding(const char *id, const char *binding, const char *group)
{
    char line[1024];
    if (spool_queue_fd < 0 || !id || !spool_id_valid(id) || !binding) {
        errno = EINVAL;
        return -1;
    }
    int len = spool_st_binding_line(line, sizeof(line), binding, group);
    if (len < 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return spool_st_append(id, line, (size_t)len);
}

int spool_record_deferred(const char *id, unsigned rcpt_index, unsigned attempts,
                          time_t next_attempt)
{
    char line[80];
    if (spool_queue_fd < 0 || !id || !spool_id_valid(id)) {
        errno = EINVAL;
        return -1;
    }
    int len = snprintf(line, sizeof(line), "T %u %u %lld\n", rcpt_index, attempts,
                       (long long)next_attempt);
    return spool_st_append(id, line, (size_t)len);
}

int spool_remove(const char *id)
{
    if (spool_queue_fd < 0 || !id || !spool_id_valid(id)) {
        errno = EINVAL;
        return -1;
    }
    spool_mem_drop(id);
    /* off the loop thread: ID.env first (the commit point), see spool_reap.c */
    return spool_reap_add(id);
}

int spool_open_body(const char *id)
{
    char name[SPOOL_ID_LEN + 8];
    if (spool_queue_fd < 0 || !id || !spool_id_valid(id)) {
        errno = EINVAL;
        return -1;
    }
    spool_name(name, id, "body");
    return openat(spool_queue_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
}

const char *spool_dir_path(void)
{
    return sp.dir;
}
