/* queue_dsn.c: bounces: a DSN for a failed recipient, durable before the recipient is final; retried when it cannot be spooled. */
#include "queue_internal.h"
#include "config/config_current.h"
#include "queue_dsn_compose.h"
#include "log/log.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A bounce goes through three durable steps, each finished by the spool's
 * sync thread before the next starts (docs/spool.md, "Bounces"):
 *   1. the DSN's body is written (not committed: no DSNID.env yet) and
 *      "F IDX DSNID" is appended to the original's ID.st and synced;
 *   2. the DSN is committed: DSNID.env written, both files synced;
 *   3. "B IDX TIME" is appended to the original's ID.st and synced;
 * then the DSN is queued and the recipient is final (queue_final: the
 * original is removed when it was its last open recipient). Until then the
 * recipient stays in flight. A crash between the steps: recovery
 * (core/spool/spool_bounce.c) counts the recipient bounced iff DSNID.env is
 * complete, so exactly one DSN survives; the DSN cannot have been delivered
 * before step 3. When a step fails (disk full, I/O error), nothing is final:
 * the job waits and starts again at step 1 (or, when the DSN is already
 * durable, at step 3) after the domain's retry schedule. */

/* Where a waiting job starts again. */
enum queue_dsn_step {
    QUEUE_DSN_SPOOL,   /* steps 1 and 2: spool a (new) DSN */
    QUEUE_DSN_RECORD,  /* step 3: the DSN is durable, its B record is not */
};

struct queue_dsn_job {
    struct queue_dsn_job *next, *prev;  /* every job (when listed) */
    struct queue_dsn_job *due_next;     /* the timer's batch */
    int listed;
    struct queue_rcpt *r;               /* NULL: cut loose at queue shutdown */
    struct spool_writer *w;             /* the DSN being written (step 1) */
    struct spool_envelope *env;         /* the DSN's envelope (steps 2, 3) */
    char dsn_id[SPOOL_ID_LEN + 1];
    enum queue_dsn_step resume;
    int waiting;                        /* for retry_at (else a spool step is pending) */
    unsigned tries;                     /* failed tries so far */
    time_t retry_at;
    char reply[];                       /* why the recipient failed, for the DSN */
};

static struct {
    struct event_base *base;
    struct event *timer;
    time_t timer_at;                    /* what the timer is armed for; 0: not armed */
    struct queue_dsn_job *jobs;
} qd;

/* Reads the original's header section as it was sent (the fields modules
 * added, then the stored message's, up to the first empty line, without
 * it; at most QUEUE_DSN_HEADER_MAX, cut at a line end). *len 0 when
 * unreadable. */
static char *queue_dsn_headers(const struct queue_message *m, size_t *len)
{
    *len = 0;
    struct spool_body *body = spool_body_open(m->id);
    if (!body)
        return NULL;
    char *buf = malloc(QUEUE_DSN_HEADER_MAX);
    size_t have = 0;
    if (buf && m->added_headers && m->added_headers_len < QUEUE_DSN_HEADER_MAX / 2) {
        memcpy(buf, m->added_headers, m->added_headers_len);
        have = m->added_headers_len;
    }
    while (buf && have < QUEUE_DSN_HEADER_MAX) {
        ssize_t n = spool_body_read(body, buf + have, QUEUE_DSN_HEADER_MAX - have);
        if (n <= 0)
            break;
        have += (size_t)n;
        /* stop reading once the end of the headers is in */
        if (memmem(buf, have, "\r\n\r\n", 4) || memmem(buf, have, "\n\n", 2))
            break;
    }
    spool_body_close(body);
    if (!buf)
        return NULL;
    size_t end = have;
    if (have >= 2 && buf[0] == '\r' && buf[1] == '\n')
        end = 0; /* no header section at all */
    else if (have >= 1 && buf[0] == '\n')
        end = 0;
    else {
        char *crlf = memmem(buf, have, "\r\n\r\n", 4);
        char *lf = memmem(buf, have, "\n\n", 2);
        if (crlf && (!lf || crlf < lf))
            end = (size_t)(crlf - buf) + 2;
        else if (lf)
            end = (size_t)(lf - buf) + 1;
        else {
            /* no end within the cap (or the body is all headers): whole lines only */
            char *nl = memrchr(buf, '\n', have);
            end = nl ? (size_t)(nl - buf) + 1 : 0;
        }
    }
    *len = end;
    return buf;
}

