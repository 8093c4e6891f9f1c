/* netacl.h: internal interface between the netacl module's files (CIDR, rules, hook). */
#ifndef VIPMTA_MOD_NETACL_H
#define VIPMTA_MOD_NETACL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "vipmta_module.h"

/* An address to match: IPv4 (including IPv4-mapped IPv6) or IPv6, in host
 * byte order words. family 0: unknown (matches no rule). */
struct netacl_addr {
    int family; /* AF_INET, AF_INET6 or 0 */
    uint32_t v4;
    uint64_t hi, lo;
};

/* A network: an address and its mask, same representation. */
struct netacl_cidr {
    struct netacl_addr net;
    uint32_t mask4;
    uint64_t mask_hi, mask_lo;
    unsigned prefix;
};

/* --- netacl_cidr.c --- */

/* Parses "ADDRESS/PREFIX" (or a bare address: one host). IPv4-mapped IPv6
 * networks of /96 or longer become the IPv4 network. Host bits must be
 * clear. 0, or -1 with a message for the user in err. */
int netacl_cidr_parse(const char *text, struct netacl_cidr *out, char *err, size_t errlen);
/* The address of a sockaddr (AF_INET / AF_INET6; mapped IPv6 becomes IPv4).
 * 0, or -1 (out->family 0) when it is neither. */
int netacl_addr_from_sockaddr(const struct sockaddr *sa, int len, struct netacl_addr *out);
/* Non-zero when `a` is inside `net`. */
int netacl_cidr_match(const struct netacl_cidr *net, const struct netacl_addr *a);
/* "192.0.2.1:25" / "[2001:db8::1]:25" for logs; "?" when unknown. */
void netacl_format_sockaddr(const struct sockaddr *sa, int len, char *buf, size_t size);

/* --- netacl_rules.c --- */

enum netacl_action { NETACL_UNSET = -1, NETACL_DENY = 0, NETACL_ALLOW = 1 };

struct netacl_rule {
    struct netacl_cidr net;
    enum netacl_action action;
    char *cidr;    /* as written in the config */
    char *comment; /* NULL when none */
};

/* The rules and default of one scope of the config entry. */
struct netacl_list {
    struct netacl_rule *rules;
    size_t count;
    enum netacl_action dflt; /* NETACL_UNSET when not given */
    enum vipmta_scope_kind kind;
    int slot;                /* BINDING, BINDING_DOMAIN: the binding's slot */
    char *binding;           /* its name */
    char *domain;            /* DOMAIN, BINDING_DOMAIN: lower case */
};

struct netacl_config {
    struct netacl_list global;    /* global.dflt is never NETACL_UNSET (allow unless set) */
    struct netacl_list **slots;   /* per binding slot: its list, or NULL */
    int nslots;
    struct netacl_list *scoped;   /* bindings, domains, binding x domains; domains sorted */
    size_t nscoped;
    size_t nbindings, ndomains, npairs;
    struct netacl_list **domains; /* the DOMAIN lists, sorted by name */
    struct netacl_list **pairs;   /* the BINDING_DOMAIN lists, sorted by slot then name */
};

/* What decided a connection. */
struct netacl_verdict {
    enum netacl_action action;
    const struct netacl_rule *rule; /* the matching rule; NULL when a default decided */
    size_t index;                   /* the rule's index in its list */
    const struct netacl_list *list; /* the list of the rule or default */
};

/* Parses the options of every scope of the instance's entry, reporting
 * every error; NULL when any. */
struct netacl_config *netacl_config_parse(vipmta_module_ctx *m);
void netacl_config_free(void *cfg);
/* Rules of binding x domain, then the domain's, the binding's and the global
 * ones (first match wins), then the defaults in the same order (the global
 * one, allow unless set, last). `domain` may be NULL. */
void netacl_decide(const struct netacl_config *cfg, int slot, const char *domain,
                   const struct netacl_addr *dst, struct netacl_verdict *v);
/* How log lines name a list: NETACL_PATH, where its rules are in the entry
 * ("" for the global ones, "bindings.vip1.", "domains.example.com.",
 * "binding_domains.vip1.example.com."); NETACL_OWNER, whose default it is
 * ("the global", "binding \"vip1\"'s", "domain example.com's",
 * "binding \"vip1\" x domain example.com's"). */
enum netacl_naming { NETACL_PATH = 0, NETACL_OWNER = 1 };
void netacl_list_name(const struct netacl_list *list, enum netacl_naming how, char *buf,
                      size_t size);

#endif
