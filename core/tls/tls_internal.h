/* tls_internal.h: what the TLS files share: the runtime built from a config and the context helpers. */
#ifndef VIPMTA_CORE_TLS_INTERNAL_H
#define VIPMTA_CORE_TLS_INTERNAL_H

#include "tls.h"
#include "tls_auth.h"

/* One listener's server contexts: one per certificate (the first is the
 * default, the others are chosen by SNI). */
struct tls_listener_ctx {
    SSL_CTX **ctx;
    X509 **leaf;              /* the certificates, for matching the SNI name */
    size_t count;
};

struct tls_runtime {
    struct tls_listener_ctx *listeners; /* one per cfg->listen entry */
    size_t listener_count;
    SSL_CTX *client;
    struct tls_credentials *credentials;
};

/* The runtime of `cfg` (NULL when not built). */
struct tls_runtime *tls_runtime_of(const struct vipmta_config *cfg);
/* Protocol versions and cipher lists of the `tls` section on `ctx`, and the
 * options every context gets. 0, or -1 with an error appended. */
int tls_ctx_apply_settings(SSL_CTX *ctx, const struct config_tls *t, struct config_errors *errs);
/* tls_server.c: the contexts of one listener; 0 or -1 with errors appended. */
int tls_server_build(const struct vipmta_config *cfg, size_t index, struct tls_listener_ctx *out,
                     struct config_errors *errs);
void tls_server_free(struct tls_listener_ctx *l);
/* tls_client.c: the outbound context; NULL with errors appended. */
SSL_CTX *tls_client_build(const struct vipmta_config *cfg, struct config_errors *errs);

#endif