static char *queue_strdup(const char *s)
{
    return strdup(s ? s : "");
}

/* ---- the job list and retries ---- */

static void queue_dsn_unlink(struct queue_dsn_job *job)
{
    if (!job->listed)
        return;
    job->listed = 0;
    if (job->prev)
        job->prev->next = job->next;
    else
        qd.jobs = job->next;
    if (job->next)
        job->next->prev = job->prev;
    job->next = job->prev = NULL;
}

static void queue_dsn_free(struct queue_dsn_job *job)
{
    queue_dsn_unlink(job);
    spool_writer_abort(job->w);
    spool_envelope_free(job->env);
    free(job);
}

/* Arms the timer for `at` unless it is armed for earlier already. */
static void queue_dsn_arm(time_t at)
{
    if (!qd.timer || (qd.timer_at && qd.timer_at <= at))
        return;
    time_t now = time(NULL);
    struct timeval tv = {at > now ? at - now : 0, 0};
    event_add(qd.timer, &tv);
    qd.timer_at = at;
}

/* A step failed: nothing is final; the job starts again at `resume` later. */
static void queue_dsn_wait(struct queue_dsn_job *job, enum queue_dsn_step resume,
                           const char *what, int error)
{
    struct queue_rcpt *r = job->r;
    job->tries++;
    unsigned delay = queue_retry_delay(r, job->tries);
    log_write("queue", VIPMTA_LOG_ERROR, "%s: recipient <%s>: %s: %s; not final, the bounce is "
              "tried again in %u s", r->msg->id, r->address, what, strerror(error), delay);
    job->resume = resume;
    job->waiting = 1;
    job->retry_at = time(NULL) + (time_t)delay;
    queue_count_waiting_bounce(1);
    queue_dsn_arm(job->retry_at);
}

/* ---- the steps ---- */

static void queue_dsn_spool(struct queue_dsn_job *job);
static void queue_dsn_record(struct queue_dsn_job *job);

/* Step 3 done: the DSN is queued, the recipient is final. */
static void queue_dsn_recorded(void *arg, int error)
{
    struct queue_dsn_job *job = arg;
    if (!job->r) {
        queue_dsn_free(job); /* the DSN stays spooled: recovery queues it */
        return;
    }
    if (error) {
        queue_dsn_wait(job, QUEUE_DSN_RECORD, "cannot make its bounce record durable", error);
        return;
    }
    struct queue_rcpt *r = job->r;
    struct spool_envelope *env = job->env;
    job->env = NULL;
    log_write("queue", VIPMTA_LOG_INFO, "%s: recipient <%s> failed: DSN %s to <%s>", r->msg->id,
              r->address, job->dsn_id, r->msg->sender);
    queue_dsn_free(job);
    queue_add(env);
    queue_final(r);
}

static void queue_dsn_record(struct queue_dsn_job *job)
{
    struct queue_rcpt *r = job->r;
    if (spool_record_bounced(r->msg->id, r->index, queue_dsn_recorded, job) != 0)
        queue_dsn_wait(job, QUEUE_DSN_RECORD, "cannot record its bounce", errno);
}

/* Step 2 done: the DSN is durable. */
static void queue_dsn_committed(void *arg, int error)
{
    struct queue_dsn_job *job = arg;
    if (!job->r) {
        queue_dsn_free(job);
        return;
    }
    if (error) {
        /* the spool removed its files */
        spool_envelope_free(job->env);
        job->env = NULL;
        queue_dsn_wait(job, QUEUE_DSN_SPOOL, "cannot make its DSN durable", error);
        return;
    }
    queue_dsn_record(job);
}

