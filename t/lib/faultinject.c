/* faultinject.c: test-only shim that makes chosen file-system calls fail (or crash the process) at a chosen call; see faultinject.h. */
#include "faultinject.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

/* ---- the functions it stands in for ---- */

enum fi_func {
    FI_OPEN, FI_OPENAT, FI_READ, FI_WRITE, FI_PWRITE, FI_WRITEV, FI_FSYNC, FI_FDATASYNC,
    FI_SYNCFS, FI_SYNC_FILE_RANGE, FI_RENAME, FI_RENAMEAT, FI_RENAMEAT2, FI_UNLINK, FI_UNLINKAT,
    FI_FTRUNCATE, FI_FSTAT, FI_MKDIR, FI_PREAD, FI_NFUNCS
};

static const char *const fi_names[FI_NFUNCS] = {
    "open", "openat", "read", "write", "pwrite", "writev", "fsync", "fdatasync",
    "syncfs", "sync_file_range", "rename", "renameat", "renameat2", "unlink", "unlinkat",
    "ftruncate", "fstat", "mkdir", "pread",
};

static const struct {
    const char *name;
    int value;
} fi_errnos[] = {
    {"EIO", EIO}, {"ENOSPC", ENOSPC}, {"EDQUOT", EDQUOT}, {"EROFS", EROFS}, {"EACCES", EACCES},
    {"EPERM", EPERM}, {"ENOENT", ENOENT}, {"EEXIST", EEXIST}, {"EINTR", EINTR},
    {"EAGAIN", EAGAIN}, {"ENOMEM", ENOMEM}, {"EMFILE", EMFILE}, {"ENFILE", ENFILE},
    {"EBADF", EBADF}, {"EINVAL", EINVAL}, {"EFBIG", EFBIG}, {"EBUSY", EBUSY},
    {"ENOTDIR", ENOTDIR}, {"EISDIR", EISDIR}, {"ELOOP", ELOOP}, {"EXDEV", EXDEV},
};

/* ---- rules ---- */

#define FI_MAX_RULES 32
#define FI_GLOB_MAX 512

struct fi_rule {
    unsigned funcs;              /* bit per enum fi_func */
    char path[FI_GLOB_MAX];      /* "" = any */
    unsigned long nth, count;    /* count 0: all from nth on */
    int err;
    int crash;
    unsigned long seen;          /* matching calls so far */
};

static struct {
    pthread_mutex_t lock;
    struct fi_rule rules[FI_MAX_RULES];
    int nrules;
    int armed;                   /* nrules > 0, read without the lock */
    unsigned path_funcs;         /* functions some rule matches by path */
    unsigned long fired;
    unsigned long matched[FI_NFUNCS];
    int env_read;
    const char *file;            /* VT_FAULTS_FILE */
    const char *log;             /* VT_FAULTS_LOG */
    struct stat file_st;         /* what the rules came from */
    int file_loaded;
} fi = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The C library's functions, found once. */
static struct {
    int (*open)(const char *, int, ...);
    int (*openat)(int, const char *, int, ...);
    ssize_t (*read)(int, void *, size_t);
    ssize_t (*write)(int, const void *, size_t);
    ssize_t (*pwrite)(int, const void *, size_t, off_t);
    ssize_t (*pread)(int, void *, size_t, off_t);
    ssize_t (*writev)(int, const struct iovec *, int);
    int (*fsync)(int);
    int (*fdatasync)(int);
    int (*syncfs)(int);
    int (*sync_file_range)(int, off_t, off_t, unsigned int);
    int (*rename)(const char *, const char *);
    int (*renameat)(int, const char *, int, const char *);
    int (*renameat2)(int, const char *, int, const char *, unsigned int);
    int (*unlink)(const char *);
    int (*unlinkat)(int, const char *, int);
    int (*ftruncate)(int, off_t);
    int (*fstat)(int, struct stat *);
    int (*mkdir)(const char *, mode_t);
} real;

static pthread_once_t fi_once = PTHREAD_ONCE_INIT;

