/* daemon.c: the running daemon: startup order, the event loop, signals, graceful shutdown. */
#include "daemon.h"
#include "config/config_current.h"
#include "binding/binding_table.h"
#include "control/control.h"
#include "deliver/deliver.h"
#include "queue/queue_domain.h"
#include "log/log.h"
#include "control/control_metrics.h"
#include "plugin/plugin_loader.h"
#include "daemon_priv.h"
#include "tls/tls.h"
#include "queue/queue.h"
#include "daemon_reload.h"
#include "route/route.h"
#include "smtpd/smtpd.h"
#include "spool/spool.h"
#include "control/control_stats.h"

#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct event_base *loop;
static int stopping;

/* What daemon_start started, so that shutdown undoes exactly that. */
static struct {
    unsigned bindings : 1, metrics : 1, server : 1, logs : 1, spool : 1, modules : 1, route : 1,
        deliver : 1, queue : 1, control : 1, running : 1;
} up;

struct event_base *daemon_event_base(void)
{
    return loop;
}

void daemon_set_event_base(struct event_base *base)
{
    loop = base;
}

static void daemon_recovered(void *arg, struct spool_envelope *env)
{
    (void)arg;
    queue_add(env);
}

static void daemon_signal_mask(int how)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(how, &set, NULL);
}

void daemon_block_signals(void)
{
    daemon_signal_mask(SIG_BLOCK);
}

void daemon_request_stop(const char *why)
{
    if (stopping) {
        log_write("core", VIPMTA_LOG_WARNING, "second %s: exiting at once", why);
        log_flush();
        _exit(1);
    }
    stopping = 1;
    log_write("core", VIPMTA_LOG_NOTICE,
              "%s: stopping (no new sessions; queued mail stays in the spool)", why);
    event_base_loopexit(loop, NULL);
}

static void daemon_on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    (void)arg;
    daemon_request_stop(sig == SIGINT ? "SIGINT" : "SIGTERM");
}

int daemon_reload(struct config_errors *errs)
{
    if (!up.running || stopping) {
        config_errors_add(errs, "the daemon is %s: nothing reloaded", stopping ? "stopping" : "starting");
        return -1;
    }
    return daemon_reload_config(errs); /* daemon_reload.c, docs/reload.md */
}

static void daemon_on_hup(evutil_socket_t sig, short what, void *arg)
{
    struct config_errors errs = {0};
    (void)sig;
    (void)what;
    (void)arg;
    /* the log files first, whatever becomes of the reload: after rotation
     * the daemon must not keep writing to the renamed files */
    log_reopen();
    log_write("core", VIPMTA_LOG_NOTICE, "SIGHUP: reloading %s",
              config_current()->path ? config_current()->path : "the configuration");
    if (daemon_reload(&errs) != 0) {
        for (size_t i = 0; i < errs.count; i++)
            log_write("core", VIPMTA_LOG_ERROR, "reload: %s", errs.messages[i]);
        log_write("core", VIPMTA_LOG_ERROR, "reload failed: still running on the old "
                  "configuration");
    }
    config_errors_clear(&errs);
}

/* The log files, as the run user: never followed through a symbolic link. */
static int daemon_open_logs(const struct vipmta_config *cfg, struct config_errors *errs)
{
    if (cfg->log_file && log_open_file(cfg->log_file) != 0) {
        config_errors_add(errs, "log_file: cannot open %s as the run user: %s (create its "
                          "directory, writable by the user vipmta runs as, or fix log_file)",
                          cfg->log_file, log_open_error(errno));
        return -1;
    }
    if (log_delivery_open(cfg->delivery_log) != 0) {
        config_errors_add(errs, "delivery_log: cannot open %s as the run user: %s (create its "
                          "directory, writable by the user vipmta runs as, or fix delivery_log)",
                          cfg->delivery_log, log_open_error(errno));
        return -1;
    }
    up.logs = 1;
    return 0;
}

/* After recovery: bindings absent from the configuration that queued mail
 * names were added (binding_table_add_absent): counters for every slot, and
 * a warning per absent binding with the mail waiting for it. 0, or -1 when
 * out of memory. */
