/* tls_auth.h: AUTH credentials (a file of crypt(3) hashes) and their checking off the event loop. */
#ifndef VIPMTA_CORE_TLS_AUTH_H
#define VIPMTA_CORE_TLS_AUTH_H

#include <stddef.h>
#include "config/config.h"

struct event_base;
struct tls_credentials;

/* Reads `path`: one "user:hash" per line (more ':' fields are ignored, '#'
 * starts a comment line), hashes made by crypt(3) with yescrypt ($y$) or
 * SHA-512-crypt ($6$). NULL with "FILE:LINE: ..." errors appended. The file
 * must not be readable by others. Holds one reference. */
struct tls_credentials *tls_credentials_load(const char *path, struct config_errors *errs);
struct tls_credentials *tls_credentials_ref(struct tls_credentials *c);
/* Drops a reference (any thread); NULL is ignored. */
void tls_credentials_release(struct tls_credentials *c);
size_t tls_credentials_count(const struct tls_credentials *c);
/* 1 when `user` is in the file and `password` matches its hash, else 0. An
 * unknown user costs one hash of the same kind as a known one, so the time
 * taken does not tell them apart. Slow by design: never on the event loop
 * (tls_auth_check_async). Any thread. */
int tls_credentials_check(const struct tls_credentials *c, const char *user, const char *password);
/* The credentials of the config's runtime (NULL: no credentials_file). */
const struct tls_credentials *tls_runtime_credentials(const struct vipmta_config *cfg);

/* A check running on the worker thread; `done` runs on `base`'s loop. */
struct tls_auth_job;
typedef void (*tls_auth_done_fn)(void *arg, int ok);
/* Starts checking user/password (both copied, wiped after use); NULL when
 * the worker cannot be started or out of memory. */
struct tls_auth_job *tls_auth_check_async(struct event_base *base, const struct tls_credentials *c,
                                          const char *user, const char *password,
                                          tls_auth_done_fn done, void *arg);
/* `done` of `job` will not be called (its owner is going away). */
void tls_auth_cancel(struct tls_auth_job *job);
/* Stops the worker thread; jobs not done are dropped without `done`. */
void tls_auth_worker_stop(void);

#endif
