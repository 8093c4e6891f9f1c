/* tls_sink.c: the TLS sink of bench/tls.sh: smtp-sink's job (accept mail, count it) with STARTTLS, writing smtp-sink -c's counter records for sinkwatch. */
/*
 * Built by bench/tls.sh with cc (not part of the autotools build):
 *   cc -O2 -pthread -o tls_sink bench/tls_sink.c -lssl -lcrypto
 *   tls_sink -c CERT -k KEY 127.0.0.1:PORT
 * Offers STARTTLS (and PIPELINING); one thread per connection; after each
 * message and each session it writes "sess=A quit=B mesg=C\r" to stdout, the
 * format sinkwatch reads. Counts handshakes and resumed sessions: stderr at exit.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static SSL_CTX *ctx;
static atomic_long sessions, quits, messages, handshakes, resumed;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

struct conn {
    int fd;
    SSL *ssl;
    char buf[65536];
    size_t have;
};

static void report(void)
{
    pthread_mutex_lock(&out_lock);
    printf("sess=%ld quit=%ld mesg=%ld\r", atomic_load(&sessions), atomic_load(&quits),
           atomic_load(&messages));
    fflush(stdout);
    pthread_mutex_unlock(&out_lock);
}

static int out(struct conn *c, const char *s)
{
    size_t n = strlen(s);
    int w = c->ssl ? SSL_write(c->ssl, s, (int)n) : (int)write(c->fd, s, n);
    return w == (int)n ? 0 : -1;
}

static int fill(struct conn *c)
{
    if (c->have == sizeof(c->buf))
        c->have = 0; /* a line this long: drop it */
    int r = c->ssl ? SSL_read(c->ssl, c->buf + c->have, (int)(sizeof(c->buf) - c->have))
                   : (int)read(c->fd, c->buf + c->have, sizeof(c->buf) - c->have);
    if (r <= 0)
        return -1;
    c->have += (size_t)r;
    return 0;
}

static void consume(struct conn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->have - n);
    c->have -= n;
}

static void *serve(void *arg)
{
    struct conn *c = arg;
    int data = 0;
    out(c, "220 tls-sink.bench.test ESMTP\r\n");
    for (;;) {
        if (data) {
            char *end = memmem(c->buf, c->have, "\r\n.\r\n", 5);
            if (!end) {
                if (c->have > 5)
                    consume(c, c->have - 5);
                if (fill(c))
                    break;
                continue;
            }
            consume(c, (size_t)(end - c->buf) + 5);
            data = 0;
            atomic_fetch_add(&messages, 1);
            if (out(c, "250 2.0.0 Ok: queued\r\n"))
                break;
            report();
            continue;
        }
        char *nl = memchr(c->buf, '\n', c->have);
        if (!nl) {
            if (fill(c))
                break;
            continue;
        }
        size_t len = (size_t)(nl - c->buf) + 1;
        char line[1024];
        snprintf(line, sizeof(line), "%.*s", (int)(len < sizeof(line) ? len : sizeof(line) - 1), c->buf);
        consume(c, len);
        const char *r = "250 2.0.0 Ok\r\n";
        if (!strncasecmp(line, "EHLO", 4))
            r = c->ssl ? "250-tls-sink.bench.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
                       : "250-tls-sink.bench.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n";
        else if (!strncasecmp(line, "DATA", 4)) {
            r = "354 go ahead\r\n";
            data = 1;
        } else if (!strncasecmp(line, "QUIT", 4)) {
            out(c, "221 2.0.0 bye\r\n");
            atomic_fetch_add(&quits, 1);
            break;
        } else if (!strncasecmp(line, "STARTTLS", 8) && !c->ssl) {
            if (out(c, "220 2.0.0 go ahead\r\n"))
                break;
            c->have = 0;
            c->ssl = SSL_new(ctx);
            SSL_set_fd(c->ssl, c->fd);
            if (SSL_accept(c->ssl) != 1)
                break;
            atomic_fetch_add(&handshakes, 1);
            if (SSL_session_reused(c->ssl))
                atomic_fetch_add(&resumed, 1);
            continue;
        }
        if (out(c, r))
            break;
    }
    if (c->ssl) {
        SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
    }
    close(c->fd);
    free(c);
    atomic_fetch_add(&sessions, 1);
    report();
    return NULL;
}

static void on_term(int sig)
{
    (void)sig;
    fprintf(stderr, "tls_sink: handshakes=%ld resumed=%ld messages=%ld\n", atomic_load(&handshakes),
            atomic_load(&resumed), atomic_load(&messages));
    report();
    _exit(0);
}

int main(int argc, char **argv)
{
    const char *cert = NULL, *key = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "c:k:")) != -1) {
        if (opt == 'c')
            cert = optarg;
        else if (opt == 'k')
            key = optarg;
        else
            return 2;
    }
    char host[64];
    unsigned port;
    if (!cert || !key || optind >= argc || sscanf(argv[optind], "%63[^:]:%u", host, &port) != 2) {
        fprintf(stderr, "usage: tls_sink -c CERT -k KEY HOST:PORT\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_term);
    ctx = SSL_CTX_new(TLS_server_method());
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        fprintf(stderr, "tls_sink: cannot load %s / %s\n", cert, key);
        return 1;
    }
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"sink", 4);
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &a.sin_addr);
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(ls, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(ls, 1024) != 0) {
        perror("tls_sink: bind/listen");
        return 1;
    }
    for (;;) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0)
            continue;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct conn *c = calloc(1, sizeof(*c));
        c->fd = fd;
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&at, 256 * 1024);
        if (pthread_create(&t, &at, serve, c) != 0) {
            close(fd);
            free(c);
        }
        pthread_attr_destroy(&at);
    }
}
