/* connlog.c: the connlog module: one JSON line per allowed post-bind call, to a file (reopened on SIGHUP, optionally buffered) or syslog. */
#include "connlog.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>
#include "vipmta_binding.h"
#include "hooks/core/connection_post_bind.h"
#include "vipmta_tls.h"

#define CONNLOG_LINE_MAX 2048
/* With flush_interval_ms: lines wait here; a full buffer is written at once. */
#define CONNLOG_BUFFER_SIZE 65536

struct connlog_state {
    vipmta_module_ctx *m;
    const struct connlog_config *cfg; /* the options in force (vipmta_module_config) */
    int fd;              /* the log file, -1 in syslog mode */
    vipmta_signal_watch *sighup;
    vipmta_timer *flush_timer; /* pending while the buffer holds lines */
    int write_failing;   /* a write failed; logged once until one succeeds */
    size_t buffered;     /* bytes in buffer, whole lines only */
    char buffer[CONNLOG_BUFFER_SIZE];
};

static int connlog_open(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
}

/* Writes len bytes of whole lines to the file. */
static void connlog_write_out(struct connlog_state *st, const char *line, size_t len)
{
    /* O_APPEND and one write() per batch of whole lines: whole lines, even
     * while the file is rotated */
    const char *p = line;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(st->fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (!st->write_failing)
                vipmta_module_log(st->m, VIPMTA_LOG_ERROR,
                                  "cannot write to %s: %s (logged once until a write succeeds)",
                                  st->cfg->file, n < 0 ? strerror(errno) : "nothing written");
            st->write_failing = 1;
            return;
        }
        p += n;
        left -= (size_t)n;
    }
    if (st->write_failing) {
        vipmta_module_log(st->m, VIPMTA_LOG_NOTICE, "writing to %s again", st->cfg->file);
        st->write_failing = 0;
    }
}

/* Writes what the buffer holds (to the file open now). */
static void connlog_flush(struct connlog_state *st)
{
    vipmta_timer_stop(st->flush_timer);
    if (st->buffered && st->fd >= 0)
        connlog_write_out(st, st->buffer, st->buffered);
    st->buffered = 0;
}

static void connlog_on_flush_timer(void *arg)
{
    connlog_flush(arg);
}

static void connlog_write(struct connlog_state *st, const char *line, int len)
{
    if (st->fd < 0) {
        syslog(LOG_MAIL | LOG_INFO, "%.*s", len - 1, line); /* without the newline */
        return;
    }
    if (!st->cfg->flush_interval_ms || !st->flush_timer) {
        connlog_write_out(st, line, (size_t)len);
        return;
    }
    if (st->buffered + (size_t)len > sizeof(st->buffer))
        connlog_flush(st);
    memcpy(st->buffer + st->buffered, line, (size_t)len);
    st->buffered += (size_t)len;
    if (!vipmta_timer_pending(st->flush_timer))
        vipmta_timer_start(st->flush_timer, st->cfg->flush_interval_ms);
}

static int connlog_post_bind(void *closure, domain_record *dr, int binding_slot, int fd,
                             struct sockaddr *addr, int addr_len)
{
    struct connlog_state *st = closure;
    struct sockaddr_storage src;
    socklen_t src_len = sizeof(src);
    struct connlog_event ev = {
        .domain = dr ? dr->domain : NULL,
        .binding = config_get_binding_name_from_id(binding_slot),
        .slot = binding_slot,
        .destination = addr,
        .destination_len = addr_len,
        .fd = fd,
        /* registered last: running at all means the chain so far allowed it */
        .verdict = "allow",
    };
    gettimeofday(&ev.time, NULL);
    /* the socket is bound to the binding's address, port 0 until connect()
     * (IP_BIND_ADDRESS_NO_PORT): take it from the binding table and save a
     * system call; ask the socket only for bindings without an address */
    const vipmta_binding *b = vipmta_binding_by_slot(binding_slot);
    int family = addr ? addr->sa_family : AF_UNSPEC;
    if (b && family == AF_INET && b->has_addr4) {
        ev.source = (const struct sockaddr *)&b->addr4;
        ev.source_len = (int)sizeof(b->addr4);
    } else if (b && family == AF_INET6 && b->has_addr6) {
        ev.source = (const struct sockaddr *)&b->addr6;
        ev.source_len = (int)sizeof(b->addr6);
    } else if (getsockname(fd, (struct sockaddr *)&src, &src_len) == 0) {
        ev.source = (const struct sockaddr *)&src;
        ev.source_len = (int)src_len;
    }
    char line[CONNLOG_LINE_MAX];
    int len = connlog_format_line(&ev, line, sizeof(line));
    if (len < 0)
        vipmta_module_log(st->m, VIPMTA_LOG_WARNING, "cannot format the line for fd %d", fd);
    else
        connlog_write(st, line, len);
    return 0; /* logging never vetoes */
}

/* The "tls" option: one line when an outbound connection's TLS is settled. */
static int connlog_outbound_tls(void *closure, domain_record *dr, int binding_slot, int fd,
                                const vipmta_tls_info *tls)
{
    struct connlog_state *st = closure;
    if (!st->cfg || !st->cfg->tls || !tls)
        return 0;
    struct connlog_tls_event ev = {
        .domain = dr ? dr->domain : NULL,
        .binding = config_get_binding_name_from_id(binding_slot),
        .slot = binding_slot,
        .fd = fd,
        .encrypted = tls->encrypted,
        .version = tls->version,
        .cipher = tls->cipher,
        .verify_error = tls->verify_error,
        .peer_name = tls->peer_name,
        .policy = tls->policy,
        .bits = tls->cipher_bits,
        .verified = tls->verified,
        .resumed = tls->resumed,
    };
    gettimeofday(&ev.time, NULL);
    char line[CONNLOG_LINE_MAX];
    int len = connlog_format_tls_line(&ev, line, sizeof(line));
    if (len < 0)
        vipmta_module_log(st->m, VIPMTA_LOG_WARNING, "cannot format the TLS line for fd %d", fd);
    else
        connlog_write(st, line, len);
    return 0;
}

