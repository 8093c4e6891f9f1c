/* tls_client.c: the outbound context (trust store, session cache) and a client SSL per connection (SNI, name to verify). */
#include "tls_internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

/* Each client SSL carries its session cache key (freed with the SSL). */
static int tls_client_key_index = -1;

static void tls_client_key_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                                void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    free(ptr);
}

/* A session the server handed out (after the handshake in TLS 1.3). */
static int tls_client_new_session(SSL *ssl, SSL_SESSION *sess)
{
    const char *key = tls_client_key_index >= 0 ? SSL_get_ex_data(ssl, tls_client_key_index) : NULL;
    if (!key || !SSL_SESSION_is_resumable(sess))
        return 0;
    tls_session_cache_put(key, sess);
    return 1; /* the cache keeps the reference */
}

SSL_CTX *tls_client_build(const struct vipmta_config *cfg, struct config_errors *errs)
{
    if (tls_client_key_index < 0)
        tls_client_key_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, tls_client_key_free);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx || tls_client_key_index < 0) {
        config_errors_add(errs, "tls: out of memory");
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (tls_ctx_apply_settings(ctx, &cfg->tls, errs) != 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    char why[256];
    if (cfg->tls.ca_file) {
        size_t len;
        char *probe = tls_file_read(cfg->tls.ca_file, 64u << 20, 0, &len, why, sizeof(why));
        free(probe);
        if (!probe) {
            config_errors_add(errs, "%s: tls.ca_file %s: %s", cfg->path ? cfg->path : "config",
                              cfg->tls.ca_file, why);
            SSL_CTX_free(ctx);
            return NULL;
        }
        if (SSL_CTX_load_verify_locations(ctx, cfg->tls.ca_file, NULL) != 1) {
            tls_last_error(why, sizeof(why));
            config_errors_add(errs, "%s: tls.ca_file %s: no PEM certificate could be loaded (%s)",
                              cfg->path ? cfg->path : "config", cfg->tls.ca_file, why);
            SSL_CTX_free(ctx);
            return NULL;
        }
    } else if (SSL_CTX_load_verify_dir(ctx, X509_get_default_cert_dir()) != 1 &&
               SSL_CTX_set_default_verify_paths(ctx) != 1) {
        /* the hashed directory of the system store is read lazily, one CA as
         * a chain needs it (a reload costs nothing); without it the bundle
         * file, else no system store: nothing verifies */
        tls_last_error(why, sizeof(why));
    }
    /* the handshake goes on whatever the certificate: the policy decides
     * afterwards from the verification result (tls_info.verified) */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, tls_client_new_session);
    return ctx;
}

static int tls_client_is_ip(const char *host)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

SSL *tls_client_ssl(const struct vipmta_config *cfg, const char *host, const char *destination,
                    int verify)
{
    SSL_CTX *ctx = tls_client_ctx(cfg);
    SSL *ssl = ctx ? SSL_new(ctx) : NULL;
    if (!ssl)
        return NULL;
    char name[256];
    snprintf(name, sizeof(name), "%s", host ? host : "");
    size_t n = strlen(name);
    if (n && name[n - 1] == '.')
        name[n - 1] = '\0'; /* an absolute MX name */
    if (name[0] == '[') {
        memmove(name, name + 1, strlen(name));
        char *close = strchr(name, ']');
        if (close)
            *close = '\0';
    }
    if (!name[0]) {
        /* nothing to send or verify against */
    } else if (tls_client_is_ip(name)) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name); /* no SNI for literals */
    } else {
        SSL_set_tlsext_host_name(ssl, name);
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        SSL_set1_host(ssl, name);
    }
    char *key = NULL;
    if (asprintf(&key, "%s|%s|%d", destination ? destination : "", name, verify ? 1 : 0) < 0)
        key = NULL;
    if (key) {
        SSL_SESSION *sess = tls_session_cache_get(key);
        if (sess) {
            SSL_set_session(ssl, sess);
            SSL_SESSION_free(sess);
        }
        if (SSL_set_ex_data(ssl, tls_client_key_index, key) != 1)
            free(key);
    }
    return ssl;
}