/* The DSN's envelope: from the null sender to the original's sender, over
 * the original's binding. */
static struct spool_envelope *queue_dsn_envelope(const struct queue_message *m)
{
    const struct vipmta_config *cfg = config_current();
    const char *host = cfg && cfg->hostname ? cfg->hostname : "localhost";
    const char *binding = config_get_binding_name_from_id(m->binding);
    struct spool_envelope *env = calloc(1, sizeof(*env));
    if (!env)
        return NULL;
    env->received = time(NULL);
    env->client_addr = queue_strdup("");
    env->helo = queue_strdup(host);
    env->sender = queue_strdup("");
    env->binding = queue_strdup(binding ? binding : "default");
    env->is_dsn = 1;
    env->rcpts = calloc(1, sizeof(*env->rcpts));
    if (env->rcpts) {
        env->rcpt_count = 1;
        env->rcpts[0].address = queue_strdup(m->sender);
    }
    if (!env->client_addr || !env->helo || !env->sender || !env->binding || !env->rcpts ||
        !env->rcpts[0].address) {
        spool_envelope_free(env);
        return NULL;
    }
    return env;
}

/* Step 1 done: the F record is durable; the DSN may now be committed. */
static void queue_dsn_intended(void *arg, int error)
{
    struct queue_dsn_job *job = arg;
    if (!job->r) {
        queue_dsn_free(job);
        return;
    }
    if (error) {
        spool_writer_abort(job->w);
        job->w = NULL;
        queue_dsn_wait(job, QUEUE_DSN_SPOOL, "cannot make its bounce durable", error);
        return;
    }
    struct spool_writer *w = job->w;
    job->w = NULL;
    job->env = queue_dsn_envelope(job->r->msg);
    if (!job->env) {
        spool_writer_abort(w);
        queue_dsn_wait(job, QUEUE_DSN_SPOOL, "cannot spool its DSN", ENOMEM);
        return;
    }
    if (spool_writer_commit(w, job->env, queue_dsn_committed, job) != 0) {
        int err = errno; /* the writer and its files are gone */
        spool_envelope_free(job->env);
        job->env = NULL;
        queue_dsn_wait(job, QUEUE_DSN_SPOOL, "cannot spool its DSN", err);
    }
}

/* The DSN's text into a new (uncommitted) spool message: job->w, job->dsn_id. */
static int queue_dsn_write(struct queue_dsn_job *job)
{
    const struct queue_message *m = job->r->msg;
    const struct vipmta_config *cfg = config_current();
    size_t hlen = 0, len = 0;
    char *headers = queue_dsn_headers(m, &hlen);
    struct queue_dsn_recipient dr = {
        .address = job->r->address,
        .status = NULL,
        .diagnostic = job->reply,
        .remote_mta = NULL,
    };
    struct queue_dsn_request req = {
        .reporting_mta = cfg && cfg->hostname ? cfg->hostname : "localhost",
        .queue_id = m->id,
        .original_sender = m->sender,
        .arrival = m->received,
        .rcpts = &dr,
        .rcpt_count = 1,
        .original_headers = hlen ? headers : NULL,
        .original_headers_len = hlen,
    };
    char *text = queue_dsn_compose(&req, &len);
    free(headers);
    if (!text) {
        errno = ENOMEM;
        return -1;
    }
    struct spool_writer *w = spool_writer_open();
    /* the body goes to its file now (step 1): it may wait a while for its F record */
    if (!w || spool_writer_write(w, text, len) != 0 || spool_writer_close_body(w) != 0) {
        int err = errno;
        spool_writer_abort(w);
        free(text);
        errno = err;
        return -1;
    }
    free(text);
    memcpy(job->dsn_id, spool_writer_id(w), sizeof(job->dsn_id));
    job->w = w;
    return 0;
}