static void *fi_next(const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);
    if (!f)
        abort(); /* no C library below us: nothing sensible to do */
    return f;
}

static void fi_resolve(void)
{
    real.open = fi_next("open");
    real.openat = fi_next("openat");
    real.read = fi_next("read");
    real.write = fi_next("write");
    real.pwrite = fi_next("pwrite");
    real.pread = fi_next("pread");
    real.writev = fi_next("writev");
    real.fsync = fi_next("fsync");
    real.fdatasync = fi_next("fdatasync");
    real.syncfs = fi_next("syncfs");
    real.sync_file_range = fi_next("sync_file_range");
    real.rename = fi_next("rename");
    real.renameat = fi_next("renameat");
    real.renameat2 = fi_next("renameat2");
    real.unlink = fi_next("unlink");
    real.unlinkat = fi_next("unlinkat");
    real.ftruncate = fi_next("ftruncate");
    real.fstat = fi_next("fstat");
    real.mkdir = fi_next("mkdir");
}

static int fi_errno_value(const char *s)
{
    for (size_t i = 0; i < sizeof(fi_errnos) / sizeof(fi_errnos[0]); i++)
        if (strcmp(s, fi_errnos[i].name) == 0)
            return fi_errnos[i].value;
    char *end;
    long v = strtol(s, &end, 10);
    return *s && !*end && v > 0 && v < 4096 ? (int)v : -1;
}

static const char *fi_errno_name(int e)
{
    for (size_t i = 0; i < sizeof(fi_errnos) / sizeof(fi_errnos[0]); i++)
        if (fi_errnos[i].value == e)
            return fi_errnos[i].name;
    return "E?";
}

static int fi_func_bit(const char *name, size_t len)
{
    /* the 64-bit aliases count as their base name */
    if (len > 2 && memcmp(name + len - 2, "64", 2) == 0)
        len -= 2;
    for (int i = 0; i < FI_NFUNCS; i++)
        if (strlen(fi_names[i]) == len && memcmp(fi_names[i], name, len) == 0)
            return i;
    return -1;
}

static void fi_complain(const char *what, const char *rule)
{
    fprintf(stderr, "faultinject: %s in rule \"%s\"\n", what, rule);
}

/* Parses one rule (a writable copy); 0, 1 for an empty one, -1 with a message. */
static int fi_parse_rule(char *text, struct fi_rule *r)
{
    char copy[1024];
    snprintf(copy, sizeof(copy), "%s", text);
    memset(r, 0, sizeof(*r));
    r->nth = 1;
    r->count = 1;
    r->err = EIO;
    char *save = NULL;
    char *word = strtok_r(text, " \t\r", &save);
    if (!word)
        return 1;
    for (char *f = word; *f;) {
        size_t n = strcspn(f, ",");
        int bit = fi_func_bit(f, n);
        if (bit < 0) {
            fi_complain("unknown function", copy);
            return -1;
        }
        r->funcs |= 1u << bit;
        f += n + (f[n] == ',');
    }
    while ((word = strtok_r(NULL, " \t\r", &save))) {
        char *eq = strchr(word, '=');
        char *end = NULL;
        if (strcmp(word, "crash") == 0) {
            r->crash = 1;
        } else if (!eq) {
            fi_complain("a word without '='", copy);
            return -1;
        } else if (strncmp(word, "path=", 5) == 0) {
            snprintf(r->path, sizeof(r->path), "%s", eq + 1);
        } else if (strncmp(word, "nth=", 4) == 0) {
            r->nth = strtoul(eq + 1, &end, 10);
            if (*end || r->nth == 0) {
                fi_complain("nth must be a number from 1", copy);
                return -1;
            }
        } else if (strncmp(word, "count=", 6) == 0) {
            r->count = strtoul(eq + 1, &end, 10);
            if (*end) {
                fi_complain("count must be a number", copy);
                return -1;
            }
        } else if (strncmp(word, "errno=", 6) == 0) {
            if ((r->err = fi_errno_value(eq + 1)) < 0) {
                fi_complain("unknown errno", copy);
                return -1;
            }
        } else {
            fi_complain("unknown key", copy);
            return -1;
        }
    }
    return 0;
}

