/* plugin_momentum_config.c: Momentum's option API on the JSON config: registration with scoped fallback, typed values per instance and scope, fetches. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>

#include "ec_config.h"
#include "log/log.h"
#include "plugin_internal.h"
#include "plugin_momentum.h"

#define PLUGIN_EC_OPTIONS_MAX 256
#define PLUGIN_EC_CHAIN_MAX 6

/* One registered option. */
struct plugin_ec_option {
    ec_config_option_def *def;            /* NULL: a free slot */
    const struct plugin_ec_module *module;
    unsigned scopes;                      /* bits (1 << vipmta_scope_kind) it may be set at */
    enum vipmta_scope_kind chain[PLUGIN_EC_CHAIN_MAX]; /* fallback order */
    int chain_len;
    ec_config_value *dflt;                /* its defval, or a value holding nothing */
};

static struct plugin_ec_option plugin_ec_options[PLUGIN_EC_OPTIONS_MAX];
static struct plugin_ec_module *plugin_ec_registering;

/* One value an instance gives, at one scope. */
struct plugin_ec_set {
    int slot;
    enum vipmta_scope_kind kind;
    ec_binding_slot binding;
    char *domain;                         /* lower case; NULL */
    ec_config_value *value;
};

struct plugin_ec_values {
    struct plugin_ec_set *sets;
    size_t count, capacity;
};

static const char *const plugin_ec_scope_words[] = {"options", "bindings", "domains",
                                                    "binding_domains"};

/* ---- values ---- */

struct plugin_ec_value_block {
    ec_config_value value;
    ec_config_value_storage storage;
};

static ec_config_value *plugin_ec_value_new(ec_config_option_def *def)
{
    struct plugin_ec_value_block *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->value.refcnt = 1;
    b->value.opt = def;
    b->value.v = &b->storage;
    return &b->value;
}

static void plugin_ec_storage_clear(ec_config_item_type_t type, ec_config_value_storage *s)
{
    switch (type) {
    case ECCFGTYPE_STRING: free(s->vstr); break;
    case ECCFGTYPE_SOCKADDR:
    case ECCFGTYPE_SOCKADDR_PORTLESS: free(s->vsa); break;
    case ECCFGTYPE_ECDICT: dict_drop(s->vdict); break;
    default: break;
    }
    memset(s, 0, sizeof(*s));
}

static void plugin_ec_value_free(ec_config_value *v)
{
    ec_config_option_def *def = v->opt;
    if (def && def->datafree && v->data)
        def->datafree(def, v->data);
    if (def && (def->flags & EC_CFG_OPT_IS_ARRAY) && v->v->varr) {
        ec_ptr_array *a = v->v->varr;
        for (int i = 0; i < a->size; i++) {
            plugin_ec_storage_clear(def->type, a->items[i]);
            free(a->items[i]);
        }
        free(a->items);
        free(a);
    } else if (def) {
        plugin_ec_storage_clear(def->type, v->v);
    }
    free(v);
}

void ec_config_release_value(void *tofree)
{
    ec_config_value *v = tofree;
    if (v && __atomic_sub_fetch(&v->refcnt, 1, __ATOMIC_ACQ_REL) == 0)
        plugin_ec_value_free(v);
}

static ec_config_value *plugin_ec_value_ref(ec_config_value *v)
{
    if (v)
        __atomic_add_fetch(&v->refcnt, 1, __ATOMIC_RELAXED);
    return v;
}

/* ---- parsing one value ---- */

static const char *plugin_ec_type_words(ec_config_item_type_t t)
{
    switch (t) {
    case ECCFGTYPE_STRING: return "a string";
    case ECCFGTYPE_INT: return "an integer";
    case ECCFGTYPE_UINT64:
    case ECCFGTYPE_SIZE_T: return "a non-negative integer";
    case ECCFGTYPE_PERMS: return "a file mode in octal, e.g. \"0640\"";
    case ECCFGTYPE_BOOL: return "true or false";
    case ECCFGTYPE_FLOAT: return "a number";
    case ECCFGTYPE_SOCKADDR: return "an address with a port, e.g. \"192.0.2.1:25\" or \"[2001:db8::1]:25\"";
    case ECCFGTYPE_SOCKADDR_PORTLESS: return "an IP address";
    case ECCFGTYPE_ECDICT: return "an object of strings";
    default: return "a value vipmta cannot read";
    }
}

