/* vipmta_log.h: the logging API shared by the core and modules. */
#ifndef VIPMTA_LOG_H
#define VIPMTA_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

enum vipmta_log_level {
    VIPMTA_LOG_ERROR = 0,
    VIPMTA_LOG_WARNING = 1,
    VIPMTA_LOG_NOTICE = 2,
    VIPMTA_LOG_INFO = 3,
    VIPMTA_LOG_DEBUG = 4,
};

struct vipmta_module_ctx;

/* Core log line (component "core"). */
void vipmta_log(enum vipmta_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Log line tagged with the module's name (NAME:INSTANCE for an instance),
 * written when `level` passes the instance's debug_level (see above). Safe
 * from hooks. */
void vipmta_module_log(const struct vipmta_module_ctx *m, enum vipmta_log_level level,
                       const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Non-zero when core lines at `level` are written (skip expensive formatting). */
int vipmta_log_enabled(enum vipmta_log_level level);
/* The same for the module instance's own lines: its `debug_level` when the
 * config entry gives one, else the log's level. */
int vipmta_module_log_enabled(const struct vipmta_module_ctx *m, enum vipmta_log_level level);

#ifdef __cplusplus
}
#endif
#endif
