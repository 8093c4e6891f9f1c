/* tls_credentials.c: the AUTH credentials file: "user:hash" lines checked with libcrypt, same cost for unknown users. */
#include "tls_auth.h"
#include "tls.h"

#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Credentials files larger than this are refused. */
#define TLS_CREDENTIALS_MAX (64u << 20)
#define TLS_USER_MAX 255

struct tls_user {
    char *name;
    char *hash;
};

struct tls_credentials {
    unsigned refs;
    struct tls_user *users;       /* sorted by name */
    size_t count;
    char *dummy;                  /* checked for unknown users: a hash like the others */
    char *text;                   /* the file; names and hashes point into it */
    size_t text_len;
};

static int tls_user_cmp(const void *a, const void *b)
{
    return strcmp(((const struct tls_user *)a)->name, ((const struct tls_user *)b)->name);
}

static void tls_credentials_free(struct tls_credentials *c)
{
    free(c->users);
    free(c->dummy);
    tls_file_forget(c->text, c->text_len);
    free(c);
}

/* A hash of a random password of the same kind as `like` (or SHA-512-crypt). */
static char *tls_credentials_dummy(const char *like)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data *cd = calloc(1, sizeof(*cd));
    char *out = NULL;
    if (!cd)
        return NULL;
    if (like) {
        /* the same method and cost: everything up to the last '$' is the setting */
        const char *last = strrchr(like, '$');
        size_t n = last ? (size_t)(last - like) : 0;
        if (n && n < sizeof(setting)) {
            memcpy(setting, like, n);
            setting[n] = '\0';
            const char *h = crypt_rn("vipmta-no-such-user", setting, cd, sizeof(*cd));
            if (h && h[0] == '$')
                out = strdup(h);
        }
    }
    if (!out && crypt_gensalt_rn("$6$", 0, NULL, 0, setting, sizeof(setting))) {
        const char *h = crypt_rn("vipmta-no-such-user", setting, cd, sizeof(*cd));
        if (h && h[0] == '$')
            out = strdup(h);
    }
    free(cd);
    return out;
}

struct tls_credentials *tls_credentials_load(const char *path, struct config_errors *errs)
{
    char why[256];
    size_t len = 0;
    char *text = tls_file_read(path, TLS_CREDENTIALS_MAX, 1, &len, why, sizeof(why));
    if (!text) {
        config_errors_add(errs, "tls.credentials_file %s: %s (the users and their password "
                          "hashes, see docs/tls.md)", path, why);
        return NULL;
    }
    struct tls_credentials *c = calloc(1, sizeof(*c));
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    if (!c || !(c->users = calloc(lines, sizeof(*c->users)))) {
        config_errors_add(errs, "tls.credentials_file %s: out of memory", path);
        if (c)
            free(c);
        tls_file_forget(text, len);
        return NULL;
    }
    c->refs = 1;
    c->text = text;
    c->text_len = len;
    size_t before = errs->count, lineno = 0;
    char *line = text;
    while (line < text + len) {
        char *nl = memchr(line, '\n', (size_t)(text + len - line));
        char *end = nl ? nl : text + len;
        lineno++;
        if (end > line && end[-1] == '\r')
            end[-1] = '\0';
        *end = '\0';
        char *next = nl ? nl + 1 : text + len;
        if (!line[0] || line[0] == '#') {
            line = next;
            continue;
        }
        char *colon = strchr(line, ':');
        char *hash = colon ? colon + 1 : NULL;
        char *more = hash ? strchr(hash, ':') : NULL;
        if (more)
            *more = '\0';
        if (!colon || colon == line) {
            config_errors_add(errs, "%s:%zu: expected user:hash (a crypt(3) hash: mkpasswd -m "
                              "yescrypt, see docs/tls.md)", path, lineno);
            line = next;
            continue;
        }
        *colon = '\0';
        int name_ok = strlen(line) <= TLS_USER_MAX;
        for (const char *p = line; *p && name_ok; p++)
            name_ok = (unsigned char)*p > 0x20 && *p != 0x7f;
        if (!name_ok)
            config_errors_add(errs, "%s:%zu: the user name has spaces or control characters, or "
                              "is longer than %d bytes", path, lineno, TLS_USER_MAX);
        else if (strncmp(hash, "$y$", 3) != 0 && strncmp(hash, "$6$", 3) != 0)
            config_errors_add(errs, "%s:%zu: user \"%s\": the hash is not yescrypt ($y$...) or "
                              "SHA-512-crypt ($6$...): make one with mkpasswd -m yescrypt (or "
                              "openssl passwd -6)", path, lineno, line);
        else if (strlen(hash) < 20 || strchr(hash, ' '))
            config_errors_add(errs, "%s:%zu: user \"%s\": the hash is malformed", path, lineno, line);
        else {
            c->users[c->count].name = line;
            c->users[c->count].hash = hash;
            c->count++;
        }
        line = next;
    }
    qsort(c->users, c->count, sizeof(*c->users), tls_user_cmp);
    for (size_t i = 1; i < c->count; i++)
        if (strcmp(c->users[i].name, c->users[i - 1].name) == 0)
            config_errors_add(errs, "%s: user \"%s\" is listed twice", path, c->users[i].name);
    c->dummy = tls_credentials_dummy(c->count ? c->users[0].hash : NULL);
    if (!c->dummy && errs->count == before)
        config_errors_add(errs, "tls.credentials_file %s: libcrypt cannot hash (yescrypt and "
                          "SHA-512-crypt need libcrypt1)", path);
    if (errs->count > before) {
        tls_credentials_free(c);
        return NULL;
    }
    return c;
}

struct tls_credentials *tls_credentials_ref(struct tls_credentials *c)
{
    if (c)
        __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
    return c;
}

void tls_credentials_release(struct tls_credentials *c)
{
    if (c && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
        tls_credentials_free(c);
}

size_t tls_credentials_count(const struct tls_credentials *c)
{
    return c ? c->count : 0;
}

int tls_credentials_check(const struct tls_credentials *c, const char *user, const char *password)
{
    if (!c || !user || !password)
        return 0;
    struct tls_user key = {(char *)user, NULL};
    const struct tls_user *u = bsearch(&key, c->users, c->count, sizeof(*c->users), tls_user_cmp);
    const char *stored = u ? u->hash : c->dummy;
    struct crypt_data *cd = calloc(1, sizeof(*cd));
    if (!cd || !stored) {
        free(cd);
        return 0;
    }
    const char *got = crypt_rn(password, stored, cd, sizeof(*cd));
    size_t n = strlen(stored);
    unsigned diff = !got || strlen(got) != n;
    if (!diff)
        for (size_t i = 0; i < n; i++)
            diff |= (unsigned)(got[i] ^ stored[i]);
    /* wipe: the output and the scratch area held password-derived data */
    volatile unsigned char *p = (volatile unsigned char *)cd;
    for (size_t i = 0; i < sizeof(*cd); i++)
        p[i] = 0;
    free(cd);
    return u && !diff;
}
