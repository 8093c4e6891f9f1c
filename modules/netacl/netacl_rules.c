/* netacl_rules.c: the netacl module's rules per scope (global, binding, domain, binding x domain) and the first-match-wins decision. */
#include "netacl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const list_keys[] = {"default", "rules", NULL};
static const char *const rule_keys[] = {"action", "cidr", "comment", NULL};
static const char *const actions[] = {"allow", "deny", NULL};

/* "allow" / "deny" at PATH.KEY into *out: 0, 1 or -1 as vipmta_option_choice. */
static int parse_action(vipmta_module_ctx *m, const vipmta_value *obj, const char *path,
                        const char *key, enum netacl_action *out)
{
    int which;
    int r = vipmta_option_choice(m, obj, path, key, actions, &which);
    if (r > 0)
        *out = which == 0 ? NETACL_ALLOW : NETACL_DENY;
    return r;
}

/* One rule object at `path` ("rules[2]"). Returns the number of errors; -1
 * when out of memory. */
static int parse_rule(vipmta_module_ctx *m, const vipmta_value *v, const char *path,
                      struct netacl_rule *r)
{
    char p[VIPMTA_OPTION_PATH_MAX];
    const char *cidr;
    if (vipmta_option_object(m, v, path,
                             "an object with \"action\", \"cidr\" and an optional \"comment\"") != 0)
        return 1;
    int errors = vipmta_module_check_keys(m, v, path, rule_keys);
    int got = parse_action(m, v, path, "action", &r->action);
    if (got == 0)
        vipmta_module_error(m, path, "missing \"action\" (\"allow\" or \"deny\")");
    errors += got <= 0;
    got = vipmta_option_string(m, v, path, "cidr", "a network such as \"10.0.0.0/8\"", &cidr);
    if (got == 0)
        vipmta_module_error(m, path, "missing \"cidr\" (a network such as \"10.0.0.0/8\")");
    errors += got <= 0;
    if (got > 0) {
        char why[256];
        if (netacl_cidr_parse(cidr, &r->net, why, sizeof(why)) != 0) {
            vipmta_module_error(m, vipmta_option_path(p, sizeof(p), path, "cidr"), "%s", why);
            errors++;
        } else if (!(r->cidr = strdup(cidr))) {
            return -1;
        }
    }
    const vipmta_value *note = vipmta_value_get(v, "comment");
    if (note && vipmta_value_type(note) != VIPMTA_VALUE_STRING) {
        vipmta_module_error(m, vipmta_option_path(p, sizeof(p), path, "comment"),
                            "must be a string, not %s", vipmta_value_describe(note));
        errors++;
    } else if (note && !(r->comment = strdup(vipmta_value_string(note)))) {
        return -1;
    }
    return errors;
}

/* {"default": ..., "rules": [...]}: one scope's object. Returns the number
 * of errors; -1 when out of memory. */
static int parse_list(vipmta_module_ctx *m, const vipmta_value *obj, struct netacl_list *list)
{
    int errors = vipmta_module_check_keys(m, obj, NULL, list_keys);
    list->dflt = NETACL_UNSET;
    errors += parse_action(m, obj, NULL, "default", &list->dflt) < 0;
    const vipmta_value *v = vipmta_value_get(obj, "rules");
    if (!v)
        return errors;
    if (vipmta_option_array(m, v, "rules", "an array of rules") != 0)
        return errors + 1;
    size_t n = vipmta_value_size(v);
    if (!(list->rules = calloc(n ? n : 1, sizeof(*list->rules))))
        return -1;
    list->count = n; /* every entry is freed, even a half-parsed one */
    for (size_t i = 0; i < n; i++) {
        char rp[VIPMTA_OPTION_PATH_MAX];
        int r = parse_rule(m, vipmta_value_at(v, i),
                           vipmta_option_path_index(rp, sizeof(rp), "rules", i), &list->rules[i]);
        if (r < 0)
            return -1;
        errors += r;
    }
    return errors;
}

static void free_list(struct netacl_list *list)
{
    for (size_t i = 0; i < list->count; i++) {
        free(list->rules[i].cidr);
        free(list->rules[i].comment);
    }
    free(list->rules);
    free(list->binding);
    free(list->domain);
}

void netacl_config_free(void *p)
{
    struct netacl_config *cfg = p;
    if (!cfg)
        return;
    free_list(&cfg->global);
    for (size_t i = 0; i < cfg->nscoped; i++)
        free_list(&cfg->scoped[i]);
    free(cfg->scoped);
    free(cfg->slots);
    free(cfg->domains);
    free(cfg->pairs);
    free(cfg);
}

/* One scope of the entry: the global list, or a new scoped one. */
static int netacl_scope(vipmta_module_ctx *m, const vipmta_scope *s, void *arg)
{
    struct netacl_config *cfg = arg;
    struct netacl_list *list = &cfg->global;
    if (s->kind != VIPMTA_SCOPE_GLOBAL) {
        struct netacl_list *grown = realloc(cfg->scoped, (cfg->nscoped + 1) * sizeof(*grown));
        if (!grown)
            goto oom;
        cfg->scoped = grown;
        list = &cfg->scoped[cfg->nscoped++];
        memset(list, 0, sizeof(*list));
        list->slot = s->slot;
        if ((s->binding && !(list->binding = strdup(s->binding))) ||
            (s->domain && !(list->domain = strdup(s->domain))))
            goto oom;
    }
    list->kind = s->kind;
    int r = parse_list(m, s->options, list);
    if (r >= 0)
        return r;
oom:
    vipmta_module_error(m, NULL, "out of memory");
    return -1;
}

