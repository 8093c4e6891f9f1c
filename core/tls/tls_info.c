/* tls_info.c: what a TLS connection negotiated (version, cipher, verification, resumption), in both directions. */
#include "tls.h"

#include <stdio.h>
#include <string.h>

#include <openssl/x509.h>

void tls_info_from_ssl(SSL *ssl, struct tls_info *out)
{
    memset(out, 0, sizeof(*out));
    if (!ssl)
        return;
    out->active = 1;
    snprintf(out->version, sizeof(out->version), "%s", SSL_get_version(ssl));
    const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
    snprintf(out->cipher, sizeof(out->cipher), "%s", c ? SSL_CIPHER_get_name(c) : "unknown");
    out->bits = c ? SSL_CIPHER_get_bits(c, NULL) : 0;
    out->resumed = SSL_session_reused(ssl) ? 1 : 0;
    const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    snprintf(out->sni, sizeof(out->sni), "%s", sni ? sni : "");
    X509 *peer = SSL_get1_peer_certificate(ssl);
    long vr = SSL_get_verify_result(ssl);
    if (!peer) {
        snprintf(out->verify_error, sizeof(out->verify_error), "%s",
                 SSL_is_server(ssl) ? "" : "no certificate");
    } else if (vr == X509_V_OK) {
        out->verified = 1;
    } else {
        snprintf(out->verify_error, sizeof(out->verify_error), "%s",
                 X509_verify_cert_error_string(vr));
    }
    X509_free(peer);
}

void tls_info_describe(const struct tls_info *info, char *buf, size_t len)
{
    if (!info || !info->active) {
        snprintf(buf, len, "no TLS");
        return;
    }
    snprintf(buf, len, "%s with cipher %s (%d bits)%s%s", info->version, info->cipher, info->bits,
             info->resumed ? ", resumed" : "", info->verified ? ", verified" : "");
}
