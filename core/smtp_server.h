/* smtp_server.h: the ESMTP listener: sessions, relay control, limits, handing mail to the spool. */
#ifndef VIPMTA_SMTP_SERVER_H
#define VIPMTA_SMTP_SERVER_H

#include "config.h"

struct event_base;

/* Opens every `listen` socket. 0, or -1 with errors appended (address in use...). */
int smtp_server_start(struct event_base *base, const struct vipmta_config *cfg,
                      struct vipmta_errors *errs);
/* Stops accepting; sessions in DATA finish, others get 421. */
void smtp_server_stop(void);
/* Sessions open now. */
unsigned smtp_server_session_count(void);
/* Reload: relay_from, relay_domains, hostname, smtp limits and binding rules
 * come from `cfg` from the next command on (listen sockets stay open as they
 * are). The previous config must stay alive: sessions may hold pointers into it. */
void smtp_server_set_config(const struct vipmta_config *cfg);

#endif
