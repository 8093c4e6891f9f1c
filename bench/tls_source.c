/* tls_source.c: the TLS injector of bench/tls.sh: smtp-source's job (one message per SMTP session, S sessions at once) with STARTTLS, timing each handshake. */
/*
 * Built by bench/tls.sh with cc (not part of the autotools build):
 *   cc -O2 -pthread -o tls_source bench/tls_source.c -lssl -lcrypto
 *   tls_source [-T] -s SESSIONS -m MESSAGES -l SIZE HOST:PORT
 * -T: STARTTLS on every session (no certificate check: a bench, not a client).
 * Prints "sent=N failed=F handshakes=H handshake_us_avg=A seconds=S" on stdout at
 * the end; errors on stderr. Exit 0 when every message got its 250.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int use_tls;
static long total, size;
static atomic_long next, sent, failed, handshakes, handshake_ns;
static struct sockaddr_in dst;
static SSL_CTX *ctx;
static char *body;
static size_t body_len;

struct conn {
    int fd;
    SSL *ssl;
    char buf[8192];
    size_t have;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int io_write(struct conn *c, const char *p, size_t n)
{
    while (n) {
        int w = c->ssl ? SSL_write(c->ssl, p, (int)n) : (int)write(c->fd, p, n);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads one reply (all its lines); returns its code, -1 on error. */
static int reply(struct conn *c)
{
    for (;;) {
        char *nl;
        while ((nl = memchr(c->buf, '\n', c->have)) != NULL) {
            size_t len = (size_t)(nl - c->buf) + 1;
            int last = len >= 4 && c->buf[3] != '-';
            int code = atoi(c->buf);
            memmove(c->buf, c->buf + len, c->have - len);
            c->have -= len;
            if (last)
                return code;
        }
        if (c->have == sizeof(c->buf))
            return -1;
        int r = c->ssl ? SSL_read(c->ssl, c->buf + c->have, (int)(sizeof(c->buf) - c->have))
                       : (int)read(c->fd, c->buf + c->have, sizeof(c->buf) - c->have);
        if (r <= 0)
            return -1;
        c->have += (size_t)r;
    }
}

static int cmd(struct conn *c, const char *line, int want)
{
    if (io_write(c, line, strlen(line)) != 0)
        return -1;
    int code = reply(c);
    return code / 100 == want / 100 ? 0 : -1;
}

static int one_message(void)
{
    struct conn c = {.fd = socket(AF_INET, SOCK_STREAM, 0)};
    int ok = -1, one = 1;
    if (c.fd < 0)
        return -1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c.fd, (struct sockaddr *)&dst, sizeof(dst)) != 0 || reply(&c) != 220)
        goto out;
    if (cmd(&c, "EHLO source.bench.test\r\n", 250))
        goto out;
    if (use_tls) {
        if (cmd(&c, "STARTTLS\r\n", 220) || c.have)
            goto out;
        c.ssl = SSL_new(ctx);
        SSL_set_fd(c.ssl, c.fd);
        double t0 = now_s();
        if (SSL_connect(c.ssl) != 1)
            goto out;
        atomic_fetch_add(&handshake_ns, (long)((now_s() - t0) * 1e9));
        atomic_fetch_add(&handshakes, 1);
        if (cmd(&c, "EHLO source.bench.test\r\n", 250))
            goto out;
    }
    if (cmd(&c, "MAIL FROM:<a@bench.test>\r\n", 250) || cmd(&c, "RCPT TO:<b@example.test>\r\n", 250) ||
        cmd(&c, "DATA\r\n", 354) || io_write(&c, body, body_len) || reply(&c) != 250)
        goto out;
    ok = 0;
    cmd(&c, "QUIT\r\n", 221);
out:
    if (c.ssl) {
        SSL_shutdown(c.ssl);
        SSL_free(c.ssl);
    }
    close(c.fd);
    return ok;
}

static void *worker(void *arg)
{
    (void)arg;
    while (atomic_fetch_add(&next, 1) < total) {
        if (one_message() == 0)
            atomic_fetch_add(&sent, 1);
        else
            atomic_fetch_add(&failed, 1);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int sessions = 20, opt;
    total = 1000;
    size = 1024;
    while ((opt = getopt(argc, argv, "Ts:m:l:")) != -1) {
        if (opt == 'T')
            use_tls = 1;
        else if (opt == 's')
            sessions = atoi(optarg);
        else if (opt == 'm')
            total = atol(optarg);
        else if (opt == 'l')
            size = atol(optarg);
        else
            return 2;
    }
    char host[64];
    unsigned port;
    if (optind >= argc || sscanf(argv[optind], "%63[^:]:%u", host, &port) != 2) {
        fprintf(stderr, "usage: tls_source [-T] -s SESSIONS -m MESSAGES -l SIZE HOST:PORT\n");
        return 2;
    }
    dst.sin_family = AF_INET;
    dst.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, host, &dst.sin_addr);
    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    /* a message of SIZE bytes: headers, then 78-character lines */
    body = malloc((size_t)size + 256);
    int n = snprintf(body, 256, "From: a@bench.test\r\nTo: b@example.test\r\nSubject: tls bench\r\n\r\n");
    while (n < size) {
        int line = size - n > 80 ? 78 : (int)(size - n) - 2;
        if (line < 1)
            line = 1;
        memset(body + n, 'x', (size_t)line);
        n += line;
        body[n++] = '\r';
        body[n++] = '\n';
    }
    memcpy(body + n, ".\r\n", 3);
    body_len = (size_t)n + 3;
    pthread_t *t = calloc((size_t)sessions, sizeof(*t));
    double t0 = now_s();
    for (int i = 0; i < sessions; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    for (int i = 0; i < sessions; i++)
        pthread_join(t[i], NULL);
    double secs = now_s() - t0;
    long h = atomic_load(&handshakes);
    printf("sent=%ld failed=%ld handshakes=%ld handshake_us_avg=%.0f seconds=%.3f\n", atomic_load(&sent),
           atomic_load(&failed), h, h ? (double)atomic_load(&handshake_ns) / (double)h / 1000.0 : 0.0, secs);
    return atomic_load(&failed) ? 1 : 0;
}
