/* delivery_notes.c: a Momentum-style module: notes each recipient's delivery, transient and permanent failure (the log hooks) with the remote reply or the reason. */
/*
 * Written against Momentum's documented C API only (module.h, ec_config.h,
 * ec_message.h, the log_delivery_v1, log_transient_failure_v1 and
 * log_permanent_failure_v1 hooks).
 *
 *   delivery_notes { Domain "quiet.test" { enabled = false } }
 */
#include <sys/time.h>

#include "sample.h"
#include "ec_message.h"
#include "hooks/core/log_delivery_v1.h"
#include "hooks/core/log_transient_failure_v1.h"
#include "hooks/core/log_permanent_failure_v1.h"

#define MODNAME "delivery_notes"

enum { OPT_ENABLED, OPT_COUNT };
static int option_handle[OPT_COUNT];

static ec_config_option_def delivery_notes_options[OPT_COUNT] = {
    {"enabled", ECCFGTYPE_BOOL, NULL, "Domain>Global", 0, NULL, "true", NULL, NULL, NULL, NULL},
};

static void delivery_notes_write(generic_module_infrastructure *self, const char *what,
                                 ec_message *msg, domain_record *dr, const char *note,
                                 int note_len)
{
    if (!sample_int(ec_config_option_fetch_domain(NULL, option_handle[OPT_ENABLED], NULL,
                                                   dr->domain)))
        return;
    char rcpt[320] = "?";
    ec_message_get_envelope(msg, EC_MSG_ENV_TO | EC_MSG_ENV_COMPLETE, rcpt, sizeof(rcpt), NULL, 0,
                            NULL);
    ec_mod_debug(self, DINFO, MODNAME ": %s <%s> (domain %s): %.*s\n", what, rcpt, dr->domain,
                 note ? note_len : 6, note ? note : "(none)");
}

static void delivery_notes_delivered(void *closure, ec_message *msg, domain_record *dr,
                                     struct timeval *now, const char *note, int note_len)
{
    (void)now;
    delivery_notes_write(closure, "delivered", msg, dr, note, note_len);
}

static void delivery_notes_deferred(void *closure, ec_message *msg, domain_record *dr,
                                    struct timeval *now, const char *note, int note_len)
{
    (void)now;
    delivery_notes_write(closure, "deferred", msg, dr, note, note_len);
}

static void delivery_notes_failed(void *closure, ec_message *msg, domain_record *dr,
                                  struct timeval *now, const char *note, int note_len)
{
    (void)now;
    delivery_notes_write(closure, "failed", msg, dr, note, note_len);
}

static int delivery_notes_conf_setup(generic_module_infrastructure *self, int ignoreme)
{
    (void)ignoreme;
    return sample_register(self, delivery_notes_options, option_handle, OPT_COUNT);
}

static int delivery_notes_ext_init(generic_module_infrastructure *self,
                                   ec_config_header *transaction, string *output, int flags)
{
    (void)transaction;
    (void)output;
    if (sample_phase(flags) == SAMPLE_START) {
        register_core_log_delivery_v1_hook_last(delivery_notes_delivered, self);
        register_core_log_transient_failure_v1_hook_last(delivery_notes_deferred, self);
        register_core_log_permanent_failure_v1_hook_last(delivery_notes_failed, self);
        ec_mod_debug(self, DNOTICE, MODNAME ": ready\n");
    }
    return 0;
}

EC_MODULE_EXPORT
generic_module_infrastructure delivery_notes = {{
    EC_MODULE_INIT(EC_MODULE_TYPE_GENERIC, 0),
    MODNAME,
    "notes each delivery outcome",
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    delivery_notes_conf_setup,
    NULL,
    NULL,
    delivery_notes_ext_init,
}};
