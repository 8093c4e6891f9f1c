/* smtpd_hooks.c: the end-of-DATA message hooks (final_validation2, final_validation): running them before the spool commit, suspended messages resumed from any thread, their deadline, stop and reload. */
#include "smtpd_session.h"
#include "binding/binding_choose.h"
#include "control/control_stats.h"
#include "plugin/plugin_hooks.h"
#include "plugin/plugin_message.h"
#include "tls/tls.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* A module's label as a handle keeps it (the module may go before the handle). */
#define SMTPD_HOOKS_LABEL_MAX 96

enum smtpd_hooks_stage {
    SMTPD_HOOKS_FV2, /* final_validation2 runs, or its suspended messages wait */
    SMTPD_HOOKS_FV,  /* final_validation runs, or its suspended messages wait */
};

/* The message just received while the hooks have it. The session points at
 * it (s->msg) until it is spooled, refused, or let go (the client left, the
 * deadline passed, the server stops or reloads): then `s` is NULL and the
 * message only waits for its handles to be resumed, to be discarded. */
struct smtpd_msg {
    ec_message pub;
    struct smtpd_session *s;
    struct spool_writer *w;
    struct spool_envelope *env;
    accept_construct ac;
    validate_context ctx;
    enum smtpd_hooks_stage stage;
    int running;                          /* a chain runs now */
    unsigned handles;                     /* suspensions not yet resumed (as the loop saw) */
    int result;                           /* the first EC_HOOK_DONE / EC_HOOK_RETRY */
    char reply[PLUGIN_MESSAGE_REPLY_MAX]; /* its reply ("": the default) */
    char module[SMTPD_HOOKS_LABEL_MAX];   /* who decided */
    char holder[SMTPD_HOOKS_LABEL_MAX];   /* who suspended it last */
    char tls_version[16];
    time_t deadline;                      /* smtp.data_deadline, counted from DATA */
    struct vipmta_message_handle *held;   /* its handles not yet resumed (loop side) */
    struct smtpd_msg *prev, *next;        /* every message the hooks have */
};

struct vipmta_message_handle {
    struct smtpd_msg *m;
    char module[SMTPD_HOOKS_LABEL_MAX];
    int result;
    char *reply;
    struct vipmta_message_handle *next;      /* the resumed list (under the lock) */
    struct vipmta_message_handle *held_next; /* m->held (loop side) */
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct vipmta_message_handle *resumed, **resumed_tail; /* waiting for the loop */
    unsigned outstanding;                 /* handles not yet resumed, every message */
    int wake_fd;                          /* eventfd: a resume wakes the loop */
    struct event *wake_ev;
    struct smtpd_msg *all;                /* the loop's */
} sh = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .cond = PTHREAD_COND_INITIALIZER,
    .resumed_tail = &sh.resumed,
    .wake_fd = -1,
};

static void smtpd_hooks_continue(struct smtpd_msg *m);

/* ---- the message's life ---- */

static void smtpd_hooks_unlink(struct smtpd_msg *m)
{
    if (m->prev)
        m->prev->next = m->next;
    else if (sh.all == m)
        sh.all = m->next;
    if (m->next)
        m->next->prev = m->prev;
    m->prev = m->next = NULL;
}

/* Frees m and its files (nothing was spooled). */
static void smtpd_hooks_discard(struct smtpd_msg *m)
{
    smtpd_hooks_unlink(m);
    if (m->s)
        m->s->msg = NULL;
    spool_writer_abort(m->w);
    spool_envelope_free(m->env);
    plugin_message_release(&m->pub);
    while (m->held) {
        struct vipmta_message_handle *h = m->held;
        m->held = h->held_next;
        free(h->reply);
        free(h);
    }
    free(m);
}

/* Lets the session go on without m, which waits for its handles: it can
 * never be spooled now, so its files go at once (its holders may still read
 * the body through the open file). */
static void smtpd_hooks_detach(struct smtpd_msg *m)
{
    if (m->s)
        m->s->msg = NULL;
    m->s = NULL;
    spool_writer_unlink(m->w);
    pthread_mutex_lock(&m->pub.lock);
    m->pub.may_add = 0; /* a holder may still read it, no more */
    m->pub.may_rebind = 0;
    pthread_mutex_unlock(&m->pub.lock);
}

