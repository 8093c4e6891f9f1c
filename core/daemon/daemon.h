/* daemon.h: the running daemon: event loop, startup order, signals, shutdown. */
#ifndef VIPMTA_CORE_DAEMON_H
#define VIPMTA_CORE_DAEMON_H

#include "config/config.h"

struct event_base;

/* Blocks SIGTERM, SIGINT and SIGHUP in the calling thread; daemon_run
 * unblocks them once its handlers are installed. Call before anything that
 * takes time at start (config, privileges, detaching). */
void daemon_block_signals(void);
/* Runs until SIGTERM/SIGINT; returns the process exit status. Takes over the
 * caller's reference to `cfg` and puts it in force (config_current.h). When
 * `ready_fd` is not -1 (a detached daemon), the start's outcome is written
 * to it ("ok", or the reasons it did not start) and it is closed. */
int daemon_run(struct vipmta_config *cfg, int ready_fd);
/* The loop (NULL before daemon_run). */
struct event_base *daemon_event_base(void);
/* For programs that drive the core without daemon_run (benchmarks): the loop
 * modules' timers and watches (vipmta_event.h) use. Not for use while
 * daemon_run runs. */
void daemon_set_event_base(struct event_base *base);
/* Reads the config file again, validates all of it, and applies it when
 * good (SIGHUP and `vipmtactl reload`). 0 when applied; -1 with the reasons
 * appended to `errs` when the running config stays in force. */
int daemon_reload(struct config_errors *errs);
/* Starts a graceful shutdown, as SIGTERM does (a second request exits at once). */
void daemon_request_stop(const char *why);

#endif