/* Replaces the rules (lock held). */
static int fi_load(const char *rules)
{
    fi.nrules = 0;
    fi.path_funcs = 0;
    fi.fired = 0;
    memset(fi.matched, 0, sizeof(fi.matched));
    int rc = 0;
    if (rules && *rules) {
        char *copy = strdup(rules);
        if (!copy)
            return -1;
        char *save = NULL;
        for (char *one = strtok_r(copy, ";\n", &save); one; one = strtok_r(NULL, ";\n", &save)) {
            if (fi.nrules == FI_MAX_RULES) {
                fi_complain("too many rules", one);
                rc = -1;
                break;
            }
            int got = fi_parse_rule(one, &fi.rules[fi.nrules]);
            if (got < 0) {
                rc = -1;
                break;
            }
            if (got == 0) {
                if (fi.rules[fi.nrules].path[0])
                    fi.path_funcs |= fi.rules[fi.nrules].funcs;
                fi.nrules++;
            }
        }
        free(copy);
        if (rc != 0)
            fi.nrules = 0;
    }
    __atomic_store_n(&fi.armed, fi.nrules > 0, __ATOMIC_RELEASE);
    return rc;
}

/* Reads the whole rules file with the real functions (lock held); NULL when absent. */
static char *fi_read_file(const char *path)
{
    int fd = real.open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        ssize_t n = real.read(fd, buf + len, cap - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == cap) {
            char *g = realloc(buf, cap * 2 + 1);
            if (!g) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = g;
            cap *= 2;
        }
    }
    close(fd);
    if (buf)
        buf[len] = '\0';
    return buf;
}

/* VT_FAULTS_FILE: reloads the rules when the file changed (lock held). */
static void fi_refresh_file(void)
{
    struct stat st;
    if (stat(fi.file, &st) != 0) {
        if (fi.file_loaded) {
            fi.file_loaded = 0;
            fi_load(getenv("VT_FAULTS"));
        }
        return;
    }
    if (fi.file_loaded && st.st_ino == fi.file_st.st_ino && st.st_size == fi.file_st.st_size &&
        st.st_mtim.tv_sec == fi.file_st.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == fi.file_st.st_mtim.tv_nsec)
        return;
    char *text = fi_read_file(fi.file);
    if (!text)
        return;
    fi.file_st = st;
    fi.file_loaded = 1;
    fi_load(text);
    free(text);
}

static void fi_init(void)
{
    fi_resolve();
    pthread_mutex_lock(&fi.lock);
    if (!fi.env_read) {
        fi.env_read = 1;
        fi.file = getenv("VT_FAULTS_FILE");
        fi.log = getenv("VT_FAULTS_LOG");
        if (fi.file && !*fi.file)
            fi.file = NULL;
        fi_load(getenv("VT_FAULTS"));
        if (fi.file)
            fi_refresh_file();
    }
    pthread_mutex_unlock(&fi.lock);
}

#define FI_READY() pthread_once(&fi_once, fi_init)

/* ---- the decision ---- */

/* The absolute path of descriptor fd ("" when unknown). */
static void fi_fd_path(int fd, char *out, size_t len)
{
    char link[64];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, len - 1);
    out[n > 0 ? (size_t)n : 0] = '\0';
}

/* The absolute path of (dirfd, name). */
static void fi_at_path(int dirfd, const char *name, char *out, size_t len)
{
    char dir[PATH_MAX];
    if (!name) {
        out[0] = '\0';
        return;
    }
    if (name[0] == '/') {
        snprintf(out, len, "%s", name);
        return;
    }
    if (dirfd == AT_FDCWD) {
        if (!getcwd(dir, sizeof(dir)))
            dir[0] = '\0';
    } else {
        fi_fd_path(dirfd, dir, sizeof(dir));
    }
    snprintf(out, len, "%s/%s", dir, name);
}

