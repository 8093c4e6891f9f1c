/* netacl_rules.c: strict parsing of the netacl options and the first-match-wins decision. */
#include "netacl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vipmta_binding.h"

#define PATH_MAX_LEN 512

static const char *const top_keys[] = {"default", "rules", "bindings", NULL};
static const char *const binding_keys[] = {"default", "rules", NULL};
static const char *const rule_keys[] = {"action", "cidr", "comment", NULL};

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    case JSON_NULL: return "null";
    }
    return "unknown";
}

static void join_path(char *buf, size_t size, const char *prefix, const char *key)
{
    int n = prefix ? snprintf(buf, size, "%s.%s", prefix, key) : snprintf(buf, size, "%s", key);
    if (n < 0 || (size_t)n >= size) /* absurdly long names: keep the truncated path */
        buf[size - 1] = '\0';
}

/* "allow" / "deny" at `path`. Returns the number of errors. */
static int parse_action(vipmta_module_ctx *m, const json_t *v, const char *path,
                        enum netacl_action *out)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (strcmp(s, "allow") == 0) {
            *out = NETACL_ALLOW;
            return 0;
        }
        if (strcmp(s, "deny") == 0) {
            *out = NETACL_DENY;
            return 0;
        }
        vipmta_module_error(m, path, "must be \"allow\" or \"deny\", not \"%s\"", s);
        return 1;
    }
    vipmta_module_error(m, path, "must be \"allow\" or \"deny\", not %s", json_kind(v));
    return 1;
}

/* One rule object at `path` ("rules[2]"). Returns the number of errors; -1
 * when out of memory. */
static int parse_rule(vipmta_module_ctx *m, const json_t *v, const char *path,
                      struct netacl_rule *r)
{
    char p[PATH_MAX_LEN];
    if (!json_is_object(v)) {
        vipmta_module_error(m, path,
                            "must be an object with \"action\", \"cidr\" and an optional "
                            "\"comment\", not %s",
                            json_kind(v));
        return 1;
    }
    int errors = vipmta_module_check_keys(m, v, path, rule_keys);
    const json_t *a = json_object_get(v, "action");
    const json_t *c = json_object_get(v, "cidr");
    const json_t *note = json_object_get(v, "comment");
    if (!a) {
        vipmta_module_error(m, path, "missing \"action\" (\"allow\" or \"deny\")");
        errors++;
    } else {
        join_path(p, sizeof(p), path, "action");
        errors += parse_action(m, a, p, &r->action);
    }
    if (!c) {
        vipmta_module_error(m, path, "missing \"cidr\" (a network such as \"10.0.0.0/8\")");
        errors++;
    } else {
        join_path(p, sizeof(p), path, "cidr");
        if (!json_is_string(c)) {
            vipmta_module_error(m, p, "must be a network such as \"10.0.0.0/8\", not %s",
                                json_kind(c));
            errors++;
        } else {
            char why[256];
            if (netacl_cidr_parse(json_string_value(c), &r->net, why, sizeof(why)) != 0) {
                vipmta_module_error(m, p, "%s", why);
                errors++;
            } else if (!(r->cidr = strdup(json_string_value(c)))) {
                return -1;
            }
        }
    }
    if (note) {
        join_path(p, sizeof(p), path, "comment");
        if (!json_is_string(note)) {
            vipmta_module_error(m, p, "must be a string, not %s", json_kind(note));
            errors++;
        } else if (!(r->comment = strdup(json_string_value(note)))) {
            return -1;
        }
    }
    return errors;
}

/* {"default": ..., "rules": [...]} members of `obj` at `prefix` (NULL for
 * the top level). Returns the number of errors; -1 when out of memory. */
