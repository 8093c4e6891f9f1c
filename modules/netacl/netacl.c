/* netacl.c: the netacl module: lifecycle and the post-bind hook that vetoes denied destination networks. */
#include "netacl.h"

#include <stdio.h>
#include "vipmta_binding.h"
#include "hooks/core/connection_post_bind.h"

static const char *action_name(enum netacl_action a)
{
    return a == NETACL_ALLOW ? "allow" : "deny";
}

/* One line naming what decided: the rule (its path, action, network and
 * comment) or the default that applied. */
static void netacl_log_verdict(vipmta_module_ctx *m, enum vipmta_log_level level,
                               const domain_record *dr, int slot, const struct sockaddr *addr,
                               int addr_len, const struct netacl_verdict *v)
{
    char to[80], where[600];
    netacl_format_sockaddr(addr, addr_len, to, sizeof(to));
    const char *bname = config_get_binding_name_from_id(slot);
    const char *verb = v->action == NETACL_ALLOW ? "allowed" : "denied";
    const char *domain = dr && dr->domain ? dr->domain : "?";
    if (!bname)
        bname = "?";
    if (v->rule) {
        const struct netacl_rule *r = v->rule;
        netacl_list_name(v->list, NETACL_PATH, where, sizeof(where));
        vipmta_module_log(m, level,
                          "%s connection to %s (domain %s) from binding \"%s\" (slot %d): "
                          "rule %srules[%zu] %s %s%s%s%s",
                          verb, to, domain, bname, slot, where, v->index,
                          action_name(r->action), r->cidr, r->comment ? " (\"" : "",
                          r->comment ? r->comment : "", r->comment ? "\")" : "");
    } else {
        netacl_list_name(v->list, NETACL_OWNER, where, sizeof(where));
        vipmta_module_log(m, level,
                          "%s connection to %s (domain %s) from binding \"%s\" (slot %d): no "
                          "rule matched, %s default is %s",
                          verb, to, domain, bname, slot, where, action_name(v->action));
    }
}

static int netacl_post_bind(void *closure, domain_record *dr, int binding_slot, int fd,
                            struct sockaddr *addr, int addr_len)
{
    vipmta_module_ctx *m = closure;
    const struct netacl_config *cfg = vipmta_module_config(m);
    struct netacl_addr dst;
    struct netacl_verdict v;
    (void)fd;
    netacl_addr_from_sockaddr(addr, addr_len, &dst); /* unknown family: only defaults apply */
    netacl_decide(cfg, binding_slot, dr ? dr->domain : NULL, &dst, &v);
    if (v.action == NETACL_ALLOW) {
        if (vipmta_module_log_enabled(m, VIPMTA_LOG_DEBUG))
            netacl_log_verdict(m, VIPMTA_LOG_DEBUG, dr, binding_slot, addr, addr_len, &v);
        return 0;
    }
    netacl_log_verdict(m, VIPMTA_LOG_NOTICE, dr, binding_slot, addr, addr_len, &v);
    return 1;
}

/* configure and reload: every scope parsed, kept when all is valid. */
static int netacl_configure(vipmta_module_ctx *m, const vipmta_value *options)
{
    (void)options; /* read with the other scopes */
    return vipmta_module_keep_config(m, netacl_config_parse(m), netacl_config_free);
}

static int netacl_init(vipmta_module_ctx *m)
{
    const struct netacl_config *cfg = vipmta_module_config(m);
    size_t rules = cfg->global.count;
    for (size_t i = 0; i < cfg->nscoped; i++)
        rules += cfg->scoped[i].count;
    /* first in the chain: a denied destination costs the other modules
     * nothing (no throttle token taken, no log line) */
    register_core_connection_post_bind_hook_first(netacl_post_bind, m);
    vipmta_module_log(m, VIPMTA_LOG_INFO,
                      "ready: %zu rule(s), %zu binding(s), %zu domain(s), %zu binding x "
                      "domain(s), default %s",
                      rules, cfg->nbindings, cfg->ndomains, cfg->npairs,
                      action_name(cfg->global.dflt));
    return 0;
}

static const vipmta_module_descriptor netacl_descriptor = {
    VIPMTA_MODULE_HEADER("netacl", "2.0.0",
                         "allow/deny destination networks (CIDR) globally, per binding and per "
                         "destination domain"),
    .configure = netacl_configure,
    .init = netacl_init,
    .reload = netacl_configure,
    .scopes = VIPMTA_SCOPES_ALL,
};

VIPMTA_MODULE_EXPORT(netacl_descriptor)
