/* configuration.h: Momentum's configuration structs: ec_config_option_def, ec_config_value and its storage, as Momentum 3 documents them. */
#ifndef VIPMTA_MOMENTUM_CONFIGURATION_H
#define VIPMTA_MOMENTUM_CONFIGURATION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "ecdict.h"
#include "module.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef long ec_atomic_t;

/* Option types, in the order Momentum's architecture page lists them
 * (values not documented by Momentum; vipmta's). vipmta reads STRING, INT,
 * UINT64, PERMS, BOOL, FLOAT, SOCKADDR, ECDICT, SIZE_T and SOCKADDR_PORTLESS
 * from the JSON config; registering another type fails (-1). */
typedef enum {
    ECCFGTYPE_STRING = 0,
    ECCFGTYPE_INT,
    ECCFGTYPE_UINT64,
    ECCFGTYPE_PERMS,
    ECCFGTYPE_BOOL,
    ECCFGTYPE_FLOAT,
    ECCFGTYPE_SOCKADDR,
    ECCFGTYPE_THROTTLE,
    ECCFGTYPE_ECLIST,
    ECCFGTYPE_PTR,
    ECCFGTYPE_EC_SUFFIX_TREE,
    ECCFGTYPE_ECDICT,
    ECCFGTYPE_IP_ACL,
    ECCFGTYPE_SIZE_T,
    ECCFGTYPE_EC_CONFIG_REGEX,
    ECCFGTYPE_SOCKADDR_PORTLESS,
} ec_config_item_type_t;

/* Option flags (values vipmta's). IS_ARRAY: a JSON list of values of the
 * type, in v->varr. NOT_TUNABLE_ONLINE: a reload that changes it warns. */
#define EC_CFG_OPT_NOT_TUNABLE_ONLINE 0x1u
#define EC_CFG_OPT_IS_ARRAY 0x2u

typedef struct _ec_config_option_def ec_config_option_def;
typedef struct _ec_config_value ec_config_value;
typedef union _ec_config_value_storage ec_config_value_storage;
typedef struct _throttle throttle;
typedef struct _ec_config_regex ec_config_regex;
typedef struct _ecGeneric_config_node ecGeneric_config_node_t;

/* misc/ec_ptr_array.h */
typedef void (*ec_ptr_array_free_func)(void *);
typedef struct _ec_ptr_array {
    uint32_t sizeof_ec_ptr_array;
    int size;
    int allocd;
    void **items;
    ec_ptr_array_free_func free_func;
    void *static_items[16];
} ec_ptr_array;

/* symbolic values for config options: {name, value} pairs ending with a
 * NULL name; a value given as `name` reads as `value`. */
struct ec_config_value_mapping {
    const char *name;
    const char *value;
};

/* Members in Momentum's documented order. `fallback`: "[module]" (or the
 * module's name, or NULL) for an option of the instance's "options", or a
 * chain of scopes such as "Binding:Domain>Domain>Global": ':' nests, '>'
 * falls back. vipmta's scopes: Global and the module's own ("options"),
 * Binding ("bindings"), Domain ("domains"), Binding:Domain
 * ("binding_domains"); others are ignored (logged). `defval` is a string
 * (e.g. "1"), NULL for none. validate_value returns 1 (good) or 0 (bad,
 * its reason in `output`). postset runs once a value is valid, datafree
 * frees what it hung on val->data. */
struct _ec_config_option_def {
    const char *name;
    ec_config_item_type_t type;
    const char *personality;
    const char *fallback;
    unsigned int flags;
    void *closure;
    const char *defval;
    const struct ec_config_value_mapping *map;
    int (*validate_value)(ec_config_option_def *option, string *output,
                          ec_config_header *cfghdr, ec_config_value *val);
    void (*postset)(ec_config_option_def *option, string *output, ec_config_header *cfghdr,
                    ec_config_value *val);
    void (*datafree)(ec_config_option_def *option, void *data);
};

union _ec_config_value_storage {
    char *vstr;
    int vint;        /* INT, PERMS, BOOL */
    uint64_t vu64;
    double vdouble;  /* FLOAT */
    struct sockaddr *vsa;
    throttle *vthrot;
    ECDict vdict;
    size_t vsize;
    ec_config_regex *vre;
    ec_ptr_array *varr; /* EC_CFG_OPT_IS_ARRAY: items are ec_config_value_storage * */
};

/* A fetched value: read val->v->vint etc.; give it back with
 * ec_config_release_value(). Never changed once fetched. */
struct _ec_config_value {
    ec_atomic_t refcnt;
    int leaked;
    ec_config_option_def *opt;
    int shadow;
    ecGeneric_config_node_t *node;
    ec_config_value_storage *v;
    void *data;
};

#ifdef __cplusplus
}
#endif
#endif