static void smtpd_hooks_log(const struct smtpd_msg *m, enum vipmta_log_level level,
                            const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void smtpd_hooks_log(const struct smtpd_msg *m, enum vipmta_log_level level,
                            const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    log_write("smtpd", level, "id=%s client=%s: %s", m->env->id, m->env->client_addr, text);
}

/* ---- suspension ---- */

static vipmta_message_handle *smtpd_hooks_suspend(ec_message *msg)
{
    struct smtpd_msg *m = (struct smtpd_msg *)msg;
    if (!m->running) {
        errno = EPERM;
        return NULL;
    }
    struct vipmta_message_handle *h = calloc(1, sizeof(*h));
    if (!h) {
        errno = ENOMEM;
        return NULL;
    }
    const char *who = plugin_hooks_running();
    h->m = m;
    snprintf(h->module, sizeof(h->module), "%s", who ? who : "unknown");
    snprintf(m->holder, sizeof(m->holder), "%s", h->module);
    h->held_next = m->held;
    m->held = h;
    m->handles++;
    pthread_mutex_lock(&sh.lock);
    sh.outstanding++;
    pthread_mutex_unlock(&sh.lock);
    return h;
}

void vipmta_message_resume(vipmta_message_handle *h, int result, const char *reply)
{
    if (!h)
        return;
    h->result = result;
    h->reply = reply ? strdup(reply) : NULL;
    pthread_mutex_lock(&sh.lock);
    h->next = NULL;
    *sh.resumed_tail = h;
    sh.resumed_tail = &h->next;
    if (sh.outstanding)
        sh.outstanding--;
    pthread_cond_broadcast(&sh.cond);
    int fd = sh.wake_fd;
    pthread_mutex_unlock(&sh.lock);
    uint64_t one = 1;
    if (fd >= 0 && write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_write("smtpd", VIPMTA_LOG_ERROR, "cannot wake the event loop for a resumed message: %s",
                  strerror(errno));
}

/* A resumed handle, on the loop: its outcome goes to its message. */
static void smtpd_hooks_resumed(struct vipmta_message_handle *h)
{
    struct smtpd_msg *m = h->m;
    for (struct vipmta_message_handle **pp = &m->held; *pp; pp = &(*pp)->held_next) {
        if (*pp == h) {
            *pp = h->held_next;
            break;
        }
    }
    m->handles--;
    int result = h->result;
    if (result != EC_HOOK_CONT && result != EC_HOOK_DONE && result != EC_HOOK_RETRY) {
        smtpd_hooks_log(m, VIPMTA_LOG_WARNING, "module \"%s\" resumed the message with %d, "
                        "which is no EC_HOOK_ result: taken as EC_HOOK_RETRY", h->module, result);
        result = EC_HOOK_RETRY;
    }
    if (result != EC_HOOK_CONT && m->result == EC_HOOK_CONT) {
        m->result = result;
        snprintf(m->module, sizeof(m->module), "%s", h->module);
        m->reply[0] = '\0';
        if (h->reply) {
            if (plugin_message_reply_ok(h->reply, result == EC_HOOK_DONE ? '5' : '4'))
                snprintf(m->reply, sizeof(m->reply), "%s", h->reply);
            else
                smtpd_hooks_log(m, VIPMTA_LOG_WARNING, "module \"%s\": reply \"%.80s\" ignored: "
                                "expected one line \"%cxx %c.x.y text\"", h->module, h->reply,
                                result == EC_HOOK_DONE ? '5' : '4', result == EC_HOOK_DONE ? '5' : '4');
        }
    }
    free(h->reply);
    free(h);
    if (!m->handles && !m->running)
        smtpd_hooks_continue(m);
}

/* Handles every resumed handle (loop thread). */
static void smtpd_hooks_drain(void)
{
    pthread_mutex_lock(&sh.lock);
    struct vipmta_message_handle *list = sh.resumed;
    sh.resumed = NULL;
    sh.resumed_tail = &sh.resumed;
    pthread_mutex_unlock(&sh.lock);
    while (list) {
        struct vipmta_message_handle *h = list;
        list = h->next;
        smtpd_hooks_resumed(h);
    }
}

static void smtpd_hooks_on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    (void)arg;
    uint64_t n;
    if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN && errno != EINTR)
        log_write("smtpd", VIPMTA_LOG_ERROR, "wake-up read: %s", strerror(errno));
    smtpd_hooks_drain();
}

/* ---- running the chains ---- */