static int daemon_report_waiting(void)
{
    int n = vipmta_binding_count();
    if (control_stats_init(n) != 0 || queue_domain_registry_grow_bindings(n) != 0)
        return -1;
    uint64_t *counts = calloc((size_t)n, sizeof(*counts));
    if (!counts)
        return -1;
    queue_count_by_binding(counts, n);
    struct config_errors warnings = {0};
    for (int slot = 0; slot < n; slot++)
        binding_table_describe_absent(slot, counts[slot], &warnings);
    for (size_t i = 0; i < warnings.count; i++)
        log_write("core", VIPMTA_LOG_WARNING, "%s", warnings.messages[i]);
    config_errors_clear(&warnings);
    free(counts);
    return 0;
}

/* Starts every subsystem in dependency order; -1 with the reasons in errs.
 * Root (when started as root) is used only to bind the listening sockets:
 * every file is opened, every module loaded and the spool read after the
 * privilege drop, as the run user. */
static int daemon_start(struct vipmta_config *cfg, struct config_errors *errs)
{
    char errbuf[512];

    if (control_probe(cfg, errs) != 0)
        return -1;
    up.bindings = 1;
    if (binding_table_build(cfg, errs) != 0)
        return -1;
    struct config_errors warnings = {0};
    binding_table_check_addresses(&warnings);
    config_check_warnings(cfg, &warnings);
    for (size_t i = 0; i < warnings.count; i++)
        log_write("core", VIPMTA_LOG_WARNING, "%s", warnings.messages[i]);
    config_errors_clear(&warnings);
    if (control_stats_init(vipmta_binding_count()) != 0) {
        config_errors_add(errs, "out of memory");
        return -1;
    }
    queue_domain_registry_init();
    if (control_metrics_start(loop, cfg, errs) != 0)
        return -1;
    up.metrics = 1;
    if (smtpd_server_start(loop, cfg, errs) != 0)
        return -1;
    up.server = 1;
    /* daemon_priv.c: from here on the daemon is the configured `user` for
     * good; main() checked the spool directory is that user's */
    if (daemon_priv_drop(errs) != 0)
        return -1;
    if (daemon_open_logs(cfg, errs) != 0)
        return -1;
    if (spool_set_sync_method(cfg->spool_sync) != 0) {
        config_errors_add(errs, "spool_sync: unknown method \"%s\"", cfg->spool_sync);
        return -1;
    }
    spool_set_memory(cfg->spool_memory);
    if (spool_init(cfg->spool_dir, loop, errbuf, sizeof(errbuf)) != 0) {
        config_errors_add(errs, "spool_dir %s: %s", cfg->spool_dir, errbuf);
        return -1;
    }
    up.spool = 1;
    up.modules = 1;
    if (plugin_loader_load(cfg, errs) != 0 || plugin_loader_init(errs) != 0)
        return -1;
    if (route_init(loop, cfg, errs) != 0)
        return -1;
    up.route = 1;
    if (deliver_init(loop, errs) != 0)
        return -1;
    up.deliver = 1;
    if (queue_init(loop, deliver_kick, NULL) != 0) {
        config_errors_add(errs, "cannot start the queue");
        return -1;
    }
    up.queue = 1;
    struct spool_recover_stats st = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (spool_recover(daemon_recovered, NULL, &st) != 0) {
        config_errors_add(errs, "spool_dir %s: recovery failed (see the log above)", cfg->spool_dir);
        return -1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    log_write("core", VIPMTA_LOG_NOTICE,
              "spool recovered: %zu messages, %zu recipients pending, %zu quarantined, %zu "
              "removed in %.3f s",
              st.messages, st.recipients_pending, st.quarantined, st.removed,
              (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    if (daemon_report_waiting() != 0) {
        config_errors_add(errs, "out of memory");
        return -1;
    }
    if (control_start(loop, cfg, errs) != 0)
        return -1;
    up.control = 1;
    up.running = 1;
    return 0;
}

/* Undoes daemon_start in reverse order, as far as it got. */
static void daemon_stop_subsystems(void)
{
    up.running = 0;
    if (up.control)
        control_stop();
    if (up.server)
        smtpd_server_stop();
    tls_shutdown(); /* the AUTH worker (its sessions are gone) and the session cache */
    if (up.metrics)
        control_metrics_stop();
    if (up.deliver)
        deliver_shutdown();
    /* the spool's last completions may still hand mail to the queue */
    if (up.spool)
        spool_shutdown();
    if (up.queue)
        queue_shutdown();
    if (up.route)
        route_shutdown();
    if (up.modules)
        plugin_loader_unload();
    smtpd_hooks_shutdown(); /* messages a module suspended and never resumed */
    if (up.bindings) {
        queue_domain_registry_free();
        binding_table_free();
        control_stats_free();
    }
    if (up.logs)
        log_delivery_close();
    memset(&up, 0, sizeof(up));
}

/* Tells the parent of a detached daemon (main.c) how the start went: "ok",
 * or the reasons it did not start; then closes the pipe. */
static void daemon_report_start(int fd, const struct config_errors *errs, const char *path)
{
    if (fd < 0)
        return;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        return;
    }
    if (!errs) {
        fputs("ok", f);
    } else {
        config_errors_print(errs, f, "vipmta: ");
        fprintf(f, "vipmta: not started: fix the errors above (vipmta -t -c %s checks the "
                "configuration)\n", path ? path : "FILE");
    }
    fclose(f);
}

int daemon_run(struct vipmta_config *cfg, int ready_fd)
{
    struct config_errors errs = {0};
    int status = 0;

    config_install(cfg); /* the caller's reference: in force from now on */
    signal(SIGPIPE, SIG_IGN);
    /* one thread owns the loop (the spool's threads wake it through an
     * eventfd), so libevent runs without locks; the changelist folds the
     * many enable/disable calls of a session into one epoll_ctl per fd */
    struct event_config *ecfg = event_config_new();
    if (ecfg)
        event_config_set_flag(ecfg, EVENT_BASE_FLAG_NOLOCK | EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    loop = ecfg ? event_base_new_with_config(ecfg) : NULL;
    if (ecfg)
        event_config_free(ecfg);
    if (!loop) {
        struct config_errors none = {0};
        config_errors_add(&none, "cannot create the event loop");
        log_write("core", VIPMTA_LOG_ERROR, "cannot create the event loop");
        daemon_report_start(ready_fd, &none, cfg->path);
        config_errors_clear(&none);
        config_install(NULL);
        return 1;
    }
    struct event *ev_term = evsignal_new(loop, SIGTERM, daemon_on_stop_signal, NULL);
    struct event *ev_int = evsignal_new(loop, SIGINT, daemon_on_stop_signal, NULL);
    struct event *ev_hup = evsignal_new(loop, SIGHUP, daemon_on_hup, NULL);
    event_add(ev_term, NULL);
    event_add(ev_int, NULL);
    event_add(ev_hup, NULL);
    /* handlers in place: signals held back since main() arrive now (and
     * the spool's threads, started below, inherit this mask) */
    daemon_signal_mask(SIG_UNBLOCK);

    if (daemon_start(cfg, &errs) != 0) {
        for (size_t i = 0; i < errs.count; i++)
            log_write("core", VIPMTA_LOG_ERROR, "%s", errs.messages[i]);
        log_write("core", VIPMTA_LOG_ERROR, "not started: fix the errors above (vipmta -t -c %s "
                  "checks the configuration)", cfg->path ? cfg->path : "FILE");
        daemon_report_start(ready_fd, &errs, cfg->path);
        status = 1;
    } else {
        log_write("core", VIPMTA_LOG_NOTICE, "vipmta %s started (hostname %s, %d bindings, %zu "
                  "modules)", PACKAGE_VERSION, cfg->hostname, vipmta_binding_count(),
                  plugin_loader_count());
        daemon_report_start(ready_fd, NULL, NULL);
        /* what the start logged is written already (a client that sees the
         * listener sees it too); from here on the log is written by its thread */
        if (log_thread_start(loop) != 0)
            log_write("core", VIPMTA_LOG_WARNING, "cannot start the log writer thread: %s (the "
                      "event loop writes the log itself)", strerror(errno));
        event_base_dispatch(loop);
    }

    daemon_stop_subsystems();
    log_thread_stop();
    config_install(NULL); /* nothing runs any more: the config in force goes too */
    config_errors_clear(&errs);
    event_free(ev_term);
    event_free(ev_int);
    event_free(ev_hup);
    event_base_free(loop);
    loop = NULL;
    if (!status)
        log_write("core", VIPMTA_LOG_NOTICE, "stopped");
    return status;
}
