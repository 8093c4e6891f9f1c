/* vipmta_event.h: the event loop as modules see it: one-shot timers, file descriptor watches and signal watches. */
#ifndef VIPMTA_EVENT_H
#define VIPMTA_EVENT_H

#include "vipmta_module.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Everything here runs on the daemon's event-loop thread, the thread that
 * calls the module's hooks: create, change and free these only from it.
 * The constructors return NULL when there is no event loop (`vipmta -t`
 * and `-M` run configure and init without one: start nothing remote then)
 * or when out of memory. Free what you created in shutdown(); whatever a
 * module leaves behind is freed (and logged) when it is unloaded. */

/* Non-zero when there is an event loop (the daemon runs): the constructors
 * below can succeed. */
int vipmta_event_loop_available(void);

/* ---- timers ---- */
typedef struct vipmta_timer vipmta_timer;
typedef void (*vipmta_timer_fn)(void *arg);

vipmta_timer *vipmta_timer_new(vipmta_module_ctx *m, vipmta_timer_fn fn, void *arg);
/* (Re)arms the timer to fire once, `ms` milliseconds from now. */
void vipmta_timer_start(vipmta_timer *t, unsigned long ms);
void vipmta_timer_stop(vipmta_timer *t);
/* Non-zero while armed. */
int vipmta_timer_pending(const vipmta_timer *t);
void vipmta_timer_free(vipmta_timer *t); /* NULL is ignored */

/* ---- file descriptors ---- */
#define VIPMTA_FD_READ 1u
#define VIPMTA_FD_WRITE 2u
typedef struct vipmta_fd_watch vipmta_fd_watch;
/* `events`: what is ready now (VIPMTA_FD_READ and/or VIPMTA_FD_WRITE). */
typedef void (*vipmta_fd_fn)(int fd, unsigned events, void *arg);

/* Watches `fd` (which the module keeps owning); waits for nothing until
 * vipmta_fd_watch_set(). */
vipmta_fd_watch *vipmta_fd_watch_new(vipmta_module_ctx *m, int fd, vipmta_fd_fn fn, void *arg);
/* What to wait for from now on: VIPMTA_FD_READ | VIPMTA_FD_WRITE, 0 for
 * nothing. Level-triggered: fn is called again while the fd stays ready.
 * 0, or -1 when the loop refused the fd. */
int vipmta_fd_watch_set(vipmta_fd_watch *w, unsigned events);
unsigned vipmta_fd_watch_events(const vipmta_fd_watch *w);
void vipmta_fd_watch_free(vipmta_fd_watch *w); /* NULL is ignored; does not close fd */

/* ---- signals ---- */
typedef struct vipmta_signal_watch vipmta_signal_watch;
typedef void (*vipmta_signal_fn)(int signum, void *arg);

/* Calls fn on the loop after each SIGHUP, SIGUSR1 or SIGUSR2 (the core's own
 * handling of SIGHUP, a reload, goes on as well); other signals: NULL. */
vipmta_signal_watch *vipmta_signal_watch_new(vipmta_module_ctx *m, int signum,
                                             vipmta_signal_fn fn, void *arg);
void vipmta_signal_watch_free(vipmta_signal_watch *w); /* NULL is ignored */

#ifdef __cplusplus
}
#endif
#endif
