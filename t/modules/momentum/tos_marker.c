/* tos_marker.c: a Momentum-style module: sets the TOS byte (and SO_MARK) of outbound connections by binding name, per binding and per domain. */
/*
 * Written against Momentum's documented C API only (module.h, ec_config.h,
 * ecdict.h, the connection_post_bind hook); vipmta builds it with
 * `pkg-config --cflags vipmta-momentum`.
 *
 *   tos_marker {
 *     tos_by_binding = [ vip1 = "32" ]     # by binding name, first
 *     tos = 0                              # Binding:Domain > Domain > Binding > Global
 *     mark = 0                             # Binding > Global (needs CAP_NET_ADMIN)
 *   }
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <string.h>

#include "ecdict.h"
#include "module-hooks.h"
#include "sample.h"

#define MODNAME "tos_marker"

enum { OPT_TOS_BY_BINDING, OPT_TOS, OPT_MARK, OPT_COUNT };
static int option_handle[OPT_COUNT];

static int tos_marker_validate_tos(ec_config_option_def *option, string *output,
                                   ec_config_header *cfghdr, ec_config_value *val)
{
    (void)option;
    (void)cfghdr;
    if (val->v->vint < 0 || val->v->vint > 255) {
        stringprintf(output, "tos must be a number from 0 to 255, not %d", val->v->vint);
        return 0;
    }
    return 1;
}

static ec_config_option_def tos_marker_options[OPT_COUNT] = {
    {"tos_by_binding", ECCFGTYPE_ECDICT, NULL, "[tos_marker]", 0, NULL, NULL, NULL, NULL, NULL,
     NULL},
    {"tos", ECCFGTYPE_INT, NULL, "Binding:Domain>Domain>Binding>Global", 0, NULL, "0", NULL,
     tos_marker_validate_tos, NULL, NULL},
    {"mark", ECCFGTYPE_INT, NULL, "Binding>Global", 0, NULL, "0", NULL, NULL, NULL, NULL},
};

struct tos_marker_conf {
    ECDict tos_by_binding; /* binding name -> TOS, copied at init */
    unsigned long marked;
};

static int tos_marker_post_bind(void *closure, domain_record *dr, int binding_slot, int fd,
                                struct sockaddr *addr, int addr_len)
{
    generic_module_infrastructure *self = closure;
    struct tos_marker_conf *conf = self->module_private_data;
    const char *name = config_get_binding_name_from_id(binding_slot);
    const char *text;
    int tos;
    (void)addr;
    (void)addr_len;

    if (name && dict_key_exists_and_fetch(conf->tos_by_binding, name, &text)) {
        tos = atoi(text);
    } else {
        tos = sample_int(ec_config_option_fetch_binding_domain(NULL, option_handle[OPT_TOS], NULL,
                                                               binding_slot, dr->domain));
    }
    if (tos && setsockopt(fd, IPPROTO_IP, IP_TOS, &tos, sizeof(tos)) != 0)
        ec_mod_debug(self, DERROR, MODNAME ": IP_TOS %d: %s\n", tos, strerror(errno));

    int m = sample_int(
        ec_config_option_fetch_binding(NULL, option_handle[OPT_MARK], NULL, binding_slot));
    if (m && setsockopt(fd, SOL_SOCKET, SO_MARK, &m, sizeof(m)) != 0)
        ec_mod_debug(self, DWARNING, MODNAME ": SO_MARK %d: %s\n", m, strerror(errno));

    conf->marked++;
    ec_mod_debug(self, DINFO, MODNAME ": binding %s domain %s: tos %d mark %d\n",
                 name ? name : "?", dr->domain, tos, m);
    return 0;
}

static int tos_marker_conf_setup(generic_module_infrastructure *self, int ignoreme)
{
    (void)ignoreme;
    return sample_register(self, tos_marker_options, option_handle, OPT_COUNT);
}

/* The tos_by_binding dictionary, checked and copied: NULL (said in output)
 * when a value is no TOS byte. */
static ECDict tos_marker_by_binding(generic_module_infrastructure *self,
                                    ec_config_header *transaction, string *output)
{
    ECDict copy = dict_blank();
    ec_config_value *val =
        ec_config_option_fetch_module_at_init(transaction, option_handle[OPT_TOS_BY_BINDING], self);
    ECDict_Iterator it = dict_iter(val->v->vdict);
    const char *key, *value;
    while (copy && dict_next(val->v->vdict, &it, &key, &value)) {
        if (atoi(value) < 0 || atoi(value) > 255) {
            stringprintf(output, MODNAME ": tos_by_binding %s: %s is not a TOS byte", key, value);
            dict_drop(copy);
            copy = NULL;
        } else {
            dict_add_key_value(copy, key, value);
        }
    }
    ec_config_release_value(val);
    return copy;
}

static int tos_marker_ext_init(generic_module_infrastructure *self, ec_config_header *transaction,
                               string *output, int flags)
{
    struct tos_marker_conf *conf = self->module_private_data;
    switch (sample_phase(flags)) {
    case SAMPLE_WAIT:
        break;
    case SAMPLE_START:
        if (!(conf = calloc(1, sizeof(*conf))) ||
            !(conf->tos_by_binding = tos_marker_by_binding(self, transaction, output))) {
            free(conf);
            return -1;
        }
        self->module_private_data = conf;
        register_core_connection_post_bind_hook_last(tos_marker_post_bind, self);
        ec_mod_debug(self, DNOTICE, MODNAME ": ready\n");
        break;
    case SAMPLE_STOP:
        if (conf) {
            ec_mod_debug(self, DNOTICE, MODNAME ": marked %lu connections\n", conf->marked);
            dict_drop(conf->tos_by_binding);
            free(conf);
            self->module_private_data = NULL;
        }
        break;
    }
    return 0;
}

EC_MODULE_EXPORT
generic_module_infrastructure tos_marker = {{
    EC_MODULE_INIT(EC_MODULE_TYPE_GENERIC, 0),
    MODNAME,
    "sets TOS and SO_MARK by binding name",
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    tos_marker_conf_setup,
    NULL,
    NULL,
    tos_marker_ext_init,
}};
