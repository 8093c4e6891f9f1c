/* control_client.h: what the vipmtactl command line (vipmtactl.c) and its table printer (vipmtactl_print.c) share. */
#ifndef VIPMTA_CORE_CONTROL_CLIENT_H
#define VIPMTA_CORE_CONTROL_CLIENT_H

#include <jansson.h>
#include <stdio.h>

/* Prints an ok reply to `command` (args as given) for people: tables and
 * key/value lines. */
void control_client_print_reply(FILE *out, const char *command, int argc, char **argv, const json_t *reply);

#endif
