/* config.h: the daemon's configuration model and the JSON config loader. */
#ifndef VIPMTA_CORE_CONFIG_H
#define VIPMTA_CORE_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <jansson.h>
#include "config_errors.h"

/* An address with a prefix length (relay_from, netacl). */
struct config_cidr {
    int family;                   /* AF_INET or AF_INET6 */
    unsigned char addr[16];       /* network byte order, 4 or 16 bytes used */
    unsigned prefix;              /* 0..32 or 0..128 */
};

struct config_listen {
    char *address;                /* "127.0.0.1", "::1", "0.0.0.0" */
    unsigned port;
};

struct config_binding {
    char *name;
    char *address;                /* IPv4 source address or NULL */
    char *address6;               /* IPv6 source address or NULL */
    char *ehlo;                   /* NULL: use hostname */
};

struct config_group_member {
    char *binding;                /* binding name */
    unsigned weight;              /* 1 when not given */
};

struct config_binding_group {
    char *name;
    struct config_group_member *members;
    size_t member_count;
};

/* binding_rules: first matching rule picks the binding group (or binding). */
enum config_rule_kind { RULE_SENDER_DOMAIN, RULE_RECIPIENT_DOMAIN, RULE_HEADER };
struct config_binding_rule {
    enum config_rule_kind kind;
    char *match;                  /* domain ("example.com", "*.example.com"); unused for RULE_HEADER */
    char *binding_group;          /* target group, or NULL */
    char *binding;                /* target binding, or NULL */
};

/* Per-domain delivery limits, from the `domains` config ("*" gives defaults). */
struct config_domain_limits {
    unsigned max_connections_per_binding; /* open outbound connections per binding (32) */
    unsigned max_connections;             /* open outbound connections in total (0 = no cap) */
    unsigned messages_per_connection;     /* messages sent on one connection before QUIT (100) */
    unsigned connect_timeout;             /* seconds to establish TCP and get the greeting (60) */
    unsigned command_timeout;             /* seconds per SMTP command reply (300) */
    unsigned data_timeout;                /* seconds for the reply to the final dot (600) */
    const unsigned *retry_schedule;       /* seconds between attempts; the last repeats */
    unsigned retry_count;                 /* entries in retry_schedule */
    unsigned max_queue_lifetime;          /* seconds before a deferred recipient bounces (5 days) */
    unsigned veto_retry;                  /* seconds before mail is tried again after a post-bind
                                           * veto (5); vetoes do not advance the retry schedule */
};

struct config_domain {
    char *name;                   /* "*" holds the defaults */
    struct config_domain_limits limits;
    unsigned *retry_schedule;     /* owned; limits.retry_schedule points here */
};

struct config_route {
    char *domain;                 /* "example.com" or "*" */
    char **hosts;                 /* "host:port" ("[::1]:25" for IPv6), tried in order */
    size_t host_count;
};

/* SMTP server limits (listener side). */
struct config_smtp_limits {
    size_t max_message_size;      /* bytes, advertised with SIZE (default 25 MiB) */
    unsigned max_recipients;      /* per message (default 1000) */
    unsigned max_sessions;        /* concurrent inbound sessions in total (default 1000) */
    unsigned max_sessions_per_ip; /* concurrent inbound sessions per client IPv4 address or
                                   * IPv6 network (ipv6_prefix) (default 50) */
    unsigned command_timeout;     /* seconds waiting for a command (default 300) */
    unsigned data_timeout;        /* seconds waiting for data during DATA (default 180) */
    unsigned max_errors;          /* protocol errors before disconnect (default 10) */
    unsigned data_deadline;       /* seconds the whole DATA phase may take (default 600) */
    unsigned busy_command_timeout; /* command_timeout while the server is busy: over
                                   * busy_percent of max_sessions in use (default 10) */
    unsigned busy_percent;        /* (default 80) */
    unsigned ipv6_prefix;         /* IPv6 clients are counted per network of this prefix
                                   * length for max_sessions_per_ip (default 64) */
    int bare_line_ends_reject;    /* bare_line_ends "reject" (1) or "normalize" (0, default) */
};

struct config_dns {
    char **servers;               /* "127.0.0.1:5353"; empty: the system resolver config */
    size_t server_count;
    unsigned timeout_ms;          /* per try (default 5000) */
    unsigned tries;               /* default 2 */
    unsigned mx_port;             /* TCP port for MX / A-derived destinations (default 25) */
};

