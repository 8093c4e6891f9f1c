/* spool_bounce.c: settles bounces a stop interrupted: a recipient with an F record is bounced iff its DSN is complete in the spool. */
#include "spool_internal.h"
#include "log/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A bounce is made in three durable steps (core/queue/queue_dsn.c):
 *   1. "F IDX DSNID" in the original's ID.st (before any DSNID.env exists),
 *   2. the DSN itself, DSNID.body and DSNID.env (its commit),
 *   3. "B IDX TIME" in the original's ID.st; only then is the DSN queued.
 * So after a stop, F without B means: the DSN was spooled iff DSNID.env is
 * complete (and its body matches); it cannot have been delivered yet. */

/* Reading buffer for the DSN's body check (DSN bodies are small). */
#define SPOOL_BOUNCE_CHUNK (64 * 1024)

/* Non-zero when message `dsn` is a complete DSN in queue/; the reason it is
 * not in errbuf otherwise. */
static int spool_bounce_dsn_complete(const char *dsn, unsigned char *buf, char *errbuf,
                                     size_t errlen)
{
    struct spool_envelope *env = spool_env_load(dsn, errbuf, errlen);
    if (!env)
        return 0;
    int ok = env->is_dsn;
    if (!ok)
        snprintf(errbuf, errlen, "%s.env is not a DSN", dsn);
    else
        ok = spool_body_check(env, buf, SPOOL_BOUNCE_CHUNK, errbuf, errlen) == 0;
    spool_envelope_free(env);
    return ok;
}

void spool_bounce_resolve(struct spool_envelope *env, const struct spool_st_bounce *v, size_t n,
                          int fd)
{
    char reason[512], line[64];
    int appended = 0;
    unsigned char *buf = malloc(SPOOL_BOUNCE_CHUNK);
    if (!buf) {
        /* cannot check: the recipients stay pending (bounced again, a
         * duplicate DSN at worst) */
        if (fd >= 0)
            log_write("spool", VIPMTA_LOG_ERROR, "%s/queue/%s.st: out of memory checking the "
                      "DSNs of %zu bounces in progress: bounced again", spool_dir_path(),
                      env->id, n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct spool_rcpt *r = &env->rcpts[v[i].rcpt];
        if (!spool_bounce_dsn_complete(v[i].dsn, buf, reason, sizeof(reason))) {
            if (fd >= 0)
                log_write("spool", VIPMTA_LOG_NOTICE, "%s/queue/%s.st: recipient %u <%s>: "
                          "its DSN %s was not spooled before the stop (%s): it bounces again",
                          spool_dir_path(), env->id, v[i].rcpt, r->address, v[i].dsn, reason);
            continue;
        }
        r->state = SPOOL_RCPT_BOUNCED;
        if (fd < 0)
            continue;
        int len = snprintf(line, sizeof(line), "B %u %lld\n", v[i].rcpt, (long long)time(NULL));
        if (lseek(fd, 0, SEEK_END) < 0 || spool_write_all(fd, line, (size_t)len) != 0) {
            log_write("spool", VIPMTA_LOG_ERROR, "%s/queue/%s.st: recipient %u <%s>: cannot "
                      "record its bounce (%s); its DSN %s is queued: a stop before the message "
                      "is done may send a second DSN", spool_dir_path(), env->id, v[i].rcpt,
                      r->address, strerror(errno), v[i].dsn);
            continue;
        }
        appended++;
        log_write("spool", VIPMTA_LOG_NOTICE, "%s/queue/%s.st: recipient %u <%s>: its DSN %s "
                  "was spooled before the stop: bounced", spool_dir_path(), env->id, v[i].rcpt,
                  r->address, v[i].dsn);
    }
    /* durable before the DSN can be delivered (delivery starts after recovery) */
    if (appended && fdatasync(fd) != 0)
        log_write("spool", VIPMTA_LOG_ERROR, "%s/queue/%s.st: cannot make %d bounce records "
                  "durable (%s): a crash before the message is done may send a second DSN",
                  spool_dir_path(), env->id, appended, strerror(errno));
    free(buf);
}
