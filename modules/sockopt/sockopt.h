/* sockopt.h: internal interface between the sockopt module's files (options, apply, hook). */
#ifndef VIPMTA_MOD_SOCKOPT_H
#define VIPMTA_MOD_SOCKOPT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "vipmta_module.h"

/* Which fields of a sockopt_set are configured (bits of sockopt_set.present). */
enum sockopt_field {
    SOCKOPT_TOS = 1u << 0,
    SOCKOPT_TRAFFIC_CLASS = 1u << 1,
    SOCKOPT_MARK = 1u << 2,
    SOCKOPT_KEEPALIVE = 1u << 3,
    SOCKOPT_KA_IDLE = 1u << 4,
    SOCKOPT_KA_INTERVAL = 1u << 5,
    SOCKOPT_KA_COUNT = 1u << 6,
    SOCKOPT_USER_TIMEOUT = 1u << 7,
    SOCKOPT_NODELAY = 1u << 8,
    SOCKOPT_CONGESTION = 1u << 9,
    SOCKOPT_SNDBUF = 1u << 10,
    SOCKOPT_RCVBUF = 1u << 11,
};

#define SOCKOPT_CONGESTION_MAX 16 /* TCP_CA_NAME_MAX, including the NUL */

/* One OPTS object: the options to set, each valid only when its bit is in
 * `present`. Plain data: merging and copying never allocate. */
struct sockopt_set {
    unsigned present;
    int tos;             /* TOS byte (DSCP << 2) */
    int traffic_class;   /* IPv6 traffic class */
    uint32_t mark;       /* SO_MARK */
    int keepalive;       /* SO_KEEPALIVE on (1) or off (0) */
    int ka_idle, ka_interval, ka_count;
    int user_timeout_ms; /* TCP_USER_TIMEOUT */
    int nodelay;         /* TCP_NODELAY */
    int sndbuf, rcvbuf;  /* SO_SNDBUF / SO_RCVBUF (bytes asked for) */
    char congestion[SOCKOPT_CONGESTION_MAX];
};

/* A scoped OPTS object: a domain's (slot EC_BINDING_SLOT_UNBOUND) or a
 * binding x domain's. */
struct sockopt_scoped {
    int slot;
    char *domain; /* lower case */
    struct sockopt_set set;
};

/* The parsed module options (all scopes of the config entry). */
struct sockopt_config {
    struct sockopt_set dflt;        /* "options" */
    struct sockopt_set *slots;      /* per binding slot: dflt merged with "bindings" */
    int nslots;
    size_t nbindings;               /* bindings with options of their own */
    struct sockopt_scoped *domains; /* "domains", sorted by name for bsearch */
    size_t ndomains;
    struct sockopt_scoped *pairs;   /* "binding_domains", sorted by slot then name */
    size_t npairs;
    int veto_on_error;
};

/* --- sockopt_options.c --- */

/* TOS byte for a DSCP name ("cs0".."cs7", "af11".."af43", "ef", "le"; any
 * case), -1 when the name is unknown. */
int sockopt_dscp_tos(const char *name);
/* Parses one OPTS object (its keys but `extra`, a NULL-terminated list the
 * caller reads itself) into `out` (zeroed first), reporting every problem
 * with paths below the object. Returns the number of errors. */
int sockopt_set_parse(vipmta_module_ctx *m, const vipmta_value *obj, const char *const *extra,
                      struct sockopt_set *out);
/* Parses the options of every scope of the instance's entry; NULL after
 * reporting every error. */
struct sockopt_config *sockopt_config_parse(vipmta_module_ctx *m);
void sockopt_config_free(void *cfg);
/* Copies every field present in `over` into `dst` (per option). */
void sockopt_merge(struct sockopt_set *dst, const struct sockopt_set *over);
/* The options of a connection from binding `slot` for `domain` (may be
 * NULL): binding x domain > domain > binding > default, per option. Returns
 * a table entry, or `buf` when something had to be merged. */
const struct sockopt_set *sockopt_config_resolve(const struct sockopt_config *cfg, int slot,
                                                 const char *domain, struct sockopt_set *buf);

/* --- sockopt_apply.c --- */

/* Called for each setsockopt() that failed: the option's key in the config
 * ("tos"), the socket option ("IP_TOS") and errno. */
typedef void (*sockopt_fail_fn)(void *arg, const char *key, const char *sockopt, int err);

/* Sets every option of `s` on `fd`; `dst` (the destination) chooses IPv4 or
 * IPv6 options. Goes on after a failure. Returns the number of failures. */
int sockopt_apply(int fd, const struct sockaddr *dst, int dst_len, const struct sockopt_set *s,
                  sockopt_fail_fn fail, void *arg);

#endif
