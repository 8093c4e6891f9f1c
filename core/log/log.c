/* log.c: the main log (text or JSON lines to stderr, a file or syslog) and the JSON delivery log. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <event2/event.h>

static enum vipmta_log_level current_level = VIPMTA_LOG_INFO;
/* Held while a line is written and while a stream is opened, replaced or
 * closed: the spool's threads log too, and a reload or SIGHUP replaces the
 * streams on the loop thread. Nothing logs while holding it. */
static pthread_mutex_t stream_lock = PTHREAD_MUTEX_INITIALIZER;
static int use_syslog;
static FILE *delivery_stream;  /* delivery_log, or NULL: the main log */
static char *delivery_path;     /* for log_reopen */
static int json_format;         /* main log as JSON lines */
static FILE *main_stream;       /* log_file, or NULL: stderr / syslog */
static char *main_path;

/* The writer thread (log_thread_start): lines are queued in memory and
 * written by it, a batch at a time, so that the event loop never waits for a
 * log write and writes once per batch instead of once per line. Without it
 * (before the start, after the stop, in the tools) lines are written at once. */
enum log_dest { LOG_DEST_MAIN, LOG_DEST_DELIVERY };
#define LOG_QUEUE_MAX (4u << 20) /* bytes queued at most: past it, loggers wait */
struct log_chunk {
    char *data;
    size_t len, cap;
};
static struct {
    pthread_mutex_t lock;          /* the queue; never held while writing */
    pthread_cond_t work, room, idle;
    pthread_t thread;
    int running, stop, busy;
    struct log_chunk q[2];         /* by enum log_dest */
    /* the event loop's lines wake the thread once per loop iteration */
    pthread_t loop_thread;
    struct event *kick;
    int kicked;                    /* loop thread only */
} lw = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .work = PTHREAD_COND_INITIALIZER,
    .room = PTHREAD_COND_INITIALIZER,
    .idle = PTHREAD_COND_INITIALIZER,
};

static const char *const level_names[] = {"error", "warning", "notice", "info", "debug"};
static const int syslog_priorities[] = {LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG};

void log_set_level(enum vipmta_log_level level)
{
    current_level = level;
}

void log_use_syslog(int on)
{
    if (on && !use_syslog)
        openlog("vipmta", LOG_PID | LOG_NDELAY, LOG_MAIL);
    else if (!on && use_syslog)
        closelog();
    use_syslog = on;
}

int log_level_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
        if (name && strcmp(name, level_names[i]) == 0)
            return (int)i;
    return -1;
}

int vipmta_log_enabled(enum vipmta_log_level level)
{
    return level <= current_level;
}

static void log_format_time(char *buf, size_t len)
{
    struct timeval tv;
    struct tm tm;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03ldZ", (long)(tv.tv_usec / 1000));
}

/* One JSON object: {"ts","level","component","msg"}. Jansson escapes quotes,
 * backslashes and control characters; bytes that are not UTF-8 become '?'. */
static char *log_json_line(const char *when, const char *level, const char *component,
                           char *msg)
{
    json_t *obj = json_object();
    json_t *m = json_string(msg);
    if (!m) {
        for (unsigned char *p = (unsigned char *)msg; *p; p++)
            if (*p >= 0x80)
                *p = '?';
        m = json_string(msg);
    }
    json_t *c = json_string(component);
    if (!c)
        c = json_string("?");
    if (!obj || !m || !c) {
        json_decref(obj);
        json_decref(m);
        json_decref(c);
        return NULL;
    }
    if (when)
        json_object_set_new(obj, "ts", json_string(when));
    json_object_set_new(obj, "level", json_string(level));
    json_object_set_new(obj, "component", c);
    json_object_set_new(obj, "msg", m);
    char *line = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    return line;
}

/* The stream for `dest` now (stream_lock held); NULL: syslog. */
static FILE *log_stream(enum log_dest dest)
{
    if (dest == LOG_DEST_DELIVERY && delivery_stream)
        return delivery_stream;
    if (main_stream)
        return main_stream;
    if (dest == LOG_DEST_DELIVERY && use_syslog)
        return NULL;
    return stderr;
}

