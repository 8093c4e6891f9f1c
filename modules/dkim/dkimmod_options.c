/* dkimmod_options.c: the dkim module's options (keys, fallback domain, canonicalization, header lists, expiry, workers, error handling) per scope: global, binding group, binding; and their resolution per message. */
#include "dkimmod.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

const char *const dkimmod_default_headers[] = {
    "From", "Reply-To", "Subject", "Date", "To", "Cc", "Message-ID", "In-Reply-To",
    "References", "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
    "Content-Disposition", "Content-ID", "Content-Description", "Sender",
    "Resent-Date", "Resent-From", "Resent-Sender", "Resent-To", "Resent-Cc",
    "Resent-Message-ID", "List-Id", "List-Help", "List-Unsubscribe",
    "List-Unsubscribe-Post", "List-Subscribe", "List-Post", "List-Owner", "List-Archive",
    "Feedback-ID", NULL};
const char *const dkimmod_default_oversign[] = {"From", "To", "Subject", "Date", NULL};

/* Options every scope may set, then those of the global options only. */
#define PROFILE_KEYS "sign", "keys", "fallback_domain", "canonicalization", "on_error"
static const char *const profile_keys[] = {PROFILE_KEYS, NULL};
static const char *const global_keys[] = {PROFILE_KEYS,     "headers", "oversign", "expire",
                                          "workers", "binding_groups", NULL};
static const char *const key_keys[] = {"domain", "selector", "file", "algorithm", NULL};
static const char *const canon_choices[] = {"relaxed/relaxed", "relaxed/simple",
                                            "simple/relaxed", "simple/simple", NULL};
static const char *const on_error_choices[] = {"accept", "defer", NULL};
static const char *const alg_choices[] = {"rsa-sha256", "ed25519-sha256", NULL};

static char *lower_dup(const char *s)
{
    char *d = strdup(s);
    for (char *p = d; p && *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return d;
}

/* A domain name: labels of letters, digits, '-' and '_', dot-separated. */
static int domain_valid(const char *d)
{
    size_t n = strlen(d), label = 0;
    if (n == 0 || n > DKIMMOD_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if (isalnum(c) || c == '-' || c == '_') {
            if (++label > 63)
                return 0;
        } else
            return 0;
    }
    return label > 0;
}

/* A selector: like a domain name (it may hold dots), at most 63 per label. */
static int selector_valid(const char *s)
{
    return domain_valid(s) && strlen(s) <= 2 * DKIMMOD_SELECTOR_MAX;
}

/* A header field name the module can hand libopendkim: letters, digits, '-', '_'. */
static int header_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > DKIMMOD_HEADER_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
            return 0;
    return 1;
}

static void profile_init(struct dkimmod_profile *p)
{
    memset(p, 0, sizeof(*p));
    p->sign = p->canon_header = p->canon_body = p->on_error = -1;
}

static void profile_clear(struct dkimmod_profile *p)
{
    for (size_t i = 0; i < p->nkeys; i++)
        dkimmod_key_clear(&p->keys[i]);
    free(p->keys);
    free(p->fallback_domain);
    profile_init(p);
}

