/* tls_runtime.c: builds the TLS contexts and credentials of a config, attached to it and freed with it. */
#include "tls_internal.h"
#include "log/log.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

static int tls_version_number(const char *name)
{
    if (!name)
        return 0;
    if (strcmp(name, "TLSv1") == 0)
        return TLS1_VERSION;
    if (strcmp(name, "TLSv1.1") == 0)
        return TLS1_1_VERSION;
    if (strcmp(name, "TLSv1.2") == 0)
        return TLS1_2_VERSION;
    if (strcmp(name, "TLSv1.3") == 0)
        return TLS1_3_VERSION;
    return 0;
}

void tls_last_error(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();
    if (!e) {
        snprintf(buf, len, "%s", "");
        return;
    }
    const char *reason = ERR_reason_error_string(e);
    if (reason)
        snprintf(buf, len, "%s", reason);
    else
        ERR_error_string_n(e, buf, len);
    ERR_clear_error();
}

int tls_ctx_apply_settings(SSL_CTX *ctx, const struct config_tls *t, struct config_errors *errs)
{
    char why[256];
    /* no renegotiation, no compression; a peer that closes without
     * close_notify is an end of data, as SMTP has its own end (QUIT) */
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* idle sessions give their buffers back */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    int min = tls_version_number(t->min_version), max = tls_version_number(t->max_version);
    if ((min && !SSL_CTX_set_min_proto_version(ctx, min)) ||
        (max && !SSL_CTX_set_max_proto_version(ctx, max))) {
        tls_last_error(why, sizeof(why));
        config_errors_add(errs, "tls: OpenSSL refuses the protocol versions %s..%s: %s",
                          t->min_version ? t->min_version : "", t->max_version ? t->max_version : "",
                          why);
        return -1;
    }
    if (t->ciphers && !SSL_CTX_set_cipher_list(ctx, t->ciphers)) {
        tls_last_error(why, sizeof(why));
        config_errors_add(errs, "tls.ciphers: OpenSSL accepts no cipher of \"%s\": %s (see "
                          "openssl ciphers -v)", t->ciphers, why);
        return -1;
    }
    if (t->ciphersuites && !SSL_CTX_set_ciphersuites(ctx, t->ciphersuites)) {
        tls_last_error(why, sizeof(why));
        config_errors_add(errs, "tls.ciphersuites: OpenSSL refuses \"%s\": %s (TLS 1.3 names "
                          "such as TLS_AES_256_GCM_SHA384, separated by ':')", t->ciphersuites, why);
        return -1;
    }
    return 0;
}

static void tls_runtime_free(void *p)
{
    struct tls_runtime *rt = p;
    if (!rt)
        return;
    for (size_t i = 0; i < rt->listener_count; i++)
        tls_server_free(&rt->listeners[i]);
    free(rt->listeners);
    SSL_CTX_free(rt->client);
    tls_credentials_release(rt->credentials);
    free(rt);
}

struct tls_runtime *tls_runtime_of(const struct vipmta_config *cfg)
{
    return cfg && cfg->runtime_free == tls_runtime_free ? cfg->runtime : NULL;
}

int tls_runtime_build(struct vipmta_config *cfg, struct config_errors *errs)
{
    size_t before = errs->count;
    if (tls_runtime_of(cfg))
        return 0;
    struct tls_runtime *rt = calloc(1, sizeof(*rt));
    if (!rt || (cfg->listen_count &&
                !(rt->listeners = calloc(cfg->listen_count, sizeof(*rt->listeners))))) {
        free(rt);
        config_errors_add(errs, "tls: out of memory");
        return -1;
    }
    rt->listener_count = cfg->listen_count;
    for (size_t i = 0; i < cfg->listen_count; i++)
        if (cfg->listen[i].tls != CONFIG_LISTEN_TLS_NONE)
            tls_server_build(cfg, i, &rt->listeners[i], errs);
    rt->client = tls_client_build(cfg, errs);
    if (cfg->tls.credentials_file)
        rt->credentials = tls_credentials_load(cfg->tls.credentials_file, errs);
    if (errs->count > before) {
        tls_runtime_free(rt);
        return -1;
    }
    tls_session_cache_configure(cfg->tls.session_cache, cfg->tls.session_lifetime);
    cfg->runtime = rt;
    cfg->runtime_free = tls_runtime_free;
    return 0;
}

SSL_CTX *tls_server_ctx(const struct vipmta_config *cfg, size_t listen_index)
{
    struct tls_runtime *rt = tls_runtime_of(cfg);
    if (!rt || listen_index >= rt->listener_count || !rt->listeners[listen_index].count)
        return NULL;
    return rt->listeners[listen_index].ctx[0];
}

SSL_CTX *tls_client_ctx(const struct vipmta_config *cfg)
{
    struct tls_runtime *rt = tls_runtime_of(cfg);
    return rt ? rt->client : NULL;
}

const struct tls_credentials *tls_runtime_credentials(const struct vipmta_config *cfg)
{
    struct tls_runtime *rt = tls_runtime_of(cfg);
    return rt ? rt->credentials : NULL;
}

void tls_shutdown(void)
{
    tls_auth_worker_stop();
    tls_session_cache_free();
}
