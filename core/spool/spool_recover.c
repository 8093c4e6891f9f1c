/* spool_recover.c: reloading the spool at startup: checks, quarantine, orphan cleanup. */
#include "spool_internal.h"
#include "log/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SPOOL_HAS_ENV 1
#define SPOOL_HAS_BODY 2
#define SPOOL_HAS_ST 4

#define SPOOL_CRC_CHUNK (256 * 1024)

struct spool_entry {
    char id[SPOOL_ID_LEN + 1];
    unsigned char kind;
};

static int spool_entry_cmp(const void *a, const void *b)
{
    const struct spool_entry *x = a, *y = b;
    int c = memcmp(x->id, y->id, SPOOL_ID_LEN);
    return c ? c : (int)x->kind - (int)y->kind;
}

static const char *spool_kind_ext(unsigned kind)
{
    return kind == SPOOL_HAS_ENV ? "env" : kind == SPOOL_HAS_BODY ? "body" : "st";
}

/* Moves every ID.* file present to quarantine/, with one log line. */
static void spool_quarantine(const char *id, unsigned kinds, const char *reason)
{
    char name[SPOOL_ID_LEN + 8];
    const char *dir = spool_dir_path();
    log_write("spool", VIPMTA_LOG_WARNING, "%s/queue/%s.env: %s: moved %s.* to %s/quarantine/",
              dir, id, reason, id, dir);
    for (unsigned k = SPOOL_HAS_ENV; k <= SPOOL_HAS_ST; k <<= 1) {
        if (!(kinds & k))
            continue;
        spool_name(name, id, spool_kind_ext(k));
        if (renameat(spool_queue_fd, name, spool_quarantine_fd, name) != 0)
            log_write("spool", VIPMTA_LOG_ERROR, "%s/queue/%s: cannot move to quarantine: %s",
                      dir, name, strerror(errno));
    }
}

int spool_body_check(const struct spool_envelope *env, unsigned char *buf, size_t buflen,
                     char *errbuf, size_t errlen)
{
    char name[SPOOL_ID_LEN + 8];
    struct stat st;
    spool_name(name, env->id, "body");
    int fd = openat(spool_queue_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(errbuf, errlen, "body %s: %s", name, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if ((uint64_t)st.st_size != env->body_size) {
        snprintf(errbuf, errlen, "body %s is %lld bytes, the envelope says %llu", name,
                 (long long)st.st_size, (unsigned long long)env->body_size);
        close(fd);
        return -1;
    }
    if (spool_verify_crc) {
        uint32_t crc = 0;
        uint64_t total = 0;
        for (;;) {
            ssize_t n = read(fd, buf, buflen);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                snprintf(errbuf, errlen, "body %s: read: %s", name, strerror(errno));
                close(fd);
                return -1;
            }
            if (n == 0)
                break;
            crc = spool_crc32(crc, buf, (size_t)n);
            total += (uint64_t)n;
        }
        if (total != env->body_size || crc != env->body_crc) {
            snprintf(errbuf, errlen, "body %s: CRC-32 %08x, the envelope says %08x", name,
                     (unsigned)crc, (unsigned)env->body_crc);
            close(fd);
            return -1;
        }
    }
    close(fd);
    return 0;
}

/* Deletes the files of a message that was never committed. */
static void spool_remove_orphan(const char *id, unsigned kinds)
{
    char name[SPOOL_ID_LEN + 8];
    for (unsigned k = SPOOL_HAS_BODY; k <= SPOOL_HAS_ST; k <<= 1) {
        if (!(kinds & k))
            continue;
        spool_name(name, id, spool_kind_ext(k));
        log_write("spool", VIPMTA_LOG_NOTICE, "%s/queue/%s: no envelope (%s): deleted",
                  spool_dir_path(), name, k == SPOOL_HAS_BODY
                  ? "never committed, never acknowledged" : "left from a removed message");
        if (unlinkat(spool_queue_fd, name, 0) != 0 && errno != ENOENT)
            log_write("spool", VIPMTA_LOG_ERROR, "%s/queue/%s: cannot delete: %s",
                      spool_dir_path(), name, strerror(errno));
    }
}

/* Lists queue/ as (id, kind) pairs sorted by id; 0, or -1 with errno. */
static int spool_scan(struct spool_entry **out, size_t *count)
{
    int dfd = dup(spool_queue_fd);
    if (dfd < 0)
        return -1;
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return -1;
    }
    rewinddir(d);
    struct spool_entry *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d))) {
        const char *nm = de->d_name;
        if (nm[0] == '.')
            continue; /* ".", "..", our own ".probe" */
        unsigned kind = 0;
        if (strlen(nm) > SPOOL_ID_LEN && spool_id_valid(nm)) {
            const char *ext = nm + SPOOL_ID_LEN + 1;
            kind = !strcmp(ext, "env") ? SPOOL_HAS_ENV : !strcmp(ext, "body") ? SPOOL_HAS_BODY
                 : !strcmp(ext, "st") ? SPOOL_HAS_ST : 0;
        }
        if (!kind) {
            log_write("spool", VIPMTA_LOG_WARNING, "%s/queue/%s: not a spool file: left alone",
                      spool_dir_path(), nm);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            struct spool_entry *g = realloc(v, cap * sizeof(*v));
            if (!g) {
                free(v);
                closedir(d);
                errno = ENOMEM;
                return -1;
            }
            v = g;
        }
        memcpy(v[n].id, nm, SPOOL_ID_LEN);
        v[n].id[SPOOL_ID_LEN] = '\0';
        v[n].kind = (unsigned char)kind;
        n++;
        errno = 0;
    }
    int saved = errno;
    closedir(d);
    if (saved) {
        free(v);
        errno = saved;
        return -1;
    }
    if (n)
        qsort(v, n, sizeof(*v), spool_entry_cmp);
    *out = v;
    *count = n;
    return 0;
}

