/* tls_server.c: a listener's server contexts: certificate chains and keys, checked, and SNI to pick among them. */
#include "tls_internal.h"
#include "log/log.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

/* PEM files larger than this are refused. */
#define TLS_PEM_MAX (1024 * 1024)

/* Never prompts for a passphrase: encrypted keys are refused. */
static int tls_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* SNI: the first certificate of the listener that covers the name the client
 * asked for (wildcards included), else the default (the first). */
static int tls_server_sni(SSL *ssl, int *alert, void *arg)
{
    const struct tls_listener_ctx *l = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    (void)alert;
    if (!name || !*name)
        return SSL_TLSEXT_ERR_OK;
    for (size_t i = 0; i < l->count; i++) {
        if (X509_check_host(l->leaf[i], name, 0, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) == 1) {
            if (i)
                SSL_set_SSL_CTX(ssl, l->ctx[i]);
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_OK;
}

/* Loads cert+chain and key into a new context; NULL with an error appended. */
static SSL_CTX *tls_server_context(const struct vipmta_config *cfg, const char *where,
                                   const struct config_tls_cert *ct, X509 **leaf_out,
                                   struct config_errors *errs)
{
    char why[256];
    size_t clen = 0, klen = 0;
    char *cpem = tls_file_read(ct->cert, TLS_PEM_MAX, 0, &clen, why, sizeof(why));
    if (!cpem) {
        config_errors_add(errs, "%s: certificate %s: %s", where, ct->cert, why);
        return NULL;
    }
    char *kpem = tls_file_read(ct->key, TLS_PEM_MAX, 1, &klen, why, sizeof(why));
    if (!kpem) {
        config_errors_add(errs, "%s: private key %s: %s", where, ct->key, why);
        free(cpem);
        return NULL;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    BIO *cb = BIO_new_mem_buf(cpem, (int)clen), *kb = BIO_new_mem_buf(kpem, (int)klen);
    X509 *leaf = NULL;
    EVP_PKEY *key = NULL;
    int ok = 0;
    ERR_clear_error();
    if (!ctx || !cb || !kb) {
        config_errors_add(errs, "%s: out of memory", where);
        goto done;
    }
    if (tls_ctx_apply_settings(ctx, &cfg->tls, errs) != 0)
        goto done;
    leaf = PEM_read_bio_X509_AUX(cb, NULL, tls_no_passphrase, NULL);
    if (!leaf || SSL_CTX_use_certificate(ctx, leaf) != 1) {
        tls_last_error(why, sizeof(why));
        config_errors_add(errs, "%s: certificate %s: no usable PEM certificate (%s)", where,
                          ct->cert, why[0] ? why : "none found");
        goto done;
    }
    X509 *ca;
    while ((ca = PEM_read_bio_X509(cb, NULL, tls_no_passphrase, NULL)) != NULL) {
        if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {
            X509_free(ca);
            config_errors_add(errs, "%s: certificate %s: cannot add its chain", where, ct->cert);
            goto done;
        }
    }
    ERR_clear_error(); /* the end of the file reads as "no start line" */
    key = PEM_read_bio_PrivateKey(kb, NULL, tls_no_passphrase, NULL);
    if (!key || SSL_CTX_use_PrivateKey(ctx, key) != 1) {
        tls_last_error(why, sizeof(why));
        config_errors_add(errs, "%s: private key %s: no usable PEM private key (OpenSSL: %s); "
                          "an encrypted key must be decrypted first (openssl pkey -in KEY -out "
                          "PLAIN)", where, ct->key, why[0] ? why : "none found");
        goto done;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        config_errors_add(errs, "%s: private key %s does not belong to certificate %s", where,
                          ct->key, ct->cert);
        goto done;
    }
    if (X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0)
        log_write("tls", VIPMTA_LOG_WARNING, "%s: certificate %s has expired: clients that "
                  "verify will refuse it", where, ct->cert);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"vipmta", 6);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_dh_auto(ctx, 1);
    ok = 1;
done:
    EVP_PKEY_free(key);
    BIO_free(cb);
    BIO_free(kb);
    free(cpem);
    tls_file_forget(kpem, klen);
    if (!ok) {
        X509_free(leaf);
        SSL_CTX_free(ctx);
        return NULL;
    }
    *leaf_out = leaf;
    return ctx;
}

int tls_server_build(const struct vipmta_config *cfg, size_t index, struct tls_listener_ctx *out,
                     struct config_errors *errs)
{
    const struct config_listen *cl = &cfg->listen[index];
    char where[512];
    snprintf(where, sizeof(where), "%s: listen[%zu] (%s port %u)", cfg->path ? cfg->path : "config",
             index, cl->address, cl->port);
    out->ctx = calloc(cl->cert_count ? cl->cert_count : 1, sizeof(*out->ctx));
    out->leaf = calloc(cl->cert_count ? cl->cert_count : 1, sizeof(*out->leaf));
    if (!out->ctx || !out->leaf) {
        config_errors_add(errs, "%s: out of memory", where);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < cl->cert_count; i++) {
        X509 *leaf = NULL;
        SSL_CTX *ctx = tls_server_context(cfg, where, &cl->certs[i], &leaf, errs);
        if (!ctx) {
            rc = -1;
            continue;
        }
        out->ctx[out->count] = ctx;
        out->leaf[out->count] = leaf;
        out->count++;
    }
    if (rc == 0 && out->count > 1) {
        /* the handshake starts on the default context: its callback switches */
        SSL_CTX_set_tlsext_servername_callback(out->ctx[0], tls_server_sni);
        SSL_CTX_set_tlsext_servername_arg(out->ctx[0], out);
    }
    return rc;
}

void tls_server_free(struct tls_listener_ctx *l)
{
    for (size_t i = 0; i < l->count; i++) {
        SSL_CTX_free(l->ctx[i]);
        X509_free(l->leaf[i]);
    }
    free(l->ctx);
    free(l->leaf);
    memset(l, 0, sizeof(*l));
}
