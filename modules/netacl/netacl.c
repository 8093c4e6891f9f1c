/* netacl.c: the netacl module: lifecycle and the post-bind hook that vetoes denied destination networks. */
#include "netacl.h"

#include <stdlib.h>
#include "vipmta_binding.h"
#include "hooks/core/connection_post_bind.h"

struct netacl_state {
    vipmta_module_ctx *m;
    struct netacl_config *cfg;
    const struct netacl_binding **slots; /* indexed by binding slot; NULL: no binding rules */
    int nslots;
};

static const char *action_name(enum netacl_action a)
{
    return a == NETACL_ALLOW ? "allow" : "deny";
}

/* One line naming what decided: the rule (its path, action, network and
 * comment) or the default that applied. */
static void netacl_log_verdict(const struct netacl_state *st, enum vipmta_log_level level,
                               const domain_record *dr, int slot, const struct sockaddr *addr,
                               int addr_len, const struct netacl_binding *b,
                               const struct netacl_verdict *v)
{
    char to[80];
    netacl_format_sockaddr(addr, addr_len, to, sizeof(to));
    const char *bname = config_get_binding_name_from_id(slot);
    const char *verb = v->action == NETACL_ALLOW ? "allowed" : "denied";
    const char *domain = dr && dr->domain ? dr->domain : "?";
    if (!bname)
        bname = "?";
    if (v->rule) {
        const struct netacl_rule *r = v->rule;
        vipmta_module_log(st->m, level,
                          "%s connection to %s (domain %s) from binding \"%s\" (slot %d): "
                          "rule %s%s%srules[%zu] %s %s%s%s%s",
                          verb, to, domain, bname, slot, v->from_binding ? "bindings." : "",
                          v->from_binding ? b->name : "", v->from_binding ? "." : "", v->index,
                          action_name(r->action), r->cidr, r->comment ? " (\"" : "",
                          r->comment ? r->comment : "", r->comment ? "\")" : "");
    } else {
        vipmta_module_log(st->m, level,
                          "%s connection to %s (domain %s) from binding \"%s\" (slot %d): no "
                          "rule matched, %s%s%s default is %s",
                          verb, to, domain, bname, slot,
                          v->from_binding ? "binding \"" : "the global",
                          v->from_binding ? b->name : "", v->from_binding ? "\"'s" : "",
                          action_name(v->action));
    }
}

static int netacl_post_bind(void *closure, domain_record *dr, int binding_slot, int fd,
                            struct sockaddr *addr, int addr_len)
{
    const struct netacl_state *st = closure;
    const struct netacl_binding *b =
        binding_slot >= 0 && binding_slot < st->nslots ? st->slots[binding_slot] : NULL;
    struct netacl_addr dst;
    struct netacl_verdict v;
    netacl_addr_from_sockaddr(addr, addr_len, &dst); /* unknown family: only defaults apply */
    netacl_decide(st->cfg, b, &dst, &v);
    if (v.action == NETACL_ALLOW) {
        if (vipmta_log_enabled(VIPMTA_LOG_DEBUG))
            netacl_log_verdict(st, VIPMTA_LOG_DEBUG, dr, binding_slot, addr, addr_len, b, &v);
        return 0;
    }
    netacl_log_verdict(st, VIPMTA_LOG_NOTICE, dr, binding_slot, addr, addr_len, b, &v);
    return 1;
}

static int netacl_configure(vipmta_module_ctx *m, const json_t *options)
{
    struct netacl_config *cfg = netacl_config_parse(m, options);
    if (!cfg)
        return 1;
    struct netacl_state *st = calloc(1, sizeof(*st));
    if (!st) {
        netacl_config_free(cfg);
        vipmta_module_error(m, NULL, "out of memory");
        return 1;
    }
    st->m = m;
    st->cfg = cfg;
    vipmta_module_set_data(m, st);
    return 0;
}

static size_t rule_count(const struct netacl_config *cfg)
{
    size_t n = cfg->global.count;
    for (size_t i = 0; i < cfg->nbindings; i++)
        n += cfg->bindings[i].list.count;
    return n;
}

static int netacl_init(vipmta_module_ctx *m)
{
    struct netacl_state *st = vipmta_module_get_data(m);
    if (!st)
        return 1;
    if (!(st->slots = netacl_config_slots(m, st->cfg, &st->nslots)))
        return 1;
    /* first in the chain: a denied destination costs the other modules
     * nothing (no throttle token taken, no log line) */
    register_core_connection_post_bind_hook_first(netacl_post_bind, st);
    vipmta_module_log(m, VIPMTA_LOG_INFO, "ready: %zu rule(s), %zu binding(s), default %s",
                      rule_count(st->cfg), st->cfg->nbindings, action_name(st->cfg->global.dflt));
    return 0;
}

static int netacl_reload(vipmta_module_ctx *m, const json_t *options)
{
    struct netacl_state *st = vipmta_module_get_data(m);
    if (!st)
        return 1;
    struct netacl_config *cfg = netacl_config_parse(m, options);
    if (!cfg)
        return 1;
    int nslots;
    const struct netacl_binding **slots = netacl_config_slots(m, cfg, &nslots);
    if (!slots) {
        netacl_config_free(cfg);
        return 1;
    }
    netacl_config_free(st->cfg);
    free(st->slots);
    st->cfg = cfg;
    st->slots = slots;
    st->nslots = nslots;
    return 0;
}

static void netacl_shutdown(vipmta_module_ctx *m)
{
    struct netacl_state *st = vipmta_module_get_data(m);
    if (!st)
        return;
    netacl_config_free(st->cfg);
    free(st->slots);
    free(st);
    vipmta_module_set_data(m, NULL);
}

static const vipmta_module_descriptor netacl_descriptor = {
    VIPMTA_MODULE_HEADER("netacl", "1.0.0",
                         "allow/deny destination networks (CIDR) globally and per binding"),
    .configure = netacl_configure,
    .init = netacl_init,
    .reload = netacl_reload,
    .shutdown = netacl_shutdown,
};

VIPMTA_MODULE_EXPORT(netacl_descriptor)