int spool_recover(void (*cb)(void *arg, struct spool_envelope *env), void *arg,
                  struct spool_recover_stats *stats)
{
    struct spool_recover_stats local = {0};
    char reason[512];
    size_t count = 0;

    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof(*stats));
    if (spool_queue_fd < 0) {
        log_write("spool", VIPMTA_LOG_ERROR, "recovery: the spool is not initialised");
        errno = EBADF;
        return -1;
    }
    struct spool_entry *v = NULL;
    if (spool_scan(&v, &count) != 0) {
        log_write("spool", VIPMTA_LOG_ERROR, "%s/queue: cannot list: %s", spool_dir_path(),
                  strerror(errno));
        return -1;
    }
    unsigned char *buf = spool_verify_crc ? malloc(SPOOL_CRC_CHUNK) : NULL;
    if (spool_verify_crc && !buf) {
        free(v);
        log_write("spool", VIPMTA_LOG_ERROR, "recovery: out of memory");
        return -1;
    }
    for (size_t i = 0; i < count;) {
        const char *id = v[i].id;
        unsigned kinds = 0;
        size_t j = i;
        for (; j < count && memcmp(v[j].id, id, SPOOL_ID_LEN) == 0; j++)
            kinds |= v[j].kind;
        i = j;
        if (!(kinds & SPOOL_HAS_ENV)) {
            spool_remove_orphan(id, kinds);
            continue;
        }
        struct spool_envelope *env = spool_env_load(id, reason, sizeof(reason));
        if (!env) {
            spool_quarantine(id, kinds, reason);
            stats->quarantined++;
            continue;
        }
        if (!(kinds & SPOOL_HAS_BODY)) {
            snprintf(reason, sizeof(reason), "body %s.body is missing", id);
            spool_envelope_free(env);
            spool_quarantine(id, kinds, reason);
            stats->quarantined++;
            continue;
        }
        if (spool_body_check(env, buf, SPOOL_CRC_CHUNK, reason, sizeof(reason)) != 0) {
            spool_envelope_free(env);
            spool_quarantine(id, kinds, reason);
            stats->quarantined++;
            continue;
        }
        if ((kinds & SPOOL_HAS_ST) && spool_st_apply(env, 1) != 0) {
            snprintf(reason, sizeof(reason), "%s.st unreadable: %s", id,
                     errno == ELOOP    ? "it is a symbolic link"
                     : errno == EINVAL ? "it is not a regular file with one link"
                                       : strerror(errno));
            spool_envelope_free(env);
            spool_quarantine(id, kinds, reason);
            stats->quarantined++;
            continue;
        }
        size_t pending = 0;
        for (size_t r = 0; r < env->rcpt_count; r++)
            pending += env->rcpts[r].state == SPOOL_RCPT_PENDING;
        if (pending == 0) {
            spool_remove(env->id);
            spool_envelope_free(env);
            stats->removed++;
            continue;
        }
        stats->messages++;
        stats->recipients_pending += pending;
        if (cb)
            cb(arg, env);
        else
            spool_envelope_free(env);
    }
    free(buf);
    free(v);
    spool_reap_flush(); /* the all-final messages are gone when recovery returns */
    return 0;
}