static struct sockaddr *plugin_ec_sockaddr(const char *text, int with_port)
{
    char host[INET6_ADDRSTRLEN + 2];
    unsigned long port = 0;
    const char *p = text;
    size_t n;
    if (*p == '[') {
        const char *end = strchr(p, ']');
        if (!end || (size_t)(end - p - 1) >= sizeof(host))
            return NULL;
        n = (size_t)(end - p - 1);
        memcpy(host, p + 1, n);
        p = end + 1;
    } else {
        const char *colon = with_port ? strrchr(p, ':') : NULL;
        n = colon ? (size_t)(colon - p) : strlen(p);
        if (n >= sizeof(host))
            return NULL;
        memcpy(host, p, n);
        p += n;
    }
    host[n] = '\0';
    if (with_port) {
        char *end;
        if (*p != ':' || !isdigit((unsigned char)p[1]))
            return NULL;
        port = strtoul(p + 1, &end, 10);
        if (*end || port > 65535)
            return NULL;
    } else if (*p) {
        return NULL;
    }
    struct sockaddr_storage *ss = calloc(1, sizeof(*ss));
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (ss && inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
    } else if (ss && inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
    } else {
        free(ss);
        return NULL;
    }
    return (struct sockaddr *)ss;
}

/* `text` as a value of `type` into *s; -1 when it is not one. */
static int plugin_ec_parse_text(ec_config_item_type_t type, const char *text,
                                ec_config_value_storage *s)
{
    char *end = NULL;
    errno = 0;
    switch (type) {
    case ECCFGTYPE_STRING: {
        size_t n = strlen(text);
        if (n >= 2 && text[0] == '"' && text[n - 1] == '"') /* Momentum's quoted defaults */
            s->vstr = strndup(text + 1, n - 2);
        else
            s->vstr = strdup(text);
        return s->vstr ? 0 : -1;
    }
    case ECCFGTYPE_INT: {
        long x = strtol(text, &end, 0);
        if (!*text || *end || errno || x < INT_MIN || x > INT_MAX)
            return -1;
        s->vint = (int)x;
        return 0;
    }
    case ECCFGTYPE_UINT64:
    case ECCFGTYPE_SIZE_T: {
        if (!isdigit((unsigned char)*text))
            return -1;
        unsigned long long x = strtoull(text, &end, 0);
        if (*end || errno)
            return -1;
        if (type == ECCFGTYPE_UINT64)
            s->vu64 = x;
        else
            s->vsize = (size_t)x;
        return 0;
    }
    case ECCFGTYPE_PERMS: {
        long x = strtol(text, &end, 8);
        if (!*text || *end || errno || x < 0 || x > 07777)
            return -1;
        s->vint = (int)x;
        return 0;
    }
    case ECCFGTYPE_BOOL: {
        static const char *const yes[] = {"true", "yes", "on", "1"};
        static const char *const no[] = {"false", "no", "off", "0"};
        for (size_t i = 0; i < 4; i++) {
            if (strcasecmp(text, yes[i]) == 0 || strcasecmp(text, no[i]) == 0) {
                s->vint = strcasecmp(text, yes[i]) == 0;
                return 0;
            }
        }
        return -1;
    }
    case ECCFGTYPE_FLOAT:
        s->vdouble = strtod(text, &end);
        return !*text || *end || errno ? -1 : 0;
    case ECCFGTYPE_SOCKADDR:
    case ECCFGTYPE_SOCKADDR_PORTLESS:
        s->vsa = plugin_ec_sockaddr(text, type == ECCFGTYPE_SOCKADDR);
        return s->vsa ? 0 : -1;
    case ECCFGTYPE_ECDICT:
        if (*text && strcmp(text, "[]") != 0)
            return -1;
        s->vdict = dict_blank();
        return s->vdict ? 0 : -1;
    default:
        return -1;
    }
}

