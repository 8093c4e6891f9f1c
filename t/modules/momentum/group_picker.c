/* group_picker.c: a Momentum-style module: picks the binding of a group for each message (binding_group_choose_binding), the one its options prefer. */
/*
 * Written against Momentum's documented C API only (module.h, ec_config.h,
 * ec_message.h, the binding_group_choose_binding hook).
 *
 *   group_picker { prefer = "vip1" }
 * A message whose binding is chosen in the group of binding `prefer` gets
 * that binding; other groups (and an empty `prefer`) are left to the
 * default logic. When the preferred binding cannot be used (the core
 * refuses it), the default logic decides.
 */
#include <string.h>

#include "sample.h"
#include "ec_message.h"
#include "hooks/core/binding_group_choose_binding.h"

#define MODNAME "group_picker"

enum { OPT_PREFER, OPT_COUNT };
static int option_handle[OPT_COUNT];

static ec_config_option_def group_picker_options[OPT_COUNT] = {
    {"prefer", ECCFGTYPE_STRING, NULL, "Global", 0, NULL, "\"\"", NULL, NULL, NULL, NULL},
};

static int group_picker_choose(void *closure, ec_message *msg, const char *binding_group)
{
    generic_module_infrastructure *self = closure;
    char rcpt[320] = "?";
    ec_message_get_envelope(msg, EC_MSG_ENV_TO | EC_MSG_ENV_COMPLETE, rcpt, sizeof(rcpt), NULL, 0,
                            NULL);
    ec_config_value *prefer = ec_config_option_fetch(NULL, option_handle[OPT_PREFER], NULL);
    ec_binding_slot slot = EC_BINDING_SLOT_UNBOUND;
    if (prefer->v->vstr && prefer->v->vstr[0]) {
        ec_binding_slot want = config_get_binding_id_from_name(prefer->v->vstr);
        const char *group = want >= 0 ? config_get_binding_group(NULL, want) : NULL;
        if (group && strcmp(group, binding_group) == 0)
            slot = want;
    }
    ec_mod_debug(self, DINFO, MODNAME ": <%s> in group %s: %s\n", rcpt, binding_group,
                 slot != EC_BINDING_SLOT_UNBOUND ? prefer->v->vstr : "the default logic");
    ec_config_release_value(prefer);
    return slot;
}

static int group_picker_conf_setup(generic_module_infrastructure *self, int ignoreme)
{
    (void)ignoreme;
    return sample_register(self, group_picker_options, option_handle, OPT_COUNT);
}

static int group_picker_ext_init(generic_module_infrastructure *self,
                                 ec_config_header *transaction, string *output, int flags)
{
    (void)transaction;
    (void)output;
    if (sample_phase(flags) == SAMPLE_START) {
        register_core_binding_group_choose_binding_hook_last(group_picker_choose, self);
        ec_mod_debug(self, DNOTICE, MODNAME ": ready\n");
    }
    return 0;
}

EC_MODULE_EXPORT
generic_module_infrastructure group_picker = {{
    EC_MODULE_INIT(EC_MODULE_TYPE_GENERIC, 0),
    MODNAME,
    "picks a group's binding for each message",
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    group_picker_conf_setup,
    NULL,
    NULL,
    group_picker_ext_init,
}};
