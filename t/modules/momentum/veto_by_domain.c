/* veto_by_domain.c: a Momentum-style module: vetoes the connections of chosen domains from chosen bindings, for good (the mail bounces with the module's reply) or asking for another binding. */
/*
 * Written against Momentum's documented C API only (module.h, ec_config.h,
 * the connection_post_bind hook); what a veto means is said through
 * sample.h (Momentum's vetoes are all transient).
 *
 *   veto_by_domain {
 *     Domain "closed.test" { veto = "permanent" reply = "550 5.7.1 closed.test takes no mail from us" }
 *     Domain "moved.test" { veto = "other_binding" binding = "vip1" }
 *   }
 * veto: "none" (the default), "transient", "permanent" or "other_binding";
 * binding: only connections from that binding ("": any); reply: the reply
 * of a permanent veto ("": the core's).
 */
#include <string.h>

#include "sample.h"

#define MODNAME "veto_by_domain"

enum { OPT_VETO, OPT_BINDING, OPT_REPLY, OPT_COUNT };
static int option_handle[OPT_COUNT];

static ec_config_option_def veto_by_domain_options[OPT_COUNT] = {
    {"veto", ECCFGTYPE_STRING, NULL, "Domain>Global", 0, NULL, "\"none\"", NULL, NULL, NULL, NULL},
    {"binding", ECCFGTYPE_STRING, NULL, "Domain>Global", 0, NULL, "\"\"", NULL, NULL, NULL, NULL},
    {"reply", ECCFGTYPE_STRING, NULL, "Domain>Global", 0, NULL, "\"\"", NULL, NULL, NULL, NULL},
};

static int veto_by_domain_post_bind(void *closure, domain_record *dr, int binding_slot, int fd,
                                    struct sockaddr *addr, int addr_len)
{
    generic_module_infrastructure *self = closure;
    (void)fd;
    (void)addr;
    (void)addr_len;
    ec_config_value *veto = ec_config_option_fetch_domain(NULL, option_handle[OPT_VETO], NULL,
                                                          dr->domain);
    ec_config_value *binding = ec_config_option_fetch_domain(NULL, option_handle[OPT_BINDING],
                                                             NULL, dr->domain);
    ec_config_value *reply = ec_config_option_fetch_domain(NULL, option_handle[OPT_REPLY], NULL,
                                                           dr->domain);
    const char *kind = veto->v->vstr ? veto->v->vstr : "none";
    const char *from = config_get_binding_name_from_id(binding_slot);
    int vetoed = strcmp(kind, "none") != 0 &&
                 (!binding->v->vstr || !binding->v->vstr[0] ||
                  (from && strcmp(binding->v->vstr, from) == 0));
    if (vetoed) {
        const char *text = reply->v->vstr && reply->v->vstr[0] ? reply->v->vstr : NULL;
        if (strcmp(kind, "permanent") == 0)
            SAMPLE_VETO(SAMPLE_VETO_PERMANENT, text);
        else if (strcmp(kind, "other_binding") == 0)
            SAMPLE_VETO(SAMPLE_VETO_OTHER_BINDING, NULL);
        ec_mod_debug(self, DNOTICE, MODNAME ": %s from %s: vetoed (%s)\n", dr->domain,
                     from ? from : "?", kind);
    }
    ec_config_release_value(veto);
    ec_config_release_value(binding);
    ec_config_release_value(reply);
    return vetoed;
}

static int veto_by_domain_conf_setup(generic_module_infrastructure *self, int ignoreme)
{
    (void)ignoreme;
    return sample_register(self, veto_by_domain_options, option_handle, OPT_COUNT);
}

static int veto_by_domain_ext_init(generic_module_infrastructure *self,
                                   ec_config_header *transaction, string *output, int flags)
{
    (void)transaction;
    (void)output;
    if (sample_phase(flags) == SAMPLE_START) {
        register_core_connection_post_bind_hook_last(veto_by_domain_post_bind, self);
        ec_mod_debug(self, DNOTICE, MODNAME ": ready\n");
    }
    return 0;
}

EC_MODULE_EXPORT
generic_module_infrastructure veto_by_domain = {{
    EC_MODULE_INIT(EC_MODULE_TYPE_GENERIC, 0),
    MODNAME,
    "vetoes connections of chosen domains",
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    veto_by_domain_conf_setup,
    NULL,
    NULL,
    veto_by_domain_ext_init,
}};