static int list_cmp(const void *a, const void *b)
{
    const struct netacl_list *x = *(const struct netacl_list *const *)a;
    const struct netacl_list *y = *(const struct netacl_list *const *)b;
    if (x->kind == VIPMTA_SCOPE_BINDING_DOMAIN && x->slot != y->slot)
        return x->slot < y->slot ? -1 : 1;
    return strcmp(x->domain, y->domain);
}

/* The lookup tables: per slot, and the sorted domain and pair lists. */
static int netacl_index(struct netacl_config *cfg)
{
    int n = vipmta_binding_count();
    cfg->nslots = n < 1 ? 1 : n;
    if (!(cfg->slots = calloc((size_t)cfg->nslots, sizeof(*cfg->slots))) ||
        !(cfg->domains = calloc(cfg->nscoped + 1, sizeof(*cfg->domains))) ||
        !(cfg->pairs = calloc(cfg->nscoped + 1, sizeof(*cfg->pairs))))
        return -1;
    for (size_t i = 0; i < cfg->nscoped; i++) {
        struct netacl_list *l = &cfg->scoped[i];
        if (l->kind == VIPMTA_SCOPE_BINDING) {
            if (l->slot >= 0 && l->slot < cfg->nslots)
                cfg->slots[l->slot] = l;
            cfg->nbindings++;
        } else if (l->kind == VIPMTA_SCOPE_DOMAIN) {
            cfg->domains[cfg->ndomains++] = l;
        } else {
            cfg->pairs[cfg->npairs++] = l;
        }
    }
    qsort(cfg->domains, cfg->ndomains, sizeof(*cfg->domains), list_cmp);
    qsort(cfg->pairs, cfg->npairs, sizeof(*cfg->pairs), list_cmp);
    return 0;
}

struct netacl_config *netacl_config_parse(vipmta_module_ctx *m)
{
    struct netacl_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg) {
        vipmta_module_error(m, NULL, "out of memory");
        return NULL;
    }
    if (vipmta_module_foreach_scope(m, netacl_scope, cfg) != 0) {
        netacl_config_free(cfg);
        return NULL;
    }
    if (cfg->global.dflt == NETACL_UNSET)
        cfg->global.dflt = NETACL_ALLOW;
    if (netacl_index(cfg) != 0) {
        vipmta_module_error(m, NULL, "out of memory");
        netacl_config_free(cfg);
        return NULL;
    }
    return cfg;
}

static const struct netacl_list *find_list(struct netacl_list *const *lists, size_t count,
                                           enum vipmta_scope_kind kind, int slot,
                                           const char *domain)
{
    if (!count || !domain)
        return NULL;
    struct netacl_list key = {.kind = kind, .slot = slot, .domain = (char *)domain};
    const struct netacl_list *k = &key;
    struct netacl_list *const *e = bsearch(&k, lists, count, sizeof(*lists), list_cmp);
    return e ? *e : NULL;
}

/* First matching rule of `list`, or NULL. */
static const struct netacl_rule *first_match(const struct netacl_list *list,
                                             const struct netacl_addr *dst, size_t *index)
{
    for (size_t i = 0; list && i < list->count; i++)
        if (netacl_cidr_match(&list->rules[i].net, dst)) {
            *index = i;
            return &list->rules[i];
        }
    return NULL;
}

void netacl_decide(const struct netacl_config *cfg, int slot, const char *domain,
                   const struct netacl_addr *dst, struct netacl_verdict *v)
{
    const struct netacl_list *order[4] = {
        find_list(cfg->pairs, cfg->npairs, VIPMTA_SCOPE_BINDING_DOMAIN, slot, domain),
        find_list(cfg->domains, cfg->ndomains, VIPMTA_SCOPE_DOMAIN, slot, domain),
        slot >= 0 && slot < cfg->nslots ? cfg->slots[slot] : NULL,
        &cfg->global,
    };
    v->rule = NULL;
    v->index = 0;
    for (size_t i = 0; i < 4; i++) {
        if ((v->rule = first_match(order[i], dst, &v->index))) {
            v->action = v->rule->action;
            v->list = order[i];
            return;
        }
    }
    for (size_t i = 0; i < 4; i++) {
        if (order[i] && order[i]->dflt != NETACL_UNSET) {
            v->action = order[i]->dflt;
            v->list = order[i];
            return;
        }
    }
}

void netacl_list_name(const struct netacl_list *list, enum netacl_naming how, char *buf,
                      size_t size)
{
    /* per scope kind: the binding's name, then the domain, each printed or
     * skipped (%.0s) */
    static const char *const formats[2][4] = {
        {"%.0s%.0s", "bindings.%s.%.0s", "domains.%.0s%s.", "binding_domains.%s.%s."},
        {"the global%.0s%.0s", "binding \"%s\"'s%.0s", "domain %.0s%s's",
         "binding \"%s\" x domain %s's"},
    };
    snprintf(buf, size, formats[how][list->kind], list->binding ? list->binding : "",
             list->domain ? list->domain : "");
}