static void smtpd_hooks_clear_reply(validate_context *ctx)
{
    ctx->reply[0] = '\0';
}

/* Runs final_validation2: its first rejection or deferral is m's. */
static void smtpd_hooks_run_fv2(struct smtpd_msg *m)
{
    const char *who = NULL;
    m->running = 1;
    int r = plugin_hooks_final_validation2(&m->pub, &m->ac, &m->ctx, smtpd_hooks_clear_reply, &who);
    m->running = 0;
    if (r == EC_HOOK_CONT || m->result != EC_HOOK_CONT)
        return;
    if (r != EC_HOOK_DONE && r != EC_HOOK_RETRY) {
        smtpd_hooks_log(m, VIPMTA_LOG_WARNING, "module \"%s\": final_validation2 returned %d, "
                        "which is no EC_HOOK_ result: taken as EC_HOOK_RETRY", who ? who : "?", r);
        r = EC_HOOK_RETRY;
    }
    m->result = r;
    snprintf(m->module, sizeof(m->module), "%s", who ? who : "unknown");
    if (m->ctx.reply[0]) {
        if (plugin_message_reply_ok(m->ctx.reply, r == EC_HOOK_DONE ? '5' : '4'))
            snprintf(m->reply, sizeof(m->reply), "%s", m->ctx.reply);
        else
            smtpd_hooks_log(m, VIPMTA_LOG_WARNING, "module \"%s\": reply \"%.80s\" ignored: "
                            "expected one line \"%cxx %c.x.y text\"", m->module, m->ctx.reply,
                            r == EC_HOOK_DONE ? '5' : '4', r == EC_HOOK_DONE ? '5' : '4');
    }
}

static void smtpd_hooks_run_fv(struct smtpd_msg *m)
{
    m->running = 1;
    plugin_hooks_final_validation(&m->pub, &m->ac, &m->ctx);
    m->running = 0;
}

/* Arms the session's timer for the deadline of a suspended message (a
 * stopping server waits less). */
static void smtpd_hooks_arm(struct smtpd_msg *m)
{
    time_t now = time(NULL);
    time_t left = m->deadline - now;
    if (m->s->stopping && left > SMTPD_HOOKS_STOP_WAIT)
        left = SMTPD_HOOKS_STOP_WAIT;
    smtpd_session_arm(m->s, (unsigned)(left < 1 ? 1 : left));
}

/* The binding hooks: a module's choice in the group, then validate_set_binding
 * (and post_validate_set_binding when it changed the binding). */
static void smtpd_hooks_binding(struct smtpd_msg *m)
{
    ec_message *msg = &m->pub;
    if (msg->group && has_core_binding_group_choose_binding_hook())
        msg->binding = binding_choose(msg, msg->group, EC_BINDING_SLOT_UNBOUND, msg->binding);
    if (!has_core_validate_set_binding_hook())
        return;
    ec_binding_slot before = msg->binding;
    const char *group = msg->group;
    call_core_validate_set_binding_hook(msg);
    if ((msg->binding != before || msg->group != group) && has_core_post_validate_set_binding_hook())
        call_core_post_validate_set_binding_hook(msg);
}

/* The binding the hooks left goes into the envelope: 0, or -1 (out of memory). */
static int smtpd_hooks_envelope_binding(struct smtpd_msg *m)
{
    const char *name = config_get_binding_name_from_id(m->pub.binding);
    char *binding = strdup(name ? name : "default");
    char *group = m->pub.group ? strdup(m->pub.group) : NULL;
    if (!binding || (m->pub.group && !group)) {
        free(binding);
        free(group);
        return -1;
    }
    free(m->env->binding);
    free(m->env->binding_group);
    m->env->binding = binding;
    m->env->binding_group = group;
    return 0;
}

/* m has no handle out and no chain running: on to the next stage, the
 * reply, or the spool. */