/* A JSON scalar as the text Momentum's config would hold. */
static int plugin_ec_json_text(const json_t *j, char *buf, size_t size)
{
    if (json_is_string(j))
        snprintf(buf, size, "%s", json_string_value(j));
    else if (json_is_integer(j))
        snprintf(buf, size, "%lld", (long long)json_integer_value(j));
    else if (json_is_real(j))
        snprintf(buf, size, "%.17g", json_real_value(j));
    else if (json_is_boolean(j))
        snprintf(buf, size, "%s", json_is_true(j) ? "true" : "false");
    else
        return -1;
    return 0;
}

/* A mapped symbol (def->map) stands for its value. */
static const char *plugin_ec_mapped(const ec_config_option_def *def, const char *text)
{
    for (const struct ec_config_value_mapping *m = def->map; m && m->name; m++)
        if (strcasecmp(m->name, text) == 0)
            return m->value;
    return text;
}

static int plugin_ec_parse_json(const ec_config_option_def *def, const json_t *j,
                                ec_config_value_storage *s)
{
    char text[1024];
    if (def->type == ECCFGTYPE_ECDICT) {
        const char *key;
        json_t *v;
        if (!json_is_object(j) || !(s->vdict = dict_blank()))
            return -1;
        json_object_foreach((json_t *)j, key, v) {
            if (plugin_ec_json_text(v, text, sizeof(text)) != 0)
                return -1;
            dict_add_key_value(s->vdict, key, text);
        }
        return 0;
    }
    if (def->type == ECCFGTYPE_STRING && !json_is_string(j))
        return -1;
    if (def->type == ECCFGTYPE_INT && json_is_real(j))
        return -1;
    if (plugin_ec_json_text(j, text, sizeof(text)) != 0)
        return -1;
    return plugin_ec_parse_text(def->type, plugin_ec_mapped(def, text), s);
}

/* The value of `def` the JSON `j` holds: one, or a list (IS_ARRAY). NULL
 * with *why when it is not one. */
static ec_config_value *plugin_ec_value_from_json(ec_config_option_def *def, const json_t *j,
                                                  const char **why)
{
    ec_config_value *v = plugin_ec_value_new(def);
    *why = plugin_ec_type_words(def->type);
    if (!v)
        return NULL;
    if (!(def->flags & EC_CFG_OPT_IS_ARRAY)) {
        if (plugin_ec_parse_json(def, j, v->v) == 0)
            return v;
        plugin_ec_value_free(v);
        return NULL;
    }
    ec_ptr_array *a = calloc(1, sizeof(*a));
    size_t n = json_is_array(j) ? json_array_size(j) : 0;
    v->v->varr = a;
    if (!a || !json_is_array(j) || !(a->items = calloc(n ? n : 1, sizeof(void *)))) {
        *why = "a list";
        plugin_ec_value_free(v);
        return NULL;
    }
    a->sizeof_ec_ptr_array = sizeof(*a);
    a->allocd = (int)n;
    for (size_t i = 0; i < n; i++) {
        ec_config_value_storage *s = calloc(1, sizeof(*s));
        if (!s)
            break;
        a->items[a->size++] = s;
        if (plugin_ec_parse_json(def, json_array_get(j, i), s) != 0) {
            plugin_ec_value_free(v);
            return NULL;
        }
    }
    return v;
}

/* ---- registration ---- */

void plugin_ec_config_setup(struct plugin_ec_module *mod)
{
    plugin_ec_registering = mod;
}

void plugin_ec_config_forget(const struct plugin_ec_module *mod)
{
    for (int i = 0; i < PLUGIN_EC_OPTIONS_MAX; i++) {
        struct plugin_ec_option *o = &plugin_ec_options[i];
        if (o->def && o->module == mod) {
            ec_config_release_value(o->dflt);
            memset(o, 0, sizeof(*o));
        }
    }
}

/* One element of a fallback chain: a scope kind, -1 for one vipmta does
 * not have, -2 for nonsense. */
