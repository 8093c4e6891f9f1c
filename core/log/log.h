/* log.h: the core's side of logging: setup, levels, the delivery log. */
#ifndef VIPMTA_CORE_LOG_H
#define VIPMTA_CORE_LOG_H

#include <stdarg.h>
#include <sys/types.h>
#include <jansson.h>
#include "vipmta_log.h"

/* Main log: text lines "TIME LEVEL [component] message" on stderr (default),
 * or JSON lines {"ts","level","component","msg"} (log_set_json); to a file
 * (log_open_file), else to syslog (log_use_syslog), else to stderr. */
void log_set_level(enum vipmta_log_level level);
/* Sends the main log to syslog (facility mail) instead of stderr. */
void log_use_syslog(int on);
/* JSON lines instead of text (config log_format "json"). */
void log_set_json(int on);
/* Sends the main log to `path` (appended; NULL: back to stderr / syslog).
 * The file is opened as whoever runs the daemon then (the run user after the
 * privilege drop), never through a symbolic link, and must be a regular file
 * with one link (created 0640 when missing). 0, or -1 with errno when it
 * cannot be opened (log_open_error says why; the old stream stays). */
int log_open_file(const char *path);
/* Why a log file could not be opened, for errno `err` of log_open_file or
 * log_delivery_open. */
const char *log_open_error(int err);
/* Reopens the main log file and the delivery log at their paths (after
 * rotation; SIGHUP). The old streams stay in use for any that fail: -1. */
int log_reopen(void);
/* Closes the main log file (back to stderr / syslog). */
void log_close(void);
/* "error", "warning", "notice", "info", "debug"; -1 when unknown. */
int log_level_from_name(const char *name);
/* Writes one line for `component` ("core", a module name, "smtpd"...). */
void log_writev(const char *component, enum vipmta_log_level level, const char *fmt, va_list ap);
/* The same line whatever the log's level (a module's own debug_level decided). */
void log_emitv(const char *component, enum vipmta_log_level level, const char *fmt, va_list ap);
void log_write(const char *component, enum vipmta_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Delivery log: one JSON object per line, to `path` (NULL: the main log's
 * stream), opened as log_open_file opens. Returns 0, or -1 with errno when
 * the file cannot be opened (the old stream stays). */
int log_delivery_open(const char *path);
/* Writes `record` as one compact JSON line with a "time" member added; takes
 * the reference. */
void log_delivery(json_t *record);
void log_delivery_close(void);

/* The writer thread: from log_thread_start (0, or -1 with errno) lines of
 * both logs are queued in memory and written by a thread of their own, a
 * batch per write, so that no thread waits for the log's file or terminal
 * (loggers wait only when 4 MiB are queued). Lines logged on `loop`'s thread
 * (the caller's) wake the writer once, at the end of the loop iteration that
 * logged them; other threads' lines wake it at once. log_flush waits until
 * all that was logged is written; log_thread_stop writes the rest and stops
 * it (lines are written at once again). Start it after any fork. */
struct event_base;
int log_thread_start(struct event_base *loop);
void log_flush(void);
void log_thread_stop(void);

#endif
