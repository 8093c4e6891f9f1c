/* throttle_redis.c: the throttle module's asynchronous Redis client: shared token buckets charged by a Lua script, timeouts, outage detection and reconnection. */
#include "throttle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#define BACKOFF_FIRST_MS 250
#define BACKOFF_MAX_MS 8000

/* Charges ARGV[4] connections to the token bucket stored in the hash KEYS[1]
 * (fields "tokens" and "stamp", in Redis server time so node clocks do not
 * matter), refilling ARGV[1] tokens every ARGV[2] seconds up to ARGV[3]. The
 * bucket may go below zero: connections already started are always charged,
 * and the debt delays everyone's next token. Returns {whole tokens left,
 * microseconds until one token is available (0: now)}. The key expires when
 * it would be full again (a missing key is a full bucket). */
static const char charge_script[] =
    "if redis.replicate_commands then redis.replicate_commands() end\n"
    "local count = tonumber(ARGV[1])\n"
    "local period_us = tonumber(ARGV[2]) * 1000000\n"
    "local burst = tonumber(ARGV[3])\n"
    "local n = tonumber(ARGV[4])\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local v = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')\n"
    "local tokens = tonumber(v[1])\n"
    "local stamp = tonumber(v[2])\n"
    "if tokens == nil or stamp == nil then\n"
    "  tokens = burst\n"
    "elseif now > stamp then\n"
    "  tokens = tokens + (now - stamp) * count / period_us\n"
    "end\n"
    "if tokens > burst then tokens = burst end\n"
    "tokens = tokens - n\n"
    "local wait = 0\n"
    "if tokens < 1 then wait = math.ceil((1 - tokens) * period_us / count) end\n"
    "redis.call('HMSET', KEYS[1], 'tokens', string.format('%.17g', tokens),\n"
    "           'stamp', string.format('%.17g', now))\n"
    "redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * period_us / count / 1000) + 1000)\n"
    "return {math.floor(tokens), wait}\n";

/* One request on its way: a charge, or the probe sent on every new
 * connection (the script charging nothing, so a server that answers PING but
 * cannot run the script, or wants AUTH, is not taken for a working one). */
struct redis_req {
    struct throttle_redis *r;
    vipmta_timer *timer; /* the reply timeout */
    struct redis_req *prev, *next;
    void *arg;           /* the charge's; unused for the probe */
    int probe;
};

struct throttle_redis {
    vipmta_module_ctx *m;
    char *host;
    int port;
    int timeout_ms;
    char *probe_key;       /* the key the probe charges nothing to */
    int deny;              /* on_backend_error "deny" (for the outage line) */
    throttle_redis_done_fn done;
    void *user;
    redisAsyncContext *ac; /* NULL while disconnected */
    vipmta_timer *retry;   /* reconnect timer */
    int backoff_ms;
    int up;                /* no outage known */
    struct timespec down_since;
    struct redis_req *reqs;
    int closing;
};

static void redis_connect(struct throttle_redis *r);

/* ---- hiredis on the core's event loop: its adapter, over an fd watch ---- */

struct redis_io {
    redisAsyncContext *ac;
    vipmta_fd_watch *watch;
    unsigned events;
    int busy; /* inside a hiredis call from the watch */
    int dead; /* hiredis cleaned up meanwhile: free on the way out */
};

static void redis_io_free(struct redis_io *io)
{
    vipmta_fd_watch_free(io->watch);
    free(io);
}

static void redis_io_ready(int fd, unsigned ready, void *arg)
{
    struct redis_io *io = arg;
    (void)fd;
    io->busy = 1;
    if (ready & VIPMTA_FD_READ)
        redisAsyncHandleRead(io->ac);
    if (!io->dead && (ready & VIPMTA_FD_WRITE))
        redisAsyncHandleWrite(io->ac);
    io->busy = 0;
    if (io->dead)
        redis_io_free(io);
}

static void redis_io_want(struct redis_io *io, unsigned add, unsigned del)
{
    io->events = (io->events | add) & ~del;
    vipmta_fd_watch_set(io->watch, io->events);
}

static void redis_io_add_read(void *p)
{
    redis_io_want(p, VIPMTA_FD_READ, 0);
}

static void redis_io_del_read(void *p)
{
    redis_io_want(p, 0, VIPMTA_FD_READ);
}

static void redis_io_add_write(void *p)
{
    redis_io_want(p, VIPMTA_FD_WRITE, 0);
}

static void redis_io_del_write(void *p)
{
    redis_io_want(p, 0, VIPMTA_FD_WRITE);
}

static void redis_io_cleanup(void *p)
{
    struct redis_io *io = p;
    vipmta_fd_watch_set(io->watch, 0);
    if (io->busy)
        io->dead = 1;
    else
        redis_io_free(io);
}