/* The Prometheus metrics endpoint (`metrics`; absent or null: disabled). */
struct config_metrics {
    int enabled;
    char *address;                /* "127.0.0.1" (default); loopback unless allow_non_loopback */
    unsigned port;                /* default 9465 */
    int allow_non_loopback;       /* default 0 */
    unsigned max_domains;         /* per-domain series at most (default 1000) */
};

struct config_module {
    char *name;
    int enabled;
    json_t *options;              /* owned reference; an empty object when absent */
    size_t index;                 /* position in the `modules` list */
};

struct vipmta_config {
    char *path;                   /* the file it came from */
    char *hostname;               /* default: gethostname() */
    char *postmaster;             /* where mail to <Postmaster> goes (default postmaster@hostname) */
    char *spool_dir;              /* default: LOCALSTATEDIR/spool/vipmta */
    char *spool_sync;             /* "fsync" (default) or "syncfs" */
    char **module_path;           /* default: { MODULEDIR } */
    size_t module_path_count;
    struct config_listen *listen; /* default: 127.0.0.1:2525 */
    size_t listen_count;
    struct config_cidr *relay_from; /* default: 127.0.0.0/8, ::1/128 */
    size_t relay_from_count;
    char **relay_domains;         /* domains accepted from any client (default none) */
    size_t relay_domain_count;
    struct config_binding *bindings;  /* in config order; slot = 1 + index unless named "default" */
    size_t binding_count;
    struct config_binding_group *binding_groups;
    size_t binding_group_count;
    char *default_binding_group;  /* NULL: the `default` binding */
    struct config_binding_rule *binding_rules;
    size_t binding_rule_count;
    struct config_domain *domains; /* always holds "*" (defaults applied) */
    size_t domain_count;
    struct config_route *routes;
    size_t route_count;
    struct config_smtp_limits smtp;
    unsigned max_outbound_connections; /* open outbound connections in all (default 20000) */
    struct config_dns dns;
    struct config_module *modules; /* every entry, enabled or not, in config order */
    size_t module_count;
    char *log_level;              /* "error".."debug" (default "info") */
    char *delivery_log;           /* path of the JSON delivery log, NULL: main log */
    char *control_socket;         /* unix socket for vipmtactl, NULL: SPOOL_DIR/control.sock, "": none */
    struct config_metrics metrics;
    /* operations (config_ops.c) */
    char *log_format;             /* "text" (default) or "json" */
    char *log_file;               /* main log file, NULL: stderr (-f) or syslog */
    char *user;                   /* run user after binding the listeners, NULL: none */
    char *group;                  /* run group, NULL: the user's login group */
    int run_as_root;              /* 1: may keep running as root without `user` */
    json_t *root;                 /* the parsed document (owned) */
    unsigned refs;                /* references held (config_ref / config_release) */
};

/* Parses and validates `path` into a config holding one reference (the
 * caller's: config_release it, or hand it to config_install). On failure returns NULL and appends every
 * problem found to `errs`: parse errors as "FILE:LINE:COLUMN: message",
 * schema errors as "FILE: PATH: message" (PATH like "modules[2].options"). */
struct vipmta_config *config_load_file(const char *path, struct config_errors *errs);
/* Same, from a string; `name` stands for the file name in messages. */
struct vipmta_config *config_load_string(const char *text, const char *name,
                                         struct config_errors *errs);
/* Another reference to `cfg` (returned), for a holder that uses it across
 * callbacks (a session, a connection, a lookup). Any thread. */
struct vipmta_config *config_ref(struct vipmta_config *cfg);
/* Drops a reference (the loader's first one, or one from config_ref or
 * config_hold); the last one frees the config. NULL is ignored. Any thread. */
void config_release(struct vipmta_config *cfg);

/* The limits for `domain`: its own entry, else "*". Never NULL. */
const struct config_domain_limits *config_domain_limits(const struct vipmta_config *cfg,
                                                        const char *domain);
/* The route for `domain`: exact entry, else "*", else NULL (use MX). */
const struct config_route *config_route_for(const struct vipmta_config *cfg, const char *domain);

/* Appends a warning for each setting of `cfg` that is valid but probably
 * not meant (relay_from covering the internet: an open relay). */
void config_check_warnings(const struct vipmta_config *cfg, struct config_errors *warnings);

/* Parses "10.0.0.0/8", "::1", "127.0.0.1" into `out`; 0 on success. */
int config_parse_cidr(const char *text, struct config_cidr *out);
/* Non-zero when `addr` (sockaddr_in or sockaddr_in6) lies in `cidr`. */
int config_cidr_match(const struct config_cidr *cidr, const struct sockaddr *addr);

#endif
