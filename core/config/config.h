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

/* TLS on a listener (config_tls.c). */
enum config_listen_tls {
    CONFIG_LISTEN_TLS_NONE = 0,   /* clear text only */
    CONFIG_LISTEN_TLS_STARTTLS,   /* STARTTLS offered (RFC 3207) */
    CONFIG_LISTEN_TLS_IMPLICIT,   /* TLS from the first byte (RFC 8314) */
};

/* A certificate chain and its private key (PEM files). */
struct config_tls_cert {
    char *cert;                   /* the certificate, then its chain */
    char *key;
};

struct config_listen {
    char *address;                /* "127.0.0.1", "::1", "0.0.0.0" */
    unsigned port;
    /* TLS and AUTH (config_tls.c) */
    enum config_listen_tls tls;   /* default: starttls with certificates, else none */
    struct config_tls_cert *certs; /* the first is the default, others are picked by SNI */
    size_t cert_count;
    int require_tls;              /* MAIL and AUTH only after STARTTLS (default 0) */
    int auth;                     /* offer AUTH PLAIN/LOGIN (default: with a credentials file) */
    int auth_without_tls;         /* loopback clients may AUTH in clear (default 0) */
};

/* Outbound TLS policy per domain or route (config_tls.c). */
enum config_tls_policy {
    CONFIG_TLS_POLICY_UNSET = -1, /* routes: the domain's */
    CONFIG_TLS_POLICY_NONE = 0,   /* never STARTTLS */
    CONFIG_TLS_POLICY_OPPORTUNISTIC, /* STARTTLS when offered, any certificate (default) */
    CONFIG_TLS_POLICY_REQUIRED,   /* encrypted or not at all, any certificate */
    CONFIG_TLS_POLICY_VERIFY,     /* encrypted, chain and MX host name verified */
};

/* The top-level `tls` section: protocol settings in both directions, the
 * outbound trust store and session cache, the AUTH credentials. */
struct config_tls {
    char *min_version;            /* "TLSv1.2" (default), "TLSv1.3" */
    char *max_version;            /* NULL: the newest OpenSSL has */
    char *ciphers;                /* TLS 1.2 cipher list (OpenSSL syntax), NULL: OpenSSL's */
    char *ciphersuites;           /* TLS 1.3 suites, NULL: OpenSSL's */
    char *ca_file;                /* outbound verification: this PEM bundle, NULL: the system store */
    unsigned session_cache;       /* outbound sessions kept for resumption (default 1000, 0: off) */
    unsigned session_lifetime;    /* seconds a cached session is offered (default 3600) */
    char *credentials_file;       /* AUTH: "user:crypt-hash" lines, NULL: no AUTH */
    unsigned auth_max_failures;   /* failed AUTH per client address in the window before it is
                                   * disconnected (default 5) */
    unsigned auth_failure_window; /* seconds failures are remembered (default 600) */
    unsigned auth_failure_delay_ms; /* a failed AUTH is answered this late, doubled per
                                   * failure of the address, at most 8 times (default 1000) */
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
enum config_rule_kind { RULE_SENDER_DOMAIN, RULE_RECIPIENT_DOMAIN, RULE_HEADER, RULE_AUTH_USER };
struct config_binding_rule {
    enum config_rule_kind kind;
    char *match;                  /* domain ("example.com", "*.example.com"), RULE_AUTH_USER: the
                                   * user name or "*" (any); unused for RULE_HEADER */
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
    enum config_tls_policy tls;           /* outbound STARTTLS policy (opportunistic) */
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
    /* the object form (config_tls.c) */
    enum config_tls_policy tls;   /* UNSET: the domain's; with auth at least REQUIRED */
    char *auth_user;              /* AUTH PLAIN/LOGIN to the route's hosts, NULL: none */
    char *auth_password;
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

/* One entry of `modules` (config_modules.c). */
/* Where a value of a modules entry starts in the config file: its entry
 * (position in `modules`), its path below it ("options.rules[2]"), its line. */
struct config_line {
    size_t module;
    char *path;
    int line;
};

struct config_module {
    char *name;
    char *instance;               /* "instance": NULL when absent */
    int enabled;
    int debug_level;              /* 0 debug .. 5 critical (Momentum's levels); -1: not given */
    json_t *options;              /* owned reference; an empty object when absent */
    json_t *bindings;             /* owned; NULL when absent: {"BINDING": {options}} */
    json_t *domains;              /* owned; NULL when absent: {"DOMAIN": {options}} */
    json_t *binding_domains;      /* owned; NULL when absent: {"BINDING": {"DOMAIN": {...}}} */
    size_t index;                 /* position in the `modules` list */
    const struct config_line *lines; /* where its values are in `file` (the config's) */
    size_t line_count;
    const char *file;
};

struct vipmta_config {
    char *path;                   /* the file it came from */
    struct config_line *lines;    /* the modules entries' values in it (config_lines.c) */
    size_t line_count;
    char *hostname;               /* default: gethostname() */
    char *postmaster;             /* where mail to <Postmaster> goes (default postmaster@hostname) */
    char *spool_dir;              /* default: LOCALSTATEDIR/spool/vipmta */
    char *spool_sync;             /* "fsync" (default) or "syncfs" */
    size_t spool_memory;          /* bytes of bodies kept in memory (SPOOL_MEMORY_DEFAULT; 0: none) */
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
    struct config_tls tls;        /* config_tls.c */
    json_t *root;                 /* the parsed document (owned) */
    unsigned refs;                /* references held (config_ref / config_release) */
    /* What was built from this config outside the loader (the TLS contexts
     * and credentials, tls/tls.h): freed with it by `runtime_free`. */
    void *runtime;
    void (*runtime_free)(void *runtime);
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

/* The outbound TLS policy for `domain` reached through `route` (NULL: MX). */
enum config_tls_policy config_tls_policy_for(const struct vipmta_config *cfg, const char *domain,
                                             const struct config_route *route);
/* "none", "opportunistic", "required", "verify". */
const char *config_tls_policy_name(enum config_tls_policy policy);
/* Appends a warning for each setting of `cfg` that is valid but probably
 * not meant (relay_from covering the internet: an open relay). */
void config_check_warnings(const struct vipmta_config *cfg, struct config_errors *warnings);

/* Parses "10.0.0.0/8", "::1", "127.0.0.1" into `out`; 0 on success. */
int config_parse_cidr(const char *text, struct config_cidr *out);
/* Non-zero when `addr` (sockaddr_in or sockaddr_in6) lies in `cidr`. */
int config_cidr_match(const struct config_cidr *cidr, const struct sockaddr *addr);

#endif
