/* smtpd_commit.c: the end of DATA: limit replies, the envelope, binding choice, spool commit and the 250. */
#include "smtpd_session.h"
#include "binding/binding_select.h"
#include "queue/queue.h"
#include "control/control_stats.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The envelope for the message just received (recipients move out of the session). */
static struct spool_envelope *smtpd_envelope(struct smtpd_session *s, const char *x_binding,
                                             struct binding_choice *choice)
{
    const struct vipmta_config *cfg = s->cfg;
    struct spool_envelope *env = calloc(1, sizeof(*env));
    if (!env)
        return NULL;
    snprintf(env->id, sizeof(env->id), "%s", s->queue_id);
    env->received = time(NULL);
    env->client_addr = strdup(s->addr_str);
    env->helo = strdup(s->helo ? s->helo : "");
    env->sender = strdup(s->sender ? s->sender : "");
    env->smtputf8 = s->smtputf8;
    env->rcpts = calloc(s->rcpt_count, sizeof(*env->rcpts));
    env->auth_user = s->auth_user ? strdup(s->auth_user) : NULL;
    if (!env->client_addr || !env->helo || !env->sender || !env->rcpts ||
        (s->auth_user && !env->auth_user)) {
        spool_envelope_free(env);
        return NULL;
    }

    *choice = (struct binding_choice){NULL, VIPMTA_BINDING_DEFAULT_SLOT};
    int trusted = s->may_relay || s->auth_user; /* relay clients choose with X-Binding */
    binding_select(cfg, s->sender ? s->sender : "", (const char *const *)s->rcpts,
                   s->rcpt_count, trusted ? x_binding : NULL, trusted, s->auth_user, choice);
    const char *name = config_get_binding_name_from_id(choice->slot);
    env->binding = strdup(name ? name : "default");
    env->binding_group = choice->group ? strdup(choice->group) : NULL;
    if (!env->binding || (choice->group && !env->binding_group)) {
        spool_envelope_free(env);
        return NULL;
    }

    for (size_t i = 0; i < s->rcpt_count; i++) {
        env->rcpts[i].address = s->rcpts[i];
        env->rcpts[i].state = SPOOL_RCPT_PENDING;
        env->rcpts[i].attempts = 0;
        env->rcpts[i].next_attempt = 0;
        s->rcpts[i] = NULL;
    }
    env->rcpt_count = s->rcpt_count;
    s->rcpt_count = 0;
    return env;
}

void smtpd_commit_end(struct smtpd_session *s)
{
    s->queue_id[0] = '\0';
    smtpd_transaction_reset(s);
    s->state = SMTPD_STATE_COMMAND;
}

void smtpd_commit_resume_session(struct smtpd_session *s)
{
    if (!s->io) {
        smtpd_session_free(s);
        return;
    }
    smtpd_session_arm(s, smtpd_session_command_timeout(s));
    smtpd_session_process(s); /* pipelined input that waited for this reply */
}

/* The spool made the message durable (error 0), or failed to. */
static void smtpd_commit_done(void *arg, int error)
{
    struct smtpd_session *s = arg;
    struct spool_envelope *env = s->pending;
    char from[SMTPD_PATH_MAX];

    s->pending = NULL;
    if (error) {
        smtpd_log(s, VIPMTA_LOG_ERROR, "message not accepted: spool commit failed: %s: 451 4.3.0",
                  strerror(error));
        smtpd_reply(s, "451 4.3.0 Error writing message to disk, try again");
        control_stats_totals()->messages_rejected++;
        spool_envelope_free(env);
    } else {
        smtpd_log(s, VIPMTA_LOG_INFO, "accepted from=<%s> nrcpt=%zu size=%llu binding=%s%s%s%s%s%s",
                  smtpd_printable(env->sender, from, sizeof(from)), env->rcpt_count,
                  (unsigned long long)env->body_size, env->binding,
                  env->binding_group ? " group=" : "",
                  env->binding_group ? env->binding_group : "",
                  env->auth_user ? " auth=" : "", env->auth_user ? env->auth_user : "",
                  s->io ? "" : " (client gone before the reply)");
        smtpd_reply(s, "250 2.0.0 Ok: queued as %s", s->queue_id);
        s->messages++;
        control_stats_totals()->messages_accepted++;
        control_stats_totals()->recipients_accepted += env->rcpt_count;
        queue_add(env);
    }
    smtpd_commit_end(s);
    smtpd_commit_resume_session(s);
}