static int parse_key(vipmta_module_ctx *m, const vipmta_value *v, const char *path,
                     struct dkimmod_key *key)
{
    char sub[VIPMTA_OPTION_PATH_MAX];
    if (vipmta_option_object(m, v, path,
                             "an object with \"domain\", \"selector\" and \"file\"") != 0)
        return 1;
    int errors = vipmta_module_check_keys(m, v, path, key_keys);
    const char *domain = NULL, *selector = NULL, *file = NULL;
    int alg = -1;
    int r = vipmta_option_string(m, v, path, "domain", "the signing domain (d=)", &domain);
    errors += r < 0;
    if (r == 0) {
        vipmta_module_error(m, vipmta_option_path(sub, sizeof(sub), path, "domain"),
                            "missing: give the signing domain (d=) the key signs for");
        errors++;
    } else if (r > 0 && !domain_valid(domain)) {
        vipmta_module_error(m, vipmta_option_path(sub, sizeof(sub), path, "domain"),
                            "must be a domain name, not \"%s\"", domain);
        errors++;
        domain = NULL;
    }
    r = vipmta_option_string(m, v, path, "selector", "the selector (s=)", &selector);
    errors += r < 0;
    if (r == 0) {
        vipmta_module_error(m, vipmta_option_path(sub, sizeof(sub), path, "selector"),
                            "missing: give the selector (s=) its public key is published "
                            "under (SELECTOR._domainkey.DOMAIN)");
        errors++;
    } else if (r > 0 && !selector_valid(selector)) {
        vipmta_module_error(m, vipmta_option_path(sub, sizeof(sub), path, "selector"),
                            "must be a selector (letters, digits, '-', '_', dot-separated "
                            "labels), not \"%s\"", selector);
        errors++;
        selector = NULL;
    }
    r = vipmta_option_string(m, v, path, "file", "the path of the PEM private key", &file);
    errors += r < 0;
    if (r == 0) {
        vipmta_module_error(m, vipmta_option_path(sub, sizeof(sub), path, "file"),
                            "missing: give the path of the PEM private key");
        errors++;
    } else if (r > 0 && file[0] != '/') {
        vipmta_module_error(m, vipmta_option_path(sub, sizeof(sub), path, "file"),
                            "must be an absolute path, not \"%s\"", file);
        errors++;
        file = NULL;
    }
    errors += vipmta_option_choice(m, v, path, "algorithm", alg_choices, &alg) < 0;
    if (errors || !domain || !selector || !file)
        return errors ? errors : 1;
    key->domain = lower_dup(domain);
    key->selector = strdup(selector);
    key->file = strdup(file);
    if (!key->domain || !key->selector || !key->file) {
        vipmta_module_error(m, path, "out of memory");
        return 1;
    }
    char err[512];
    if (dkimmod_key_load(key, file, err, sizeof(err)) != 0) {
        vipmta_module_error(m, vipmta_option_path(sub, sizeof(sub), path, "file"), "%s: %s",
                            file, err);
        return 1;
    }
    if (alg >= 0 && (enum dkimmod_alg)alg != key->alg) {
        vipmta_module_error(m, vipmta_option_path(sub, sizeof(sub), path, "algorithm"),
                            "is \"%s\" but %s holds an %s key: fix the algorithm or name the "
                            "right file", alg_choices[alg], file,
                            key->alg == DKIMMOD_ALG_RSA ? "RSA" : "Ed25519");
        return 1;
    }
    return 0;
}

static int parse_keys(vipmta_module_ctx *m, const vipmta_value *obj, const char *path,
                      struct dkimmod_profile *p)
{
    char kpath[VIPMTA_OPTION_PATH_MAX], ipath[VIPMTA_OPTION_PATH_MAX];
    const vipmta_value *keys = vipmta_value_get(obj, "keys");
    if (!keys)
        return 0;
    vipmta_option_path(kpath, sizeof(kpath), path, "keys");
    if (vipmta_option_array(m, keys, kpath, "a list of keys") != 0)
        return 1;
    size_t n = vipmta_value_size(keys);
    p->keys = calloc(n ? n : 1, sizeof(*p->keys));
    if (!p->keys) {
        vipmta_module_error(m, kpath, "out of memory");
        return 1;
    }
    int errors = 0;
    for (size_t i = 0; i < n; i++) {
        vipmta_option_path_index(ipath, sizeof(ipath), kpath, i);
        struct dkimmod_key *k = &p->keys[p->nkeys];
        if (parse_key(m, vipmta_value_at(keys, i), ipath, k) != 0) {
            dkimmod_key_clear(k);
            errors++;
            continue;
        }
        for (size_t j = 0; j < p->nkeys; j++) {
            if (p->keys[j].alg == k->alg && strcmp(p->keys[j].domain, k->domain) == 0) {
                vipmta_module_error(m, ipath,
                                    "a second %s key for %s (selector \"%s\"; the first has "
                                    "\"%s\"): one key per algorithm and domain signs (list "
                                    "one RSA and one Ed25519 key to sign twice; see selector "
                                    "rotation in docs/modules/dkim.md)",
                                    dkimmod_alg_key_type(k->alg) , k->domain, k->selector,
                                    p->keys[j].selector);
                dkimmod_key_clear(k);
                errors++;
                break;
            }
        }
        if (k->domain)
            p->nkeys++;
    }
    return errors;
}

static const struct dkimmod_key *profile_key(const struct dkimmod_profile *p, const char *domain)
{
    for (size_t i = 0; i < p->nkeys; i++)
        if (strcmp(p->keys[i].domain, domain) == 0)
            return &p->keys[i];
    return NULL;
}