/* Hooks the context's socket to the core's loop (what hiredis's own
 * adapters do for libevent or libev). 0, or -1. */
static int redis_io_attach(vipmta_module_ctx *m, redisAsyncContext *ac)
{
    struct redis_io *io = calloc(1, sizeof(*io));
    if (!io || ac->ev.data)
        goto fail;
    io->ac = ac;
    if (!(io->watch = vipmta_fd_watch_new(m, ac->c.fd, redis_io_ready, io)))
        goto fail;
    ac->ev.addRead = redis_io_add_read;
    ac->ev.delRead = redis_io_del_read;
    ac->ev.addWrite = redis_io_add_write;
    ac->ev.delWrite = redis_io_del_write;
    ac->ev.cleanup = redis_io_cleanup;
    ac->ev.data = io;
    return 0;
fail:
    free(io);
    return -1;
}

static double seconds_since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static void schedule_retry(struct throttle_redis *r)
{
    if (r->closing || vipmta_timer_pending(r->retry))
        return;
    vipmta_timer_start(r->retry, (unsigned long)r->backoff_ms);
    r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
}

/* Declares trouble (logged once per outage), drops the connection (every
 * request on its way completes, not ok) and schedules a reconnect. */
static void redis_fail(struct throttle_redis *r, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void redis_fail(struct throttle_redis *r, const char *what, const char *fmt, ...)
{
    if (r->up && !r->closing) {
        char why[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, sizeof(why), fmt, ap);
        va_end(ap);
        r->up = 0;
        clock_gettime(CLOCK_MONOTONIC, &r->down_since);
        vipmta_module_log(r->m, VIPMTA_LOG_WARNING,
                          "redis %s:%d %s: %s; until it is back, connections %s "
                          "(on_backend_error %s); this is logged once per outage",
                          r->host, r->port, what, why,
                          r->deny ? "under a shared limit are vetoed"
                                  : "are allowed under this node's local limits only",
                          r->deny ? "deny" : "allow");
    }
    if (r->ac) {
        redisAsyncContext *ac = r->ac;
        r->ac = NULL;
        redisAsyncFree(ac); /* deferred by hiredis when inside one of its callbacks */
    }
    schedule_retry(r);
}

static void redis_good_reply(struct throttle_redis *r)
{
    r->backoff_ms = BACKOFF_FIRST_MS;
    if (!r->up) {
        r->up = 1;
        vipmta_module_log(r->m, VIPMTA_LOG_NOTICE,
                          "redis %s:%d reachable again after %.1f s; the shared limits apply "
                          "again",
                          r->host, r->port, seconds_since(&r->down_since));
    }
}

static void req_unlink_free(struct redis_req *q)
{
    struct throttle_redis *r = q->r;
    if (q->prev)
        q->prev->next = q->next;
    else
        r->reqs = q->next;
    if (q->next)
        q->next->prev = q->prev;
    vipmta_timer_free(q->timer);
    free(q);
}

static void on_reply(redisAsyncContext *ac, void *reply_v, void *priv)
{
    (void)ac;
    struct redis_req *q = priv;
    struct throttle_redis *r = q->r;
    redisReply *reply = reply_v;
    void *arg = q->arg;
    int probe = q->probe;

    req_unlink_free(q);
    if (!reply) { /* the connection is going away; whoever dropped it says why */
        if (!probe)
            r->done(r->user, arg, 0, 0, 0);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        if (!probe)
            r->done(r->user, arg, 0, 0, 0);
        redis_fail(r, "failing", "%s", reply->str ? reply->str : "error reply");
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER ||
        reply->element[1]->type != REDIS_REPLY_INTEGER) {
        if (!probe)
            r->done(r->user, arg, 0, 0, 0);
        redis_fail(r, "failing", "unexpected reply to the throttle script (type %d)",
                   reply->type);
        return;
    }
    redis_good_reply(r);
    if (!probe)
        r->done(r->user, arg, 1, reply->element[0]->integer, reply->element[1]->integer);
}

static void on_timeout(void *priv)
{
    struct redis_req *q = priv;
    struct throttle_redis *r = q->r;
    /* dropping the connection completes q (and every other request) */
    redis_fail(r, "unreachable", "no reply within %d ms", r->timeout_ms);
}

/* Sends one command; 0 when on its way, -1 when not connected. */
static int req_send(struct throttle_redis *r, void *arg, int probe, int argc, const char **argv,
                    const size_t *lens)
{
    if (!r->ac)
        return -1;
    struct redis_req *q = calloc(1, sizeof(*q));
    if (!q)
        return -1;
    q->r = r;
    q->arg = arg;
    q->probe = probe;
    if (!(q->timer = vipmta_timer_new(r->m, on_timeout, q))) {
        free(q);
        return -1;
    }
    if (redisAsyncCommandArgv(r->ac, on_reply, q, argc, argv, lens) != REDIS_OK) {
        vipmta_timer_free(q->timer);
        free(q);
        return -1;
    }
    q->next = r->reqs;
    if (r->reqs)
        r->reqs->prev = q;
    r->reqs = q;
    vipmta_timer_start(q->timer, (unsigned long)r->timeout_ms);
    return 0;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct throttle_redis *r = ac->data;
    if (status != REDIS_OK && ac == r->ac) {
        r->ac = NULL; /* hiredis frees it after this callback */
        redis_fail(r, "unreachable", "%s", ac->errstr[0] ? ac->errstr : "connect failed");
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct throttle_redis *r = ac->data;
    if (ac != r->ac) /* we dropped it ourselves */
        return;
    r->ac = NULL; /* hiredis frees it after this callback */
    redis_fail(r, "unreachable", "%s",
               status == REDIS_OK || !ac->errstr[0] ? "connection closed" : ac->errstr);
}

static void redis_connect(struct throttle_redis *r)
{
    redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);
    if (!ac) {
        redis_fail(r, "unreachable", "out of memory");
        return;
    }
    if (ac->err) {
        char why[128];
        snprintf(why, sizeof(why), "%s", ac->errstr);
        redisAsyncFree(ac);
        redis_fail(r, "unreachable", "%s", why);
        return;
    }
    ac->data = r;
    if (redis_io_attach(r->m, ac) != 0) {
        redisAsyncFree(ac);
        redis_fail(r, "unreachable", "cannot attach to the event loop");
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    r->ac = ac;
    /* the probe's timeout bounds the connect; its reply ends an outage */
    const char *argv[] = {"EVAL", charge_script, "1", r->probe_key, "1", "1", "1", "0"};
    if (req_send(r, NULL, 1, (int)(sizeof(argv) / sizeof(argv[0])), argv, NULL) != 0)
        redis_fail(r, "unreachable", "cannot send the probe");
}

static void on_retry(void *priv)
{
    struct throttle_redis *r = priv;
    if (!r->ac)
        redis_connect(r);
}

struct throttle_redis *throttle_redis_new(vipmta_module_ctx *m,
                                          const struct throttle_redis_opts *opts,
                                          int deny_on_error, throttle_redis_done_fn done,
                                          void *user)
{
    struct throttle_redis *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->m = m;
    r->port = opts->port;
    r->timeout_ms = opts->timeout_ms;
    r->deny = deny_on_error;
    r->done = done;
    r->user = user;
    r->up = 1;
    r->backoff_ms = BACKOFF_FIRST_MS;
    size_t plen = strlen(opts->key_prefix) + sizeof("probe");
    if (!(r->host = strdup(opts->host)) || !(r->probe_key = malloc(plen)) ||
        !(r->retry = vipmta_timer_new(m, on_retry, r))) {
        free(r->probe_key);
        free(r->host);
        free(r);
        return NULL;
    }
    snprintf(r->probe_key, plen, "%sprobe", opts->key_prefix);
    redis_connect(r);
    return r;
}

void throttle_redis_free(struct throttle_redis *r)
{
    if (!r)
        return;
    r->closing = 1;
    vipmta_timer_stop(r->retry);
    if (r->ac) {
        redisAsyncContext *ac = r->ac;
        r->ac = NULL;
        redisAsyncFree(ac); /* completes every request, not ok */
    }
    while (r->reqs) { /* none left, unless hiredis kept some */
        void *arg = r->reqs->arg;
        int probe = r->reqs->probe;
        req_unlink_free(r->reqs);
        if (!probe)
            r->done(r->user, arg, 0, 0, 0);
    }
    vipmta_timer_free(r->retry);
    free(r->probe_key);
    free(r->host);
    free(r);
}

void throttle_redis_set_deny(struct throttle_redis *r, int deny_on_error)
{
    r->deny = deny_on_error;
}

int throttle_redis_up(const struct throttle_redis *r)
{
    return r->up;
}

int throttle_redis_charge(struct throttle_redis *r, const char *key,
                          const struct throttle_params *p, uint32_t n, void *arg)
{
    char count[16], period[16], burst[16], nn[16];
    snprintf(count, sizeof(count), "%u", p->count);
    snprintf(period, sizeof(period), "%u", p->period_s);
    snprintf(burst, sizeof(burst), "%u", p->burst);
    snprintf(nn, sizeof(nn), "%u", n);
    const char *argv[] = {"EVAL", charge_script, "1", key, count, period, burst, nn};
    return req_send(r, arg, 0, (int)(sizeof(argv) / sizeof(argv[0])), argv, NULL);
}
