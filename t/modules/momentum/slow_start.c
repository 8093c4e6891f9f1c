/* slow_start.c: a Momentum-style module: at most one new connection per interval for each (domain, binding), held with check_outbound_conn_throttle's later. */
/*
 * Written against Momentum's documented C API only (module.h, ec_config.h,
 * the check_outbound_conn_throttle hook).
 *
 *   slow_start { Domain "slow.test" { interval = 2 } }
 * interval: seconds between two new connections of a (domain, binding);
 * 0 (the default): no limit.
 */
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "sample.h"
#include "hooks/core/check_outbound_conn_throttle.h"

#define MODNAME "slow_start"
#define SLOW_START_LANES 64

enum { OPT_INTERVAL, OPT_COUNT };
static int option_handle[OPT_COUNT];

static ec_config_option_def slow_start_options[OPT_COUNT] = {
    {"interval", ECCFGTYPE_INT, NULL, "Domain>Global", 0, NULL, "0", NULL, NULL, NULL, NULL},
};

/* The last connection allowed per (domain, binding); the oldest entry is
 * reused when the table is full. Runs on the delivery thread only. */
struct slow_start_lane {
    char domain[256];
    int binding;
    struct timeval last;
};

struct slow_start_state {
    struct slow_start_lane lanes[SLOW_START_LANES];
    unsigned long held;
};

static struct slow_start_lane *slow_start_lane(struct slow_start_state *st, const char *domain,
                                               int binding)
{
    struct slow_start_lane *oldest = &st->lanes[0];
    for (int i = 0; i < SLOW_START_LANES; i++) {
        struct slow_start_lane *l = &st->lanes[i];
        if (l->domain[0] && l->binding == binding && strcasecmp(l->domain, domain) == 0)
            return l;
        if (!l->domain[0] || timercmp(&l->last, &oldest->last, <))
            oldest = l;
    }
    snprintf(oldest->domain, sizeof(oldest->domain), "%s", domain);
    oldest->binding = binding;
    timerclear(&oldest->last);
    return oldest;
}

static int slow_start_check(void *closure, int binding_id, domain_record *dr, struct timeval *now,
                            struct timeval *later)
{
    generic_module_infrastructure *self = closure;
    struct slow_start_state *st = self->module_private_data;
    int interval = sample_int(ec_config_option_fetch_domain(NULL, option_handle[OPT_INTERVAL],
                                                            NULL, dr->domain));
    if (interval <= 0 || !st)
        return 0;
    struct slow_start_lane *l = slow_start_lane(st, dr->domain, binding_id);
    struct timeval next = l->last;
    next.tv_sec += interval;
    if (timerisset(&l->last) && timercmp(now, &next, <)) {
        *later = next;
        st->held++;
        ec_mod_debug(self, DDEBUG, MODNAME ": %s from binding %d: next connection at %ld.%06ld\n",
                     dr->domain, binding_id, (long)next.tv_sec, (long)next.tv_usec);
        return 1;
    }
    l->last = *now;
    ec_mod_debug(self, DINFO, MODNAME ": %s from binding %d: connection allowed\n", dr->domain,
                 binding_id);
    return 0;
}

static int slow_start_conf_setup(generic_module_infrastructure *self, int ignoreme)
{
    (void)ignoreme;
    return sample_register(self, slow_start_options, option_handle, OPT_COUNT);
}

static int slow_start_ext_init(generic_module_infrastructure *self, ec_config_header *transaction,
                               string *output, int flags)
{
    struct slow_start_state *st = self->module_private_data;
    (void)transaction;
    if (sample_phase(flags) == SAMPLE_START) {
        if (!(st = calloc(1, sizeof(*st)))) {
            stringprintf(output, MODNAME ": out of memory");
            return -1;
        }
        self->module_private_data = st;
        register_core_check_outbound_conn_throttle_hook_last(slow_start_check, self);
        ec_mod_debug(self, DNOTICE, MODNAME ": ready\n");
    } else if (sample_phase(flags) == SAMPLE_STOP && st) {
        ec_mod_debug(self, DNOTICE, MODNAME ": held %lu connection checks\n", st->held);
        free(st);
        self->module_private_data = NULL;
    }
    return 0;
}

EC_MODULE_EXPORT
generic_module_infrastructure slow_start = {{
    EC_MODULE_INIT(EC_MODULE_TYPE_GENERIC, 0),
    MODNAME,
    "one new connection per interval for each (domain, binding)",
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    slow_start_conf_setup,
    NULL,
    NULL,
    slow_start_ext_init,
}};