/* The options every scope may set, into p. `global` (may be NULL, or p
 * itself) is where a fallback domain's key may also be. */
static int parse_profile(vipmta_module_ctx *m, const vipmta_value *obj, const char *path,
                         struct dkimmod_profile *p, const struct dkimmod_profile *global)
{
    char sub[VIPMTA_OPTION_PATH_MAX];
    int errors = 0, r, i;
    errors += vipmta_option_bool(m, obj, path, "sign", &p->sign) < 0;
    errors += parse_keys(m, obj, path, p);
    r = vipmta_option_choice(m, obj, path, "canonicalization", canon_choices, &i);
    errors += r < 0;
    if (r > 0) {
        p->canon_header = i < 2 ? DKIMMOD_CANON_RELAXED : DKIMMOD_CANON_SIMPLE;
        p->canon_body = i % 2 == 0 ? DKIMMOD_CANON_RELAXED : DKIMMOD_CANON_SIMPLE;
    }
    r = vipmta_option_choice(m, obj, path, "on_error", on_error_choices, &i);
    errors += r < 0;
    if (r > 0)
        p->on_error = i;
    const vipmta_value *fb = vipmta_value_get(obj, "fallback_domain");
    if (fb && vipmta_value_type(fb) == VIPMTA_VALUE_NULL) {
        p->fallback_domain = strdup(""); /* none here, whatever a wider scope says */
    } else {
        const char *d;
        r = vipmta_option_string(m, obj, path, "fallback_domain",
                                 "a signing domain that has a key, or null", &d);
        errors += r < 0;
        vipmta_option_path(sub, sizeof(sub), path, "fallback_domain");
        if (r > 0 && !domain_valid(d)) {
            vipmta_module_error(m, sub, "must be a domain name, not \"%s\"", d);
            errors++;
        } else if (r > 0) {
            p->fallback_domain = lower_dup(d);
            if (p->fallback_domain && !profile_key(p, p->fallback_domain) &&
                !(global && profile_key(global, p->fallback_domain))) {
                vipmta_module_error(m, sub,
                                    "no key for \"%s\" here%s: add one to keys (the "
                                    "fallback domain signs for senders without a key)",
                                    p->fallback_domain, global && global != p
                                                            ? " or in the global options"
                                                            : "");
                errors++;
            }
        }
    }
    return errors;
}

static int parse_header_list(vipmta_module_ctx *m, const vipmta_value *obj, const char *key,
                             const char *const *defaults, char ***out)
{
    char path[VIPMTA_OPTION_PATH_MAX];
    const vipmta_value *list = vipmta_value_get(obj, key);
    size_t n = 0;
    if (list) {
        if (vipmta_option_array(m, list, key, "a list of header field names") != 0)
            return 1;
        n = vipmta_value_size(list);
    } else {
        while (defaults[n])
            n++;
    }
    if (n > DKIMMOD_HEADERS_MAX) {
        vipmta_module_error(m, key, "lists %zu names: at most %d", n, DKIMMOD_HEADERS_MAX);
        return 1;
    }
    *out = calloc(n + 1, sizeof(char *));
    if (!*out) {
        vipmta_module_error(m, key, "out of memory");
        return 1;
    }
    int errors = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = defaults[i];
        if (list) {
            const vipmta_value *v = vipmta_value_at(list, i);
            vipmta_option_path_index(path, sizeof(path), key, i);
            if (vipmta_option_string(m, v, path, NULL, "a header field name", &name) < 0) {
                errors++;
                continue;
            }
            if (!header_name_valid(name)) {
                vipmta_module_error(m, path, "must be a header field name (letters, digits, "
                                    "'-', '_'; up to %d), not \"%s\"",
                                    DKIMMOD_HEADER_NAME_MAX, name);
                errors++;
                continue;
            }
            if (strcasecmp(name, "DKIM-Signature") == 0 || strcasecmp(name, "Received") == 0 ||
                strcasecmp(name, "Return-Path") == 0) {
                vipmta_module_error(m, path, "\"%s\" must not be signed: hops on the way add "
                                    "or change it, which would break the signature", name);
                errors++;
                continue;
            }
        }
        (*out)[i] = strdup(name);
    }
    if (!errors && list && strcmp(key, "headers") == 0) {
        int from = 0;
        for (size_t i = 0; i < n; i++)
            from |= (*out)[i] && strcasecmp((*out)[i], "From") == 0;
        if (!from) {
            vipmta_module_error(m, key, "must include \"From\" (RFC 6376 requires it signed)");
            errors++;
        }
    }
    return errors;
}

