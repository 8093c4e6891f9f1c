/* plugin_event.c: the event loop as modules see it: timers, fd watches and signal watches on the daemon's loop, tracked per module instance. */
#include <signal.h>
#include <stdlib.h>
#include <event2/event.h>

#include "daemon/daemon.h"
#include "log/log.h"
#include "plugin_internal.h"

enum plugin_event_kind { PLUGIN_EVENT_TIMER, PLUGIN_EVENT_FD, PLUGIN_EVENT_SIGNAL };

/* One timer or watch; the public types are this struct under other names. */
struct plugin_event {
    struct plugin_event *next;       /* the owner's list */
    struct vipmta_module_ctx *owner;
    enum plugin_event_kind kind;
    struct event *ev;
    void *arg;
    int fd;
    unsigned events;                 /* fd watches: what is waited for */
    vipmta_timer_fn on_timer;
    vipmta_fd_fn on_fd;
    vipmta_signal_fn on_signal;
};

struct vipmta_timer {
    struct plugin_event e;
};
struct vipmta_fd_watch {
    struct plugin_event e;
};
struct vipmta_signal_watch {
    struct plugin_event e;
};

static void plugin_event_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct plugin_event *e = arg;
    (void)fd;
    (void)what;
    e->on_timer(e->arg);
}

static void plugin_event_on_fd(evutil_socket_t fd, short what, void *arg)
{
    struct plugin_event *e = arg;
    unsigned ready = ((what & EV_READ) ? VIPMTA_FD_READ : 0) |
                     ((what & EV_WRITE) ? VIPMTA_FD_WRITE : 0);
    e->on_fd((int)fd, ready, e->arg);
}

static void plugin_event_on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct plugin_event *e = arg;
    (void)what;
    e->on_signal((int)sig, e->arg);
}

/* A new event record of `size` bytes for m, on the owner's list; NULL
 * without a loop. */
static struct plugin_event *plugin_event_new(struct vipmta_module_ctx *m, size_t size,
                                             enum plugin_event_kind kind, void *arg)
{
    if (!m || !daemon_event_base())
        return NULL;
    struct plugin_event *e = calloc(1, size);
    if (!e)
        return NULL;
    e->owner = m;
    e->kind = kind;
    e->arg = arg;
    e->fd = -1;
    e->next = m->events;
    m->events = e;
    return e;
}

static void plugin_event_free(struct plugin_event *e)
{
    if (!e)
        return;
    for (struct plugin_event **p = &e->owner->events; *p; p = &(*p)->next) {
        if (*p == e) {
            *p = e->next;
            break;
        }
    }
    if (e->ev)
        event_free(e->ev);
    free(e);
}

int vipmta_event_loop_available(void)
{
    return daemon_event_base() != NULL;
}

/* ---- timers ---- */

vipmta_timer *vipmta_timer_new(vipmta_module_ctx *m, vipmta_timer_fn fn, void *arg)
{
    if (!fn)
        return NULL;
    struct plugin_event *e = plugin_event_new(m, sizeof(struct vipmta_timer),
                                              PLUGIN_EVENT_TIMER, arg);
    if (!e)
        return NULL;
    e->on_timer = fn;
    if (!(e->ev = evtimer_new(daemon_event_base(), plugin_event_on_timer, e))) {
        plugin_event_free(e);
        return NULL;
    }
    return (vipmta_timer *)e;
}

void vipmta_timer_start(vipmta_timer *t, unsigned long ms)
{
    if (!t)
        return;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(t->e.ev, &tv);
}

void vipmta_timer_stop(vipmta_timer *t)
{
    if (t)
        evtimer_del(t->e.ev);
}

int vipmta_timer_pending(const vipmta_timer *t)
{
    return t && evtimer_pending(t->e.ev, NULL);
}

void vipmta_timer_free(vipmta_timer *t)
{
    plugin_event_free(t ? &t->e : NULL);
}

/* ---- file descriptors ---- */

vipmta_fd_watch *vipmta_fd_watch_new(vipmta_module_ctx *m, int fd, vipmta_fd_fn fn, void *arg)
{
    if (fd < 0 || !fn)
        return NULL;
    struct plugin_event *e = plugin_event_new(m, sizeof(struct vipmta_fd_watch),
                                              PLUGIN_EVENT_FD, arg);
    if (!e)
        return NULL;
    e->on_fd = fn;
    e->fd = fd;
    return (vipmta_fd_watch *)e;
}

int vipmta_fd_watch_set(vipmta_fd_watch *w, unsigned events)
{
    if (!w)
        return -1;
    struct plugin_event *e = &w->e;
    events &= VIPMTA_FD_READ | VIPMTA_FD_WRITE;
    if (events == e->events && (events == 0 || e->ev))
        return 0;
    if (e->ev) {
        event_free(e->ev);
        e->ev = NULL;
    }
    e->events = events;
    if (!events)
        return 0;
    short what = (short)(EV_PERSIST | ((events & VIPMTA_FD_READ) ? EV_READ : 0) |
                         ((events & VIPMTA_FD_WRITE) ? EV_WRITE : 0));
    e->ev = event_new(daemon_event_base(), e->fd, what, plugin_event_on_fd, e);
    if (!e->ev || event_add(e->ev, NULL) != 0) {
        if (e->ev)
            event_free(e->ev);
        e->ev = NULL;
        e->events = 0;
        return -1;
    }
    return 0;
}

unsigned vipmta_fd_watch_events(const vipmta_fd_watch *w)
{
    return w ? w->e.events : 0;
}

void vipmta_fd_watch_free(vipmta_fd_watch *w)
{
    plugin_event_free(w ? &w->e : NULL);
}

/* ---- signals ---- */

vipmta_signal_watch *vipmta_signal_watch_new(vipmta_module_ctx *m, int signum,
                                             vipmta_signal_fn fn, void *arg)
{
    if (!fn || (signum != SIGHUP && signum != SIGUSR1 && signum != SIGUSR2))
        return NULL;
    struct plugin_event *e = plugin_event_new(m, sizeof(struct vipmta_signal_watch),
                                              PLUGIN_EVENT_SIGNAL, arg);
    if (!e)
        return NULL;
    e->on_signal = fn;
    e->ev = evsignal_new(daemon_event_base(), signum, plugin_event_on_signal, e);
    if (!e->ev || event_add(e->ev, NULL) != 0) {
        plugin_event_free(e);
        return NULL;
    }
    return (vipmta_signal_watch *)e;
}

void vipmta_signal_watch_free(vipmta_signal_watch *w)
{
    plugin_event_free(w ? &w->e : NULL);
}

void plugin_event_release_all(struct vipmta_module_ctx *m)
{
    size_t n = 0;
    while (m->events) {
        plugin_event_free(m->events);
        n++;
    }
    if (n)
        log_write("core", VIPMTA_LOG_WARNING, "module %s left %zu timer(s) or watch(es) behind "
                  "when it was unloaded: freed them (free them in shutdown)", m->label, n);
}
