/* binding_select.c: picks a message's binding at acceptance from the rules, groups and defaults. */
#include "binding_select.h"
#include "binding_table.h"

#include <string.h>
#include <strings.h>

/* "example.com" matches itself; "*.example.com" matches any subdomain;
 * "*" matches everything. Case-insensitive. */
static int binding_domain_matches(const char *pattern, const char *domain)
{
    if (!pattern || !domain)
        return 0;
    if (strcmp(pattern, "*") == 0)
        return 1;
    if (pattern[0] == '*' && pattern[1] == '.') {
        size_t plen = strlen(pattern + 1), dlen = strlen(domain);
        return dlen > plen && strcasecmp(domain + dlen - plen, pattern + 1) == 0;
    }
    return strcasecmp(pattern, domain) == 0;
}

static const char *binding_address_domain(const char *address)
{
    const char *at = address ? strrchr(address, '@') : NULL;
    return at ? at + 1 : NULL;
}

/* Resolves a target into `out`: a group (a member that is available, else
 * one that waits) or a binding named directly (pinned: its mail waits for
 * it when it cannot be used). 0, or -1 for an unknown group or binding. */
static int binding_resolve_target(const char *group, const char *binding,
                                  struct binding_choice *out)
{
    if (group) {
        ec_binding_slot slot = binding_group_choose_any(group);
        if (slot == EC_BINDING_SLOT_UNBOUND)
            return -1;
        out->group = group;
        out->slot = slot;
        return 0;
    }
    const vipmta_binding *b = vipmta_binding_by_name(binding);
    if (!b || b->absent)
        return -1;
    out->group = NULL;
    out->slot = b->slot;
    return 0;
}

static int binding_rule_matches(const struct config_binding_rule *rule, const char *sender,
                                const char *const *rcpts, size_t rcpt_count,
                                const char *auth_user)
{
    switch (rule->kind) {
    case RULE_AUTH_USER:
        return auth_user && rule->match &&
               (strcmp(rule->match, "*") == 0 || strcmp(rule->match, auth_user) == 0);
    case RULE_SENDER_DOMAIN:
        return binding_domain_matches(rule->match, binding_address_domain(sender));
    case RULE_RECIPIENT_DOMAIN:
        for (size_t i = 0; i < rcpt_count; i++)
            if (binding_domain_matches(rule->match, binding_address_domain(rcpts[i])))
                return 1;
        return 0;
    case RULE_HEADER:
        return 0; /* handled by the caller: needs the header value */
    }
    return 0;
}

void binding_select(const struct vipmta_config *cfg, const char *sender,
                    const char *const *rcpts, size_t rcpt_count, const char *x_binding,
                    int client_may_relay, const char *auth_user, struct binding_choice *out)
{
    for (size_t i = 0; i < cfg->binding_rule_count; i++) {
        const struct config_binding_rule *rule = &cfg->binding_rules[i];
        if (rule->kind == RULE_HEADER) {
            if (!client_may_relay || !x_binding || !*x_binding)
                continue;
            if (binding_group_exists(x_binding)) {
                if (binding_resolve_target(x_binding, NULL, out) == 0)
                    return;
            } else if (binding_resolve_target(NULL, x_binding, out) == 0) {
                return;
            }
            continue;
        }
        if (binding_rule_matches(rule, sender, rcpts, rcpt_count, auth_user) &&
            binding_resolve_target(rule->binding_group, rule->binding, out) == 0)
            return;
    }
    if (cfg->default_binding_group &&
        binding_resolve_target(cfg->default_binding_group, NULL, out) == 0)
        return;
    out->group = NULL;
    out->slot = VIPMTA_BINDING_DEFAULT_SLOT;
}