static void fi_log(enum fi_func f, const char *path, const char *what)
{
    if (!fi.log)
        return;
    char line[PATH_MAX + 128];
    int n = snprintf(line, sizeof(line), "%s %s %s\n", fi_names[f], path[0] ? path : "-", what);
    int fd = real.open(fi.log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    if (n > 0)
        (void)!real.write(fd, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
    close(fd);
}

/* 0: let the call run; -1: fail it with errno set. The path is worked out
 * (fd >= 0: from the descriptor, else from dirfd and name) only when a rule
 * needs it. */
static int fi_check(enum fi_func f, int fd, int dirfd, const char *name)
{
    FI_READY();
    if (!fi.file && !__atomic_load_n(&fi.armed, __ATOMIC_ACQUIRE))
        return 0;
    int saved = errno;
    char path[PATH_MAX];
    path[0] = '\0';
    pthread_mutex_lock(&fi.lock);
    if (fi.file)
        fi_refresh_file();
    int need_path = fi.nrules > 0 && (fi.path_funcs & (1u << f));
    pthread_mutex_unlock(&fi.lock);
    if (need_path) {
        if (fd >= 0)
            fi_fd_path(fd, path, sizeof(path));
        else
            fi_at_path(dirfd, name, path, sizeof(path));
    }
    int err = 0, crash = 0;
    pthread_mutex_lock(&fi.lock);
    for (int i = 0; i < fi.nrules; i++) {
        struct fi_rule *r = &fi.rules[i];
        if (!(r->funcs & (1u << f)))
            continue;
        if (r->path[0] && fnmatch(r->path, path, 0) != 0)
            continue;
        fi.matched[f]++;
        unsigned long k = ++r->seen;
        if (k < r->nth || (r->count && k >= r->nth + r->count))
            continue;
        fi.fired++;
        err = r->err;
        crash = r->crash;
        break;
    }
    if (err || crash)
        fi_log(f, path, crash ? "crash" : fi_errno_name(err));
    pthread_mutex_unlock(&fi.lock);
    if (crash)
        kill(getpid(), SIGKILL);
    errno = err ? err : saved;
    return err ? -1 : 0;
}

/* ---- the API for suites that link the shim ---- */

int faultinject_set(const char *rules)
{
    FI_READY();
    pthread_mutex_lock(&fi.lock);
    int rc = fi_load(rules);
    pthread_mutex_unlock(&fi.lock);
    return rc;
}

unsigned long faultinject_fired(void)
{
    FI_READY();
    pthread_mutex_lock(&fi.lock);
    unsigned long n = fi.fired;
    pthread_mutex_unlock(&fi.lock);
    return n;
}

unsigned long faultinject_matched(const char *func)
{
    FI_READY();
    int f = func ? fi_func_bit(func, strlen(func)) : -1;
    if (f < 0)
        return 0;
    pthread_mutex_lock(&fi.lock);
    unsigned long n = fi.matched[f];
    pthread_mutex_unlock(&fi.lock);
    return n;
}

/* ---- the stand-ins ---- */

static mode_t fi_mode(int flags, va_list ap)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = fi_mode(flags, ap);
    va_end(ap);
    if (fi_check(FI_OPEN, -1, AT_FDCWD, path) != 0)
        return -1;
    return real.open(path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = fi_mode(flags, ap);
    va_end(ap);
    if (fi_check(FI_OPEN, -1, AT_FDCWD, path) != 0)
        return -1;
    return real.open(path, flags | O_LARGEFILE, mode);
}

int openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = fi_mode(flags, ap);
    va_end(ap);
    if (fi_check(FI_OPENAT, -1, dirfd, path) != 0)
        return -1;
    return real.openat(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = fi_mode(flags, ap);
    va_end(ap);
    if (fi_check(FI_OPENAT, -1, dirfd, path) != 0)
        return -1;
    return real.openat(dirfd, path, flags | O_LARGEFILE, mode);
}

ssize_t read(int fd, void *buf, size_t len)
{
    if (fi_check(FI_READ, fd, -1, NULL) != 0)
        return -1;
    return real.read(fd, buf, len);
}

ssize_t write(int fd, const void *buf, size_t len)
{
    if (fi_check(FI_WRITE, fd, -1, NULL) != 0)
        return -1;
    return real.write(fd, buf, len);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
    if (fi_check(FI_PWRITE, fd, -1, NULL) != 0)
        return -1;
    return real.pwrite(fd, buf, len, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off64_t off)
{
    if (fi_check(FI_PWRITE, fd, -1, NULL) != 0)
        return -1;
    return real.pwrite(fd, buf, len, (off_t)off);
}

ssize_t pread(int fd, void *buf, size_t len, off_t off)
{
    if (fi_check(FI_PREAD, fd, -1, NULL) != 0)
        return -1;
    return real.pread(fd, buf, len, off);
}

ssize_t pread64(int fd, void *buf, size_t len, off64_t off)
{
    if (fi_check(FI_PREAD, fd, -1, NULL) != 0)
        return -1;
    return real.pread(fd, buf, len, (off_t)off);
}

ssize_t writev(int fd, const struct iovec *iov, int n)
{
    if (fi_check(FI_WRITEV, fd, -1, NULL) != 0)
        return -1;
    return real.writev(fd, iov, n);
}

int fsync(int fd)
{
    if (fi_check(FI_FSYNC, fd, -1, NULL) != 0)
        return -1;
    return real.fsync(fd);
}

int fdatasync(int fd)
{
    if (fi_check(FI_FDATASYNC, fd, -1, NULL) != 0)
        return -1;
    return real.fdatasync(fd);
}

int syncfs(int fd)
{
    if (fi_check(FI_SYNCFS, fd, -1, NULL) != 0)
        return -1;
    return real.syncfs(fd);
}

int sync_file_range(int fd, off64_t off, off64_t len, unsigned int flags)
{
    if (fi_check(FI_SYNC_FILE_RANGE, fd, -1, NULL) != 0)
        return -1;
    return real.sync_file_range(fd, (off_t)off, (off_t)len, flags);
}

int rename(const char *from, const char *to)
{
    if (fi_check(FI_RENAME, -1, AT_FDCWD, from) != 0)
        return -1;
    return real.rename(from, to);
}

int renameat(int fromdir, const char *from, int todir, const char *to)
{
    if (fi_check(FI_RENAMEAT, -1, fromdir, from) != 0)
        return -1;
    return real.renameat(fromdir, from, todir, to);
}

int renameat2(int fromdir, const char *from, int todir, const char *to, unsigned int flags)
{
    if (fi_check(FI_RENAMEAT2, -1, fromdir, from) != 0)
        return -1;
    return real.renameat2(fromdir, from, todir, to, flags);
}

int unlink(const char *path)
{
    if (fi_check(FI_UNLINK, -1, AT_FDCWD, path) != 0)
        return -1;
    return real.unlink(path);
}

int unlinkat(int dirfd, const char *path, int flags)
{
    if (fi_check(FI_UNLINKAT, -1, dirfd, path) != 0)
        return -1;
    return real.unlinkat(dirfd, path, flags);
}

int ftruncate(int fd, off_t len)
{
    if (fi_check(FI_FTRUNCATE, fd, -1, NULL) != 0)
        return -1;
    return real.ftruncate(fd, len);
}

int ftruncate64(int fd, off64_t len)
{
    if (fi_check(FI_FTRUNCATE, fd, -1, NULL) != 0)
        return -1;
    return real.ftruncate(fd, (off_t)len);
}

int fstat(int fd, struct stat *st)
{
    if (fi_check(FI_FSTAT, fd, -1, NULL) != 0)
        return -1;
    return real.fstat(fd, st);
}

int fstat64(int fd, struct stat64 *st)
{
    if (fi_check(FI_FSTAT, fd, -1, NULL) != 0)
        return -1;
    return real.fstat(fd, (struct stat *)st);
}

int mkdir(const char *path, mode_t mode)
{
    if (fi_check(FI_MKDIR, -1, AT_FDCWD, path) != 0)
        return -1;
    return real.mkdir(path, mode);
}