static int plugin_ec_scope_of(const char *elem, size_t n)
{
    static const struct {
        const char *name;
        int kind;
    } names[] = {{"Global", VIPMTA_SCOPE_GLOBAL},
                 {"Binding", VIPMTA_SCOPE_BINDING},
                 {"Domain", VIPMTA_SCOPE_DOMAIN},
                 {"Binding:Domain", VIPMTA_SCOPE_BINDING_DOMAIN}};
    if (n >= 2 && elem[0] == '[' && elem[n - 1] == ']')
        return VIPMTA_SCOPE_GLOBAL; /* the module's own scope */
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i].name) == n && strncasecmp(elem, names[i].name, n) == 0)
            return names[i].kind;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)elem[i]) && elem[i] != '_' && elem[i] != ':')
            return -2;
    return memchr(elem, ':', n) ? -1 : VIPMTA_SCOPE_GLOBAL; /* a bare word: the module's name */
}

/* Fills o->chain and o->scopes from the definition's fallback. */
static int plugin_ec_parse_fallback(struct plugin_ec_option *o, const char *label)
{
    const char *f = o->def->fallback;
    if (!f || !*f) {
        o->chain[o->chain_len++] = VIPMTA_SCOPE_GLOBAL;
        o->scopes = 1u << VIPMTA_SCOPE_GLOBAL;
        return 0;
    }
    while (*f) {
        const char *end = strchr(f, '>');
        size_t n = end ? (size_t)(end - f) : strlen(f);
        int kind = plugin_ec_scope_of(f, n);
        if (kind == -2 || n == 0)
            return -1;
        if (kind == -1)
            log_write(label, VIPMTA_LOG_WARNING, "option \"%s\": fallback \"%s\": the scope "
                      "\"%.*s\" does not exist in vipmta (Global, Binding, Domain, "
                      "Binding:Domain and the module's own do): it is skipped",
                      o->def->name, o->def->fallback, (int)n, f);
        else if (o->chain_len < PLUGIN_EC_CHAIN_MAX && !(o->scopes & (1u << kind))) {
            o->chain[o->chain_len++] = (enum vipmta_scope_kind)kind;
            o->scopes |= 1u << kind;
        }
        f = end ? end + 1 : f + n;
    }
    return o->chain_len ? 0 : -1;
}

static int plugin_ec_type_supported(ec_config_item_type_t t)
{
    switch (t) {
    case ECCFGTYPE_STRING: case ECCFGTYPE_INT: case ECCFGTYPE_UINT64: case ECCFGTYPE_PERMS:
    case ECCFGTYPE_BOOL: case ECCFGTYPE_FLOAT: case ECCFGTYPE_SOCKADDR: case ECCFGTYPE_ECDICT:
    case ECCFGTYPE_SIZE_T: case ECCFGTYPE_SOCKADDR_PORTLESS:
        return 1;
    default:
        return 0;
    }
}

static int plugin_ec_name_ok(const char *name)
{
    if (!name || !*name)
        return 0;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            return 0;
    return 1;
}

