/* control_internal.h: what the control socket (control.c) and its commands (control_cmd.c) share. */
#ifndef VIPMTA_CORE_CONTROL_INTERNAL_H
#define VIPMTA_CORE_CONTROL_INTERNAL_H

#include <jansson.h>

/* Longest request line accepted (bytes, without the newline). */
#define CONTROL_MAX_REQUEST (64 * 1024)

/* What a request asks after its reply went out. */
enum control_after { CONTROL_AFTER_NOTHING, CONTROL_AFTER_STOP };

/* Runs one parsed request ({"command": "...", "args": [...]}) and returns the
 * reply object (new reference; "ok" set). Never NULL. */
json_t *control_execute(const json_t *request, enum control_after *after);

/* {"ok": false, "error": MESSAGE} */
json_t *control_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
