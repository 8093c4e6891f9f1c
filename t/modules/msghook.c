/* msghook.c: test module for the end-of-DATA message hooks: adds header fields, rejects, defers, and suspends messages resumed from a thread of its own, by the message's Subject. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "hooks/core/final_validation.h"
#include "hooks/core/final_validation2.h"
#include "vipmta_module.h"

/*
 * Options:
 *   "add": [["Name", "value"], ...]  fields final_validation2 adds to every
 *                                    message it lets through, in order
 *   "thread_ms": 200                 how long a thread holds a suspended message
 * By the first word of the message's Subject:
 *   "reject"          final_validation2 rejects with "550 5.7.1 msghook says no"
 *   "reject-default"  rejects with no reply of its own
 *   "defer"           defers with "451 4.7.1 msghook says later"
 *   "bad-reply"       rejects with a 4xx reply (ignored by the core: the default)
 *   "suspend"         suspends; a thread reads the whole message, adds
 *                     "X-Msghook-Thread: read N octets" and resumes it
 *   "suspend-reject"  suspends; the thread resumes it with a rejection
 *   "suspend-final"   final_validation suspends; the thread resumes it
 * final_validation adds "X-Msghook-Final: seen N" (N: the fields added
 * before it) to every message.
 */

struct msghook_config {
    size_t nadd;
    char *names[8];
    char *values[8];
    long long thread_ms;
};

/* Threads holding a message: shutdown waits for them. */
static pthread_mutex_t msghook_lock = PTHREAD_MUTEX_INITIALIZER;
static int msghook_threads;

struct msghook_job {
    ec_message *msg;
    vipmta_message_handle *h;
    long long ms;
    int result;
    const char *reply;
};

static void *msghook_thread(void *arg)
{
    struct msghook_job *job = arg;
    struct timespec ts = {job->ms / 1000, (job->ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    if (job->result == EC_HOOK_CONT) {
        /* read the message as it will be sent, from this thread */
        char buf[4096];
        uint64_t off = 0;
        ssize_t n;
        while ((n = vipmta_message_read(job->msg, off, buf, sizeof(buf))) > 0)
            off += (uint64_t)n;
        char value[64];
        snprintf(value, sizeof(value), "read %llu octets%s", (unsigned long long)off,
                 off == vipmta_message_size(job->msg) ? "" : " (short)");
        vipmta_message_add_header(job->msg, "X-Msghook-Thread", value);
    }
    vipmta_message_resume(job->h, job->result, job->reply);
    free(job);
    pthread_mutex_lock(&msghook_lock);
    msghook_threads--;
    pthread_mutex_unlock(&msghook_lock);
    return NULL;
}

/* Suspends msg and hands it to a thread that resumes it with `result`. */
static void msghook_suspend(vipmta_module_ctx *m, ec_message *msg, int result, const char *reply)
{
    const struct msghook_config *cfg = vipmta_module_config(m);
    struct msghook_job *job = calloc(1, sizeof(*job));
    if (!job)
        return;
    job->msg = msg;
    job->ms = cfg->thread_ms;
    job->result = result;
    job->reply = reply;
    job->h = vipmta_message_suspend(msg);
    if (!job->h) {
        vipmta_module_log(m, VIPMTA_LOG_ERROR, "cannot suspend: %s", strerror(errno));
        free(job);
        return;
    }
    pthread_mutex_lock(&msghook_lock);
    msghook_threads++;
    pthread_mutex_unlock(&msghook_lock);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, msghook_thread, job) != 0) {
        pthread_mutex_lock(&msghook_lock);
        msghook_threads--;
        pthread_mutex_unlock(&msghook_lock);
        vipmta_message_resume(job->h, EC_HOOK_RETRY, NULL);
        free(job);
    }
    pthread_attr_destroy(&attr);
}

/* The first word of the message's Subject ("" when none), into buf. */
static void msghook_subject(ec_message *msg, char *buf, size_t size)
{
    size_t len;
    char *h = vipmta_message_get_headers(msg, &len);
    buf[0] = '\0';
    for (char *line = h; line && *line;) {
        char *end = strstr(line, "\r\n");
        if (!end)
            break;
        if (strncasecmp(line, "Subject:", 8) == 0) {
            char *v = line + 8;
            while (*v == ' ')
                v++;
            size_t n = strcspn(v, " \r"); /* its first word */
            snprintf(buf, size, "%.*s", (int)n, v);
            break;
        }
        line = end + 2;
    }
    free(h);
}

