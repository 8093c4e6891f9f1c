/* dkimmod.h: internal interface between the dkim module's files (keys, options, From domain, signer, worker pool, the message hook). */
#ifndef VIPMTA_MOD_DKIM_H
#define VIPMTA_MOD_DKIM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "vipmta_module.h"

/* libopendkim's library handle (from <dkim.h>, which only the signer includes). */
struct dkim_lib;

/* The signature algorithms; also the index of a key in a domain's pair. */
enum dkimmod_alg { DKIMMOD_ALG_RSA = 0, DKIMMOD_ALG_ED25519 = 1 };
#define DKIMMOD_ALGS 2

/* Canonicalization of a part (header or body), as libopendkim numbers them. */
enum dkimmod_canon { DKIMMOD_CANON_SIMPLE = 0, DKIMMOD_CANON_RELAXED = 1 };

/* What happens to a message the module cannot sign (a key libopendkim
 * refuses, a read error, a malformed header section it cannot parse). */
enum dkimmod_on_error { DKIMMOD_ON_ERROR_ACCEPT = 0, DKIMMOD_ON_ERROR_DEFER = 1 };

#define DKIMMOD_RSA_MIN_BITS 2048
#define DKIMMOD_NAME_MAX 253         /* a domain name */
#define DKIMMOD_SELECTOR_MAX 63      /* one DNS label */
#define DKIMMOD_HEADERS_MAX 64       /* names in "headers" or "oversign" */
#define DKIMMOD_HEADER_NAME_MAX 64
#define DKIMMOD_EXPIRE_MAX (366 * 86400)
#define DKIMMOD_WORKERS_MAX 64
#define DKIMMOD_KEY_FILE_MAX (64 * 1024)

/* ---- dkimmod_keys.c: private key files ---- */

/* A private key, loaded and checked. */
struct dkimmod_key {
    char *domain;   /* the signing domain (d=), lower case */
    char *selector; /* s= */
    char *file;     /* as configured, for messages */
    enum dkimmod_alg alg;
    int bits;       /* RSA modulus bits; 256 for Ed25519 */
    char *pem;      /* the key re-encoded as PKCS#8 PEM, what libopendkim reads; wiped on free */
    char *txt;      /* the TXT record to publish: "v=DKIM1; k=rsa; p=..." */
};

/* Reads and checks the private key in `path`: opened without following a
 * symbolic link; a regular file; owned by root or by the user the daemon
 * runs as; no permission for group or others; at most DKIMMOD_KEY_FILE_MAX
 * bytes; an unencrypted PEM private key; RSA of DKIMMOD_RSA_MIN_BITS bits or
 * more, or Ed25519. Fills key->alg, bits, pem and txt. On error returns -1
 * with the reason and what to do in `err` (the caller names the file). */
int dkimmod_key_load(struct dkimmod_key *key, const char *path, char *err, size_t errsize);
/* Frees what key holds (the PEM wiped first), not key itself. */
void dkimmod_key_clear(struct dkimmod_key *key);
/* "rsa-sha256" / "ed25519-sha256", and the k= of the TXT record. */
const char *dkimmod_alg_name(enum dkimmod_alg alg);
const char *dkimmod_alg_key_type(enum dkimmod_alg alg);

/* ---- dkimmod_options.c: the module options, per scope ---- */

/* One scope's settings: the global options, a binding group's or a
 * binding's. Unset members inherit (binding > binding group > global). */
struct dkimmod_profile {
    int sign;                 /* -1 unset, 0 no, 1 yes */
    char *fallback_domain;    /* NULL unset; "" set to none */
    int canon_header;         /* -1 unset, else enum dkimmod_canon */
    int canon_body;
    int on_error;             /* -1 unset, else enum dkimmod_on_error */
    struct dkimmod_key *keys; /* this scope's keys */
    size_t nkeys;
};

struct dkimmod_group_profile {
    char *name;
    struct dkimmod_profile profile;
};

struct dkimmod_binding_profile {
    int slot;
    struct dkimmod_profile profile;
};

/* The parsed options of an instance, shared by the hook and the workers:
 * counted references (dkimmod_config_ref / _unref), freed at the last. */
struct dkimmod_config {
    atomic_int refs;
    struct dkimmod_profile global;
    struct dkimmod_group_profile *groups;
    size_t ngroups;
    struct dkimmod_binding_profile *bindings;
    size_t nbindings;
    char **headers;     /* NULL-terminated: the fields signed when present */
    char **oversign;    /* NULL-terminated: named once more in h= */
    unsigned expire_s;  /* x= is t= + expire_s; 0: no x= */
    int workers;        /* the worker pool's size */
    struct dkim_lib *lib; /* libopendkim with headers, oversign and expire set */
};