/* Writes `len` bytes of whole lines to `dest` (stream_lock held). */
static void log_put(enum log_dest dest, const char *text, size_t len)
{
    FILE *out = log_stream(dest);
    if (out) {
        fwrite(text, 1, len, out);
        fflush(out);
        return;
    }
    /* the delivery log through syslog: a line at a time */
    while (len) {
        const char *nl = memchr(text, '\n', len);
        size_t n = nl ? (size_t)(nl - text) : len;
        syslog(LOG_INFO, "delivery %.*s", (int)n, text);
        n += nl ? 1 : 0;
        text += n;
        len -= n;
    }
}

/* Wakes the writer for what is queued (lw.lock held). */
static void log_wake_writer(void)
{
    if ((lw.q[0].len || lw.q[1].len) && !lw.busy)
        pthread_cond_signal(&lw.work);
}

/* Queues one line (the writer thread runs) or writes it now. */
static void log_emit(enum log_dest dest, const char *line, size_t len)
{
    pthread_mutex_lock(&lw.lock);
    if (lw.running) {
        while (lw.running && lw.q[0].len + lw.q[1].len > LOG_QUEUE_MAX) {
            log_wake_writer(); /* the loop's own lines may not have woken it yet */
            pthread_cond_wait(&lw.room, &lw.lock);
        }
        struct log_chunk *c = &lw.q[dest];
        if (lw.running && c->len + len + 1 > c->cap) {
            size_t cap = c->cap ? c->cap : 16384;
            while (cap < c->len + len + 1)
                cap *= 2;
            char *d = realloc(c->data, cap);
            if (d) {
                c->data = d;
                c->cap = cap;
            }
        }
        if (lw.running && c->len + len + 1 <= c->cap) {
            int on_loop = lw.kick && pthread_equal(pthread_self(), lw.loop_thread);
            memcpy(c->data + c->len, line, len);
            c->data[c->len + len] = '\n';
            c->len += len + 1;
            if (!on_loop && !lw.busy)
                pthread_cond_signal(&lw.work);
            pthread_mutex_unlock(&lw.lock);
            if (on_loop && !lw.kicked) {
                lw.kicked = 1; /* the thread is woken at the end of this iteration */
                event_active(lw.kick, EV_TIMEOUT, 0);
            }
            return;
        }
    }
    pthread_mutex_unlock(&lw.lock);
    /* no writer thread (or no memory for the line): at once */
    pthread_mutex_lock(&stream_lock);
    FILE *out = log_stream(dest);
    if (out)
        fprintf(out, "%.*s\n", (int)len, line);
    else
        syslog(LOG_INFO, "delivery %.*s", (int)len, line);
    pthread_mutex_unlock(&stream_lock);
}

static void *log_thread_main(void *unused)
{
    (void)unused;
    struct log_chunk mine[2] = {{0}};
    pthread_mutex_lock(&lw.lock);
    for (;;) {
        while (!lw.q[0].len && !lw.q[1].len && !lw.stop)
            pthread_cond_wait(&lw.work, &lw.lock);
        if (!lw.q[0].len && !lw.q[1].len)
            break; /* stopping, and everything is written */
        for (int d = 0; d < 2; d++) {
            struct log_chunk t = mine[d];
            mine[d] = lw.q[d];
            lw.q[d] = t;
            lw.q[d].len = 0;
        }
        lw.busy = 1;
        pthread_cond_broadcast(&lw.room);
        pthread_mutex_unlock(&lw.lock);
        pthread_mutex_lock(&stream_lock);
        for (int d = 0; d < 2; d++)
            if (mine[d].len)
                log_put((enum log_dest)d, mine[d].data, mine[d].len);
        pthread_mutex_unlock(&stream_lock);
        pthread_mutex_lock(&lw.lock);
        lw.busy = 0;
        if (!lw.q[0].len && !lw.q[1].len)
            pthread_cond_broadcast(&lw.idle);
    }
    pthread_mutex_unlock(&lw.lock);
    free(mine[0].data);
    free(mine[1].data);
    return NULL;
}

