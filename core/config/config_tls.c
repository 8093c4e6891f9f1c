/* config_tls.c: the TLS and AUTH keys: the `tls` section, listeners' certificates, outbound policies, route credentials. */
#include "config.h"
#include "config_internal.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

static const char *const tls_versions[] = {"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3", NULL};
static const char *const tls_policy_names[] = {"none", "opportunistic", "required", "verify", NULL};

const char *config_tls_policy_name(enum config_tls_policy policy)
{
    if (policy < CONFIG_TLS_POLICY_NONE || policy > CONFIG_TLS_POLICY_VERIFY)
        return "unset";
    return tls_policy_names[policy];
}

static int config_tls_version_rank(const char *v)
{
    for (int i = 0; v && tls_versions[i]; i++)
        if (strcmp(tls_versions[i], v) == 0)
            return i;
    return -1;
}

/* A file path at obj.key, resolved against the config directory; absent or null: *out stays. */
static void config_tls_path(struct config_ctx *c, const json_t *obj, const char *key,
                            const char *path, char **out)
{
    char *s = NULL;
    char p[CONFIG_PATH_MAX];
    if (config_get_string(c, obj, key, path, &s) != 0 || !s)
        return;
    config_path_key(p, path, key);
    if (!*s) {
        config_error(c, p, "expected a file path, found an empty string");
        free(s);
        return;
    }
    free(*out);
    *out = config_resolve_path(c, s);
    free(s);
}

static void config_tls_version(struct config_ctx *c, const json_t *v, const char *key, char **out)
{
    char p[CONFIG_PATH_MAX];
    if (config_get_string(c, v, key, "tls", out) != 0 || !*out)
        return;
    if (config_tls_version_rank(*out) < 0) {
        config_path_key(p, "tls", key);
        config_error(c, p, "expected one of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3, found \"%s\"", *out);
    }
}

