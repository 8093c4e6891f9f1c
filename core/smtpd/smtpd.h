/* smtpd.h: the ESMTP listener: sessions, relay control, limits, handing mail to the spool. */
#ifndef VIPMTA_CORE_SMTPD_H
#define VIPMTA_CORE_SMTPD_H

#include "config/config.h"

struct event_base;

/* Opens every `listen` socket. 0, or -1 with errors appended (address in use...). */
int smtpd_server_start(struct event_base *base, const struct vipmta_config *cfg,
                      struct config_errors *errs);
/* Stops accepting; sessions in DATA finish, others get 421. */
void smtpd_server_stop(void);
/* Sessions open now. */
unsigned smtpd_server_session_count(void);
/* Reload: relay_from, relay_domains, hostname, smtp limits and binding rules
 * come from `cfg` from the next command on (listen sockets stay open as they
 * are). The previous config must stay alive: sessions may hold pointers into it. */
void smtpd_server_set_config(const struct vipmta_config *cfg);

#endif
