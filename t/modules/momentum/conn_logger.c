/* conn_logger.c: a Momentum-style module: logs each outbound connection of the bindings it is told to, with a prefix per binding. */
/*
 * Written against Momentum's documented C API only (module.h, ec_config.h,
 * the connection_post_bind hook). Several instances may run, each with its
 * own options:
 *
 *   conn_logger "a" { log_connections = true  prefix = "a" }
 *   conn_logger "b" { Binding "vip2" { log_connections = false } }
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "sample.h"

#define MODNAME "conn_logger"

enum { OPT_LOG, OPT_PREFIX, OPT_COUNT };
static int option_handle[OPT_COUNT];

static ec_config_option_def conn_logger_options[OPT_COUNT] = {
    {"log_connections", ECCFGTYPE_BOOL, NULL, "Binding>Global", 0, NULL, "true", NULL, NULL, NULL,
     NULL},
    {"prefix", ECCFGTYPE_STRING, NULL, "Binding>Global", 0, NULL, "\"conn\"", NULL, NULL, NULL,
     NULL},
};

struct conn_logger_counts {
    unsigned long logged;
};

static int conn_logger_post_bind(void *closure, domain_record *dr, int binding_slot, int fd,
                                 struct sockaddr *addr, int addr_len)
{
    generic_module_infrastructure *self = closure;
    struct conn_logger_counts *counts = self->module_private_data;
    if (!sample_int(ec_config_option_fetch_binding(NULL, option_handle[OPT_LOG], NULL,
                                                    binding_slot)))
        return 0; /* not for this binding */

    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (addr->sa_family == AF_INET && addr_len >= (int)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)addr;
        inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
        port = ntohs(sin->sin_port);
    }
    ec_config_value *prefix = ec_config_option_fetch_binding(NULL, option_handle[OPT_PREFIX],
                                                             NULL, binding_slot);
    const char *binding = config_get_binding_name_from_id(binding_slot);
    const char *group = config_get_binding_group(NULL, binding_slot);
    counts->logged++;
    ec_mod_debug(self, DINFO, "%s: binding %s (group %s) domain %s fd %d to %s:%d\n",
                 prefix->v->vstr, binding ? binding : "?", group ? group : "none", dr->domain,
                 fd, ip, port);
    ec_config_release_value(prefix);
    return 0;
}

static int conn_logger_conf_setup(generic_module_infrastructure *self, int ignoreme)
{
    (void)ignoreme;
    return sample_register(self, conn_logger_options, option_handle, OPT_COUNT);
}

static int conn_logger_ext_init(generic_module_infrastructure *self,
                                ec_config_header *transaction, string *output, int flags)
{
    struct conn_logger_counts *counts = self->module_private_data;
    (void)transaction;
    (void)output;
    enum sample_phase phase = sample_phase(flags);
    if (phase == SAMPLE_START) {
        /* the instance's counter; registered once the instance exists */
        counts = calloc(1, sizeof(*counts));
        self->module_private_data = counts;
        if (counts)
            register_core_connection_post_bind_hook_last(conn_logger_post_bind, self);
        return counts ? 0 : -1;
    }
    if (phase == SAMPLE_STOP && counts) {
        ec_mod_debug(self, DNOTICE, MODNAME ": logged %lu connections\n", counts->logged);
        free(counts);
        self->module_private_data = NULL;
    }
    return 0;
}

EC_MODULE_EXPORT
generic_module_infrastructure conn_logger = {{
    EC_MODULE_INIT(EC_MODULE_TYPE_GENERIC, 0),
    MODNAME,
    "logs outbound connections per binding",
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    conn_logger_conf_setup,
    NULL,
    NULL,
    conn_logger_ext_init,
}};