void config_parse_tls(struct config_ctx *c, struct vipmta_config *cfg, const json_t *v)
{
    static const char *const keys[] = {"min_version", "max_version", "ciphers", "ciphersuites",
                                       "ca_file", "session_cache", "session_lifetime",
                                       "credentials_file", "auth_max_failures",
                                       "auth_failure_window", "auth_failure_delay_ms", NULL};
    struct config_tls *t = &cfg->tls;
    t->session_cache = 1000;
    t->session_lifetime = 3600;
    t->auth_max_failures = 5;
    t->auth_failure_window = 600;
    t->auth_failure_delay_ms = 1000;
    if (v && !json_is_object(v) && !json_is_null(v))
        config_error(c, "tls", "expected an object, found %s", config_type_name(v));
    if (v && json_is_object(v)) {
        config_check_keys(c, v, "tls", keys);
        config_tls_version(c, v, "min_version", &t->min_version);
        config_tls_version(c, v, "max_version", &t->max_version);
        config_get_string(c, v, "ciphers", "tls", &t->ciphers);
        config_get_string(c, v, "ciphersuites", "tls", &t->ciphersuites);
        config_tls_path(c, v, "ca_file", "tls", &t->ca_file);
        config_tls_path(c, v, "credentials_file", "tls", &t->credentials_file);
        unsigned long long x;
#define CFG_TLS_UINT(key, min, max)                                 \
    do {                                                            \
        x = t->key;                                                 \
        if (config_get_uint(c, v, #key, "tls", min, max, &x) == 0)  \
            t->key = (unsigned)x;                                   \
    } while (0)
        CFG_TLS_UINT(session_cache, 0, 1000000);
        CFG_TLS_UINT(session_lifetime, 1, 86400);
        CFG_TLS_UINT(auth_max_failures, 1, 1000);
        CFG_TLS_UINT(auth_failure_window, 1, 86400);
        CFG_TLS_UINT(auth_failure_delay_ms, 0, 60000);
#undef CFG_TLS_UINT
    }
    if (!t->min_version)
        t->min_version = strdup("TLSv1.2");
    if (t->min_version && t->max_version &&
        config_tls_version_rank(t->max_version) >= 0 &&
        config_tls_version_rank(t->min_version) > config_tls_version_rank(t->max_version))
        config_error(c, "tls", "min_version %s is newer than max_version %s", t->min_version,
                     t->max_version);
}

static int config_listen_is_loopback(const char *address)
{
    unsigned char a[16];
    if (address && inet_pton(AF_INET, address, a) == 1)
        return a[0] == 127;
    return address && strcmp(address, "::1") == 0;
}

/* "certificates": [{"cert": PATH, "key": PATH}, ...] */
static void config_parse_certificates(struct config_ctx *c, const json_t *v, const char *path,
                                      struct config_listen *l)
{
    static const char *const keys[] = {"cert", "key", NULL};
    char p[CONFIG_PATH_MAX];
    config_path_key(p, path, "certificates");
    if (!json_is_array(v) || json_array_size(v) == 0) {
        config_error(c, p, "expected a non-empty list of {\"cert\": FILE, \"key\": FILE}, found %s",
                     json_is_array(v) ? "an empty list" : config_type_name(v));
        return;
    }
    l->certs = calloc(json_array_size(v), sizeof(*l->certs));
    if (!l->certs) {
        config_error(c, p, "out of memory");
        return;
    }
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item) {
        char q[CONFIG_PATH_MAX];
        config_path_index(q, p, i);
        if (!json_is_object(item)) {
            config_error(c, q, "expected {\"cert\": FILE, \"key\": FILE}, found %s",
                         config_type_name(item));
            continue;
        }
        config_check_keys(c, item, q, keys);
        struct config_tls_cert *ct = &l->certs[l->cert_count];
        config_tls_path(c, item, "cert", q, &ct->cert);
        config_tls_path(c, item, "key", q, &ct->key);
        if (!ct->cert || !ct->key) {
            config_error(c, q, "missing \"%s\" (a PEM file)", ct->cert ? "key" : "cert");
            free(ct->cert);
            free(ct->key);
            ct->cert = ct->key = NULL;
            continue;
        }
        l->cert_count++;
    }
}

void config_parse_listen_tls(struct config_ctx *c, const struct vipmta_config *cfg,
                             const json_t *item, const char *path, struct config_listen *l)
{
    const json_t *certs = json_object_get(item, "certificates");
    char *mode = NULL;
    char p[CONFIG_PATH_MAX];

    if (certs && !json_is_null(certs))
        config_parse_certificates(c, certs, path, l);
    l->tls = l->cert_count ? CONFIG_LISTEN_TLS_STARTTLS : CONFIG_LISTEN_TLS_NONE;
    config_path_key(p, path, "tls");
    if (config_get_string(c, item, "tls", path, &mode) == 0 && mode) {
        if (strcmp(mode, "starttls") == 0)
            l->tls = CONFIG_LISTEN_TLS_STARTTLS;
        else if (strcmp(mode, "implicit") == 0)
            l->tls = CONFIG_LISTEN_TLS_IMPLICIT;
        else if (strcmp(mode, "none") == 0)
            l->tls = CONFIG_LISTEN_TLS_NONE;
        else
            config_error(c, p, "expected \"starttls\", \"implicit\" (TLS from the first byte, "
                         "port 465 style) or \"none\", found \"%s\"", mode);
        if (l->tls != CONFIG_LISTEN_TLS_NONE && !l->cert_count && !certs)
            config_error(c, p, "\"%s\" needs \"certificates\" on this listener", mode);
    }
    free(mode);
    config_get_bool(c, item, "require_tls", path, &l->require_tls);
    if (l->require_tls && l->tls == CONFIG_LISTEN_TLS_NONE)
        config_error(c, path, "\"require_tls\" needs TLS on this listener (\"certificates\", and "
                     "\"tls\" not \"none\")");
    l->auth = cfg->tls.credentials_file != NULL;
    int auth_given = json_object_get(item, "auth") != NULL;
    config_get_bool(c, item, "auth", path, &l->auth);
    config_get_bool(c, item, "auth_without_tls", path, &l->auth_without_tls);
    if (l->auth && !cfg->tls.credentials_file && auth_given)
        config_error(c, path, "\"auth\" needs tls.credentials_file (the users and their password "
                     "hashes, see docs/tls.md)");
    if (l->auth_without_tls && !config_listen_is_loopback(l->address))
        config_error(c, path, "\"auth_without_tls\" is allowed on loopback listeners only "
                     "(127.0.0.0/8, ::1): passwords would cross the network in clear");
    if (l->auth && auth_given && l->tls == CONFIG_LISTEN_TLS_NONE && !l->auth_without_tls)
        config_error(c, path, "AUTH is offered only over TLS: give this listener "
                     "\"certificates\" (or \"auth_without_tls\": true on a loopback listener)");
}

int config_parse_tls_policy(struct config_ctx *c, const json_t *obj, const char *path,
                            enum config_tls_policy *out)
{
    char *s = NULL;
    char p[CONFIG_PATH_MAX];
    if (config_get_string(c, obj, "tls", path, &s) != 0)
        return -1;
    if (!s)
        return 0;
    for (int i = 0; tls_policy_names[i]; i++) {
        if (strcmp(tls_policy_names[i], s) == 0) {
            *out = (enum config_tls_policy)i;
            free(s);
            return 0;
        }
    }
    config_path_key(p, path, "tls");
    config_error(c, p, "expected \"none\", \"opportunistic\", \"required\" or \"verify\", "
                 "found \"%s\"", s);
    free(s);
    return -1;
}

void config_parse_route_auth(struct config_ctx *c, const json_t *obj, const char *path,
                             struct config_route *route)
{
    static const char *const keys[] = {"username", "password", NULL};
    const json_t *a = json_object_get(obj, "auth");
    char p[CONFIG_PATH_MAX];
    if (!a || json_is_null(a))
        return;
    config_path_key(p, path, "auth");
    if (!json_is_object(a)) {
        config_error(c, p, "expected {\"username\": ..., \"password\": ...}, found %s",
                     config_type_name(a));
        return;
    }
    config_check_keys(c, a, p, keys);
    config_get_string(c, a, "username", p, &route->auth_user);
    config_get_string(c, a, "password", p, &route->auth_password);
    if (!route->auth_user || !*route->auth_user || !route->auth_password) {
        config_error(c, p, "needs a non-empty \"username\" and a \"password\"");
        return;
    }
    if (route->tls == CONFIG_TLS_POLICY_NONE || route->tls == CONFIG_TLS_POLICY_OPPORTUNISTIC)
        config_error(c, path, "a route with \"auth\" sends its credentials only over TLS: its "
                     "\"tls\" must be \"required\" or \"verify\" (or left out), found \"%s\"",
                     config_tls_policy_name(route->tls));
    else if (route->tls == CONFIG_TLS_POLICY_UNSET)
        route->tls = CONFIG_TLS_POLICY_REQUIRED;
}

enum config_tls_policy config_tls_policy_for(const struct vipmta_config *cfg, const char *domain,
                                             const struct config_route *route)
{
    if (route && route->tls != CONFIG_TLS_POLICY_UNSET)
        return route->tls;
    return config_domain_limits(cfg, domain)->tls;
}

void config_free_listen_tls(struct config_listen *l)
{
    for (size_t i = 0; i < l->cert_count; i++) {
        free(l->certs[i].cert);
        free(l->certs[i].key);
    }
    free(l->certs);
    l->certs = NULL;
    l->cert_count = 0;
}

void config_free_tls(struct vipmta_config *cfg)
{
    struct config_tls *t = &cfg->tls;
    free(t->min_version);
    free(t->max_version);
    free(t->ciphers);
    free(t->ciphersuites);
    free(t->ca_file);
    free(t->credentials_file);
    memset(t, 0, sizeof(*t));
}
