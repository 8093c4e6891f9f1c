/* tls.h: TLS for both directions: contexts built from a config, certificates by SNI, outbound sessions, connection state, AUTH credentials. */
#ifndef VIPMTA_CORE_TLS_H
#define VIPMTA_CORE_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>

#include "config/config.h"

/* Builds everything TLS needs from `cfg` and attaches it to cfg->runtime
 * (freed with the config): per listener the server contexts (one per
 * certificate, picked by SNI), the outbound client context with its trust
 * store, the AUTH credentials. Files are read now, so a reload that gets here
 * has checked them: 0, or -1 with every problem appended to `errs` (naming
 * the file and what to do). Safe to call once per config. */
int tls_runtime_build(struct vipmta_config *cfg, struct config_errors *errs);
/* The server context of cfg->listen[index] (its first certificate), NULL when
 * that listener has no TLS (or the runtime was not built). */
SSL_CTX *tls_server_ctx(const struct vipmta_config *cfg, size_t listen_index);
/* The outbound context, NULL when the runtime was not built. */
SSL_CTX *tls_client_ctx(const struct vipmta_config *cfg);
/* Frees what tls_* keeps outside configs (the session cache). At exit. */
void tls_shutdown(void);

/* What one TLS connection negotiated (both directions). */
struct tls_info {
    int active;               /* 1: the connection is encrypted */
    char version[16];         /* "TLSv1.3" */
    char cipher[64];          /* "TLS_AES_256_GCM_SHA384" */
    int bits;                 /* secret bits of the cipher */
    int verified;             /* peer chain (and name, outbound) verified */
    int resumed;              /* the session was resumed */
    char verify_error[128];   /* why not verified ("" when verified or no certificate) */
    char sni[256];            /* inbound: the name the client asked for; outbound: sent */
};
/* Fills `out` from an SSL whose handshake is done. */
void tls_info_from_ssl(SSL *ssl, struct tls_info *out);
/* "TLSv1.3 with cipher X (256 bits)" for logs. */
void tls_info_describe(const struct tls_info *info, char *buf, size_t len);
/* The first OpenSSL error queued (and clears the queue), "" when none. */
void tls_last_error(char *buf, size_t len);

/* Outbound: a new client SSL to `host` (an MX or route host name, or an IP
 * literal) at `destination` ("ip:port"): SNI and the name to verify are set
 * for names; a cached session for the same destination, name and policy is
 * offered; sessions the server hands out are cached (tls.session_cache).
 * NULL on out of memory. */
SSL *tls_client_ssl(const struct vipmta_config *cfg, const char *host, const char *destination,
                    int verify);

/* tls_session_cache.c: outbound sessions by destination (loop thread). */
void tls_session_cache_configure(size_t max_entries, unsigned lifetime_seconds);
/* A reference to the cached session for `key` (SSL_SESSION_free it), or NULL. */
SSL_SESSION *tls_session_cache_get(const char *key);
/* Keeps `sess` (takes the reference) for `key`, replacing any older one. */
void tls_session_cache_put(const char *key, SSL_SESSION *sess);
size_t tls_session_cache_count(void);
void tls_session_cache_free(void);

/* tls_file.c: reads a secret or a certificate file safely (O_NOFOLLOW, a
 * regular file, at most `max` bytes; `secret`: refused when other users may
 * read it, and when group or others may write it). The buffer is
 * NUL-terminated, *len excludes the NUL; NULL with `why` filled in. */
char *tls_file_read(const char *path, size_t max, int secret, size_t *len, char *why,
                    size_t whylen);
/* Overwrites and frees a buffer that held a secret. */
void tls_file_forget(char *buf, size_t len);

/* tls_stats.c: TLS counters for the metrics (loop thread). */
enum tls_stats_direction { TLS_STATS_INBOUND = 0, TLS_STATS_OUTBOUND = 1 };
/* Counts one connection: TLS (info->active) with its version, cipher and
 * verification, or clear text (info NULL or inactive). */
void tls_stats_connection(enum tls_stats_direction dir, const struct tls_info *info);
/* A failed handshake. */
void tls_stats_handshake_failed(enum tls_stats_direction dir);
/* AUTH outcomes (inbound). */
void tls_stats_auth(int success);
struct tls_stats_row {
    enum tls_stats_direction dir;
    int active;
    const char *version;
    const char *cipher;
    int verified;
    uint64_t count;
};
/* Calls fn for every (direction, TLS or not, version, cipher, verified) seen. */
void tls_stats_foreach(void (*fn)(const struct tls_stats_row *row, void *arg), void *arg);
struct tls_stats_totals {
    uint64_t handshake_failures[2];
    uint64_t auth_success, auth_failure;
};
void tls_stats_totals(struct tls_stats_totals *out);

#endif