/* The header fields signed by default and those over-signed. */
extern const char *const dkimmod_default_headers[];
extern const char *const dkimmod_default_oversign[];

/* Parses and checks every option of the instance (every scope), loading
 * every key; reports every problem with vipmta_module_error. NULL when
 * anything was wrong. One reference. */
struct dkimmod_config *dkimmod_config_parse(vipmta_module_ctx *m);
struct dkimmod_config *dkimmod_config_ref(struct dkimmod_config *cfg);
void dkimmod_config_unref(void *cfg);

/* What the options say for one message: the profile settings resolved for
 * its binding and binding group. */
struct dkimmod_choice {
    int sign;
    const char *fallback_domain; /* NULL: none */
    enum dkimmod_canon canon_header, canon_body;
    enum dkimmod_on_error on_error;
};
void dkimmod_config_resolve(const struct dkimmod_config *cfg, int slot, const char *group,
                            struct dkimmod_choice *out);
/* The keys for signing domain `domain` (lower case) seen from (slot,
 * group): the first scope (binding, binding group, global) with a key for
 * it gives all of them, one per algorithm (`keys[alg]`, NULL when absent).
 * Returns how many (0: no key for the domain). */
int dkimmod_config_keys(const struct dkimmod_config *cfg, int slot, const char *group,
                        const char *domain, const struct dkimmod_key *keys[DKIMMOD_ALGS]);

/* ---- dkimmod_from.c: the RFC5322.From domain ---- */

/* The domain of the first address of the first From field in the header
 * section `headers` (`len` octets, CRLF lines, unfolded here), lower case,
 * in `out`. 0 when found, -1 when there is no From field or no domain in it. */
int dkimmod_from_domain(const char *headers, size_t len, char *out, size_t size);

/* ---- dkimmod_signer.c: signing with libopendkim ---- */

/* A new libopendkim handle with the config's header list, over-signed
 * fields and expiry. NULL with the reason in `err`. */
struct dkim_lib *dkimmod_lib_new(const char *const *headers, const char *const *oversign,
                                 unsigned expire_s, char *err, size_t errsize);
void dkimmod_lib_free(struct dkim_lib *lib);

/* Reads up to len octets of the message from offset (pread semantics). */
typedef ssize_t (*dkimmod_read_fn)(void *arg, uint64_t offset, void *buf, size_t len);

enum dkimmod_sign_result {
    DKIMMOD_SIGN_OK = 0,
    DKIMMOD_SIGN_READ_ERROR = 1, /* the message could not be read */
    DKIMMOD_SIGN_FAILED = 2,     /* libopendkim refused (the key, the message) */
};

/* Signs the message that `read` gives with each of the `nkeys` keys, in one
 * pass over it; `id` names the message in libopendkim's errors. On success
 * values[i] is the DKIM-Signature field's value for keys[i] (malloc'd,
 * folded with CRLF TAB, to be written after "DKIM-Signature: "). On failure
 * nothing is allocated and `err` says why. */
enum dkimmod_sign_result dkimmod_sign(struct dkim_lib *lib, const struct dkimmod_key *const *keys,
                                      size_t nkeys, enum dkimmod_canon canon_header,
                                      enum dkimmod_canon canon_body, const char *id,
                                      dkimmod_read_fn read, void *arg, char **values,
                                      char *err, size_t errsize);

/* The outcomes counted per message (vipmta_dkim_messages_total). */
enum dkimmod_outcome { DKIMMOD_SIGNED = 0, DKIMMOD_SKIPPED = 1, DKIMMOD_FAILED = 2 };

/* ---- dkimmod_pool.c: the signing workers ---- */

struct dkimmod_pool;
typedef void (*dkimmod_job_fn)(void *job);
/* `workers` threads running fn on each job submitted, in order of arrival.
 * NULL when a thread cannot be started (errno). */
struct dkimmod_pool *dkimmod_pool_new(int workers, dkimmod_job_fn fn);
/* Hands a job to the pool; 0, or -1 when the pool is stopping. */
int dkimmod_pool_submit(struct dkimmod_pool *p, void *job);
/* Grows or shrinks the pool to `workers` threads (a shrinking thread ends
 * after its job). 0, or -1 when a thread cannot be started. */
int dkimmod_pool_resize(struct dkimmod_pool *p, int workers);
/* Jobs waiting and running now. */
size_t dkimmod_pool_backlog(struct dkimmod_pool *p);
/* Runs every job still queued, then ends the threads and frees the pool. */
void dkimmod_pool_free(struct dkimmod_pool *p);

#endif
