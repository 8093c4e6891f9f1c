/* circuit_breaker.c: a Momentum-style module: stops connecting to a destination domain whose attempts keep failing, from its domain_record counters. */
/*
 * Written against Momentum's documented C API only (module.h, ec_config.h,
 * dns_ds.h, the connection_post_bind hook).
 *
 *   circuit_breaker {
 *     min_attempts = 5     # Domain > Global: attempts before it may open
 *     max_failure_percent = 80
 *   }
 * The circuit of a domain is open (connections vetoed) while the share of
 * its attempts that ended in a failure (transient or permanent) is at least
 * max_failure_percent and it saw no delivery since.
 */

#include "sample.h"

#define MODNAME "circuit_breaker"

enum { OPT_MIN_ATTEMPTS, OPT_MAX_FAILURE_PERCENT, OPT_COUNT };
static int option_handle[OPT_COUNT];

static ec_config_option_def circuit_breaker_options[OPT_COUNT] = {
    {"min_attempts", ECCFGTYPE_INT, NULL, "Domain>Global", 0, NULL, "5", NULL, NULL, NULL, NULL},
    {"max_failure_percent", ECCFGTYPE_INT, NULL, "Domain>Global", 0, NULL, "80", NULL, NULL, NULL,
     NULL},
};

struct circuit_breaker_stats {
    unsigned long vetoed;
};

/* The value of an integer option for this domain, with its fallback. */
static int circuit_breaker_fetch(int which, const char *domain)
{
    return sample_int(ec_config_option_fetch_domain(NULL, option_handle[which], NULL, domain));
}

static int circuit_breaker_post_bind(void *closure, domain_record *dr, int binding_slot, int fd,
                                     struct sockaddr *addr, int addr_len)
{
    generic_module_infrastructure *self = closure;
    struct circuit_breaker_stats *stats = self->module_private_data;
    (void)binding_slot;
    (void)fd;
    (void)addr;
    (void)addr_len;

    unsigned attempts = dr->attempts, failed = dr->transients + dr->failures;
    int min_attempts = circuit_breaker_fetch(OPT_MIN_ATTEMPTS, dr->domain);
    int percent = circuit_breaker_fetch(OPT_MAX_FAILURE_PERCENT, dr->domain);
    if (min_attempts <= 0 || attempts < (unsigned)min_attempts || dr->deliveries > 0 ||
        failed * 100 < attempts * (unsigned)percent) {
        ec_mod_debug(self, DDEBUG, MODNAME ": %s closed (%u of %u attempts failed)\n",
                     dr->domain, failed, attempts);
        return 0;
    }
    stats->vetoed++;
    ec_mod_debug(self, DWARNING,
                 MODNAME ": %s open: %u of %u attempts failed, %u delivered (threshold %d%% "
                 "after %d attempts): connection vetoed\n",
                 dr->domain, failed, attempts, dr->deliveries, percent, min_attempts);
    return 1;
}

static int circuit_breaker_ext_init(generic_module_infrastructure *self,
                                    ec_config_header *transaction, string *output, int flags)
{
    struct circuit_breaker_stats *stats = self->module_private_data;
    (void)transaction;
    if (sample_phase(flags) == SAMPLE_START) {
        if (!(stats = calloc(1, sizeof(*stats)))) {
            stringprintf(output, MODNAME ": out of memory");
            return -1;
        }
        self->module_private_data = stats;
        /* first: an open circuit costs the other modules nothing */
        register_core_connection_post_bind_hook_first(circuit_breaker_post_bind, self);
        ec_mod_debug(self, DNOTICE, MODNAME ": ready\n");
    } else if (sample_phase(flags) == SAMPLE_STOP && stats) {
        ec_mod_debug(self, DNOTICE, MODNAME ": vetoed %lu connections\n", stats->vetoed);
        free(stats);
        self->module_private_data = NULL;
    }
    return 0;
}

static int circuit_breaker_conf_setup(generic_module_infrastructure *self, int ignoreme)
{
    (void)ignoreme;
    return sample_register(self, circuit_breaker_options, option_handle, OPT_COUNT);
}

EC_MODULE_EXPORT
generic_module_infrastructure circuit_breaker = {{
    EC_MODULE_INIT(EC_MODULE_TYPE_GENERIC, 0),
    MODNAME,
    "vetoes connections to domains whose attempts keep failing",
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    circuit_breaker_conf_setup,
    NULL,
    NULL,
    circuit_breaker_ext_init,
}};
