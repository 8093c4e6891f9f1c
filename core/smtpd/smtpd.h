/* smtpd.h: the ESMTP listener: sessions, relay control, limits, handing mail to the spool. */
#ifndef VIPMTA_CORE_SMTPD_H
#define VIPMTA_CORE_SMTPD_H

#include "config/config.h"

struct event_base;

/* Opens every `listen` socket of `cfg`. Each session holds the config in
 * force when it connects until it closes; a reload changes relay_from,
 * relay_domains, hostname, the smtp limits and the binding rules for the
 * sessions that connect after it (listen sockets stay as they are). 0, or -1
 * with errors appended (address in use...). */
int smtpd_server_start(struct event_base *base, const struct vipmta_config *cfg,
                      struct config_errors *errs);
/* Stops accepting; sessions in DATA finish, others get 421. */
void smtpd_server_stop(void);
/* Sessions open now. */
unsigned smtpd_server_session_count(void);

/* Messages modules suspended in the end-of-DATA hooks (smtpd_hooks.c). */
/* Seconds a reload waits for them. */
#define SMTPD_HOOKS_RELOAD_WAIT 5
/* A reload: waits up to `seconds` for them to be resumed, then answers 451
 * for those still suspended (each is discarded once resumed). Loop thread. */
void smtpd_hooks_settle(unsigned seconds);
/* Discards every message still held (after the modules are unloaded: no
 * handle can be resumed any more). */
void smtpd_hooks_shutdown(void);

#endif
