/* check_mod_dkim.c: Check suite for the dkim module: every bad key and option with its exact error, and messages signed through its hook on the worker pool, verified by dkimpy (RSA, Ed25519, both; canonicalizations, awkward messages, scopes, reload, errors, counters). */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dkimmod.h"
#include "fakecore.h"
#include "hooks/core/final_validation2.h"
#include "vipmta_message.h"
#include "vipmta_metrics.h"

#define KEYDIR TEST_BUILDDIR "/tmp/check_mod_dkim"
#define VERIFY TEST_SRCDIR "/lib/dkim_verify.py"
#define PYTHON "/usr/bin/python3"

/* ---- the message API, as the core gives it to the hook ---- */

struct _ec_message {
    char added[64 * 1024]; /* the fields modules added, "Name: value\r\n" each */
    size_t added_len;
    const char *stored;    /* the message as spooled */
    size_t stored_len;
    char id[32];
    int slot;
    const char *group;
    int read_error;        /* vipmta_message_read fails with EIO */
    int suspended, resumed, result;
    char reply[256];
    pthread_mutex_t lock;
    pthread_cond_t cond;
};

const char *vipmta_message_id(const ec_message *msg)
{
    return msg->id;
}

ec_binding_slot vipmta_message_binding(const ec_message *msg)
{
    return msg->slot;
}

const char *vipmta_message_binding_group(const ec_message *msg)
{
    return msg->group;
}

ssize_t vipmta_message_read(ec_message *msg, uint64_t offset, void *buf, size_t len)
{
    if (msg->read_error) {
        errno = EIO;
        return -1;
    }
    size_t total = msg->added_len + msg->stored_len, done = 0;
    while (done < len && offset + done < total) {
        uint64_t at = offset + done;
        char *dst = (char *)buf + done;
        if (at < msg->added_len)
            *dst = msg->added[at];
        else
            *dst = msg->stored[at - msg->added_len];
        done++;
    }
    return (ssize_t)done;
}

char *vipmta_message_get_headers(ec_message *msg, size_t *len)
{
    size_t total = msg->added_len + msg->stored_len;
    char *all = malloc(total + 1);
    if (!all)
        return NULL;
    ssize_t n = vipmta_message_read(msg, 0, all, total);
    if (n < 0) {
        free(all);
        return NULL;
    }
    all[n] = '\0';
    char *end = strstr(all, "\r\n\r\n");
    size_t hl = end ? (size_t)(end - all) + 4 : (size_t)n;
    all[hl] = '\0';
    if (len)
        *len = hl;
    return all;
}

int vipmta_message_add_header(ec_message *msg, const char *name, const char *value)
{
    int n = snprintf(msg->added + msg->added_len, sizeof(msg->added) - msg->added_len,
                     "%s: %s\r\n", name, value);
    if (n < 0 || (size_t)n >= sizeof(msg->added) - msg->added_len) {
        errno = E2BIG;
        return -1;
    }
    msg->added_len += (size_t)n;
    return 0;
}

vipmta_message_handle *vipmta_message_suspend(ec_message *msg)
{
    msg->suspended++;
    return (vipmta_message_handle *)msg;
}

void vipmta_message_resume(vipmta_message_handle *handle, int result, const char *reply)
{
    ec_message *msg = (ec_message *)handle;
    pthread_mutex_lock(&msg->lock);
    msg->resumed++;
    msg->result = result;
    snprintf(msg->reply, sizeof(msg->reply), "%s", reply ? reply : "");
    pthread_cond_broadcast(&msg->cond);
    pthread_mutex_unlock(&msg->lock);
}

static char validate_reply[256];
void vipmta_validate_set_reply(validate_context *ctx, const char *reply)
{
    (void)ctx;
    snprintf(validate_reply, sizeof(validate_reply), "%s", reply ? reply : "");
}

static ec_hook_core_final_validation2_func_t *hook_fn;
static void *hook_closure;
void register_core_final_validation2_hook_last(ec_hook_core_final_validation2_func_t *hook,
                                               void *closure)
{
    hook_fn = hook;
    hook_closure = closure;
}

/* The counters the module added, as "outcome/domain/algorithm" = n. */
static struct {
    char key[300];
    uint64_t n;
} counters[64];
static int ncounters;
static pthread_mutex_t counters_lock = PTHREAD_MUTEX_INITIALIZER;
int vipmta_module_counter_add(vipmta_module_ctx *m, const char *name, const char *help,
                              const char *const *labels, uint64_t n)
{
    (void)m;
    (void)help;
    char key[300] = "";
    ck_assert_str_eq(name, "vipmta_dkim_messages_total");
    for (size_t i = 0; labels[2 * i]; i++)
        snprintf(key + strlen(key), sizeof(key) - strlen(key), "%s%s", i ? "/" : "",
                 labels[2 * i + 1]);
    pthread_mutex_lock(&counters_lock);
    int c = 0;
    while (c < ncounters && strcmp(counters[c].key, key) != 0)
        c++;
    if (c == ncounters && ncounters < 64)
        snprintf(counters[ncounters++].key, sizeof(counters[0].key), "%s", key);
    if (c < 64)
        counters[c].n += n;
    pthread_mutex_unlock(&counters_lock);
    return 0;
}