int ec_config_register_option(ec_config_option_def *option)
{
    struct vipmta_module_ctx *m = plugin_momentum_current();
    const char *label = m ? m->label : "core";
    int free_slot = -1;

    if (!plugin_ec_registering || !m || !option) {
        log_write(label, VIPMTA_LOG_ERROR, "ec_config_register_option(%s): refused: options are "
                  "registered from conf_setup", option && option->name ? option->name : "NULL");
        return -1;
    }
    for (int i = 0; i < PLUGIN_EC_OPTIONS_MAX; i++) {
        const struct plugin_ec_option *o = &plugin_ec_options[i];
        if (o->def == option && o->module == plugin_ec_registering)
            return i; /* the same definition again */
        if (o->def && o->module == plugin_ec_registering && option->name &&
            strcasecmp(o->def->name, option->name) == 0) {
            vipmta_module_error(m, NULL, "ec_config_register_option: option \"%s\" is "
                                "registered twice", option->name);
            return -1;
        }
        if (!o->def && free_slot < 0)
            free_slot = i;
    }
    if (!plugin_ec_name_ok(option->name) || !plugin_ec_type_supported(option->type) ||
        free_slot < 0) {
        vipmta_module_error(m, NULL, "ec_config_register_option: option \"%s\": %s",
                            option->name ? option->name : "(no name)",
                            free_slot < 0 ? "too many options"
                            : !plugin_ec_name_ok(option->name)
                                ? "a name is letters, digits and '_'"
                                : "vipmta cannot read options of this type (ECCFGTYPE_ "
                                  "value %d) from its config");
        return -1;
    }
    struct plugin_ec_option *o = &plugin_ec_options[free_slot];
    memset(o, 0, sizeof(*o));
    o->def = option;
    o->module = plugin_ec_registering;
    if (plugin_ec_parse_fallback(o, label) != 0) {
        vipmta_module_error(m, NULL, "ec_config_register_option: option \"%s\": fallback \"%s\" "
                            "is not a chain of scopes such as \"Binding:Domain>Domain>Global\"",
                            option->name, option->fallback);
        memset(o, 0, sizeof(*o));
        return -1;
    }
    o->dflt = plugin_ec_value_new(option);
    if (o->dflt && option->defval &&
        (option->flags & EC_CFG_OPT_IS_ARRAY ? 0
                                             : plugin_ec_parse_text(option->type,
                                                                    plugin_ec_mapped(option,
                                                                                     option->defval),
                                                                    o->dflt->v)) != 0) {
        vipmta_module_error(m, NULL, "ec_config_register_option: option \"%s\": its default "
                            "\"%s\" is not %s", option->name, option->defval,
                            plugin_ec_type_words(option->type));
        ec_config_release_value(o->dflt);
        memset(o, 0, sizeof(*o));
        return -1;
    }
    if (!o->dflt) {
        memset(o, 0, sizeof(*o));
        return -1;
    }
    return free_slot;
}

static const struct plugin_ec_option *plugin_ec_option(int slot)
{
    if (slot < 0 || slot >= PLUGIN_EC_OPTIONS_MAX || !plugin_ec_options[slot].def)
        return NULL;
    return &plugin_ec_options[slot];
}

ec_config_value *ec_config_null_value(int option_slot)
{
    const struct plugin_ec_option *o = plugin_ec_option(option_slot);
    return o ? plugin_ec_value_new(o->def) : NULL;
}

/* ---- an instance's values ---- */

static int plugin_ec_find(const struct plugin_ec_module *mod, const char *name)
{
    for (int i = 0; i < PLUGIN_EC_OPTIONS_MAX; i++)
        if (plugin_ec_options[i].def && plugin_ec_options[i].module == mod &&
            strcasecmp(plugin_ec_options[i].def->name, name) == 0)
            return i;
    return -1;
}

/* "names of the options it registered" for the unknown-key message. */
static void plugin_ec_known(const struct plugin_ec_module *mod, enum vipmta_scope_kind kind,
                            char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < PLUGIN_EC_OPTIONS_MAX && used < size; i++) {
        const struct plugin_ec_option *o = &plugin_ec_options[i];
        if (o->def && o->module == mod && (o->scopes & (1u << kind)))
            used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? ", " : "",
                                     o->def->name);
    }
    if (!buf[0])
        snprintf(buf, size, "none");
}

static void plugin_ec_scopes_words(unsigned scopes, char *buf, size_t size)
{
    size_t used = 0;
    for (int k = 0; k < 4 && used < size; k++)
        if (scopes & (1u << k))
            used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? ", " : "",
                                     plugin_ec_scope_words[k]);
}

static int plugin_ec_add(struct plugin_ec_values *vals, int slot, const vipmta_scope *s,
                         ec_config_value *v)
{
    if (vals->count == vals->capacity) {
        size_t cap = vals->capacity ? vals->capacity * 2 : 8;
        struct plugin_ec_set *grown = realloc(vals->sets, cap * sizeof(*grown));
        if (!grown)
            return -1;
        vals->sets = grown;
        vals->capacity = cap;
    }
    struct plugin_ec_set *e = &vals->sets[vals->count];
    memset(e, 0, sizeof(*e));
    e->slot = slot;
    e->kind = s->kind;
    e->binding = s->slot;
    if (s->domain && !(e->domain = strdup(s->domain)))
        return -1;
    e->value = v;
    vals->count++;
    return 0;
}

