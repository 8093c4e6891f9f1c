/* dkimmod.c: the dkim module: lifecycle, the end-of-DATA hook that suspends each message, and the worker job that signs it and adds its DKIM-Signature fields. */
#include "dkimmod.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hooks/core/final_validation2.h"
#include "vipmta_message.h"
#include "vipmta_metrics.h"

#define DEFER_REPLY "451 4.7.5 Message could not be DKIM-signed, try again later"

struct dkimmod_state {
    vipmta_module_ctx *m;
    pthread_mutex_t lock;         /* guards cfg: hooks run on the inbound loops */
    struct dkimmod_config *cfg;   /* in force (one reference) */
    struct dkimmod_pool *pool;    /* NULL until init */
};

/* One message on its way through the pool. */
struct dkimmod_job {
    struct dkimmod_state *st;
    struct dkimmod_config *cfg; /* a reference: a reload does not change a message's signing */
    vipmta_message_handle *handle;
    ec_message *msg;
    int slot;
    struct dkimmod_choice choice;
    char group[256];
    char id[64];
};

static struct dkimmod_config *config_get(struct dkimmod_state *st)
{
    pthread_mutex_lock(&st->lock);
    struct dkimmod_config *cfg = st->cfg ? dkimmod_config_ref(st->cfg) : NULL;
    pthread_mutex_unlock(&st->lock);
    return cfg;
}

static ssize_t message_read(void *arg, uint64_t offset, void *buf, size_t len)
{
    return vipmta_message_read(arg, offset, buf, len);
}

static void count_one(struct dkimmod_state *st, enum dkimmod_outcome outcome, const char *domain,
                      const char *alg)
{
    static const char *const outcomes[] = {"signed", "skipped", "failed"};
    const char *labels[] = {"outcome", outcomes[outcome], "domain", domain ? domain : "",
                            "algorithm", alg ? alg : "", NULL};
    vipmta_module_counter_add(st->m, "vipmta_dkim_messages_total",
                              "Messages by outcome (signed, skipped: no key, failed: could not "
                              "be signed), signing domain and algorithm (one per signature).",
                              labels, 1);
}

/* Counts the outcome per signature (once without a key: no domain label,
 * as the From domain of a message without a key is the sender's choice). */
static void count(struct dkimmod_state *st, enum dkimmod_outcome outcome,
                  const struct dkimmod_key *const *keys, size_t nkeys)
{
    if (nkeys == 0)
        count_one(st, outcome, NULL, NULL);
    for (size_t i = 0; i < nkeys; i++)
        count_one(st, outcome, keys[i]->domain, dkimmod_alg_name(keys[i]->alg));
}

/* The end of a message that could not be signed: accept it unsigned or defer it. */
static void sign_failed(struct dkimmod_job *job, const char *why)
{
    int defer = job->choice.on_error == DKIMMOD_ON_ERROR_DEFER;
    vipmta_module_log(job->st->m, VIPMTA_LOG_WARNING, "message %s: not signed: %s; %s", job->id,
                      why, defer ? "deferred with 451 (on_error \"defer\")"
                                 : "accepted unsigned (on_error \"accept\")");
    vipmta_message_resume(job->handle, defer ? EC_HOOK_RETRY : EC_HOOK_CONT,
                          defer ? DEFER_REPLY : NULL);
}

