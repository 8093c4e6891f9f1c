/* control.h: the control socket vipmtactl talks to (a unix socket on the daemon's loop, JSON lines). */
#ifndef VIPMTA_CORE_CONTROL_H
#define VIPMTA_CORE_CONTROL_H

#include "config/config.h"

struct event_base;

/* The socket path `cfg` asks for: control_socket, else SPOOL_DIR/control.sock;
 * NULL when control_socket is "" (disabled). Malloc'd. */
char *control_socket_path(const struct vipmta_config *cfg);

/* Before anything starts: -1 with an error when another daemon answers on
 * the control socket, else 0. The spool's lock is what keeps two daemons off
 * one spool; this check comes first and names the socket they share. */
int control_probe(const struct vipmta_config *cfg, struct config_errors *errs);
/* Creates the socket (owner-only, mode 0600) and serves requests on `base`.
 * A stale socket file is replaced; another daemon answering on it, or a
 * non-socket file there, is an error. 0 (also when disabled), or -1 with
 * errors appended. */
int control_start(struct event_base *base, const struct vipmta_config *cfg,
                  struct config_errors *errs);
/* Closes every client and the socket, removes the socket file (if still ours). */
void control_stop(void);

#endif