/* The module's check of a value (validate_value), then postset. */
static int plugin_ec_accept(struct vipmta_module_ctx *m, const char *key,
                            ec_config_option_def *def, ec_config_value *v)
{
    string out = {0};
    int ok = 1;
    if (def->validate_value) {
        ok = def->validate_value(def, &out, NULL, v);
        if (!ok)
            vipmta_module_error(m, key, "%s",
                                out.buffer && *out.buffer ? out.buffer
                                                          : "refused by the module's check");
    }
    if (ok && def->postset)
        def->postset(def, &out, NULL, v);
    free(out.buffer);
    return ok ? 0 : -1;
}

struct plugin_ec_read {
    const struct plugin_ec_module *mod;
    struct plugin_ec_values *vals;
};

static int plugin_ec_read_scope(vipmta_module_ctx *m, const vipmta_scope *s, void *arg)
{
    struct plugin_ec_read *r = arg;
    void *it = NULL;
    const char *key;
    const vipmta_value *value;
    int errors = 0;
    while (vipmta_value_next(s->options, &it, &key, &value)) {
        int slot = plugin_ec_find(r->mod, key);
        const struct plugin_ec_option *o = plugin_ec_option(slot);
        char words[256];
        if (!o || !(o->scopes & (1u << s->kind))) {
            plugin_ec_known(r->mod, s->kind, words, sizeof(words));
            if (!o)
                vipmta_module_error(m, NULL, "unknown key \"%s\" (allowed: %s)", key, words);
            else {
                char allowed[128] = "";
                plugin_ec_scopes_words(o->scopes, allowed, sizeof(allowed));
                vipmta_module_error(m, key, "cannot be set in \"%s\" (its fallback \"%s\" "
                                    "allows: %s)", plugin_ec_scope_words[s->kind],
                                    o->def->fallback ? o->def->fallback : "", allowed);
            }
            errors++;
            continue;
        }
        const char *why;
        ec_config_value *v = plugin_ec_value_from_json(o->def, (const json_t *)value, &why);
        if (!v) {
            vipmta_module_error(m, key, "must be %s%s, not %s", why,
                                (o->def->flags & EC_CFG_OPT_IS_ARRAY) ? " (a list of them)" : "",
                                vipmta_value_describe(value));
            errors++;
            continue;
        }
        if (plugin_ec_accept(m, key, o->def, v) != 0 || plugin_ec_add(r->vals, slot, s, v) != 0) {
            ec_config_release_value(v);
            errors++;
        }
    }
    return errors;
}

struct plugin_ec_values *plugin_ec_config_read(struct vipmta_module_ctx *m,
                                               const struct plugin_entry *e)
{
    struct plugin_ec_read r = {plugin_momentum_module_of(m), calloc(1, sizeof(*r.vals))};
    if (!r.vals) {
        vipmta_module_error(m, NULL, "out of memory");
        return NULL;
    }
    struct plugin_entry kept = m->entry;
    m->entry = *e; /* the walk reads m's entry: the one being read */
    int errors = vipmta_module_foreach_scope(m, plugin_ec_read_scope, &r);
    m->entry = kept;
    if (errors != 0) {
        plugin_ec_config_values_free(r.vals);
        return NULL;
    }
    return r.vals;
}

void plugin_ec_config_values_free(struct plugin_ec_values *v)
{
    struct plugin_ec_set *e = v ? v->sets : NULL, *end = v ? v->sets + v->count : NULL;
    for (; e < end; e++) {
        free(e->domain);
        ec_config_release_value(e->value);
    }
    if (v)
        free(v->sets);
    free(v);
}

/* ---- fetches ---- */

