/* dkimmod_signer.c: signing a message with libopendkim: the library handle with the header list, over-signing and expiry, and one pass over the message for one or two keys. */
#include "dkimmod.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dkim.h>
#include <openssl/bio.h>
#include <openssl/evp.h>

#define SIGNER_CHUNK (64 * 1024)
#define SIGNATURE_FIELD "DKIM-Signature"

/* ---- what libopendkim 2.11 forgets to free ----
 * Its dkim_free() releases the OpenSSL key of a signing handle only for RSA:
 * an Ed25519 handle leaves its EVP_PKEY and its signature buffer behind
 * (about 500 bytes a message). The library takes an allocator with a
 * closure per handle, so each signing handle gets an arena: every block the
 * handle allocates is known, the ones it forgets are freed after
 * dkim_free(), and the key holder it frees (its struct dkim_crypto, whose
 * layout below is libopendkim 2.11's) has its key freed first. The holder
 * is recognised by its contents (an Ed25519 signature's sizes, its buffer
 * one of the handle's own blocks), and only with the library version it was
 * written for. */
struct opendkim_crypto_2_11 {
    unsigned char crypto_pad;
    int crypto_keysize;
    size_t crypto_inlen;
    size_t crypto_outlen;
    EVP_PKEY *crypto_pkey;
    void *crypto_key;
    BIO *crypto_keydata;
    unsigned char *crypto_in;
    unsigned char *crypto_out;
};
#define ED25519_SIGNATURE_BYTES 64

struct sign_arena {
    struct arena_block {
        void *p;
        size_t n;
    } *blocks;
    size_t count, cap;
    int fix_ed25519; /* an Ed25519 handle of a library with the leak */
};

static void *arena_malloc(void *closure, size_t n)
{
    struct sign_arena *a = closure;
    void *p = malloc(n ? n : 1);
    if (!a || !p)
        return p;
    if (a->count == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        struct arena_block *grown = realloc(a->blocks, cap * sizeof(*grown));
        if (!grown) {
            free(p);
            return NULL;
        }
        a->blocks = grown;
        a->cap = cap;
    }
    a->blocks[a->count++] = (struct arena_block){p, n};
    return p;
}

static ssize_t arena_find(const struct sign_arena *a, const void *p)
{
    for (size_t i = a->count; i-- > 0;)
        if (a->blocks[i].p == p)
            return (ssize_t)i;
    return -1;
}

/* Frees the EVP_PKEY of an Ed25519 key holder that libopendkim frees without it. */
static void arena_release_key(struct sign_arena *a, size_t i)
{
    if (!a->fix_ed25519 || a->blocks[i].n != sizeof(struct opendkim_crypto_2_11))
        return;
    struct opendkim_crypto_2_11 *c = a->blocks[i].p;
    ssize_t out = c->crypto_out ? arena_find(a, c->crypto_out) : -1;
    if (c->crypto_pkey && c->crypto_keydata == NULL &&
        c->crypto_keysize == 8 * ED25519_SIGNATURE_BYTES &&
        c->crypto_outlen == ED25519_SIGNATURE_BYTES && out >= 0 &&
        a->blocks[out].n == ED25519_SIGNATURE_BYTES &&
        EVP_PKEY_get_base_id(c->crypto_pkey) == EVP_PKEY_ED25519) {
        EVP_PKEY_free(c->crypto_pkey);
        c->crypto_pkey = NULL;
    }
}

static void arena_free(void *closure, void *p)
{
    struct sign_arena *a = closure;
    if (a && p) {
        ssize_t i = arena_find(a, p);
        if (i >= 0) {
            arena_release_key(a, (size_t)i);
            a->blocks[i] = a->blocks[--a->count];
        }
    }
    free(p);
}

/* After dkim_free(): what the handle left. */
static void arena_clear(struct sign_arena *a)
{
    for (size_t i = 0; i < a->count; i++)
        free(a->blocks[i].p);
    free(a->blocks);
    memset(a, 0, sizeof(*a));
}