static uint64_t counter(const char *key)
{
    for (int c = 0; c < ncounters; c++)
        if (strcmp(counters[c].key, key) == 0)
            return counters[c].n;
    return 0;
}

/* ---- keys, made once per run with openssl ---- */

static void run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void run(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc != 0) {
        fprintf(stderr, "check_mod_dkim: failed (%d): %s\n", rc, cmd);
        exit(99);
    }
}

/* The public key of KEYDIR/name.pem as openssl prints it (independently of the module). */
static char *public_b64(const char *name, int ed25519)
{
    static char out[8][1024]; /* verify() takes six at once */
    static int next;
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "openssl pkey -in %s/%s.pem -pubout -outform DER 2>/dev/null | %s base64 -w0",
             KEYDIR, name, ed25519 ? "tail -c 32 |" : "");
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char *buf = out[next++ % 8];
    size_t n = fread(buf, 1, 1023, p);
    buf[n] = '\0';
    pclose(p);
    ck_assert_uint_gt(n, 40);
    return buf;
}

static void make_keys(void)
{
    run("rm -rf %s && mkdir -p %s", KEYDIR, KEYDIR);
    run("cd %s && openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:2048 -out rsa.pem "
        "2>/dev/null && openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:2048 -out "
        "rsa2.pem 2>/dev/null && openssl genpkey -algorithm ed25519 -out ed.pem && "
        "openssl genpkey -algorithm ed25519 -out ed2.pem && "
        "openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:1024 -out small.pem 2>/dev/null && "
        "openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out ec.pem && "
        "openssl genpkey -algorithm ed25519 -aes-128-cbc -pass pass:secret -out enc.pem && "
        "echo 'not a key' > garbage.pem && cp rsa.pem open.pem && chmod 600 *.pem && "
        "chmod 644 open.pem && ln -s rsa.pem link.pem && mkdir dir.pem", KEYDIR);
}

/* ---- helpers ---- */

static void setup(void)
{
    fake_reset();
    hook_fn = NULL;
    hook_closure = NULL;
    ncounters = 0;
    validate_reply[0] = '\0';
}

static void teardown(void)
{
}

/* The error line that contains `part`. */
static int error_containing(const char *part)
{
    for (int i = 0; i < fake_nerrors; i++)
        if (strstr(fake_errors[i], part))
            return 1;
    return 0;
}

#define ck_assert_error_part(part)                                                           \
    do {                                                                                     \
        if (!error_containing(part))                                                         \
            fake_dump();                                                                     \
        ck_assert_msg(error_containing(part), "no error containing: %s", part);             \
    } while (0)

/* A config entry with the options text `opts` (KEYDIR is substituted for %K). */
static const char *entry(const char *fmt)
{
    static char buf[8192];
    char *o = buf;
    for (const char *p = fmt; *p && o < buf + sizeof(buf) - 300; p++) {
        if (p[0] == '%' && p[1] == 'K') {
            o += sprintf(o, "%s", KEYDIR);
            p++;
        } else
            *o++ = *p;
    }
    *o = '\0';
    return buf;
}

/* Configures `text` (an entry) expecting failure. */
static void configure_fails(const char *text)
{
    vipmta_module_ctx *m = fake_module(entry(text));
    ck_assert_int_ne(fake_configure(m), 0);
    fake_stop(m);
}

#define RSA_KEY "{\"domain\": \"example.test\", \"selector\": \"r1\", \"file\": \"%K/rsa.pem\"}"
#define ED_KEY "{\"domain\": \"example.test\", \"selector\": \"e1\", \"file\": \"%K/ed.pem\"}"

/* ---- keys and options: the exact errors ---- */