/* The instance a fetch reads: the header's, the one whose callback runs, or
 * the module's first. */
static const struct plugin_ec_values *plugin_ec_values_for(ec_config_header *transaction,
                                                           const struct plugin_ec_option *o,
                                                           generic_module_infrastructure *self)
{
    struct vipmta_module_ctx *m = NULL;
    if (self && self->shared._inst)
        m = self->shared._inst->ctx;
    if (!m && transaction)
        m = transaction->ctx;
    if (!m || plugin_momentum_module_of(m) != o->module) {
        struct vipmta_module_ctx *cur = plugin_momentum_current();
        m = cur && plugin_momentum_module_of(cur) == o->module
                ? cur
                : plugin_momentum_first_instance(o->module);
    }
    return m ? plugin_momentum_values_of(m) : NULL;
}

/* The most specific value set along the option's chain for (binding,
 * domain) (either may be absent), else its default. */
static ec_config_value *plugin_ec_fetch(ec_config_header *transaction, int slot,
                                        generic_module_infrastructure *self, int have_binding,
                                        int binding, const char *domain)
{
    const struct plugin_ec_option *o = plugin_ec_option(slot);
    if (!o)
        return NULL;
    const struct plugin_ec_values *vals = plugin_ec_values_for(transaction, o, self);
    for (int c = 0; vals && c < o->chain_len; c++) {
        enum vipmta_scope_kind kind = o->chain[c];
        int needs_binding = kind == VIPMTA_SCOPE_BINDING || kind == VIPMTA_SCOPE_BINDING_DOMAIN;
        int needs_domain = kind == VIPMTA_SCOPE_DOMAIN || kind == VIPMTA_SCOPE_BINDING_DOMAIN;
        if ((needs_binding && !have_binding) || (needs_domain && !domain))
            continue;
        for (size_t i = 0; i < vals->count; i++) {
            const struct plugin_ec_set *e = &vals->sets[i];
            if (e->slot != slot || e->kind != kind || (needs_binding && e->binding != binding) ||
                (needs_domain && strcasecmp(e->domain, domain) != 0))
                continue;
            return plugin_ec_value_ref(e->value);
        }
    }
    return plugin_ec_value_ref(o->dflt);
}

ec_config_value *ec_config_option_fetch(ec_config_header *transaction, int option_slot,
                                        ec_config_header *from)
{
    (void)from;
    return plugin_ec_fetch(transaction, option_slot, NULL, 0, 0, NULL);
}

ec_config_value *ec_config_option_fetch_module(ec_config_header *transaction, int option_slot,
                                               generic_module_infrastructure *self)
{
    return plugin_ec_fetch(transaction, option_slot, self, 0, 0, NULL);
}

ec_config_value *ec_config_option_fetch_module_at_init(ec_config_header *transaction,
                                                       int option_slot,
                                                       generic_module_infrastructure *self)
{
    return plugin_ec_fetch(transaction, option_slot, self, 0, 0, NULL);
}

ec_config_value *ec_config_option_fetch_binding(ec_config_header *transaction, int option_slot,
                                                ec_config_header *from, int binding)
{
    (void)from;
    return plugin_ec_fetch(transaction, option_slot, NULL, 1, binding, NULL);
}

ec_config_value *ec_config_option_fetch_domain(ec_config_header *transaction, int option_slot,
                                               ec_config_header *from, const char *domain)
{
    (void)from;
    return plugin_ec_fetch(transaction, option_slot, NULL, 0, 0, domain);
}

ec_config_value *ec_config_option_fetch_binding_domain(ec_config_header *transaction,
                                                       int option_slot, ec_config_header *from,
                                                       int binding, const char *domain)
{
    (void)from;
    return plugin_ec_fetch(transaction, option_slot, NULL, 1, binding, domain);
}

/* The configuration "in force" as a header naming no instance. */
static ec_config_header plugin_ec_global_header;

ec_config_header *ec_config_fetch_globalconf(void)
{
    return &plugin_ec_global_header;
}

void ec_config_release_scope_instance(void *tofree)
{
    (void)tofree;
}
