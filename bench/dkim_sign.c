/* dkim_sign.c: CPU microseconds per DKIM signature of the dkim module's signer (libopendkim), RSA and Ed25519, on one thread, against a SHA-256 of the same message as the floor. */
/* Built by bench/dkim.sh with the module's dkimmod_signer.c and dkimmod_keys.c:
 *   dkim_sign KEYFILE ALG-LABEL MESSAGES SIZE
 * prints one line:
 *   dkim_sign alg=rsa-sha256 size=1024 signatures=2000 cpu_us_per_sig=812.3 wall_us_per_sig=815.0 */
#include "dkimmod.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/evp.h>

static char *message;
static size_t message_len;

static ssize_t read_message(void *arg, uint64_t offset, void *buf, size_t len)
{
    (void)arg;
    if (offset >= message_len)
        return 0;
    if (len > message_len - offset)
        len = message_len - offset;
    memcpy(buf, message + offset, len);
    return (ssize_t)len;
}

static double seconds(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: dkim_sign KEYFILE LABEL MESSAGES SIZE\n");
        return 2;
    }
    int n = atoi(argv[3]);
    size_t size = (size_t)atol(argv[4]);
    static const char head[] = "From: a@bench.test\r\nTo: b@example.test\r\nSubject: bench\r\n"
                               "Date: Sun, 1 Dec 2024 12:00:00 +0000\r\n"
                               "Message-ID: <bench@bench.test>\r\n\r\n";
    message = malloc(size + sizeof(head) + 128);
    strcpy(message, head);
    message_len = strlen(head);
    while (message_len + 80 < size + sizeof(head)) {
        memcpy(message + message_len, "0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ012345\r\n", 80);
        message_len += 80;
    }
    struct dkimmod_key key;
    char err[512];
    memset(&key, 0, sizeof(key));
    if (dkimmod_key_load(&key, argv[1], err, sizeof(err)) != 0) {
        fprintf(stderr, "dkim_sign: %s: %s\n", argv[1], err);
        return 1;
    }
    key.domain = strdup("bench.test");
    key.selector = strdup("s");
    key.file = strdup(argv[1]);
    static const char *const hdrs[] = {"From", "To", "Subject", "Date", "Message-ID", NULL};
    static const char *const over[] = {"From", "To", "Subject", "Date", NULL};
    struct dkim_lib *lib = dkimmod_lib_new(hdrs, over, 0, err, sizeof(err));
    if (!lib) {
        fprintf(stderr, "dkim_sign: %s\n", err);
        return 1;
    }
    const struct dkimmod_key *keys[1] = {&key};
    double c0 = seconds(CLOCK_PROCESS_CPUTIME_ID), w0 = seconds(CLOCK_MONOTONIC);
    for (int i = 0; i < n; i++) {
        char *value = NULL;
        if (dkimmod_sign(lib, keys, 1, DKIMMOD_CANON_RELAXED, DKIMMOD_CANON_RELAXED, "bench",
                         read_message, NULL, &value, err, sizeof(err)) != DKIMMOD_SIGN_OK) {
            fprintf(stderr, "dkim_sign: %s\n", err);
            return 1;
        }
        free(value);
    }
    double c1 = seconds(CLOCK_PROCESS_CPUTIME_ID), w1 = seconds(CLOCK_MONOTONIC);
    /* the floor: one SHA-256 over the message, as many times */
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen;
    double h0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
    for (int i = 0; i < n; i++)
        EVP_Digest(message, message_len, md, &mdlen, EVP_sha256(), NULL);
    double h1 = seconds(CLOCK_PROCESS_CPUTIME_ID);
    printf("dkim_sign alg=%s size=%zu signatures=%d cpu_us_per_sig=%.1f wall_us_per_sig=%.1f "
           "sha256_us_per_message=%.2f\n",
           argv[2], message_len, n, (c1 - c0) * 1e6 / n, (w1 - w0) * 1e6 / n, (h1 - h0) * 1e6 / n);
    dkimmod_lib_free(lib);
    dkimmod_key_clear(&key);
    free(message);
    return 0;
}
