/* sockopt.c: the sockopt module: lifecycle and the post-bind hook that sets socket options per binding and domain. */
#include "sockopt.h"

#include <string.h>
#include "vipmta_binding.h"
#include "hooks/core/connection_post_bind.h"

/* Context of one hook call, for the failure log line. */
struct sockopt_call {
    vipmta_module_ctx *m;
    const domain_record *dr;
    int slot;
    int veto;
};

static void sockopt_log_failure(void *arg, const char *key, const char *sockopt, int err)
{
    const struct sockopt_call *c = arg;
    const char *binding = config_get_binding_name_from_id(c->slot);
    vipmta_module_log(c->m, VIPMTA_LOG_WARNING,
                      "setsockopt(%s) for \"%s\" failed (binding \"%s\", slot %d, domain %s): "
                      "%s%s",
                      sockopt, key, binding ? binding : "?", c->slot,
                      c->dr && c->dr->domain ? c->dr->domain : "?", strerror(err),
                      c->veto ? "; vetoing the connection" : "");
}

static int sockopt_post_bind(void *closure, domain_record *dr, int binding_slot, int fd,
                             struct sockaddr *addr, int addr_len)
{
    vipmta_module_ctx *m = closure;
    const struct sockopt_config *cfg = vipmta_module_config(m);
    struct sockopt_set merged;
    const struct sockopt_set *s =
        sockopt_config_resolve(cfg, binding_slot, dr ? dr->domain : NULL, &merged);
    if (!s->present)
        return 0;
    struct sockopt_call call = {m, dr, binding_slot, cfg->veto_on_error};
    int failed = sockopt_apply(fd, addr, addr_len, s, sockopt_log_failure, &call);
    return failed && cfg->veto_on_error ? 1 : 0;
}

/* configure and reload: every scope parsed, kept when all is valid. */
static int sockopt_configure(vipmta_module_ctx *m, const vipmta_value *options)
{
    (void)options; /* read with the other scopes */
    return vipmta_module_keep_config(m, sockopt_config_parse(m), sockopt_config_free);
}

static int sockopt_init(vipmta_module_ctx *m)
{
    const struct sockopt_config *cfg = vipmta_module_config(m);
    register_core_connection_post_bind_hook_last(sockopt_post_bind, m);
    vipmta_module_log(m, VIPMTA_LOG_INFO,
                      "ready: %zu binding, %zu domain and %zu binding x domain override(s), "
                      "veto_on_error %s",
                      cfg->nbindings, cfg->ndomains, cfg->npairs,
                      cfg->veto_on_error ? "true" : "false");
    return 0;
}

static const vipmta_module_descriptor sockopt_descriptor = {
    VIPMTA_MODULE_HEADER("sockopt", "2.0.0",
                         "socket options (TOS/DSCP, mark, keepalive, buffers...) per binding "
                         "and destination domain"),
    .configure = sockopt_configure,
    .init = sockopt_init,
    .reload = sockopt_configure,
    .scopes = VIPMTA_SCOPES_ALL,
};

VIPMTA_MODULE_EXPORT(sockopt_descriptor)
