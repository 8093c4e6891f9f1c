/* spoolfix.h: what the spool and queue Check suites share: scratch folders removed, the loop run until a count, the spool's files read and counted, the log searched, recovered envelopes collected. */
#ifndef SPOOLFIX_H
#define SPOOLFIX_H

#include <event2/event.h>
#include <stddef.h>

#include "spool/spool.h"

/* Removes `path` and everything below it. */
void spoolfix_rm_rf(const char *path);

/* A spool completion heard: how many times, and the last error. */
struct spoolfix_done {
    int called;
    int error;
};
/* A spool_done_cb filling the struct spoolfix_done at `arg`. */
void spoolfix_on_done(void *arg, int error);

/* Runs `base` until *count reaches `want`; fails the test after 30 s. */
void spoolfix_run_until(struct event_base *base, const int *count, int want);

/* "DIR/SUB/ID.EXT" into `buf`. */
void spoolfix_path(char *buf, size_t size, const char *dir, const char *sub, const char *id,
                   const char *ext);
/* Non-zero when DIR/SUB/ID.EXT exists. */
int spoolfix_exists(const char *dir, const char *sub, const char *id, const char *ext);
/* The file at `path` (its first MiB), NUL-terminated, its length in *len
 * (len may be NULL); NULL when it cannot be opened. */
char *spoolfix_read(const char *path, size_t *len);
/* DIR/SUB/ID.EXT as spoolfix_read gives it; fails the test when it cannot be read. */
char *spoolfix_read_file(const char *dir, const char *sub, const char *id, const char *ext,
                         size_t *len);
/* The files in DIR/SUB whose extension is `ext` (NULL: every file). */
int spoolfix_count(const char *dir, const char *sub, const char *ext);
/* Non-zero when the log file at `logpath` contains `text`. */
int spoolfix_log_has(const char *logpath, const char *text);

/* Envelopes recovered by spool_recover (at most 16). */
struct spoolfix_collected {
    struct spool_envelope *env[16];
    size_t n;
};
/* A spool_recover callback adding to the struct spoolfix_collected at `arg`. */
void spoolfix_collect(void *arg, struct spool_envelope *env);
void spoolfix_collected_free(struct spoolfix_collected *c);
/* The collected envelope of message `id`, or NULL. */
struct spool_envelope *spoolfix_collected_find(struct spoolfix_collected *c, const char *id);

#endif