START_TEST(test_bad_key_files)
{
    char line[1024];
    configure_fails("{\"options\": {\"keys\": ["
                    "{\"domain\": \"a.test\", \"selector\": \"s\", \"file\": \"%K/small.pem\"},"
                    "{\"domain\": \"b.test\", \"selector\": \"s\", \"file\": \"%K/open.pem\"},"
                    "{\"domain\": \"c.test\", \"selector\": \"s\", \"file\": \"%K/link.pem\"},"
                    "{\"domain\": \"d.test\", \"selector\": \"s\", \"file\": \"%K/missing.pem\"},"
                    "{\"domain\": \"e.test\", \"selector\": \"s\", \"file\": \"%K/ec.pem\"},"
                    "{\"domain\": \"f.test\", \"selector\": \"s\", \"file\": \"%K/enc.pem\"},"
                    "{\"domain\": \"g.test\", \"selector\": \"s\", \"file\": \"%K/garbage.pem\"},"
                    "{\"domain\": \"h.test\", \"selector\": \"s\", \"file\": \"%K/dir.pem\"},"
                    "{\"domain\": \"i.test\", \"selector\": \"s\", \"file\": \"%K/ed.pem\","
                    " \"algorithm\": \"rsa-sha256\"}]}}");
    snprintf(line, sizeof(line), "options.keys[0].file: %s/small.pem: key size: expected an RSA "
             "key of at least 2048 bits, found 1024 bits: receivers treat shorter keys as "
             "unsigned; make a new one with openssl genpkey -algorithm rsa -pkeyopt "
             "rsa_keygen_bits:2048", KEYDIR);
    ck_assert_error(line);
    snprintf(line, sizeof(line), "options.keys[1].file: %s/open.pem: permissions: expected no "
             "access for group or others, found mode 0644: a private key must stay private; run "
             "chmod 600 on it (and replace the key if others could read it)", KEYDIR);
    ck_assert_error(line);
    snprintf(line, sizeof(line), "options.keys[2].file: %s/link.pem: is a symbolic link: name "
             "the key file itself", KEYDIR);
    ck_assert_error(line);
    snprintf(line, sizeof(line), "options.keys[3].file: %s/missing.pem: cannot open it: No such "
             "file or directory: create the key (openssl genpkey, see docs/modules/dkim.md) or "
             "fix the path", KEYDIR);
    ck_assert_error(line);
    snprintf(line, sizeof(line), "options.keys[4].file: %s/ec.pem: key type: expected an RSA or "
             "Ed25519 private key, found id-ecPublicKey: DKIM signs with rsa-sha256 or "
             "ed25519-sha256 only", KEYDIR);
    ck_assert_error(line);
    snprintf(line, sizeof(line), "options.keys[5].file: %s/enc.pem: cannot read a private key "
             "from it (", KEYDIR);
    ck_assert_error_part(line);
    ck_assert_error_part("): expected an unencrypted PEM private key, as openssl genpkey writes");
    snprintf(line, sizeof(line), "options.keys[6].file: %s/garbage.pem: cannot read a private "
             "key from it (", KEYDIR);
    ck_assert_error_part(line);
    snprintf(line, sizeof(line), "options.keys[7].file: %s/dir.pem: is not a regular file: name "
             "the PEM key file", KEYDIR);
    ck_assert_error(line);
    snprintf(line, sizeof(line), "options.keys[8].algorithm: is \"rsa-sha256\" but %s/ed.pem "
             "holds an Ed25519 key: fix the algorithm or name the right file", KEYDIR);
    ck_assert_error(line);
    ck_assert_int_eq(fake_nerrors, 9);
}
END_TEST

START_TEST(test_bad_options)
{
    configure_fails("{\"options\": {\"keys\": [" RSA_KEY ","
                    "{\"domain\": \"example.test\", \"selector\": \"r2\", \"file\": \"%K/rsa2.pem\"},"
                    "{\"domain\": \"-bad..test\", \"selector\": \"s\", \"file\": \"%K/ed.pem\"},"
                    "{\"domain\": \"x.test\", \"file\": \"rel.pem\", \"color\": 1},"
                    "{\"domain\": \"y.test\", \"selector\": \"a b\", \"file\": \"%K/ed.pem\"}, 7],"
                    " \"fallback_domain\": \"esp.test\", \"canonicalization\": \"relaxed\","
                    " \"on_error\": \"drop\", \"workers\": 0, \"expire\": -1,"
                    " \"headers\": [\"To\", \"Received\", \"Bad Name\"], \"oversign\": \"From\","
                    " \"sign\": \"yes\", \"selector\": \"x\"}}");
    ck_assert_error("options: unknown key \"selector\" (allowed: sign, keys, fallback_domain, "
                    "canonicalization, on_error, headers, oversign, expire, workers, "
                    "binding_groups)");
    ck_assert_error("options.keys[1]: a second rsa key for example.test (selector \"r2\"; the "
                    "first has \"r1\"): one key per algorithm and domain signs (list one RSA and "
                    "one Ed25519 key to sign twice; see selector rotation in "
                    "docs/modules/dkim.md)");
    ck_assert_error("options.keys[2].domain: must be a domain name, not \"-bad..test\"");
    ck_assert_error("options.keys[3]: unknown key \"color\" (allowed: domain, selector, file, "
                    "algorithm)");
    ck_assert_error("options.keys[3].selector: missing: give the selector (s=) its public key "
                    "is published under (SELECTOR._domainkey.DOMAIN)");
    ck_assert_error("options.keys[3].file: must be an absolute path, not \"rel.pem\"");
    ck_assert_error("options.keys[4].selector: must be a selector (letters, digits, '-', '_', "
                    "dot-separated labels), not \"a b\"");
    ck_assert_error("options.keys[5]: must be an object with \"domain\", \"selector\" and "
                    "\"file\", not an integer");
    ck_assert_error("options.fallback_domain: no key for \"esp.test\" here: add one to keys (the "
                    "fallback domain signs for senders without a key)");
    ck_assert_error("options.canonicalization: must be \"relaxed/relaxed\", \"relaxed/simple\", "
                    "\"simple/relaxed\" or \"simple/simple\", not \"relaxed\"");
    ck_assert_error("options.on_error: must be \"accept\" or \"defer\", not \"drop\"");
    ck_assert_error("options.workers: must be an integer from 1 to 64, not 0");
    ck_assert_error("options.expire: must be an integer from 0 to 31622400, not -1");
    ck_assert_error("options.headers[1]: \"Received\" must not be signed: hops on the way add "
                    "or change it, which would break the signature");
    ck_assert_error("options.headers[2]: must be a header field name (letters, digits, '-', "
                    "'_'; up to 64), not \"Bad Name\"");
    ck_assert_error("options.oversign: must be a list of header field names, not a string");
    ck_assert_error("options.sign: must be true or false, not a string");
}
END_TEST