/* Opens the file of `cfg` unless it is the one already open. Returns the fd
 * to use (-1 for syslog) or -2 after reporting the error. */
static int connlog_open_for(struct connlog_state *st, const struct connlog_config *cfg)
{
    if (!cfg->file)
        return -1;
    if (st->fd >= 0 && st->cfg && st->cfg->file && strcmp(st->cfg->file, cfg->file) == 0)
        return st->fd;
    int fd = connlog_open(cfg->file);
    if (fd < 0) {
        vipmta_module_error(st->m, "file", "cannot open \"%s\" for appending: %s", cfg->file,
                            strerror(errno));
        return -2;
    }
    return fd;
}

static void connlog_reopen(int sig, void *arg)
{
    struct connlog_state *st = arg;
    (void)sig;
    if (!st->cfg || !st->cfg->file)
        return;
    int fd = connlog_open(st->cfg->file);
    if (fd < 0) {
        vipmta_module_log(st->m, VIPMTA_LOG_ERROR, "SIGHUP: cannot reopen %s: %s; still "
                                                   "writing to the old file",
                          st->cfg->file, strerror(errno));
        return;
    }
    connlog_flush(st); /* the lines so far belong to the old file */
    if (st->fd >= 0)
        close(st->fd);
    st->fd = fd;
    st->write_failing = 0;
    vipmta_module_log(st->m, VIPMTA_LOG_INFO, "SIGHUP: reopened %s", st->cfg->file);
}

static int connlog_configure(vipmta_module_ctx *m, const vipmta_value *options)
{
    struct connlog_config *cfg = connlog_config_parse(m, options);
    if (!cfg)
        return 1;
    struct connlog_state *st = calloc(1, sizeof(*st));
    if (!st) {
        connlog_config_free(cfg);
        vipmta_module_error(m, NULL, "out of memory");
        return 1;
    }
    st->m = m;
    st->fd = -1;
    vipmta_module_set_data(m, st);
    vipmta_module_keep_config(m, cfg, connlog_config_free);
    return 0;
}

static int connlog_init(vipmta_module_ctx *m)
{
    struct connlog_state *st = vipmta_module_get_data(m);
    const struct connlog_config *cfg = vipmta_module_config(m);
    int fd = connlog_open_for(st, cfg); /* st->fd is -1: opens the file */
    if (fd == -2)
        return 1;
    st->fd = fd;
    st->cfg = cfg;
    /* without an event loop (vipmta -M) lines are written one by one and
     * SIGHUP reopens nothing */
    st->sighup = vipmta_signal_watch_new(m, SIGHUP, connlog_reopen, st);
    st->flush_timer = vipmta_timer_new(m, connlog_on_flush_timer, st);
    register_core_connection_post_bind_hook_last(connlog_post_bind, st);
    /* always registered: the "tls" option may be turned on by a reload */
    register_vipmta_outbound_tls_hook_last(connlog_outbound_tls, st);
    vipmta_module_log(m, VIPMTA_LOG_INFO, "logging connections to %s%s",
                      cfg->file ? cfg->file : "syslog (facility mail)",
                      cfg->file && !st->sighup ? " (no event loop: no reopen on SIGHUP)" : "");
    if (cfg->file && cfg->flush_interval_ms && st->flush_timer)
        vipmta_module_log(m, VIPMTA_LOG_INFO, "lines buffered, written within %u ms",
                          cfg->flush_interval_ms);
    return 0;
}

static int connlog_reload(vipmta_module_ctx *m, const vipmta_value *options)
{
    struct connlog_state *st = vipmta_module_get_data(m);
    struct connlog_config *cfg = connlog_config_parse(m, options);
    if (!cfg)
        return 1;
    int fd = connlog_open_for(st, cfg);
    if (fd == -2) {
        connlog_config_free(cfg);
        return 1;
    }
    connlog_flush(st);
    if (st->fd >= 0 && st->fd != fd)
        close(st->fd);
    vipmta_module_keep_config(m, cfg, connlog_config_free);
    st->cfg = cfg;
    st->fd = fd;
    st->write_failing = 0;
    return 0;
}

static void connlog_shutdown(vipmta_module_ctx *m)
{
    struct connlog_state *st = vipmta_module_get_data(m);
    if (!st)
        return;
    connlog_flush(st);
    vipmta_timer_free(st->flush_timer);
    vipmta_signal_watch_free(st->sighup);
    if (st->fd >= 0)
        close(st->fd);
    free(st);
    vipmta_module_set_data(m, NULL);
}

static const vipmta_module_descriptor connlog_descriptor = {
    VIPMTA_MODULE_HEADER("connlog", "1.0.0",
                         "one JSON line per outbound connection allowed by the post-bind chain"),
    .configure = connlog_configure,
    .init = connlog_init,
    .reload = connlog_reload,
    .shutdown = connlog_shutdown,
};

VIPMTA_MODULE_EXPORT(connlog_descriptor)