/* The end of a loop iteration that logged: one wake-up for all its lines. */
static void log_on_kick(evutil_socket_t fd, short what, void *unused)
{
    (void)fd;
    (void)what;
    (void)unused;
    lw.kicked = 0;
    pthread_mutex_lock(&lw.lock);
    log_wake_writer();
    pthread_mutex_unlock(&lw.lock);
}

int log_thread_start(struct event_base *loop)
{
    pthread_mutex_lock(&lw.lock);
    int rc = 0;
    if (!lw.running) {
        lw.stop = 0;
        lw.kicked = 0;
        lw.loop_thread = pthread_self();
        lw.kick = loop ? event_new(loop, -1, 0, log_on_kick, NULL) : NULL;
        rc = pthread_create(&lw.thread, NULL, log_thread_main, NULL);
        lw.running = rc == 0;
        if (rc != 0 && lw.kick) {
            event_free(lw.kick);
            lw.kick = NULL;
        }
    }
    pthread_mutex_unlock(&lw.lock);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    return 0;
}

void log_flush(void)
{
    pthread_mutex_lock(&lw.lock);
    /* lines the loop logged in this iteration have not woken the writer yet */
    log_wake_writer();
    while (lw.running && (lw.q[0].len || lw.q[1].len || lw.busy))
        pthread_cond_wait(&lw.idle, &lw.lock);
    pthread_mutex_unlock(&lw.lock);
}

void log_thread_stop(void)
{
    pthread_mutex_lock(&lw.lock);
    if (!lw.running) {
        pthread_mutex_unlock(&lw.lock);
        return;
    }
    lw.stop = 1;
    pthread_cond_signal(&lw.work);
    pthread_mutex_unlock(&lw.lock);
    pthread_join(lw.thread, NULL);
    pthread_mutex_lock(&lw.lock);
    lw.running = 0;
    if (lw.kick)
        event_free(lw.kick);
    lw.kick = NULL;
    pthread_cond_broadcast(&lw.room);
    for (int d = 0; d < 2; d++) {
        free(lw.q[d].data);
        lw.q[d] = (struct log_chunk){0};
    }
    pthread_mutex_unlock(&lw.lock);
}

void log_writev(const char *component, enum vipmta_log_level level, const char *fmt, va_list ap)
{
    if (level > current_level)
        return;
    log_emitv(component, level, fmt, ap);
}

void log_emitv(const char *component, enum vipmta_log_level level, const char *fmt, va_list ap)
{
    if ((unsigned)level > VIPMTA_LOG_DEBUG)
        level = VIPMTA_LOG_DEBUG;
    char msg[2048];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (!component)
        component = "core";
    if (use_syslog && !main_stream) {
        if (json_format) {
            char *line = log_json_line(NULL, level_names[level], component, msg);
            syslog(syslog_priorities[level], "%s", line ? line : msg);
            free(line);
        } else {
            syslog(syslog_priorities[level], "%s [%s] %s", level_names[level], component, msg);
        }
        return;
    }
    char when[40];
    log_format_time(when, sizeof(when));
    char *line = json_format ? log_json_line(when, level_names[level], component, msg) : NULL;
    if (line) {
        log_emit(LOG_DEST_MAIN, line, strlen(line));
    } else {
        char text[2200];
        int n = snprintf(text, sizeof(text), "%s %s [%s] %s", when, level_names[level], component,
                         msg);
        log_emit(LOG_DEST_MAIN, text, n < 0 ? 0 : (size_t)n < sizeof(text) ? (size_t)n
                                                                           : sizeof(text) - 1);
    }
    free(line);
}

void log_set_json(int on)
{
    json_format = on;
}

/* Opens `path` for appending, line-buffered, close-on-exec: a regular file
 * with one link, never through a symbolic link (O_NOFOLLOW), created 0640
 * when missing. NULL with errno (ELOOP: a symbolic link; EINVAL: not a
 * regular file or more than one link). */
