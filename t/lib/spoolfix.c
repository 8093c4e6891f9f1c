/* spoolfix.c: what the spool and queue Check suites share: scratch folders removed, the loop run until a count, the spool's files read and counted, the log searched, recovered envelopes collected. */
#include "spoolfix.h"

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Files are read up to this size. */
#define SPOOLFIX_READ_MAX (1 << 20)

void spoolfix_rm_rf(const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        unlink(path);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char sub[512];
        snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
        spoolfix_rm_rf(sub);
    }
    closedir(d);
    rmdir(path);
}

void spoolfix_on_done(void *arg, int error)
{
    struct spoolfix_done *d = arg;
    d->called++;
    d->error = error;
}

void spoolfix_run_until(struct event_base *base, const int *count, int want)
{
    time_t start = time(NULL);
    while (*count < want) {
        event_base_loop(base, EVLOOP_ONCE);
        ck_assert_msg(time(NULL) - start < 30, "timed out waiting for the spool");
    }
}

void spoolfix_path(char *buf, size_t size, const char *dir, const char *sub, const char *id,
                   const char *ext)
{
    snprintf(buf, size, "%s/%s/%s.%s", dir, sub, id, ext);
}

int spoolfix_exists(const char *dir, const char *sub, const char *id, const char *ext)
{
    char p[256];
    struct stat st;
    spoolfix_path(p, sizeof(p), dir, sub, id, ext);
    return stat(p, &st) == 0;
}

char *spoolfix_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = calloc(1, SPOOLFIX_READ_MAX);
    ck_assert_ptr_nonnull(buf);
    size_t n = fread(buf, 1, SPOOLFIX_READ_MAX - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

char *spoolfix_read_file(const char *dir, const char *sub, const char *id, const char *ext,
                         size_t *len)
{
    char p[256];
    spoolfix_path(p, sizeof(p), dir, sub, id, ext);
    char *buf = spoolfix_read(p, len);
    ck_assert_msg(buf != NULL, "cannot read %s", p);
    return buf;
}

int spoolfix_count(const char *dir, const char *sub, const char *ext)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", dir, sub);
    DIR *d = opendir(p);
    ck_assert_msg(d != NULL, "cannot open %s", p);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        const char *dot = strrchr(de->d_name, '.');
        n += !ext || (dot && strcmp(dot + 1, ext) == 0);
    }
    closedir(d);
    return n;
}

int spoolfix_log_has(const char *logpath, const char *text)
{
    char *all = spoolfix_read(logpath, NULL);
    int found = all && strstr(all, text) != NULL;
    free(all);
    return found;
}

void spoolfix_collect(void *arg, struct spool_envelope *env)
{
    struct spoolfix_collected *c = arg;
    ck_assert_uint_lt(c->n, sizeof(c->env) / sizeof(c->env[0]));
    c->env[c->n++] = env;
}

void spoolfix_collected_free(struct spoolfix_collected *c)
{
    for (size_t i = 0; i < c->n; i++)
        spool_envelope_free(c->env[i]);
    c->n = 0;
}

struct spool_envelope *spoolfix_collected_find(struct spoolfix_collected *c, const char *id)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->env[i]->id, id) == 0)
            return c->env[i];
    return NULL;
}
