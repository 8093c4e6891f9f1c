/* dkimmod_signer.c: signing a message with libopendkim: the library handle with the header list, over-signing and expiry, and one pass over the message for one or two keys. */
#include "dkimmod.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dkim.h>

#define SIGNER_CHUNK (64 * 1024)
#define SIGNATURE_FIELD "DKIM-Signature"

struct dkim_lib *dkimmod_lib_new(const char *const *headers, const char *const *oversign,
                                 unsigned expire_s, char *err, size_t errsize)
{
    DKIM_LIB *lib = dkim_init(NULL, NULL);
    if (!lib) {
        snprintf(err, errsize, "libopendkim: cannot initialise the library (out of memory)");
        return NULL;
    }
    uint64_t ttl = expire_s;
    DKIM_STAT st;
    const char *what = "headers";
    /* the list options take the array itself, and the size of a pointer to it */
    st = dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS, (void *)headers,
                      sizeof(headers));
    if (st == DKIM_STAT_OK) {
        what = "oversign";
        st = dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_OVERSIGNHDRS, (void *)oversign,
                          sizeof(oversign));
    }
    if (st == DKIM_STAT_OK) {
        what = "expire";
        st = dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNATURETTL, &ttl, sizeof(ttl));
    }
    if (st != DKIM_STAT_OK) {
        snprintf(err, errsize, "libopendkim refused the %s option: %s", what,
                 dkim_getresultstr(st));
        dkim_close(lib);
        return NULL;
    }
    return lib;
}

void dkimmod_lib_free(struct dkim_lib *lib)
{
    if (lib)
        dkim_close(lib);
}

/* The reason libopendkim gave for a handle, or the status's name. */
static void sign_error(char *err, size_t errsize, DKIM *h, const char *stage, DKIM_STAT st,
                       const struct dkimmod_key *key)
{
    const char *why = h ? dkim_geterror(h) : NULL;
    snprintf(err, errsize, "libopendkim: %s failed for d=%s s=%s (%s, key %s): %s", stage,
             key->domain, key->selector, dkimmod_alg_name(key->alg), key->file,
             why && *why ? why : dkim_getresultstr(st));
}

enum dkimmod_sign_result dkimmod_sign(struct dkim_lib *lib, const struct dkimmod_key *const *keys,
                                      size_t nkeys, enum dkimmod_canon canon_header,
                                      enum dkimmod_canon canon_body, const char *id,
                                      dkimmod_read_fn read, void *arg, char **values,
                                      char *err, size_t errsize)
{
    DKIM *h[DKIMMOD_ALGS] = {NULL, NULL};
    enum dkimmod_sign_result result = DKIMMOD_SIGN_FAILED;
    unsigned char *buf = NULL;
    size_t i;
    DKIM_STAT st = DKIM_STAT_OK;

    if (nkeys == 0 || nkeys > DKIMMOD_ALGS) {
        snprintf(err, errsize, "no key to sign with");
        return DKIMMOD_SIGN_FAILED;
    }
    for (i = 0; i < nkeys; i++)
        values[i] = NULL;
    for (i = 0; i < nkeys; i++) {
        h[i] = dkim_sign(lib, (const unsigned char *)id, NULL, (dkim_sigkey_t)keys[i]->pem,
                         (const unsigned char *)keys[i]->selector,
                         (const unsigned char *)keys[i]->domain,
                         canon_header == DKIMMOD_CANON_RELAXED ? DKIM_CANON_RELAXED
                                                               : DKIM_CANON_SIMPLE,
                         canon_body == DKIMMOD_CANON_RELAXED ? DKIM_CANON_RELAXED
                                                             : DKIM_CANON_SIMPLE,
                         keys[i]->alg == DKIMMOD_ALG_ED25519 ? DKIM_SIGN_ED25519SHA256
                                                             : DKIM_SIGN_RSASHA256,
                         -1, &st);
        if (!h[i]) {
            sign_error(err, errsize, NULL, "dkim_sign", st, keys[i]);
            goto out;
        }
    }
    buf = malloc(SIGNER_CHUNK);
    if (!buf) {
        snprintf(err, errsize, "out of memory");
        goto out;
    }
    uint64_t offset = 0;
    for (;;) {
        ssize_t n = read(arg, offset, buf, SIGNER_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errsize, "cannot read the message at octet %llu: %s",
                     (unsigned long long)offset, strerror(errno));
            result = DKIMMOD_SIGN_READ_ERROR;
            goto out;
        }
        if (n == 0)
            break;
        for (i = 0; i < nkeys; i++) {
            st = dkim_chunk(h[i], buf, (size_t)n);
            if (st != DKIM_STAT_OK) {
                sign_error(err, errsize, h[i], "reading the message", st, keys[i]);
                goto out;
            }
        }
        offset += (uint64_t)n;
    }
    for (i = 0; i < nkeys; i++) {
        const char *stage = "ending the message";
        st = dkim_chunk(h[i], NULL, 0);
        if (st == DKIM_STAT_OK) {
            stage = "signing";
            st = dkim_eom(h[i], NULL);
        }
        unsigned char *hdr = NULL;
        size_t len = 0;
        if (st == DKIM_STAT_OK) {
            stage = "making the header field";
            st = dkim_getsighdr_d(h[i], sizeof(SIGNATURE_FIELD ": ") - 1, &hdr, &len);
        }
        if (st != DKIM_STAT_OK) {
            sign_error(err, errsize, h[i], stage, st, keys[i]);
            goto out;
        }
        values[i] = malloc(len + 1);
        if (!values[i]) {
            snprintf(err, errsize, "out of memory");
            goto out;
        }
        memcpy(values[i], hdr, len);
        values[i][len] = '\0';
    }
    result = DKIMMOD_SIGN_OK;
out:
    free(buf);
    for (i = 0; i < nkeys; i++) {
        if (h[i])
            dkim_free(h[i]);
        if (result != DKIMMOD_SIGN_OK) {
            free(values[i]);
            values[i] = NULL;
        }
    }
    return result;
}