void smtpd_commit_spool(struct smtpd_session *s, struct spool_writer *w,
                        struct spool_envelope *env)
{
    s->state = SMTPD_STATE_COMMIT;
    s->pending = env;
    smtpd_session_arm(s, 0);
    /* `done` may run before this returns: nothing of s is touched afterwards on success */
    if (spool_writer_commit(w, env, smtpd_commit_done, s) != 0) {
        int err = errno;
        s->pending = NULL;
        smtpd_log(s, VIPMTA_LOG_ERROR, "spool commit failed: %s: 451 4.3.0", strerror(err));
        smtpd_reply(s, "451 4.3.0 Error writing message to disk, try again");
        control_stats_totals()->messages_rejected++;
        spool_envelope_free(env);
        smtpd_commit_end(s);
        smtpd_commit_resume_session(s);
    }
}

void smtpd_commit(struct smtpd_session *s)
{
    struct smtpd_data *d = s->data;
    const struct vipmta_config *cfg = s->cfg;

    int bare = d->bare_eol && cfg->smtp.bare_line_ends_reject;
    if (d->write_errno || d->too_big || d->line_too_long || bare) {
        control_stats_totals()->messages_rejected++;
        if (d->write_errno) {
            smtpd_log(s, VIPMTA_LOG_ERROR, "cannot write the message to the spool: %s: 451 4.3.0",
                      strerror(d->write_errno));
            smtpd_reply(s, "451 4.3.0 Error writing message to disk, try again");
        } else if (d->too_big) {
            smtpd_log(s, VIPMTA_LOG_NOTICE,
                      "reject: message of %llu octets over max_message_size %zu: 552 5.3.4",
                      (unsigned long long)d->size, cfg->smtp.max_message_size);
            smtpd_reply(s, "552 5.3.4 Error: message size exceeds fixed maximum message size (%zu bytes)",
                        cfg->smtp.max_message_size);
        } else if (bare) {
            smtpd_log(s, VIPMTA_LOG_NOTICE, "reject: a line ends with a bare CR or LF "
                      "(bare_line_ends reject): 554 5.6.0");
            smtpd_reply(s, "554 5.6.0 Error: message rejected: a line ends with a bare CR or LF; "
                        "end every line with CRLF (RFC 5321 2.3.8)");
        } else {
            smtpd_log(s, VIPMTA_LOG_NOTICE,
                      "reject: a text line is longer than %d octets: 554 5.6.0", SMTPD_TEXT_LINE_MAX);
            smtpd_reply(s, "554 5.6.0 Error: message rejected: a text line is longer than %d octets "
                        "including CRLF (RFC 5321 limit)", SMTPD_TEXT_LINE_MAX);
        }
        smtpd_data_abort(s);
        smtpd_commit_end(s);
        return;
    }

    const char *xb = (d->xb_state == 1 || d->xb_state == 2) && d->xb_len ? d->x_binding : NULL;
    struct binding_choice choice;
    struct spool_envelope *env = smtpd_envelope(s, xb, &choice);
    if (!env) {
        smtpd_log(s, VIPMTA_LOG_ERROR, "out of memory building the envelope: 451 4.3.0");
        smtpd_reply(s, "451 4.3.0 Error: out of memory, try again");
        smtpd_data_abort(s);
        smtpd_commit_end(s);
        return;
    }
    struct spool_writer *w = d->writer;
    time_t deadline = d->deadline;
    d->writer = NULL;
    free(d);
    s->data = NULL;
    smtpd_transaction_reset(s);
    s->state = SMTPD_STATE_COMMIT;
    smtpd_session_arm(s, 0);
    if (smtpd_hooks_wanted(choice.group != NULL))
        smtpd_hooks_start(s, w, env, deadline, choice.slot); /* then smtpd_commit_spool, or a refusal */
    else
        smtpd_commit_spool(s, w, env);
}