/* Signs one message (on a worker thread; the message is suspended). */
static void sign_message(struct dkimmod_job *job)
{
    struct dkimmod_state *st = job->st;
    const struct dkimmod_config *cfg = job->cfg;
    char err[512], domain[DKIMMOD_NAME_MAX + 1] = "";
    size_t hlen = 0;
    char *headers = vipmta_message_get_headers(job->msg, &hlen);
    if (!headers) {
        snprintf(err, sizeof(err), "cannot read its header section: %s", strerror(errno));
        count(st, DKIMMOD_FAILED, NULL, 0);
        sign_failed(job, err);
        return;
    }
    int has_from = dkimmod_from_domain(headers, hlen, domain, sizeof(domain)) == 0;
    free(headers);
    const struct dkimmod_key *pair[DKIMMOD_ALGS], *keys[DKIMMOD_ALGS];
    const char *signer = has_from ? domain : NULL;
    int n = signer ? dkimmod_config_keys(cfg, job->slot, job->group[0] ? job->group : NULL,
                                         signer, pair)
                   : 0;
    if (n == 0 && job->choice.fallback_domain) {
        signer = job->choice.fallback_domain;
        n = dkimmod_config_keys(cfg, job->slot, job->group[0] ? job->group : NULL, signer, pair);
    }
    if (n == 0) {
        vipmta_module_log(st->m, VIPMTA_LOG_INFO,
                          "message %s: not signed: %s%s and no fallback_domain", job->id,
                          has_from ? "no key for the From domain " : "no From domain",
                          has_from ? domain : "");
        count(st, DKIMMOD_SKIPPED, NULL, 0);
        vipmta_message_resume(job->handle, EC_HOOK_CONT, NULL);
        return;
    }
    size_t nkeys = 0;
    for (int a = 0; a < DKIMMOD_ALGS; a++)
        if (pair[a])
            keys[nkeys++] = pair[a];
    char *values[DKIMMOD_ALGS] = {NULL, NULL};
    enum dkimmod_sign_result r =
        dkimmod_sign(cfg->lib, keys, nkeys, job->choice.canon_header, job->choice.canon_body,
                     job->id, message_read, job->msg, values, err, sizeof(err));
    for (size_t i = 0; r == DKIMMOD_SIGN_OK && i < nkeys; i++) {
        if (vipmta_message_add_header(job->msg, "DKIM-Signature", values[i]) != 0) {
            snprintf(err, sizeof(err), "cannot add its DKIM-Signature field: %s",
                     strerror(errno));
            r = DKIMMOD_SIGN_FAILED;
        }
    }
    for (size_t i = 0; i < nkeys; i++)
        free(values[i]);
    if (r != DKIMMOD_SIGN_OK) {
        count(st, DKIMMOD_FAILED, keys, nkeys);
        sign_failed(job, err);
        return;
    }
    count(st, DKIMMOD_SIGNED, keys, nkeys);
    if (vipmta_module_log_enabled(st->m, VIPMTA_LOG_DEBUG))
        vipmta_module_log(st->m, VIPMTA_LOG_DEBUG, "message %s: signed d=%s s=%s a=%s%s%s%s%s",
                          job->id, keys[0]->domain, keys[0]->selector,
                          dkimmod_alg_name(keys[0]->alg), nkeys > 1 ? " and s=" : "",
                          nkeys > 1 ? keys[1]->selector : "",
                          nkeys > 1 ? " a=" : "", nkeys > 1 ? dkimmod_alg_name(keys[1]->alg) : "");
    vipmta_message_resume(job->handle, EC_HOOK_CONT, NULL);
}

static void run_job(void *arg)
{
    struct dkimmod_job *job = arg;
    sign_message(job);
    dkimmod_config_unref(job->cfg);
    free(job);
}

