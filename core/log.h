/* log.h: the core's side of logging: setup, levels, the delivery log. */
#ifndef VIPMTA_CORE_LOG_H
#define VIPMTA_CORE_LOG_H

#include <stdarg.h>
#include <jansson.h>
#include "vipmta_log.h"

/* Main log: text lines "TIME LEVEL [component] message" on stderr (default). */
void log_set_level(enum vipmta_log_level level);
/* Sends the main log to syslog (facility mail) instead of stderr. */
void log_use_syslog(int on);
/* "error", "warning", "notice", "info", "debug"; -1 when unknown. */
int log_level_from_name(const char *name);
/* Writes one line for `component` ("core", a module name, "smtpd"...). */
void log_writev(const char *component, enum vipmta_log_level level, const char *fmt, va_list ap);
void log_write(const char *component, enum vipmta_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Delivery log: one JSON object per line, to `path` (NULL: the main log's
 * stream). Returns 0, or -1 with errno when the file cannot be opened. */
int log_delivery_open(const char *path);
/* Writes `record` as one compact JSON line with a "time" member added; takes
 * the reference. */
void log_delivery(json_t *record);
void log_delivery_close(void);

#endif