struct parse_ctx {
    struct dkimmod_config *cfg;
    const vipmta_value *groups;
};

static int parse_groups(vipmta_module_ctx *m, const vipmta_value *groups,
                        struct dkimmod_config *cfg)
{
    char path[VIPMTA_OPTION_PATH_MAX];
    if (vipmta_option_object(m, groups, "binding_groups",
                             "an object of binding group names to options") != 0)
        return 1;
    size_t n = 0;
    void *it = NULL;
    const char *name;
    const vipmta_value *v;
    while (vipmta_value_next(groups, &it, &name, &v))
        n++;
    cfg->groups = calloc(n ? n : 1, sizeof(*cfg->groups));
    if (!cfg->groups)
        return 1;
    int errors = 0;
    it = NULL;
    while (vipmta_value_next(groups, &it, &name, &v)) {
        vipmta_option_path(path, sizeof(path), "binding_groups", name);
        if (vipmta_option_object(m, v, path, "an object of options") != 0) {
            errors++;
            continue;
        }
        errors += vipmta_module_check_keys(m, v, path, profile_keys);
        struct dkimmod_group_profile *g = &cfg->groups[cfg->ngroups++];
        profile_init(&g->profile);
        g->name = strdup(name);
        errors += parse_profile(m, v, path, &g->profile, &cfg->global);
        int known = 0;
        for (int s = 0; s < vipmta_binding_count(); s++) {
            const vipmta_binding *b = vipmta_binding_by_slot(s);
            known |= b && b->group && strcmp(b->group, name) == 0;
        }
        if (!known)
            vipmta_module_log(m, VIPMTA_LOG_WARNING,
                              "binding_groups.%s: no binding has it as its first group: check "
                              "the name against the configuration's binding_groups", name);
    }
    return errors;
}

static int parse_global(vipmta_module_ctx *m, const vipmta_value *o, struct dkimmod_config *cfg)
{
    int errors = vipmta_module_check_keys(m, o, NULL, global_keys);
    errors += parse_profile(m, o, NULL, &cfg->global, &cfg->global);
    errors += parse_header_list(m, o, "headers", dkimmod_default_headers, &cfg->headers);
    errors += parse_header_list(m, o, "oversign", dkimmod_default_oversign, &cfg->oversign);
    long long x;
    int r = vipmta_option_int(m, o, NULL, "expire", 0, DKIMMOD_EXPIRE_MAX, &x);
    errors += r < 0;
    if (r > 0)
        cfg->expire_s = (unsigned)x;
    r = vipmta_option_int(m, o, NULL, "workers", 1, DKIMMOD_WORKERS_MAX, &x);
    errors += r < 0;
    if (r > 0)
        cfg->workers = (int)x;
    const vipmta_value *groups = vipmta_value_get(o, "binding_groups");
    if (groups)
        errors += parse_groups(m, groups, cfg);
    return errors;
}

static int parse_scope(vipmta_module_ctx *m, const vipmta_scope *scope, void *arg)
{
    struct dkimmod_config *cfg = arg;
    if (scope->kind == VIPMTA_SCOPE_GLOBAL)
        return parse_global(m, scope->options, cfg);
    /* bindings: the descriptor declares no other scope */
    int errors = vipmta_module_check_keys(m, scope->options, NULL, profile_keys);
    struct dkimmod_binding_profile *b = &cfg->bindings[cfg->nbindings++];
    b->slot = scope->slot;
    profile_init(&b->profile);
    errors += parse_profile(m, scope->options, NULL, &b->profile, &cfg->global);
    return errors;
}

static int default_workers(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > DKIMMOD_WORKERS_MAX ? DKIMMOD_WORKERS_MAX : (int)n;
}

