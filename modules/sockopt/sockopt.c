/* sockopt.c: the sockopt module: lifecycle and the post-bind hook that sets socket options per binding and domain. */
#include "sockopt.h"

#include <stdlib.h>
#include <string.h>
#include "vipmta_binding.h"
#include "hooks/core/connection_post_bind.h"

struct sockopt_state {
    vipmta_module_ctx *m;
    struct sockopt_config *cfg;
    struct sockopt_set *slots; /* indexed by binding slot: default merged with the binding's */
    int nslots;
};

/* Context of one hook call, for the failure log line. */
struct sockopt_call {
    struct sockopt_state *st;
    const domain_record *dr;
    int slot;
};

static void sockopt_log_failure(void *arg, const char *key, const char *sockopt, int err)
{
    const struct sockopt_call *c = arg;
    const char *binding = config_get_binding_name_from_id(c->slot);
    vipmta_module_log(c->st->m, VIPMTA_LOG_WARNING,
                      "setsockopt(%s) for \"%s\" failed (binding \"%s\", slot %d, domain %s): "
                      "%s%s",
                      sockopt, key, binding ? binding : "?", c->slot,
                      c->dr && c->dr->domain ? c->dr->domain : "?", strerror(err),
                      c->st->cfg->veto_on_error ? "; vetoing the connection" : "");
}

static int sockopt_post_bind(void *closure, domain_record *dr, int binding_slot, int fd,
                             struct sockaddr *addr, int addr_len)
{
    struct sockopt_state *st = closure;
    const struct sockopt_set *s = binding_slot >= 0 && binding_slot < st->nslots
                                      ? &st->slots[binding_slot]
                                      : &st->cfg->dflt;
    struct sockopt_set merged;
    const struct sockopt_set *dom = dr ? sockopt_config_domain(st->cfg, dr->domain) : NULL;
    if (dom) {
        merged = *s;
        sockopt_merge(&merged, dom);
        s = &merged;
    }
    if (!s->present)
        return 0;
    struct sockopt_call call = {st, dr, binding_slot};
    int failed = sockopt_apply(fd, addr, addr_len, s, sockopt_log_failure, &call);
    return failed && st->cfg->veto_on_error ? 1 : 0;
}

static int sockopt_configure(vipmta_module_ctx *m, const json_t *options)
{
    struct sockopt_config *cfg = sockopt_config_parse(m, options);
    if (!cfg)
        return 1;
    struct sockopt_state *st = calloc(1, sizeof(*st));
    if (!st) {
        sockopt_config_free(cfg);
        vipmta_module_error(m, NULL, "out of memory");
        return 1;
    }
    st->m = m;
    st->cfg = cfg;
    vipmta_module_set_data(m, st);
    return 0;
}

static int sockopt_init(vipmta_module_ctx *m)
{
    struct sockopt_state *st = vipmta_module_get_data(m);
    if (!st)
        return 1;
    if (!(st->slots = sockopt_config_slots(m, st->cfg, &st->nslots)))
        return 1;
    register_core_connection_post_bind_hook_last(sockopt_post_bind, st);
    vipmta_module_log(m, VIPMTA_LOG_INFO,
                      "ready: %zu binding and %zu domain override(s), veto_on_error %s",
                      st->cfg->nbindings, st->cfg->ndomains,
                      st->cfg->veto_on_error ? "true" : "false");
    return 0;
}

static int sockopt_reload(vipmta_module_ctx *m, const json_t *options)
{
    struct sockopt_state *st = vipmta_module_get_data(m);
    if (!st)
        return 1;
    struct sockopt_config *cfg = sockopt_config_parse(m, options);
    if (!cfg)
        return 1;
    int nslots;
    struct sockopt_set *slots = sockopt_config_slots(m, cfg, &nslots);
    if (!slots) {
        sockopt_config_free(cfg);
        return 1;
    }
    sockopt_config_free(st->cfg);
    free(st->slots);
    st->cfg = cfg;
    st->slots = slots;
    st->nslots = nslots;
    return 0;
}

static void sockopt_shutdown(vipmta_module_ctx *m)
{
    struct sockopt_state *st = vipmta_module_get_data(m);
    if (!st)
        return;
    sockopt_config_free(st->cfg);
    free(st->slots);
    free(st);
    vipmta_module_set_data(m, NULL);
}

static const vipmta_module_descriptor sockopt_descriptor = {
    VIPMTA_MODULE_HEADER("sockopt", "1.0.0",
                         "socket options (TOS/DSCP, mark, keepalive, buffers...) per binding "
                         "and destination domain"),
    .configure = sockopt_configure,
    .init = sockopt_init,
    .reload = sockopt_reload,
    .shutdown = sockopt_shutdown,
};

VIPMTA_MODULE_EXPORT(sockopt_descriptor)