static int msghook_fv2(void *closure, ec_message *msg, accept_construct *ac, validate_context *ctx)
{
    vipmta_module_ctx *m = closure;
    const struct msghook_config *cfg = vipmta_module_config(m);
    char subject[128];
    msghook_subject(msg, subject, sizeof(subject));
    vipmta_module_log(m, VIPMTA_LOG_INFO, "final_validation2 id=%s from=<%s> rcpts=%zu first=<%s> "
                      "client=%s helo=%s binding=%s size=%llu subject=%s",
                      vipmta_message_id(msg), vipmta_message_sender(msg),
                      vipmta_message_recipient_count(msg), vipmta_message_recipient(msg, 0),
                      vipmta_accept_client_address(ac), vipmta_accept_helo(ac),
                      config_get_binding_name_from_id(vipmta_message_binding(msg)),
                      (unsigned long long)vipmta_message_size(msg), subject);
    if (strcmp(subject, "reject") == 0) {
        vipmta_validate_set_reply(ctx, "550 5.7.1 msghook says no");
        return EC_HOOK_DONE;
    }
    if (strcmp(subject, "reject-default") == 0)
        return EC_HOOK_DONE;
    if (strcmp(subject, "bad-reply") == 0) {
        vipmta_validate_set_reply(ctx, "451 4.7.1 not a rejection");
        return EC_HOOK_DONE;
    }
    if (strcmp(subject, "defer") == 0) {
        vipmta_validate_set_reply(ctx, "451 4.7.1 msghook says later");
        return EC_HOOK_RETRY;
    }
    if (strcmp(subject, "suspend") == 0)
        msghook_suspend(m, msg, EC_HOOK_CONT, NULL);
    else if (strcmp(subject, "suspend-reject") == 0)
        msghook_suspend(m, msg, EC_HOOK_DONE, "554 5.7.1 the thread says no");
    for (size_t i = 0; i < cfg->nadd; i++)
        if (vipmta_message_add_header(msg, cfg->names[i], cfg->values[i]) != 0)
            vipmta_module_log(m, VIPMTA_LOG_ERROR, "cannot add %s: %s", cfg->names[i],
                              strerror(errno));
    return EC_HOOK_CONT;
}

static void msghook_fv(void *closure, ec_message *msg, accept_construct *ac, validate_context *ctx)
{
    vipmta_module_ctx *m = closure;
    char subject[128], value[32];
    (void)ac, (void)ctx;
    msghook_subject(msg, subject, sizeof(subject));
    snprintf(value, sizeof(value), "seen %zu", vipmta_message_added_headers(msg));
    vipmta_message_add_header(msg, "X-Msghook-Final", value);
    if (strcmp(subject, "suspend-final") == 0)
        msghook_suspend(m, msg, EC_HOOK_CONT, NULL);
}

static void msghook_free(void *p)
{
    struct msghook_config *cfg = p;
    for (size_t i = 0; cfg && i < cfg->nadd; i++) {
        free(cfg->names[i]);
        free(cfg->values[i]);
    }
    free(cfg);
}

static void *msghook_parse(vipmta_module_ctx *m, const vipmta_value *options)
{
    static const char *const keys[] = {"add", "thread_ms", NULL};
    struct msghook_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg)
        return NULL;
    cfg->thread_ms = 200;
    int errors = vipmta_module_check_keys(m, options, NULL, keys);
    errors += vipmta_option_int(m, options, NULL, "thread_ms", 0, 60000, &cfg->thread_ms) < 0;
    const vipmta_value *add = vipmta_value_get(options, "add");
    for (size_t i = 0; add && i < vipmta_value_size(add) && i < 8; i++) {
        const vipmta_value *pair = vipmta_value_at(add, i);
        const char *name = vipmta_value_string(vipmta_value_at(pair, 0));
        const char *value = vipmta_value_string(vipmta_value_at(pair, 1));
        if (!name || !value) {
            vipmta_module_error(m, "add", "must be a list of [name, value] pairs");
            errors++;
            break;
        }
        cfg->names[cfg->nadd] = strdup(name);
        cfg->values[cfg->nadd++] = strdup(value);
    }
    if (errors) {
        msghook_free(cfg);
        return NULL;
    }
    return cfg;
}

static int msghook_configure(vipmta_module_ctx *m, const vipmta_value *options)
{
    return vipmta_module_keep_config(m, msghook_parse(m, options), msghook_free);
}

static int msghook_init(vipmta_module_ctx *m)
{
    register_core_final_validation2_hook_last(msghook_fv2, m);
    register_core_final_validation_hook_last(msghook_fv, m);
    return 0;
}

static void msghook_shutdown(vipmta_module_ctx *m)
{
    (void)m;
    /* a thread may still hold a message: the code must stay mapped until it is done */
    for (int i = 0; i < 6000; i++) {
        pthread_mutex_lock(&msghook_lock);
        int n = msghook_threads;
        pthread_mutex_unlock(&msghook_lock);
        if (!n)
            break;
        usleep(10000);
    }
}

static const vipmta_module_descriptor msghook_descriptor = {
    VIPMTA_MODULE_HEADER("msghook", "1.0.0", "end-of-DATA hooks for the tests"),
    .configure = msghook_configure,
    .init = msghook_init,
    .reload = msghook_configure,
    .shutdown = msghook_shutdown,
};
VIPMTA_MODULE_EXPORT(msghook_descriptor)