struct dkimmod_config *dkimmod_config_parse(vipmta_module_ctx *m)
{
    struct dkimmod_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg)
        return NULL;
    atomic_init(&cfg->refs, 1);
    profile_init(&cfg->global);
    cfg->workers = default_workers();
    cfg->bindings = calloc((size_t)vipmta_binding_count() + 1, sizeof(*cfg->bindings));
    int errors = cfg->bindings ? vipmta_module_foreach_scope(m, parse_scope, cfg) : 1;
    if (errors == 0 && (!cfg->headers || !cfg->oversign))
        errors = 1;
    if (errors == 0) {
        char err[256];
        cfg->lib = dkimmod_lib_new((const char *const *)cfg->headers,
                                   (const char *const *)cfg->oversign, cfg->expire_s, err,
                                   sizeof(err));
        if (!cfg->lib) {
            vipmta_module_error(m, NULL, "%s", err);
            errors = 1;
        }
    }
    if (errors != 0) {
        dkimmod_config_unref(cfg);
        return NULL;
    }
    return cfg;
}

struct dkimmod_config *dkimmod_config_ref(struct dkimmod_config *cfg)
{
    atomic_fetch_add(&cfg->refs, 1);
    return cfg;
}

static void free_list(char **list)
{
    for (size_t i = 0; list && list[i]; i++)
        free(list[i]);
    free(list);
}

void dkimmod_config_unref(void *arg)
{
    struct dkimmod_config *cfg = arg;
    if (!cfg || atomic_fetch_sub(&cfg->refs, 1) != 1)
        return;
    profile_clear(&cfg->global);
    for (size_t i = 0; i < cfg->ngroups; i++) {
        free(cfg->groups[i].name);
        profile_clear(&cfg->groups[i].profile);
    }
    free(cfg->groups);
    for (size_t i = 0; i < cfg->nbindings; i++)
        profile_clear(&cfg->bindings[i].profile);
    free(cfg->bindings);
    free_list(cfg->headers);
    free_list(cfg->oversign);
    dkimmod_lib_free(cfg->lib);
    free(cfg);
}

/* The scopes that apply to (slot, group), narrowest first; returns how many. */
static size_t chain(const struct dkimmod_config *cfg, int slot, const char *group,
                    const struct dkimmod_profile *out[3])
{
    size_t n = 0;
    for (size_t i = 0; i < cfg->nbindings; i++)
        if (cfg->bindings[i].slot == slot) {
            out[n++] = &cfg->bindings[i].profile;
            break;
        }
    for (size_t i = 0; group && i < cfg->ngroups; i++)
        if (strcmp(cfg->groups[i].name, group) == 0) {
            out[n++] = &cfg->groups[i].profile;
            break;
        }
    out[n++] = &cfg->global;
    return n;
}

void dkimmod_config_resolve(const struct dkimmod_config *cfg, int slot, const char *group,
                            struct dkimmod_choice *out)
{
    const struct dkimmod_profile *c[3];
    size_t n = chain(cfg, slot, group, c);
    out->sign = 1;
    out->fallback_domain = NULL;
    out->canon_header = out->canon_body = DKIMMOD_CANON_RELAXED;
    out->on_error = DKIMMOD_ON_ERROR_DEFER;
    int have_sign = 0, have_fb = 0, have_canon = 0, have_err = 0;
    for (size_t i = 0; i < n; i++) {
        const struct dkimmod_profile *p = c[i];
        if (!have_sign && p->sign >= 0) {
            out->sign = p->sign;
            have_sign = 1;
        }
        if (!have_fb && p->fallback_domain) {
            out->fallback_domain = p->fallback_domain[0] ? p->fallback_domain : NULL;
            have_fb = 1;
        }
        if (!have_canon && p->canon_header >= 0) {
            out->canon_header = (enum dkimmod_canon)p->canon_header;
            out->canon_body = (enum dkimmod_canon)p->canon_body;
            have_canon = 1;
        }
        if (!have_err && p->on_error >= 0) {
            out->on_error = (enum dkimmod_on_error)p->on_error;
            have_err = 1;
        }
    }
}

int dkimmod_config_keys(const struct dkimmod_config *cfg, int slot, const char *group,
                        const char *domain, const struct dkimmod_key *keys[DKIMMOD_ALGS])
{
    const struct dkimmod_profile *c[3];
    size_t n = chain(cfg, slot, group, c);
    keys[0] = keys[1] = NULL;
    for (size_t i = 0; i < n; i++) {
        int found = 0;
        for (size_t k = 0; k < c[i]->nkeys; k++)
            if (strcmp(c[i]->keys[k].domain, domain) == 0) {
                keys[c[i]->keys[k].alg] = &c[i]->keys[k];
                found++;
            }
        if (found)
            return found;
    }
    return 0;
}