static FILE *log_open_append(const char *path)
{
    /* O_NONBLOCK: a FIFO planted there fails at once instead of blocking */
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC |
                  O_NONBLOCK, 0640);
    if (fd < 0)
        return NULL;
    struct stat st;
    int err = 0;
    if (fstat(fd, &st) != 0)
        err = errno;
    else if (!S_ISREG(st.st_mode) || st.st_nlink != 1)
        err = EINVAL;
    else if (fcntl(fd, F_SETFL, O_WRONLY | O_APPEND) != 0)
        err = errno;
    if (err) {
        close(fd);
        errno = err;
        return NULL;
    }
    FILE *f = fdopen(fd, "a");
    if (!f) {
        err = errno;
        close(fd);
        errno = err;
        return NULL;
    }
    setvbuf(f, NULL, _IOLBF, 0);
    return f;
}

const char *log_open_error(int err)
{
    switch (err) {
    case ELOOP:
        return "it is a symbolic link (vipmta opens log files only directly)";
    case EINVAL:
        return "it is not a regular file with a single link";
    case ENXIO:
        return "it is a FIFO or a socket, not a regular file";
    default:
        return strerror(err);
    }
}

/* Puts `f` (NULL: none) in place of *stream, and `path` in place of *saved;
 * closes the stream it replaces. */
static void log_swap(FILE **stream, char **saved, FILE *f, char *path)
{
    log_flush(); /* lines logged so far go where they were meant to */
    pthread_mutex_lock(&stream_lock);
    FILE *old = *stream;
    char *old_path = *saved;
    *stream = f;
    *saved = path;
    pthread_mutex_unlock(&stream_lock);
    if (old)
        fclose(old);
    free(old_path);
}

int log_open_file(const char *path)
{
    FILE *f = NULL;
    if (path && !(f = log_open_append(path)))
        return -1;
    log_swap(&main_stream, &main_path, f, path ? strdup(path) : NULL);
    return 0;
}

/* Reopens the file at *saved in place of *stream; 0, or -1 with errno. */
static int log_reopen_one(FILE **stream, char **saved)
{
    if (!*saved)
        return 0;
    FILE *f = log_open_append(*saved);
    if (!f)
        return -1;
    log_flush();
    pthread_mutex_lock(&stream_lock);
    FILE *old = *stream;
    *stream = f;
    pthread_mutex_unlock(&stream_lock);
    if (old)
        fclose(old);
    return 0;
}

int log_reopen(void)
{
    int rc = 0;
    if (log_reopen_one(&main_stream, &main_path) != 0) {
        log_write("core", VIPMTA_LOG_ERROR, "cannot reopen the log file %s: %s (still "
                  "writing to the old one)", main_path, log_open_error(errno));
        rc = -1;
    }
    if (log_reopen_one(&delivery_stream, &delivery_path) != 0) {
        log_write("core", VIPMTA_LOG_ERROR, "cannot reopen the delivery log %s: %s (still "
                  "writing to the old one)", delivery_path, log_open_error(errno));
        rc = -1;
    }
    if (rc == 0 && (main_path || delivery_path))
        log_write("core", VIPMTA_LOG_NOTICE, "log files reopened");
    return rc;
}

void log_close(void)
{
    log_swap(&main_stream, &main_path, NULL, NULL);
}

void log_write(const char *component, enum vipmta_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_writev(component, level, fmt, ap);
    va_end(ap);
}

void vipmta_log(enum vipmta_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_writev("core", level, fmt, ap);
    va_end(ap);
}

int log_delivery_open(const char *path)
{
    FILE *f = NULL;
    if (path && !(f = log_open_append(path)))
        return -1;
    log_swap(&delivery_stream, &delivery_path, f, path ? strdup(path) : NULL);
    return 0;
}

void log_delivery(json_t *record)
{
    char when[40];

    log_format_time(when, sizeof(when));
    json_object_set_new(record, "time", json_string(when));
    char *line = json_dumps(record, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(record);
    if (!line)
        return;
    log_emit(LOG_DEST_DELIVERY, line, strlen(line));
    free(line);
}

void log_delivery_close(void)
{
    log_swap(&delivery_stream, &delivery_path, NULL, NULL);
}
