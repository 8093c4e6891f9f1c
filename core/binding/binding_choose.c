/* binding_choose.c: the binding of a group for one message: the binding_group_choose_binding hook, checked, then the core's choice. */
#include "binding_choose.h"
#include "binding_table.h"
#include "log/log.h"
#include "plugin/plugin_hooks.h"
#include "plugin/plugin_message.h"

/* Why a provider's slot cannot be the message's, NULL when it can. */
static const char *binding_choose_refusal(const char *group, ec_binding_slot slot,
                                          ec_binding_slot exclude)
{
    if (!binding_group_has(group, slot))
        return "not a member of the group";
    if (slot == exclude)
        return "the binding the message must leave";
    if (!binding_available(slot))
        return "it cannot be used now";
    return NULL;
}

ec_binding_slot binding_choose(ec_message *msg, const char *group, ec_binding_slot exclude,
                               ec_binding_slot fallback)
{
    if (has_core_binding_group_choose_binding_hook()) {
        ec_binding_slot was = msg->exclude;
        int may = msg->may_rebind;
        msg->exclude = exclude;
        msg->may_rebind = 0;
        ec_binding_slot slot = call_core_binding_group_choose_binding_hook(msg, group);
        msg->exclude = was;
        msg->may_rebind = may;
        if (slot != EC_BINDING_SLOT_UNBOUND) {
            const char *why = binding_choose_refusal(group, slot, exclude);
            if (!why)
                return slot;
            const char *name = config_get_binding_name_from_id(slot);
            log_write("core", VIPMTA_LOG_WARNING, "%s: binding_group_choose_binding: module \"%s\" "
                      "chose binding %d (%s) of group \"%s\": refused, %s; the core chooses",
                      vipmta_message_id(msg), plugin_hooks_last_stop_owner(
                          &plugin_hook_core_binding_group_choose_binding),
                      slot, name ? name : "no such binding", group, why);
        }
    }
    if (fallback != EC_BINDING_SLOT_UNBOUND)
        return fallback;
    return binding_group_choose_except(group, exclude);
}