static int parse_list(vipmta_module_ctx *m, const json_t *obj, const char *prefix,
                      struct netacl_list *list)
{
    char p[PATH_MAX_LEN];
    int errors = 0;
    const json_t *v;
    list->dflt = NETACL_UNSET;
    if ((v = json_object_get(obj, "default"))) {
        join_path(p, sizeof(p), prefix, "default");
        errors += parse_action(m, v, p, &list->dflt);
    }
    if (!(v = json_object_get(obj, "rules")))
        return errors;
    join_path(p, sizeof(p), prefix, "rules");
    if (!json_is_array(v)) {
        vipmta_module_error(m, p, "must be an array of rules, not %s", json_kind(v));
        return errors + 1;
    }
    size_t n = json_array_size(v);
    if (!(list->rules = calloc(n ? n : 1, sizeof(*list->rules))))
        return -1;
    list->count = n; /* every entry is freed, even a half-parsed one */
    for (size_t i = 0; i < n; i++) {
        char rp[PATH_MAX_LEN + 24];
        snprintf(rp, sizeof(rp), "%s[%zu]", p, i);
        int r = parse_rule(m, json_array_get(v, i), rp, &list->rules[i]);
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
}

void netacl_config_free(struct netacl_config *cfg)
{
    if (!cfg)
        return;
    free_list(&cfg->global);
    for (size_t i = 0; i < cfg->nbindings; i++) {
        free(cfg->bindings[i].name);
        free_list(&cfg->bindings[i].list);
    }
    free(cfg->bindings);
    free(cfg);
}

/* The "bindings" object. Returns the number of errors; -1 when out of memory. */
static int parse_bindings(vipmta_module_ctx *m, const json_t *obj, struct netacl_config *cfg)
{
    if (!json_is_object(obj)) {
        vipmta_module_error(m, "bindings", "must be an object mapping binding names to rules, "
                                           "not %s",
                            json_kind(obj));
        return 1;
    }
    size_t n = json_object_size(obj);
    if (!(cfg->bindings = calloc(n ? n : 1, sizeof(*cfg->bindings))))
        return -1;
    int errors = 0;
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)obj, name, v) {
        char p[PATH_MAX_LEN];
        join_path(p, sizeof(p), "bindings", name);
        struct netacl_binding *b = &cfg->bindings[cfg->nbindings++];
        if (!(b->name = strdup(name)))
            return -1;
        if (!json_is_object(v)) {
            vipmta_module_error(m, p, "must be an object with \"default\" and/or \"rules\", not %s",
                                json_kind(v));
            errors++;
            continue;
        }
        errors += vipmta_module_check_keys(m, v, p, binding_keys);
        int r = parse_list(m, v, p, &b->list);
        if (r < 0)
            return -1;
        errors += r;
    }
    return errors;
}

struct netacl_config *netacl_config_parse(vipmta_module_ctx *m, const json_t *options)
{
    if (!json_is_object(options)) {
        vipmta_module_error(m, NULL, "must be an object, not %s", json_kind(options));
        return NULL;
    }
    struct netacl_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg)
        goto oom;
    int errors = vipmta_module_check_keys(m, options, NULL, top_keys);
    int r = parse_list(m, options, NULL, &cfg->global);
    if (r < 0)
        goto oom;
    errors += r;
    if (cfg->global.dflt == NETACL_UNSET)
        cfg->global.dflt = NETACL_ALLOW;
    const json_t *v = json_object_get(options, "bindings");
    if (v) {
        if ((r = parse_bindings(m, v, cfg)) < 0)
            goto oom;
        errors += r;
    }
    if (errors) {
        netacl_config_free(cfg);
        return NULL;
    }
    return cfg;
oom:
    vipmta_module_error(m, NULL, "out of memory");
    netacl_config_free(cfg);
    return NULL;
}

const struct netacl_binding **netacl_config_slots(vipmta_module_ctx *m,
                                                  const struct netacl_config *cfg, int *nslots)
{
    int n = vipmta_binding_count();
    if (n < 1)
        n = 1;
    const struct netacl_binding **slots = calloc((size_t)n, sizeof(*slots));
    if (!slots) {
        vipmta_module_error(m, NULL, "out of memory");
        return NULL;
    }
    int errors = 0;
    for (size_t i = 0; i < cfg->nbindings; i++) {
        const vipmta_binding *b = vipmta_binding_by_name(cfg->bindings[i].name);
        if (!b || b->slot < 0 || b->slot >= n) {
            char p[PATH_MAX_LEN];
            join_path(p, sizeof(p), "bindings", cfg->bindings[i].name);
            vipmta_module_error(m, p, "no binding named \"%s\" in the configuration",
                                cfg->bindings[i].name);
            errors++;
            continue;
        }
        slots[b->slot] = &cfg->bindings[i];
    }
    if (errors) {
        free(slots);
        return NULL;
    }
    *nslots = n;
    return slots;
}

/* First matching rule of `list`, or NULL. */
static const struct netacl_rule *first_match(const struct netacl_list *list,
                                             const struct netacl_addr *dst, size_t *index)
{
    for (size_t i = 0; i < list->count; i++)
        if (netacl_cidr_match(&list->rules[i].net, dst)) {
            *index = i;
            return &list->rules[i];
        }
    return NULL;
}

void netacl_decide(const struct netacl_config *cfg, const struct netacl_binding *b,
                   const struct netacl_addr *dst, struct netacl_verdict *v)
{
    v->rule = NULL;
    v->index = 0;
    if (b && (v->rule = first_match(&b->list, dst, &v->index))) {
        v->action = v->rule->action;
        v->from_binding = 1;
        return;
    }
    if ((v->rule = first_match(&cfg->global, dst, &v->index))) {
        v->action = v->rule->action;
        v->from_binding = 0;
        return;
    }
    if (b && b->list.dflt != NETACL_UNSET) {
        v->action = b->list.dflt;
        v->from_binding = 1;
        return;
    }
    v->action = cfg->global.dflt;
    v->from_binding = 0;
}
