/* rebind_on_defer.c: a Momentum-style module, the worked example of docs/writing-modules.md: when the destination defers a binding's mail with a 4.7.x reply, its mail moves to the next binding of the group. */
/*
 * Written against Momentum's documented C API only (module.h, ec_config.h,
 * ec_message.h, the log_transient_failure_v1 hook,
 * ec_message_change_binding_slot); the message's binding is read through
 * sample.h.
 *
 *   rebind_on_defer { Domain "picky.test" { from = "vip1" } }
 * from: the binding whose 4.7.x deferrals move mail ("": any binding).
 */
#include <string.h>
#include <sys/time.h>

#include "sample.h"
#include "ec_message.h"
#include "hooks/core/log_transient_failure_v1.h"

#define MODNAME "rebind_on_defer"

enum { OPT_FROM, OPT_COUNT };
static int option_handle[OPT_COUNT];

static ec_config_option_def rebind_on_defer_options[OPT_COUNT] = {
    {"from", ECCFGTYPE_STRING, NULL, "Domain>Global", 0, NULL, "\"\"", NULL, NULL, NULL, NULL},
};

/* "4xx 4.7.y ...": a deferral for policy reasons (RFC 3463's 4.7.x). */
static int rebind_on_defer_is_policy(const char *note, int len)
{
    return note && len >= 9 && note[0] == '4' && note[3] == ' ' && strncmp(note + 4, "4.7.", 4) == 0;
}

/* The binding after `slot` in its group (wrapping), or -1 when it is alone. */
static ec_binding_slot rebind_on_defer_next(ec_binding_slot slot)
{
    const char *group = config_get_binding_group(NULL, slot);
    if (!group)
        return -1;
    int count = 0;
    while (config_get_binding_name_from_id(count))
        count++;
    for (int i = 1; i < count; i++) {
        ec_binding_slot next = (slot + i) % count;
        const char *g = config_get_binding_group(NULL, next);
        if (g && strcmp(g, group) == 0)
            return next;
    }
    return -1;
}

static void rebind_on_defer_deferred(void *closure, ec_message *msg, domain_record *dr,
                                     struct timeval *now, const char *note, int note_len)
{
    generic_module_infrastructure *self = closure;
    (void)now;
    if (!rebind_on_defer_is_policy(note, note_len))
        return;
    ec_binding_slot slot = SAMPLE_MESSAGE_BINDING(msg);
    const char *name = config_get_binding_name_from_id(slot);
    ec_config_value *from = ec_config_option_fetch_domain(NULL, option_handle[OPT_FROM], NULL,
                                                          dr->domain);
    int wanted = !from->v->vstr || !from->v->vstr[0] || (name && strcmp(from->v->vstr, name) == 0);
    ec_config_release_value(from);
    if (!wanted)
        return;
    ec_binding_slot next = rebind_on_defer_next(slot);
    if (next < 0) {
        ec_mod_debug(self, DWARNING, MODNAME ": %s deferred %s (%.*s), no other binding in its "
                     "group\n", dr->domain, name ? name : "?", note_len, note);
        return;
    }
    ec_mod_debug(self, DNOTICE, MODNAME ": %s deferred %s (%.*s): moving the mail to %s\n",
                 dr->domain, name ? name : "?", note_len, note,
                 config_get_binding_name_from_id(next));
    ec_message_change_binding_slot(msg, next);
}

static int rebind_on_defer_conf_setup(generic_module_infrastructure *self, int ignoreme)
{
    (void)ignoreme;
    return sample_register(self, rebind_on_defer_options, option_handle, OPT_COUNT);
}

static int rebind_on_defer_ext_init(generic_module_infrastructure *self,
                                    ec_config_header *transaction, string *output, int flags)
{
    (void)transaction;
    (void)output;
    if (sample_phase(flags) == SAMPLE_START) {
        register_core_log_transient_failure_v1_hook_last(rebind_on_defer_deferred, self);
        ec_mod_debug(self, DNOTICE, MODNAME ": ready\n");
    }
    return 0;
}

EC_MODULE_EXPORT
generic_module_infrastructure rebind_on_defer = {{
    EC_MODULE_INIT(EC_MODULE_TYPE_GENERIC, 0),
    MODNAME,
    "moves mail to the next binding of its group after a 4.7.x deferral",
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    rebind_on_defer_conf_setup,
    NULL,
    NULL,
    rebind_on_defer_ext_init,
}};
