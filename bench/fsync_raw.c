/* fsync_raw.c: reference spool writer: N files of S bytes, fsync per message or one sync round per batch of K. */
/*
 * Built by bench/accept.sh with cc (not part of the autotools build).
 *
 *   fsync_raw [-n COUNT] [-s SIZE] [-k BATCH] [-m fsync|syncfs] [-j THREADS] [-T SECONDS] DIR
 *
 * Writes COUNT messages of SIZE bytes as separate new files in a fresh
 * subdirectory of DIR, the way a naive MTA spools mail:
 *   -k 1 (default): per message: create, write, fsync(file), close,
 *                   fsync(directory)  -> 2 syncs per message
 *   -k K, -m fsync: per batch of K: create and write K files, fsync each,
 *                   close them, one fsync(directory) for all their entries;
 *                   with -j J the K fsyncs are issued by J threads at once
 *                   (a sync pool), which lets the filesystem journal merge
 *                   them into fewer commits
 *   -k K, -m syncfs: per batch of K: create and write K files, one syncfs()
 *                   of the filesystem, close them, one fsync(directory)
 * The batched forms are what group commit can reach: the same durability
 * before acknowledging, shared by the K messages of a round.
 *
 * Stops early when SECONDS (default 120) have passed, so a slow disk cannot
 * run the bench forever; the rate is computed over the messages written.
 * Prints one line:
 *   fsync_raw mode=M batch=K size=S messages=N seconds=T msgs_per_s=R syncs=X
 * The files are removed afterwards (not timed).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *path)
{
    fprintf(stderr, "fsync_raw: %s %s: %s\n", what, path ? path : "", strerror(errno));
    exit(1);
}

/* The fsync pool: each worker fsyncs every J-th descriptor of the round. */
struct pool_job {
    int *fds;
    unsigned long k, start, step;
};

static void *pool_worker(void *arg)
{
    struct pool_job *j = arg;
    for (unsigned long i = j->start; i < j->k; i += j->step)
        if (fsync(j->fds[i]) != 0)
            die("fsync", "(pool)");
    return NULL;
}

static void fsync_parallel(int *fds, unsigned long k, unsigned long threads)
{
    pthread_t tid[64];
    struct pool_job jobs[64];
    if (threads > k)
        threads = k;
    for (unsigned long t = 0; t < threads; t++) {
        jobs[t] = (struct pool_job){fds, k, t, threads};
        if (pthread_create(&tid[t], NULL, pool_worker, &jobs[t]) != 0)
            die("pthread_create", NULL);
    }
    for (unsigned long t = 0; t < threads; t++)
        pthread_join(tid[t], NULL);
}

static void usage(void)
{
    fprintf(stderr, "usage: fsync_raw [-n COUNT] [-s SIZE] [-k BATCH] [-m fsync|syncfs] "
                    "[-j THREADS] [-T SECONDS] DIR\n");
    exit(2);
}

/* A message-like body: 76-character lines ending in CRLF. */
static char *make_body(size_t size)
{
    char *b = malloc(size ? size : 1);
    if (!b)
        die("malloc", NULL);
    for (size_t i = 0; i < size; i++) {
        size_t col = i % 78;
        b[i] = col == 76 ? '\r' : col == 77 ? '\n' : (char)('a' + (i / 78 + col) % 26);
    }
    return b;
}

static void write_all(int fd, const char *buf, size_t len, const char *path)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("write", path);
        }
        buf += n;
        len -= (size_t)n;
    }
}

int main(int argc, char **argv)
{
    unsigned long count = 2000, batch = 1, threads = 1;
    size_t size = 1024;
    double limit = 120;
    int use_syncfs = 0;
    int opt;

    while ((opt = getopt(argc, argv, "n:s:k:m:j:T:")) != -1) {
        switch (opt) {
        case 'n': count = strtoul(optarg, NULL, 10); break;
        case 's': size = strtoul(optarg, NULL, 10); break;
        case 'k': batch = strtoul(optarg, NULL, 10); break;
        case 'j': threads = strtoul(optarg, NULL, 10); break;
        case 'T': limit = strtod(optarg, NULL); break;
        case 'm':
            if (strcmp(optarg, "fsync") == 0)
                use_syncfs = 0;
            else if (strcmp(optarg, "syncfs") == 0)
                use_syncfs = 1;
            else
                usage();
            break;
        default: usage();
        }
    }
    if (optind + 1 != argc || count == 0 || batch == 0 || limit <= 0)
        usage();
    if (batch > 4096)
        batch = 4096;
    if (threads < 1)
        threads = 1;
    if (threads > 64)
        threads = 64;

    char dir[4096];
    snprintf(dir, sizeof dir, "%s/fsync_raw.%ld", argv[optind], (long)getpid());
    if (mkdir(dir, 0700) != 0)
        die("mkdir", dir);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd < 0)
        die("open", dir);

    char *body = make_body(size);
    int *fds = calloc(batch, sizeof *fds);
    if (!fds)
        die("calloc", NULL);
    char path[4200];
    unsigned long done = 0, syncs = 0;
    double t0 = now_s(), t1 = t0;

    while (done < count) {
        unsigned long k = count - done < batch ? count - done : batch;
        for (unsigned long i = 0; i < k; i++) {
            snprintf(path, sizeof path, "%s/m%08lu", dir, done + i);
            fds[i] = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            if (fds[i] < 0)
                die("open", path);
            write_all(fds[i], body, size, path);
            if (batch == 1) {
                if (fsync(fds[i]) != 0)
                    die("fsync", path);
                syncs++;
            }
        }
        if (batch > 1) {
            if (use_syncfs) {
                if (syncfs(dfd) != 0)
                    die("syncfs", dir);
                syncs++;
            } else if (threads > 1) {
                fsync_parallel(fds, k, threads);
                syncs += k;
            } else {
                for (unsigned long i = 0; i < k; i++) {
                    if (fsync(fds[i]) != 0)
                        die("fsync", dir);
                    syncs++;
                }
            }
        }
        for (unsigned long i = 0; i < k; i++)
            close(fds[i]);
        if (fsync(dfd) != 0)
            die("fsync", dir);
        syncs++;
        done += k;
        t1 = now_s();
        if (t1 - t0 >= limit)
            break;
    }

    double secs = t1 - t0;
    const char *mode = batch == 1 ? "per-message" : use_syncfs ? "batch-syncfs" : "batch-fsync";
    printf("fsync_raw mode=%s batch=%lu threads=%lu size=%zu messages=%lu seconds=%.3f "
           "msgs_per_s=%.1f syncs=%lu%s\n",
           mode, batch, batch > 1 && !use_syncfs ? threads : 1, size, done, secs, secs > 0 ? (double)done / secs : 0.0, syncs,
           done < count ? " (stopped at the time limit)" : "");
    fflush(stdout);

    for (unsigned long i = 0; i < done; i++) {
        snprintf(path, sizeof path, "%s/m%08lu", dir, i);
        unlink(path);
    }
    close(dfd);
    rmdir(dir);
    free(fds);
    free(body);
    return 0;
}