START_TEST(test_headers_need_from)
{
    configure_fails("{\"options\": {\"keys\": [" RSA_KEY "], \"headers\": [\"To\", \"Subject\"]}}");
    ck_assert_error("options.headers: must include \"From\" (RFC 6376 requires it signed)");
    ck_assert_int_eq(fake_nerrors, 1);
}
END_TEST

START_TEST(test_scope_errors)
{
    configure_fails("{\"options\": {\"keys\": [" RSA_KEY "],"
                    " \"binding_groups\": {\"bulk\": {\"workers\": 2, \"fallback_domain\": \"n.test\"}}},"
                    " \"bindings\": {\"vip1\": {\"headers\": [\"From\"], \"on_error\": 1}}}");
    ck_assert_error("options.binding_groups.bulk: unknown key \"workers\" (allowed: sign, keys, "
                    "fallback_domain, canonicalization, on_error)");
    ck_assert_error("options.binding_groups.bulk.fallback_domain: no key for \"n.test\" here or "
                    "in the global options: add one to keys (the fallback domain signs for "
                    "senders without a key)");
    ck_assert_error("bindings.vip1: unknown key \"headers\" (allowed: sign, keys, "
                    "fallback_domain, canonicalization, on_error)");
    ck_assert_error("bindings.vip1.on_error: must be \"accept\" or \"defer\", not an integer");
}
END_TEST

START_TEST(test_good_config_and_txt)
{
    vipmta_module_ctx *m = fake_start(entry("{\"options\": {\"keys\": [" RSA_KEY "," ED_KEY "],"
                                            " \"workers\": 2}}"));
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_nonnull(hook_fn);
    ck_assert_int_eq(fake_nerrors, 0);
    /* the TXT record the module prints is the public key openssl derives */
    struct dkimmod_key k;
    char err[256], want[1200];
    memset(&k, 0, sizeof(k));
    ck_assert_int_eq(dkimmod_key_load(&k, KEYDIR "/rsa.pem", err, sizeof(err)), 0);
    snprintf(want, sizeof(want), "v=DKIM1; k=rsa; p=%s", public_b64("rsa", 0));
    ck_assert_str_eq(k.txt, want);
    ck_assert_int_eq(k.bits, 2048);
    dkimmod_key_clear(&k);
    ck_assert_int_eq(dkimmod_key_load(&k, KEYDIR "/ed.pem", err, sizeof(err)), 0);
    snprintf(want, sizeof(want), "v=DKIM1; k=ed25519; p=%s", public_b64("ed", 1));
    ck_assert_str_eq(k.txt, want);
    ck_assert_int_eq(k.alg, DKIMMOD_ALG_ED25519);
    dkimmod_key_clear(&k);
    fake_stop(m);
}
END_TEST

/* ---- signing through the hook ---- */

static ec_message *message(const char *stored)
{
    ec_message *msg = calloc(1, sizeof(*msg));
    ck_assert_ptr_nonnull(msg);
    msg->stored = stored;
    msg->stored_len = strlen(stored);
    snprintf(msg->id, sizeof(msg->id), "00000000000000a1");
    msg->slot = 0;
    pthread_mutex_init(&msg->lock, NULL);
    pthread_cond_init(&msg->cond, NULL);
    return msg;
}

static void message_free(ec_message *msg)
{
    pthread_mutex_destroy(&msg->lock);
    pthread_cond_destroy(&msg->cond);
    free(msg);
}

/* Runs the hook and waits for the worker to resume the message; returns
 * the hook's result. */
static int sign(ec_message *msg)
{
    ck_assert_ptr_nonnull(hook_fn);
    int r = hook_fn(hook_closure, msg, NULL, NULL);
    if (msg->suspended) {
        pthread_mutex_lock(&msg->lock);
        while (!msg->resumed)
            pthread_cond_wait(&msg->cond, &msg->lock);
        pthread_mutex_unlock(&msg->lock);
        ck_assert_int_eq(msg->resumed, 1);
        ck_assert_int_eq(r, EC_HOOK_CONT);
    }
    return r;
}

/* Writes the message as sent (added fields, then the stored message) and
 * verifies it with dkimpy: its exit status (0: `expect` signatures, all good). */