static void smtpd_hooks_continue(struct smtpd_msg *m)
{
    struct smtpd_session *s = m->s;
    if (!s) {
        smtpd_hooks_log(m, VIPMTA_LOG_INFO, "message discarded, nothing spooled: every module "
                        "resumed it after the session had let it go");
        smtpd_hooks_discard(m);
        return;
    }
    if (m->result == EC_HOOK_CONT && m->stage == SMTPD_HOOKS_FV2) {
        m->stage = SMTPD_HOOKS_FV;
        if (has_core_final_validation_hook())
            smtpd_hooks_run_fv(m);
        if (m->handles) {
            smtpd_hooks_arm(m);
            return;
        }
    }
    if (m->result != EC_HOOK_CONT) {
        int reject = m->result == EC_HOOK_DONE;
        const char *reply = m->reply[0] ? m->reply
                            : reject ? "550 5.7.1 Error: message rejected by policy"
                                     : "451 4.7.1 Error: message deferred by policy, try again later";
        smtpd_log(s, VIPMTA_LOG_NOTICE, "message %s by module \"%s\": %s",
                  reject ? "rejected" : "deferred", m->module, reply);
        smtpd_reply(s, "%s", reply);
        control_stats_totals()->messages_rejected++;
        smtpd_hooks_discard(m);
        smtpd_commit_end(s);
        smtpd_commit_resume_session(s);
        return;
    }
    /* accepted by every module: the binding and the added fields go with the envelope */
    pthread_mutex_lock(&m->pub.lock);
    m->pub.may_add = 0;
    m->pub.may_rebind = 0;
    m->pub.suspend = NULL;
    pthread_mutex_unlock(&m->pub.lock);
    if (smtpd_hooks_envelope_binding(m) != 0) {
        smtpd_log(s, VIPMTA_LOG_ERROR, "out of memory for the message's binding: 451 4.3.0");
        smtpd_reply(s, "451 4.3.0 Error: out of memory, try again");
        control_stats_totals()->messages_rejected++;
        smtpd_hooks_discard(m);
        smtpd_commit_end(s);
        smtpd_commit_resume_session(s);
        return;
    }
    struct spool_envelope *env = m->env;
    struct spool_writer *w = m->w;
    env->added_headers = plugin_message_take_added(&m->pub, &env->added_headers_len);
    m->env = NULL;
    m->w = NULL;
    smtpd_hooks_discard(m);
    smtpd_commit_spool(s, w, env);
}

int smtpd_hooks_wanted(int in_group)
{
    return has_core_final_validation2_hook() || has_core_final_validation_hook() ||
           has_core_validate_set_binding_hook() ||
           (in_group && has_core_binding_group_choose_binding_hook());
}

void smtpd_hooks_start(struct smtpd_session *s, struct spool_writer *w,
                       struct spool_envelope *env, time_t deadline, ec_binding_slot slot)
{
    struct smtpd_msg *m = calloc(1, sizeof(*m));
    if (!m) {
        smtpd_log(s, VIPMTA_LOG_ERROR, "out of memory for the message hooks: 451 4.3.0");
        smtpd_reply(s, "451 4.3.0 Error: out of memory, try again");
        control_stats_totals()->messages_rejected++;
        spool_writer_abort(w);
        spool_envelope_free(env);
        smtpd_commit_end(s);
        smtpd_commit_resume_session(s);
        return;
    }
    m->s = s;
    m->w = w;
    m->env = env;
    m->deadline = deadline;
    plugin_message_init_accept(&m->pub, env->id, env->sender, env->rcpts, env->rcpt_count,
                               w, spool_writer_size(w));
    m->pub.binding = slot;
    m->pub.group = env->binding_group;
    m->pub.may_rebind = 1;
    m->pub.may_add = 1;
    m->pub.suspend = smtpd_hooks_suspend;
    m->pub.owner = m;
    m->ac.client_address = env->client_addr;
    size_t alen = sizeof(s->addr);
    memcpy(&m->ac.client_sockaddr, &s->addr, alen);
    m->ac.client_len = s->addr.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                     : sizeof(struct sockaddr_in);
    m->ac.helo = env->helo;
    m->ac.auth_user = env->auth_user;
    if (s->tls) {
        snprintf(m->tls_version, sizeof(m->tls_version), "%s", s->tls->version);
        m->ac.tls_version = m->tls_version;
    }
    m->stage = SMTPD_HOOKS_FV2;
    m->next = sh.all;
    if (sh.all)
        sh.all->prev = m;
    sh.all = m;
    s->msg = m;
    smtpd_hooks_binding(m);
    if (has_core_final_validation2_hook())
        smtpd_hooks_run_fv2(m);
    if (m->handles) {
        smtpd_hooks_arm(m);
        return;
    }
    smtpd_hooks_continue(m);
}

/* ---- the session lets a suspended message go ---- */

