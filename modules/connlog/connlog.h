/* connlog.h: internal interface between the connlog module's files (options, line format, hook). */
#ifndef VIPMTA_MOD_CONNLOG_H
#define VIPMTA_MOD_CONNLOG_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/time.h>
#include "vipmta_module.h"

/* The parsed options: exactly one of file / syslog. */
struct connlog_config {
    char *file; /* append to this file; NULL: syslog */
    int syslog;
    unsigned flush_interval_ms; /* 0: one write() per line; else lines are
                                 * buffered and written at most this late */
    int tls;                    /* also one line when a connection's TLS is settled */
};

/* Largest flush_interval_ms accepted. */
#define CONNLOG_FLUSH_INTERVAL_MAX 10000

/* --- connlog_options.c --- */

/* Parses the options, reporting every error; NULL when any. */
struct connlog_config *connlog_config_parse(vipmta_module_ctx *m, const vipmta_value *options);
void connlog_config_free(void *cfg);

/* --- connlog_line.c --- */

/* One post-bind call, as logged. */
struct connlog_event {
    struct timeval time;
    const char *domain;        /* NULL: unknown */
    const char *binding;       /* NULL: unknown */
    int slot;
    const struct sockaddr *source; /* from getsockname(); NULL: unknown */
    int source_len;
    const struct sockaddr *destination;
    int destination_len;
    int fd;
    const char *verdict;       /* "allow" */
};

/* A connection's TLS state, as logged (the "tls" option). */
struct connlog_tls_event {
    struct timeval time;
    const char *domain;
    const char *binding;
    int slot;
    int fd;
    int encrypted;
    const char *version, *cipher, *verify_error, *peer_name, *policy;
    int bits, verified, resumed;
};

/* "192.0.2.1:25" / "[2001:db8::1]:25"; 0, or -1 (buf "") for other families. */
int connlog_format_addr(const struct sockaddr *sa, int len, char *buf, size_t size);
/* Writes the line (compact JSON, members in a fixed order, and "\n") into
 * buf; strings that are not valid UTF-8 are written as null. Returns its length, or
 * -1 when it does not fit or on error. */
int connlog_format_line(const struct connlog_event *ev, char *buf, size_t size);
/* The same for a TLS line ("event": "tls"). */
int connlog_format_tls_line(const struct connlog_tls_event *ev, char *buf, size_t size);

#endif