static int verify(ec_message *msg, int expect, const char *alter_from, const char *alter_to)
{
    char path[256], cmd[4096];
    snprintf(path, sizeof(path), "%s/msg.%d.eml", KEYDIR, (int)getpid());
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    char *all = malloc(msg->added_len + msg->stored_len + 1);
    memcpy(all, msg->added, msg->added_len);
    memcpy(all + msg->added_len, msg->stored, msg->stored_len);
    all[msg->added_len + msg->stored_len] = '\0';
    if (alter_from) { /* a hop changed the message on the way */
        char *p = strstr(all, alter_from);
        ck_assert_ptr_nonnull(p);
        memcpy(p, alter_to, strlen(alter_to));
    }
    fwrite(all, 1, msg->added_len + msg->stored_len, f);
    fclose(f);
    free(all);
    snprintf(cmd, sizeof(cmd),
             PYTHON " " VERIFY " --expect %d"
             " --txt 'r1._domainkey.example.test=v=DKIM1; k=rsa; p=%s'"
             " --txt 'r2._domainkey.example.test=v=DKIM1; k=rsa; p=%s'"
             " --txt 'e1._domainkey.example.test=v=DKIM1; k=ed25519; p=%s'"
             " --txt 'e2._domainkey.example.test=v=DKIM1; k=ed25519; p=%s'"
             " --txt 'esp._domainkey.esp.test=v=DKIM1; k=rsa; p=%s'"
             " --txt 'v1._domainkey.example.test=v=DKIM1; k=ed25519; p=%s'"
             " %s >&2",
             expect, public_b64("rsa", 0), public_b64("rsa2", 0), public_b64("ed", 1),
             public_b64("ed2", 1), public_b64("rsa2", 0), public_b64("ed2", 1), path);
    int rc = system(cmd);
    if (getenv("DKIM_KEEP"))
        fprintf(stderr, "kept %s\n", path);
    else
        unlink(path);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* The value of tag `tag` of the added DKIM-Signature number `n` (0-based). */
static const char *sig_tag(ec_message *msg, int n, const char *tag)
{
    static char out[256];
    const char *p = msg->added;
    for (int i = 0; i <= n; i++) {
        p = strstr(p + (i ? 1 : 0), "DKIM-Signature: ");
        ck_assert_ptr_nonnull(p);
    }
    char pat[16];
    snprintf(pat, sizeof(pat), " %s=", tag);
    const char *end = strstr(p + 1, "DKIM-Signature: ");
    const char *t = strstr(p, pat);
    if (!t || (end && t > end)) {
        snprintf(pat, sizeof(pat), "\t%s=", tag);
        t = strstr(p, pat);
        if (!t || (end && t > end))
            return NULL;
    }
    t += strlen(pat);
    size_t len = strcspn(t, ";\r");
    snprintf(out, sizeof(out), "%.*s", (int)len, t);
    return out;
}

#define PLAIN_MESSAGE                                                                        \
    "Received: from client.test (127.0.0.1) by mta.test with ESMTP id 00000000000000a1;\r\n" \
    "\tSun, 1 Dec 2024 12:00:00 +0000\r\n"                                                   \
    "From: Alice <alice@Example.TEST>\r\n"                                                   \
    "To: bob@dest.test\r\n"                                                                  \
    "Subject: hello\r\n"                                                                     \
    "Date: Sun, 1 Dec 2024 12:00:00 +0000\r\n"                                               \
    "Message-ID: <1@example.test>\r\n"                                                       \
    "\r\n"                                                                                   \
    "Hello Bob.\r\n"

static vipmta_module_ctx *start(const char *opts)
{
    vipmta_module_ctx *m = fake_start(entry(opts));
    ck_assert_ptr_nonnull(m);
    return m;
}

START_TEST(test_sign_rsa_ed25519_dual)
{
    static const char *const configs[] = {
        "{\"options\": {\"keys\": [" RSA_KEY "]}}",
        "{\"options\": {\"keys\": [" ED_KEY "]}}",
        "{\"options\": {\"keys\": [" RSA_KEY ", " ED_KEY "], \"expire\": 86400}}",
    };
    for (int c = 0; c < 3; c++) {
        vipmta_module_ctx *m = start(configs[c]);
        ec_message *msg = message(PLAIN_MESSAGE);
        ck_assert_int_eq(sign(msg), EC_HOOK_CONT);
        ck_assert_int_eq(msg->result, EC_HOOK_CONT);
        int n = c == 2 ? 2 : 1;
        ck_assert_int_eq(verify(msg, n, NULL, NULL), 0);
        ck_assert_str_eq(sig_tag(msg, 0, "a"), c == 1 ? "ed25519-sha256" : "rsa-sha256");
        ck_assert_str_eq(sig_tag(msg, 0, "d"), "example.test");
        ck_assert_str_eq(sig_tag(msg, 0, "c"), "relaxed/relaxed");
        ck_assert_ptr_null(sig_tag(msg, 0, "l")); /* never a body length */
        ck_assert_ptr_nonnull(sig_tag(msg, 0, "t"));
        const char *h = sig_tag(msg, 0, "h");
        ck_assert_ptr_null(strstr(h, "Received")); /* the core's trace field is not signed */
        ck_assert_str_eq(h, "From:To:Subject:Date:Message-ID:From:To:Subject:Date");
        if (c == 2) {
            ck_assert_str_eq(sig_tag(msg, 1, "a"), "ed25519-sha256");
            long long t = atoll(sig_tag(msg, 0, "t")), x = atoll(sig_tag(msg, 0, "x"));
            ck_assert_int_eq(x - t, 86400);
            ck_assert_uint_eq(counter("signed/example.test/ed25519-sha256"), 2); /* c = 1 too */
        } else {
            ck_assert_ptr_null(sig_tag(msg, 0, "x"));
        }
        /* a message changed on the way fails: the check can fail */
        ck_assert_int_ne(verify(msg, n, "Hello Bob.", "Hello Eve."), 0);
        ck_assert_int_ne(verify(msg, n, "Subject: hello", "Subject: HELLO"), 0);
        message_free(msg);
        fake_stop(m);
    }
    ck_assert_uint_eq(counter("signed/example.test/rsa-sha256"), 2);
}
END_TEST

START_TEST(test_awkward_messages_verify)
{
    static const char *const messages[] = {
        /* long folded headers */
        "Received: from a by b;\r\n\tSun, 1 Dec 2024 12:00:00 +0000\r\n"
        "From: \"A very long display name that goes on and on and on\"\r\n"
        "  <alice@example.test>\r\n"
        "To: a@dest.test, b@dest.test, c@dest.test, d@dest.test, e@dest.test, f@dest.test,\r\n"
        "\tg@dest.test, h@dest.test, i@dest.test, j@dest.test, k@dest.test, l@dest.test,\r\n"
        "\t m@dest.test\r\n"
        "Subject: =?UTF-8?B?w6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOp?=\r\n"
        " =?UTF-8?B?w6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOp?=\r\n"
        "\r\n"
        "body\r\n",
        /* an 8-bit body */
        "From: alice@example.test\r\nTo: b@dest.test\r\nSubject: 8bit\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        "gr\xc3\xbc\xc3\x9f dich, \xe2\x82\xac 5\r\n\xff\xfe raw octets\r\n",
        /* an empty body */
        "From: alice@example.test\r\nTo: b@dest.test\r\nSubject: empty\r\n\r\n",
        /* no body at all: the header section alone */
        "From: alice@example.test\r\nTo: b@dest.test\r\nSubject: nobody\r\n",
        /* trailing blank lines */
        "From: alice@example.test\r\nTo: b@dest.test\r\nSubject: blank\r\n\r\n"
        "text\r\n\r\n\r\n\r\n",
        /* lines that start with a dot (stored unstuffed), and a lone dot */
        "From: alice@example.test\r\nTo: b@dest.test\r\nSubject: dots\r\n\r\n"
        ".leading dot\r\n..two dots\r\n.\r\nend\r\n",
        /* white space the relaxed canonicalization folds */
        "From:alice@example.test\r\nTo:   b@dest.test  \r\nSubject:\tspaces \t here\r\n\r\n"
        "a  b \t c   \r\n\r\n",
    };
    static const char *const canons[] = {"relaxed/relaxed", "simple/simple", "relaxed/simple",
                                         "simple/relaxed"};
    for (int c = 0; c < 4; c++) {
        char opts[1024];
        snprintf(opts, sizeof(opts), "{\"options\": {\"keys\": [%s, %s], \"canonicalization\": \"%s\"}}",
                 RSA_KEY, ED_KEY, canons[c]);
        vipmta_module_ctx *m = start(opts);
        for (size_t i = 0; i < sizeof(messages) / sizeof(messages[0]); i++) {
            ec_message *msg = message(messages[i]);
            sign(msg);
            ck_assert_int_eq(msg->result, EC_HOOK_CONT);
            ck_assert_str_eq(sig_tag(msg, 0, "c"), canons[c]);
            ck_assert_msg(verify(msg, 2, NULL, NULL) == 0, "message %zu, %s", i, canons[c]);
            message_free(msg);
        }
        fake_stop(m);
    }
}
END_TEST

START_TEST(test_choice_of_key)
{
    vipmta_module_ctx *m =
        start("{\"options\": {\"keys\": [" RSA_KEY ","
              " {\"domain\": \"esp.test\", \"selector\": \"esp\", \"file\": \"%K/rsa2.pem\"}],"
              " \"fallback_domain\": \"esp.test\", \"on_error\": \"accept\","
              " \"binding_groups\": {\"bulk\": {\"keys\": [{\"domain\": \"example.test\","
              " \"selector\": \"e2\", \"file\": \"%K/ed2.pem\"}]},"
              "  \"quiet\": {\"sign\": false}}},"
              " \"bindings\": {\"vip1\": {\"keys\": [{\"domain\": \"example.test\","
              " \"selector\": \"v1\", \"file\": \"%K/ed2.pem\"}]},"
              " \"vip2\": {\"fallback_domain\": null}}}");
    ck_assert_log("binding_groups.bulk: no binding has it as its first group: check the name "
                  "against the configuration's binding_groups");
    /* the From domain has a key: aligned with it */
    ec_message *msg = message(PLAIN_MESSAGE);
    sign(msg);
    ck_assert_str_eq(sig_tag(msg, 0, "d"), "example.test");
    ck_assert_str_eq(sig_tag(msg, 0, "s"), "r1");
    ck_assert_int_eq(verify(msg, 1, NULL, NULL), 0);
    message_free(msg);
    /* a sender without a key: the fallback domain (the ESP's d=) */
    msg = message("From: someone@customer.test\r\nTo: x@dest.test\r\n\r\nhi\r\n");
    sign(msg);
    ck_assert_str_eq(sig_tag(msg, 0, "d"), "esp.test");
    ck_assert_int_eq(verify(msg, 1, NULL, NULL), 0);
    message_free(msg);
    /* the binding's own key wins over the global one */
    msg = message(PLAIN_MESSAGE);
    msg->slot = 1;
    sign(msg);
    ck_assert_str_eq(sig_tag(msg, 0, "s"), "v1");
    ck_assert_int_eq(verify(msg, 1, NULL, NULL), 0);
    message_free(msg);
    /* then the binding group's */
    msg = message(PLAIN_MESSAGE);
    msg->slot = 2;
    msg->group = "bulk";
    sign(msg);
    ck_assert_str_eq(sig_tag(msg, 0, "s"), "e2");
    ck_assert_int_eq(verify(msg, 1, NULL, NULL), 0);
    message_free(msg);
    /* a group that signs nothing: no suspension, no field, counted */
    msg = message(PLAIN_MESSAGE);
    msg->group = "quiet";
    ck_assert_int_eq(sign(msg), EC_HOOK_CONT);
    ck_assert_int_eq(msg->suspended, 0);
    ck_assert_uint_eq(msg->added_len, 0);
    message_free(msg);
    /* vip2 turned the fallback off: a sender without a key is skipped, logged, counted */
    msg = message("From: someone@customer.test\r\nTo: x@dest.test\r\n\r\nhi\r\n");
    msg->slot = 2;
    sign(msg);
    ck_assert_int_eq(msg->result, EC_HOOK_CONT);
    ck_assert_uint_eq(msg->added_len, 0);
    ck_assert_log("message 00000000000000a1: not signed: no key for the From domain "
                  "customer.test and no fallback_domain");
    message_free(msg);
    /* no From field at all */
    msg = message("To: x@dest.test\r\nSubject: no from\r\n\r\nhi\r\n");
    msg->slot = 2;
    sign(msg);
    ck_assert_log("message 00000000000000a1: not signed: no From domain and no fallback_domain");
    message_free(msg);
    ck_assert_uint_eq(counter("skipped//"), 3);
    ck_assert_uint_eq(counter("signed/esp.test/rsa-sha256"), 1);
    fake_stop(m);
}
END_TEST

START_TEST(test_from_domain)
{
    static const struct {
        const char *headers, *domain;
    } cases[] = {
        {"From: a@b.test\r\n\r\n", "b.test"},
        {"from : \"Doe, John\" <j@Sub.Example.TEST.>\r\n\r\n", "sub.example.test"},
        {"Subject: x\r\nFrom: (comment) x@c.test (more)\r\n\r\n", "c.test"},
        {"From: Long Name\r\n <y@folded.test>\r\nTo: z@other.test\r\n\r\n", "folded.test"},
        {"Sender: s@sender.test\r\nFrom: first@one.test, second@two.test\r\n\r\n", "one.test"},
        {"X-From: no@x.test\r\nFrom: a@real.test\r\n\r\n", "real.test"},
        {"Subject: none\r\n\r\nFrom: body@body.test\r\n", NULL},
        {"From: undisclosed\r\n\r\n", NULL},
        {"From: a@bad domain\r\n\r\n", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[DKIMMOD_NAME_MAX + 1] = "";
        int r = dkimmod_from_domain(cases[i].headers, strlen(cases[i].headers), out, sizeof(out));
        if (cases[i].domain) {
            ck_assert_msg(r == 0, "case %zu", i);
            ck_assert_str_eq(out, cases[i].domain);
        } else {
            ck_assert_msg(r != 0, "case %zu gave %s", i, out);
        }
    }
}
END_TEST

START_TEST(test_errors_accept_or_defer)
{
    vipmta_module_ctx *m = start("{\"options\": {\"keys\": [" RSA_KEY "]},"
                                 " \"bindings\": {\"vip1\": {\"on_error\": \"accept\"}}}");
    /* the default: deferred with a 451, nothing added */
    ec_message *msg = message(PLAIN_MESSAGE);
    msg->read_error = 1;
    sign(msg);
    ck_assert_int_eq(msg->result, EC_HOOK_RETRY);
    ck_assert_str_eq(msg->reply, "451 4.7.5 Message could not be DKIM-signed, try again later");
    ck_assert_uint_eq(msg->added_len, 0);
    ck_assert_log("message 00000000000000a1: not signed: cannot read its header section: "
                  "Input/output error; deferred with 451 (on_error \"defer\")");
    message_free(msg);
    /* accepted unsigned with a warning */
    msg = message(PLAIN_MESSAGE);
    msg->read_error = 1;
    msg->slot = 1;
    sign(msg);
    ck_assert_int_eq(msg->result, EC_HOOK_CONT);
    ck_assert_uint_eq(msg->added_len, 0);
    ck_assert_log("message 00000000000000a1: not signed: cannot read its header section: "
                  "Input/output error; accepted unsigned (on_error \"accept\")");
    ck_assert_uint_eq(counter("failed//"), 2);
    message_free(msg);
    fake_stop(m);
}
END_TEST

/* A key libopendkim refuses at signing time (a corrupt key in memory: it
 * cannot happen from a checked file) fails the signature, as configured. */
START_TEST(test_signing_failure)
{
    struct dkimmod_key k;
    char err[512];
    memset(&k, 0, sizeof(k));
    ck_assert_int_eq(dkimmod_key_load(&k, KEYDIR "/rsa.pem", err, sizeof(err)), 0);
    k.domain = strdup("example.test");
    k.selector = strdup("r1");
    k.file = strdup(KEYDIR "/rsa.pem");
    memcpy(k.pem + 40, "AAAAAAAAAAAAAAAAAAAA", 20); /* corrupt the key */
    static const char *const hdrs[] = {"From", NULL};
    struct dkim_lib *lib = dkimmod_lib_new(hdrs, hdrs, 0, err, sizeof(err));
    ck_assert_ptr_nonnull(lib);
    ec_message *msg = message(PLAIN_MESSAGE);
    const struct dkimmod_key *keys[1] = {&k};
    char *values[1];
    enum dkimmod_sign_result r =
        dkimmod_sign(lib, keys, 1, DKIMMOD_CANON_RELAXED, DKIMMOD_CANON_RELAXED, "id1",
                     (dkimmod_read_fn)vipmta_message_read, msg, values, err, sizeof(err));
    ck_assert_int_eq(r, DKIMMOD_SIGN_FAILED);
    ck_assert_msg(strncmp(err, "libopendkim: signing failed for d=example.test s=r1 "
                          "(rsa-sha256, key ", 69) == 0, "%s", err);
    ck_assert_ptr_null(values[0]);
    message_free(msg);
    dkimmod_lib_free(lib);
    dkimmod_key_clear(&k);
}
END_TEST

START_TEST(test_reload_swaps_keys)
{
    vipmta_module_ctx *m = start("{\"options\": {\"keys\": [" RSA_KEY "]}}");
    ec_message *msg = message(PLAIN_MESSAGE);
    sign(msg);
    ck_assert_str_eq(sig_tag(msg, 0, "s"), "r1");
    message_free(msg);
    /* a new selector: the next message uses it */
    ck_assert_int_eq(fake_reload(m, entry("{\"options\": {\"keys\": [{\"domain\": "
                                          "\"example.test\", \"selector\": \"r2\", \"file\": "
                                          "\"%K/rsa2.pem\"}], \"workers\": 3}}")),
                     0);
    msg = message(PLAIN_MESSAGE);
    sign(msg);
    ck_assert_str_eq(sig_tag(msg, 0, "s"), "r2");
    ck_assert_int_eq(verify(msg, 1, NULL, NULL), 0);
    message_free(msg);
    /* a bad key: refused with the file named, the keys in force stay */
    ck_assert_int_ne(fake_reload(m, entry("{\"options\": {\"keys\": [{\"domain\": "
                                          "\"example.test\", \"selector\": \"r3\", \"file\": "
                                          "\"%K/open.pem\"}]}}")),
                     0);
    ck_assert_error_part("options.keys[0].file: " KEYDIR "/open.pem: permissions:");
    msg = message(PLAIN_MESSAGE);
    sign(msg);
    ck_assert_str_eq(sig_tag(msg, 0, "s"), "r2");
    message_free(msg);
    fake_stop(m);
}
END_TEST

/* Many messages at once on a pool of 4: each is signed once, all verify. */
START_TEST(test_pool_many)
{
    vipmta_module_ctx *m = start("{\"options\": {\"keys\": [" ED_KEY "], \"workers\": 4}}");
    enum { N = 40 };
    ec_message *msgs[N];
    for (int i = 0; i < N; i++) {
        msgs[i] = message(PLAIN_MESSAGE);
        ck_assert_int_eq(hook_fn(hook_closure, msgs[i], NULL, NULL), EC_HOOK_CONT);
    }
    for (int i = 0; i < N; i++) {
        pthread_mutex_lock(&msgs[i]->lock);
        while (!msgs[i]->resumed)
            pthread_cond_wait(&msgs[i]->cond, &msgs[i]->lock);
        pthread_mutex_unlock(&msgs[i]->lock);
        ck_assert_int_eq(msgs[i]->resumed, 1);
        ck_assert_ptr_null(strstr(strstr(msgs[i]->added, "DKIM-Signature") + 1, "DKIM-Signature"));
    }
    ck_assert_int_eq(verify(msgs[N - 1], 1, NULL, NULL), 0);
    for (int i = 0; i < N; i++)
        message_free(msgs[i]);
    ck_assert_uint_eq(counter("signed/example.test/ed25519-sha256"), N);
    fake_stop(m);
}
END_TEST

int main(void)
{
    make_keys();
    Suite *s = suite_create("mod_dkim");
    fake_tcase(s, "options", setup, teardown, test_bad_key_files, test_bad_options,
               test_headers_need_from, test_scope_errors, test_good_config_and_txt,
               test_from_domain, NULL);
    TCase *tc = fake_tcase(s, "signing", setup, teardown, test_sign_rsa_ed25519_dual,
                           test_awkward_messages_verify, test_choice_of_key,
                           test_errors_accept_or_defer, test_signing_failure,
                           test_reload_swaps_keys, test_pool_many, NULL);
    tcase_set_timeout(tc, 120);
    return fake_run(s);
}