/* Steps 1 and 2 from the start (a new DSN each time). */
static void queue_dsn_spool(struct queue_dsn_job *job)
{
    struct queue_rcpt *r = job->r;
    if (r->msg->op_delete) {
        /* deleted by the operator while the bounce waited: no DSN */
        log_write("queue", VIPMTA_LOG_NOTICE, "%s: recipient <%s> dropped: the message was "
                  "deleted by the operator before its DSN could be spooled", r->msg->id,
                  r->address);
        queue_dsn_free(job);
        queue_drop(r);
        return;
    }
    if (queue_dsn_write(job) != 0) {
        queue_dsn_wait(job, QUEUE_DSN_SPOOL, "cannot spool its DSN", errno);
        return;
    }
    if (spool_record_bouncing(r->msg->id, r->index, job->dsn_id, queue_dsn_intended, job) != 0) {
        int err = errno;
        spool_writer_abort(job->w);
        job->w = NULL;
        queue_dsn_wait(job, QUEUE_DSN_SPOOL, "cannot record its bounce", err);
    }
}

/* Waiting jobs whose time has come start again. */
static void queue_dsn_on_timer(evutil_socket_t fd, short what, void *unused)
{
    (void)fd;
    (void)what;
    (void)unused;
    time_t now = time(NULL), next = 0;
    struct queue_dsn_job *due = NULL;
    qd.timer_at = 0;
    /* the due ones first: a step changes or frees its own job only */
    for (struct queue_dsn_job *j = qd.jobs; j; j = j->next) {
        if (!j->waiting)
            continue;
        if (j->retry_at <= now) {
            j->waiting = 0;
            j->due_next = due;
            due = j;
        } else if (!next || j->retry_at < next) {
            next = j->retry_at;
        }
    }
    if (next)
        queue_dsn_arm(next);
    while (due) {
        struct queue_dsn_job *j = due;
        due = j->due_next;
        queue_count_waiting_bounce(-1);
        if (j->resume == QUEUE_DSN_RECORD)
            queue_dsn_record(j);
        else
            queue_dsn_spool(j);
    }
}

/* ---- public (queue_internal.h) ---- */

int queue_dsn_init(struct event_base *base)
{
    qd.base = base;
    qd.jobs = NULL;
    qd.timer_at = 0;
    qd.timer = evtimer_new(base, queue_dsn_on_timer, NULL);
    return qd.timer ? 0 : -1;
}

void queue_dsn_shutdown(void)
{
    while (qd.jobs) {
        struct queue_dsn_job *j = qd.jobs;
        if (j->waiting) {
            queue_count_waiting_bounce(-1);
            queue_dsn_free(j);
        } else {
            /* a spool step is pending: its callback frees the job (the
             * recipient is freed with the queue; recovery settles it) */
            queue_dsn_unlink(j);
            j->r = NULL;
        }
    }
    if (qd.timer)
        event_free(qd.timer);
    qd.timer = NULL;
    qd.timer_at = 0;
    qd.base = NULL;
}

void queue_dsn_bounce(struct queue_rcpt *r, const char *reply)
{
    size_t rlen = strlen(reply);
    struct queue_dsn_job *job = calloc(1, sizeof(*job) + rlen + 1);
    if (!job) {
        /* not final: tried again (and bounced again) after a while */
        log_write("queue", VIPMTA_LOG_ERROR, "%s: recipient <%s>: out of memory bouncing it: "
                  "stays queued", r->msg->id, r->address);
        queue_requeue(r, queue_retry_delay(r, 1));
        return;
    }
    queue_fly(r); /* not final until the DSN is durable */
    memcpy(job->reply, reply, rlen + 1);
    job->r = r;
    job->next = qd.jobs;
    if (qd.jobs)
        qd.jobs->prev = job;
    qd.jobs = job;
    job->listed = 1;
    queue_dsn_spool(job);
}