void smtpd_hooks_timeout(struct smtpd_session *s)
{
    struct smtpd_msg *m = s->msg;
    if (!m)
        return;
    if (time(NULL) < m->deadline && !s->stopping) {
        smtpd_hooks_arm(m);
        return;
    }
    if (s->stopping && time(NULL) < m->deadline) {
        smtpd_log(s, VIPMTA_LOG_NOTICE, "server stopping while module \"%s\" holds the message "
                  "(suspended): 451 4.3.2, discarded once it is resumed", m->holder);
        smtpd_reply(s, "451 4.3.2 Error: service shutting down, try again later");
    } else {
        smtpd_log(s, VIPMTA_LOG_WARNING, "module \"%s\" did not resume the message within "
                  "data_deadline %us: 451 4.3.0, discarded once it is resumed", m->holder,
                  s->cfg->smtp.data_deadline);
        smtpd_reply(s, "451 4.3.0 Error: message processing timed out, try again later");
    }
    control_stats_totals()->messages_rejected++;
    smtpd_hooks_detach(m);
    smtpd_commit_end(s);
    smtpd_commit_resume_session(s);
}

void smtpd_hooks_stopping(struct smtpd_session *s)
{
    if (s->msg && s->msg->handles)
        smtpd_hooks_arm(s->msg);
}

void smtpd_hooks_client_gone(struct smtpd_session *s)
{
    struct smtpd_msg *m = s->msg;
    if (!m)
        return;
    smtpd_log(s, VIPMTA_LOG_NOTICE, "session ended (the client left or the server stops) "
              "while module \"%s\" holds the message (suspended): never acknowledged, discarded "
              "once it is resumed", m->holder);
    smtpd_hooks_detach(m);
}

void smtpd_hooks_settle(unsigned seconds)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += seconds;
    pthread_mutex_lock(&sh.lock);
    while (sh.outstanding && pthread_cond_timedwait(&sh.cond, &sh.lock, &until) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&sh.lock);
    smtpd_hooks_drain();
    for (struct smtpd_msg *m = sh.all, *next; m; m = next) {
        next = m->next;
        struct smtpd_session *s = m->s;
        if (!s || !m->handles)
            continue;
        smtpd_log(s, VIPMTA_LOG_NOTICE, "configuration reload while module \"%s\" holds the "
                  "message (suspended, waited %us): 451 4.3.0, discarded once it is resumed",
                  m->holder, seconds);
        smtpd_reply(s, "451 4.3.0 Error: message processing interrupted, try again later");
        control_stats_totals()->messages_rejected++;
        smtpd_hooks_detach(m);
        smtpd_commit_end(s);
        smtpd_commit_resume_session(s);
    }
}

/* ---- start and end ---- */

int smtpd_hooks_init(struct event_base *base)
{
    pthread_mutex_lock(&sh.lock);
    sh.resumed = NULL;
    sh.resumed_tail = &sh.resumed;
    pthread_mutex_unlock(&sh.lock);
    if (sh.wake_ev)
        return 0;
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0)
        return -1;
    sh.wake_ev = event_new(base, fd, EV_READ | EV_PERSIST, smtpd_hooks_on_wake, NULL);
    if (!sh.wake_ev || event_add(sh.wake_ev, NULL) != 0) {
        if (sh.wake_ev)
            event_free(sh.wake_ev);
        sh.wake_ev = NULL;
        close(fd);
        return -1;
    }
    pthread_mutex_lock(&sh.lock);
    sh.wake_fd = fd;
    pthread_mutex_unlock(&sh.lock);
    return 0;
}

void smtpd_hooks_shutdown(void)
{
    smtpd_hooks_drain();
    while (sh.all) {
        struct smtpd_msg *m = sh.all;
        if (m->handles)
            smtpd_hooks_log(m, VIPMTA_LOG_WARNING, "module \"%s\" never resumed the message: "
                            "discarded at shutdown", m->holder);
        smtpd_hooks_detach(m);
        smtpd_hooks_discard(m);
    }
    pthread_mutex_lock(&sh.lock);
    int fd = sh.wake_fd;
    sh.wake_fd = -1;
    sh.outstanding = 0;
    pthread_mutex_unlock(&sh.lock);
    if (sh.wake_ev)
        event_free(sh.wake_ev);
    sh.wake_ev = NULL;
    if (fd >= 0)
        close(fd);
}
