/* log.c: the main log (text lines to stderr or syslog) and the JSON delivery log. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>

static enum vipmta_log_level current_level = VIPMTA_LOG_INFO;
static int use_syslog;
static FILE *delivery_stream;
static int delivery_owned;

static const char *const level_names[] = {"error", "warning", "notice", "info", "debug"};
static const int syslog_priorities[] = {LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG};

void log_set_level(enum vipmta_log_level level)
{
    current_level = level;
}

void log_use_syslog(int on)
{
    if (on && !use_syslog)
        openlog("vipmta", LOG_PID | LOG_NDELAY, LOG_MAIL);
    else if (!on && use_syslog)
        closelog();
    use_syslog = on;
}

int log_level_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
        if (name && strcmp(name, level_names[i]) == 0)
            return (int)i;
    return -1;
}

int vipmta_log_enabled(enum vipmta_log_level level)
{
    return level <= current_level;
}

static void format_time(char *buf, size_t len)
{
    struct timeval tv;
    struct tm tm;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03ldZ", (long)(tv.tv_usec / 1000));
}

void log_writev(const char *component, enum vipmta_log_level level, const char *fmt, va_list ap)
{
    if (level > current_level)
        return;
    if ((unsigned)level > VIPMTA_LOG_DEBUG)
        level = VIPMTA_LOG_DEBUG;
    char msg[2048];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (use_syslog) {
        syslog(syslog_priorities[level], "%s [%s] %s", level_names[level], component, msg);
        return;
    }
    char when[40];
    format_time(when, sizeof(when));
    fprintf(stderr, "%s %s [%s] %s\n", when, level_names[level], component, msg);
}

void log_write(const char *component, enum vipmta_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_writev(component, level, fmt, ap);
    va_end(ap);
}

void vipmta_log(enum vipmta_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_writev("core", level, fmt, ap);
    va_end(ap);
}

int log_delivery_open(const char *path)
{
    log_delivery_close();
    if (!path) {
        delivery_stream = NULL;
        return 0;
    }
    FILE *f = fopen(path, "ae");
    if (!f)
        return -1;
    setvbuf(f, NULL, _IOLBF, 0);
    delivery_stream = f;
    delivery_owned = 1;
    return 0;
}

void log_delivery(json_t *record)
{
    char when[40];

    format_time(when, sizeof(when));
    json_object_set_new(record, "time", json_string(when));
    char *line = json_dumps(record, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(record);
    if (!line)
        return;
    if (delivery_stream)
        fprintf(delivery_stream, "%s\n", line);
    else if (use_syslog)
        syslog(LOG_INFO, "delivery %s", line);
    else
        fprintf(stderr, "%s\n", line);
    free(line);
}

void log_delivery_close(void)
{
    if (delivery_stream && delivery_owned)
        fclose(delivery_stream);
    delivery_stream = NULL;
    delivery_owned = 0;
}
