/* tls_file.c: reads certificate, key and credentials files safely: no symlinks, regular files, permissions checked. */
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *tls_file_read(const char *path, size_t max, int secret, size_t *len, char *why,
                    size_t whylen)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        snprintf(why, whylen, "cannot open: %s%s", strerror(errno),
                 errno == ELOOP ? " (a symbolic link: name the file itself)" : "");
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(why, whylen, "cannot stat: %s", strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
        snprintf(why, whylen, "%s", !S_ISREG(st.st_mode) ? "not a regular file"
                                                          : "has more than one link (hard links are refused)");
        close(fd);
        return NULL;
    }
    if ((uint64_t)st.st_size > max) {
        snprintf(why, whylen, "larger than %zu bytes", max);
        close(fd);
        return NULL;
    }
    if (secret && (st.st_mode & (S_IROTH | S_IWOTH | S_IWGRP))) {
        snprintf(why, whylen, "mode %03o lets other users %s it: chmod 600 (or 640 with the "
                 "daemon's group)", (unsigned)(st.st_mode & 0777),
                 (st.st_mode & S_IROTH) ? "read" : "change");
        close(fd);
        return NULL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (!buf) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    buf[got] = '\0';
    *len = got;
    return buf;
}

void tls_file_forget(char *buf, size_t len)
{
    if (!buf)
        return;
    volatile char *p = buf;
    for (size_t i = 0; i < len; i++)
        p[i] = 0;
    free(buf);
}
