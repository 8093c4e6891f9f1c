/* dkimmod_keys.c: the dkim module's private key files: opened safely, checked (owner, mode, type, algorithm, size), re-encoded for libopendkim, and the TXT record to publish. */
#include "dkimmod.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

const char *dkimmod_alg_name(enum dkimmod_alg alg)
{
    return alg == DKIMMOD_ALG_ED25519 ? "ed25519-sha256" : "rsa-sha256";
}

const char *dkimmod_alg_key_type(enum dkimmod_alg alg)
{
    return alg == DKIMMOD_ALG_ED25519 ? "ed25519" : "rsa";
}

static int fail(char *err, size_t errsize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errsize, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsize, fmt, ap);
    va_end(ap);
    return -1;
}

/* Reads the whole file at `path` into a NUL-terminated buffer after checking
 * what was opened. The caller wipes and frees it. */
static char *read_key_file(const char *path, size_t *len, char *err, size_t errsize)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno == ELOOP)
            fail(err, errsize, "is a symbolic link: name the key file itself");
        else if (errno == ENOENT)
            fail(err, errsize, "cannot open it: %s: create the key (openssl genpkey, see "
                 "docs/modules/dkim.md) or fix the path", strerror(errno));
        else
            fail(err, errsize, "cannot open it: %s: the daemon's user must be able to read it",
                 strerror(errno));
        return NULL;
    }
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) != 0) {
        fail(err, errsize, "cannot stat it: %s", strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        fail(err, errsize, "is not a regular file: name the PEM key file");
        goto out;
    }
    uid_t me = geteuid();
    if (st.st_uid != 0 && st.st_uid != me) {
        fail(err, errsize, "owner: expected root or uid %u (the user vipmta runs as), found "
             "uid %u: refusing a key another user controls; run chown %u: on it",
             (unsigned)me, (unsigned)st.st_uid, (unsigned)me);
        goto out;
    }
    if (st.st_mode & 077) {
        fail(err, errsize, "permissions: expected no access for group or others, found mode "
             "%04o: a private key must stay private; run chmod 600 on it (and replace the key "
             "if others could read it)", (unsigned)(st.st_mode & 07777));
        goto out;
    }
    if (st.st_size <= 0 || st.st_size > DKIMMOD_KEY_FILE_MAX) {
        fail(err, errsize, "size: expected a PEM private key of 1 to %d bytes, found %lld "
             "bytes", DKIMMOD_KEY_FILE_MAX, (long long)st.st_size);
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        fail(err, errsize, "out of memory");
        goto out;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            fail(err, errsize, "cannot read it: %s", r < 0 ? strerror(errno) : "it shrank");
            OPENSSL_cleanse(buf, got);
            free(buf);
            buf = NULL;
            goto out;
        }
        got += (size_t)r;
    }
    buf[got] = '\0';
    *len = got;
out:
    close(fd);
    return buf;
}

/* OpenSSL must never prompt for a passphrase on the daemon's terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* The p= of the TXT record: base64 of the SubjectPublicKeyInfo DER for RSA
 * (RFC 6376), of the raw 32-byte public key for Ed25519 (RFC 8463). */
static char *public_key_b64(EVP_PKEY *pkey, enum dkimmod_alg alg)
{
    unsigned char raw[64];
    unsigned char *der = NULL;
    const unsigned char *data;
    int len;
    if (alg == DKIMMOD_ALG_ED25519) {
        size_t rawlen = sizeof(raw);
        if (EVP_PKEY_get_raw_public_key(pkey, raw, &rawlen) != 1)
            return NULL;
        data = raw;
        len = (int)rawlen;
    } else {
        len = i2d_PUBKEY(pkey, &der);
        if (len <= 0)
            return NULL;
        data = der;
    }
    char *out = malloc((size_t)len / 3 * 4 + 8);
    if (out)
        EVP_EncodeBlock((unsigned char *)out, data, len);
    OPENSSL_free(der);
    return out;
}

static char *pem_of(EVP_PKEY *pkey)
{
    BIO *bio = BIO_new(BIO_s_secmem());
    if (!bio)
        return NULL;
    char *out = NULL;
    if (PEM_write_bio_PKCS8PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) == 1) {
        char *data;
        long n = BIO_get_mem_data(bio, &data);
        if (n > 0 && (out = malloc((size_t)n + 1)) != NULL) {
            memcpy(out, data, (size_t)n);
            out[n] = '\0';
        }
    }
    BIO_free(bio);
    return out;
}

/* The first reason OpenSSL gave, for messages. */
static const char *openssl_reason(char *buf, size_t size)
{
    unsigned long e = ERR_peek_error();
    if (e == 0)
        return "not a PEM private key";
    ERR_error_string_n(e, buf, size);
    ERR_clear_error();
    return buf;
}

int dkimmod_key_load(struct dkimmod_key *key, const char *path, char *err, size_t errsize)
{
    size_t len = 0;
    char *text = read_key_file(path, &len, err, errsize);
    if (!text)
        return -1;
    int rc = -1;
    ERR_clear_error();
    BIO *bio = BIO_new_mem_buf(text, (int)len);
    EVP_PKEY *pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;
    BIO_free(bio);
    OPENSSL_cleanse(text, len);
    free(text);
    if (!pkey) {
        char why[256];
        fail(err, errsize, "cannot read a private key from it (%s): expected an unencrypted PEM "
             "private key, as openssl genpkey writes", openssl_reason(why, sizeof(why)));
        return -1;
    }
    switch (EVP_PKEY_get_base_id(pkey)) {
    case EVP_PKEY_RSA:
        key->alg = DKIMMOD_ALG_RSA;
        key->bits = EVP_PKEY_get_bits(pkey);
        if (key->bits < DKIMMOD_RSA_MIN_BITS) {
            fail(err, errsize, "key size: expected an RSA key of at least %d bits, found %d "
                 "bits: receivers treat shorter keys as unsigned; make a new one with openssl "
                 "genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:2048",
                 DKIMMOD_RSA_MIN_BITS, key->bits);
            goto out;
        }
        break;
    case EVP_PKEY_ED25519:
        key->alg = DKIMMOD_ALG_ED25519;
        key->bits = 256;
        break;
    default:
        fail(err, errsize, "key type: expected an RSA or Ed25519 private key, found %s: DKIM "
             "signs with rsa-sha256 or ed25519-sha256 only",
             OBJ_nid2sn(EVP_PKEY_get_base_id(pkey)));
        goto out;
    }
    key->pem = pem_of(pkey);
    key->txt = NULL;
    char *p = public_key_b64(pkey, key->alg);
    if (p) {
        size_t n = strlen(p) + 32;
        key->txt = malloc(n);
        if (key->txt)
            snprintf(key->txt, n, "v=DKIM1; k=%s; p=%s", dkimmod_alg_key_type(key->alg), p);
        free(p);
    }
    if (!key->pem || !key->txt) {
        fail(err, errsize, "cannot encode the key: out of memory");
        goto out;
    }
    rc = 0;
out:
    EVP_PKEY_free(pkey);
    if (rc != 0) {
        if (key->pem)
            OPENSSL_cleanse(key->pem, strlen(key->pem));
        free(key->pem);
        free(key->txt);
        key->pem = key->txt = NULL;
    }
    return rc;
}

void dkimmod_key_clear(struct dkimmod_key *key)
{
    if (key->pem) {
        OPENSSL_cleanse(key->pem, strlen(key->pem));
        free(key->pem);
    }
    free(key->txt);
    free(key->domain);
    free(key->selector);
    free(key->file);
    memset(key, 0, sizeof(*key));
}