static int dkimmod_final_validation2(void *closure, ec_message *msg, accept_construct *ac,
                                     validate_context *ctx)
{
    (void)ac;
    struct dkimmod_state *st = closure;
    struct dkimmod_config *cfg = config_get(st);
    if (!cfg || !st->pool) {
        dkimmod_config_unref(cfg);
        return EC_HOOK_CONT;
    }
    int slot = vipmta_message_binding(msg);
    const char *group = vipmta_message_binding_group(msg);
    struct dkimmod_choice choice;
    dkimmod_config_resolve(cfg, slot, group, &choice);
    if (!choice.sign) {
        count(st, DKIMMOD_SKIPPED, NULL, 0);
        if (vipmta_module_log_enabled(st->m, VIPMTA_LOG_DEBUG))
            vipmta_module_log(st->m, VIPMTA_LOG_DEBUG,
                              "message %s: not signed: \"sign\" is false for binding %s",
                              vipmta_message_id(msg), config_get_binding_name_from_id(slot));
        dkimmod_config_unref(cfg);
        return EC_HOOK_CONT;
    }
    errno = 0;
    struct dkimmod_job *job = calloc(1, sizeof(*job));
    if (job) {
        job->st = st;
        job->cfg = cfg;
        job->msg = msg;
        job->slot = slot;
        job->choice = choice;
        snprintf(job->group, sizeof(job->group), "%s", group ? group : "");
        snprintf(job->id, sizeof(job->id), "%s", vipmta_message_id(msg));
        job->handle = vipmta_message_suspend(msg);
    }
    if (job && job->handle && dkimmod_pool_submit(st->pool, job) == 0)
        return EC_HOOK_CONT;
    /* not handed to a worker: out of memory, or the pool is stopping */
    int e = errno ? errno : ENOMEM;
    int suspended = job && job->handle;
    count(st, DKIMMOD_FAILED, NULL, 0);
    int defer = choice.on_error == DKIMMOD_ON_ERROR_DEFER;
    vipmta_module_log(st->m, VIPMTA_LOG_WARNING, "message %s: not signed: cannot hand it to a "
                      "signing worker (%s); %s", vipmta_message_id(msg), strerror(e),
                      defer ? "deferred with 451" : "accepted unsigned");
    if (suspended)
        vipmta_message_resume(job->handle, defer ? EC_HOOK_RETRY : EC_HOOK_CONT,
                              defer ? DEFER_REPLY : NULL);
    free(job);
    dkimmod_config_unref(cfg);
    if (defer && !suspended) {
        vipmta_validate_set_reply(ctx, DEFER_REPLY);
        return EC_HOOK_RETRY;
    }
    return EC_HOOK_CONT;
}

static int dkimmod_configure(vipmta_module_ctx *m, const vipmta_value *options)
{
    (void)options;
    struct dkimmod_config *cfg = dkimmod_config_parse(m);
    if (!cfg)
        return -1;
    struct dkimmod_state *st = vipmta_module_get_data(m);
    if (!st) {
        st = calloc(1, sizeof(*st));
        if (!st) {
            dkimmod_config_unref(cfg);
            vipmta_module_error(m, NULL, "out of memory");
            return -1;
        }
        st->m = m;
        pthread_mutex_init(&st->lock, NULL);
        vipmta_module_set_data(m, st);
    }
    pthread_mutex_lock(&st->lock);
    struct dkimmod_config *old = st->cfg;
    st->cfg = cfg;
    pthread_mutex_unlock(&st->lock);
    if (old && st->pool && old->workers != cfg->workers &&
        dkimmod_pool_resize(st->pool, cfg->workers) != 0)
        vipmta_module_log(m, VIPMTA_LOG_WARNING, "workers: cannot start %d signing threads "
                          "(%s); running with fewer", cfg->workers, strerror(errno));
    if (old)
        vipmta_module_log(m, VIPMTA_LOG_INFO, "reloaded: new keys and options apply to "
                          "messages from now on");
    dkimmod_config_unref(old);
    return 0;
}

static int dkimmod_init(vipmta_module_ctx *m)
{
    struct dkimmod_state *st = vipmta_module_get_data(m);
    if (!st || !st->cfg)
        return -1;
    st->pool = dkimmod_pool_new(st->cfg->workers, run_job);
    if (!st->pool) {
        vipmta_module_error(m, NULL, "cannot start %d signing threads: %s", st->cfg->workers,
                            strerror(errno));
        return -1;
    }
    /* last: every other provider has added its fields before the signature is made */
    register_core_final_validation2_hook_last(dkimmod_final_validation2, st);
    return 0;
}

static void dkimmod_shutdown(vipmta_module_ctx *m)
{
    struct dkimmod_state *st = vipmta_module_get_data(m);
    if (!st)
        return;
    dkimmod_pool_free(st->pool); /* signs what is queued first */
    dkimmod_config_unref(st->cfg);
    pthread_mutex_destroy(&st->lock);
    free(st);
    vipmta_module_set_data(m, NULL);
}

static const vipmta_module_descriptor dkimmod_descriptor = {
    VIPMTA_MODULE_HEADER("dkim", "1.0.0",
                         "DKIM-signs each message at acceptance (RSA and Ed25519, libopendkim)"),
    .configure = dkimmod_configure,
    .init = dkimmod_init,
    .reload = dkimmod_configure,
    .shutdown = dkimmod_shutdown,
    .scopes = VIPMTA_SCOPES_BINDING,
};
VIPMTA_MODULE_EXPORT(dkimmod_descriptor)