struct dkim_lib *dkimmod_lib_new(const char *const *headers, const char *const *oversign,
                                 unsigned expire_s, char *err, size_t errsize)
{
    DKIM_LIB *lib = dkim_init(arena_malloc, arena_free);
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

/* libopendkim folds the field it hashes (b= empty) and the one it returns
 * (b= full) alike only for RSA: for Ed25519 the line break before b= can
 * move, which breaks the "simple" header canonicalization. Ed25519 handles
 * are therefore told not to fold (margin 0), and the returned value is
 * folded here inside the b= value only, where verifiers ignore white space. */
#define B_VALUE_LINE 72

static char *fold_b_value(const unsigned char *hdr, size_t len)
{
    const char *b = NULL;
    for (size_t i = 0; i + 3 <= len; i++)
        if (memcmp(hdr + i, "b=", 2) == 0 && i >= 1 && (hdr[i - 1] == ' ' || hdr[i - 1] == ';'))
            b = (const char *)hdr + i + 2;
    size_t head = b ? (size_t)(b - (const char *)hdr) : len;
    size_t rest = len - head;
    char *out = malloc(len + 3 * (rest / B_VALUE_LINE + 1) + 1);
    if (!out)
        return NULL;
    memcpy(out, hdr, head);
    size_t o = head;
    for (size_t i = 0; i < rest; i++) {
        if (i > 0 && i % B_VALUE_LINE == 0) {
            memcpy(out + o, "\r\n\t", 3);
            o += 3;
        }
        out[o++] = (char)hdr[head + i];
    }
    out[o] = '\0';
    return out;
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
    struct sign_arena arena[DKIMMOD_ALGS];
    memset(arena, 0, sizeof(arena));
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
        arena[i].fix_ed25519 = keys[i]->alg == DKIMMOD_ALG_ED25519 &&
                               dkim_libversion() == 0x020B0000; /* 2.11.0, the Debian 12 one */
        h[i] = dkim_sign(lib, (const unsigned char *)id, &arena[i], (dkim_sigkey_t)keys[i]->pem,
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
        if (keys[i]->alg == DKIMMOD_ALG_ED25519)
            dkim_set_margin(h[i], 0);
    }
    buf = malloc(SIGNER_CHUNK);
    if (!buf) {
        snprintf(err, errsize, "out of memory");
        goto out;
    }
    /* Whether the header section ended (an empty line): a message of header
     * fields alone gets one at the end, so libopendkim hashes its last field
     * as verifiers do (with its CRLF, then an empty body). */
    int eoh = 0;
    unsigned char tail[4] = {0, 0, 0, 0};
    size_t seen = 0;
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
        for (ssize_t k = 0; k < n && !eoh; k++, seen++) {
            memmove(tail, tail + 1, 3);
            tail[3] = buf[k];
            eoh = (seen >= 1 && memcmp(tail + 2, "\r\n", 2) == 0 &&
                   (seen == 1 || memcmp(tail, "\r\n", 2) == 0));
        }
        for (i = 0; i < nkeys; i++) {
            st = dkim_chunk(h[i], buf, (size_t)n);
            if (st != DKIM_STAT_OK) {
                sign_error(err, errsize, h[i], "reading the message", st, keys[i]);
                goto out;
            }
        }
        offset += (uint64_t)n;
    }
    if (!eoh) {
        static unsigned char end[] = "\r\n\r\n";
        size_t skip = seen >= 2 && memcmp(tail + 2, "\r\n", 2) == 0 ? 2 : 0;
        for (i = 0; i < nkeys; i++) {
            st = dkim_chunk(h[i], end + skip, 4 - skip);
            if (st != DKIM_STAT_OK) {
                sign_error(err, errsize, h[i], "ending the header section", st, keys[i]);
                goto out;
            }
        }
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
        if (keys[i]->alg == DKIMMOD_ALG_ED25519) {
            values[i] = fold_b_value(hdr, len);
        } else if ((values[i] = malloc(len + 1)) != NULL) {
            memcpy(values[i], hdr, len);
            values[i][len] = '\0';
        }
        if (!values[i]) {
            snprintf(err, errsize, "out of memory");
            goto out;
        }
    }
    result = DKIMMOD_SIGN_OK;
out:
    free(buf);
    for (i = 0; i < nkeys; i++) {
        if (h[i])
            dkim_free(h[i]);
        arena_clear(&arena[i]);
        if (result != DKIMMOD_SIGN_OK) {
            free(values[i]);
            values[i] = NULL;
        }
    }
    return result;
}
