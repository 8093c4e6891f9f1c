/* vipmta_binding.h: the public MultiVIP binding table (source addresses for outbound mail). */
#ifndef VIPMTA_BINDING_H
#define VIPMTA_BINDING_H

#include <netinet/in.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int ec_binding_slot;
#define EC_BINDING_SLOT_UNBOUND (-1)
#define VIPMTA_BINDING_DEFAULT_SLOT 0

/* One binding. Slot numbers are stable indices into the table; slot 0 is the
 * implicit `default` binding (kernel-chosen source unless configured).
 * Layout rule: this struct only grows at the end. */
typedef struct vipmta_binding {
    ec_binding_slot slot;
    const char *name;
    int has_addr4;                 /* addr4 is set (a source IPv4 address) */
    struct sockaddr_in addr4;
    int has_addr6;                 /* addr6 is set (a source IPv6 address) */
    struct sockaddr_in6 addr6;
    const char *ehlo;              /* EHLO name; the config's hostname when unset */
    const char *group;             /* first binding group listing it, or NULL */
    int suspended;                 /* no connections: its address is missing on this host, or
                                    * it is absent (below); mail assigned to it waits */
    int absent;                    /* not in the configuration: kept (suspended) only for the
                                    * mail queued on it before a restart, which waits */
} vipmta_binding;

/* Number of bindings (slots 0 .. count-1). */
int vipmta_binding_count(void);
/* NULL when out of range. */
const vipmta_binding *vipmta_binding_by_slot(ec_binding_slot slot);
/* NULL when unknown. */
const vipmta_binding *vipmta_binding_by_name(const char *name);

/* Momentum's lookups, with Momentum's types: EC_BINDING_SLOT_UNBOUND / NULL
 * when unknown. The name belongs to the binding table: never write or free it
 * (Momentum returns `char *`; so does vipmta, for ported code). */
ec_binding_slot config_get_binding_id_from_name(const char *name);
char *config_get_binding_name_from_id(ec_binding_slot slot);

#ifdef __cplusplus
}
#endif
#endif
