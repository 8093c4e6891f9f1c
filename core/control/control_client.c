/* control_client.c: the control client: sends one command to the daemon's control socket and prints the reply. */
#include "control_client.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_CONFIG VIPMTA_SYSCONFDIR "/vipmta/vipmta.json"
#define DEFAULT_SOCKET VIPMTA_LOCALSTATEDIR "/spool/vipmta/control.sock"
/* Longest reply read (a long queue list). */
#define CTL_MAX_REPLY (256u << 20)
/* Seconds to wait for the reply. */
#define CTL_TIMEOUT 60

static void control_client_usage(FILE *out)
{
    fprintf(out,
            "Usage: vipmtactl [-s SOCKET | -c CONFIG] [--json] COMMAND [ARGS]\n"
            "Talks to a running vipmta through its control socket.\n"
            "\n"
            "  -s SOCKET    the control socket (default: control_socket of the config)\n"
            "  -c CONFIG    read control_socket (else SPOOL_DIR/control.sock) from this\n"
            "               configuration (default " DEFAULT_CONFIG ")\n"
            "  -j, --json   print the daemon's JSON reply (one line) instead of tables\n"
            "  -h, --help   show this help\n"
            "\n"
            "Commands:\n"
            "  status                  version, uptime, counters, queue size\n"
            "  bindings                per binding: address, connections made and open,\n"
            "                          recipients delivered, deferred, bounced, vetoes\n"
            "  domains [DOMAIN]        per destination domain: queued (active, delayed),\n"
            "                          open connections (per binding), outcomes, last error\n"
            "  queue list [--limit N]  queued messages (oldest first, at most N, default 100)\n"
            "                          with their recipients, state, attempts, next attempt\n"
            "  queue show ID           one message: envelope and every recipient\n"
            "  queue flush DOMAIN      delayed recipients of DOMAIN are tried now\n"
            "  queue delete ID         removes the message without delivery and without DSN\n"
            "  queue bounce ID         bounces its open recipients: a DSN to the sender\n"
            "  modules                 loaded modules, versions, hooks in chain order, vetoes\n"
            "  reload                  reloads the configuration (as SIGHUP does)\n"
            "  shutdown                stops the daemon gracefully (as SIGTERM does)\n"
            "\n"
            "Recipients being delivered right now are never deleted or bounced under the\n"
            "delivery: they are deleted or bounced when their attempt ends undelivered.\n"
            "Exit status: 0 ok, 1 the daemon answered with an error, 2 usage or connection\n"
            "error. See docs/vipmtactl.md.\n");
}

static void __attribute__((noreturn, format(printf, 1, 2))) control_client_die(const char *fmt, ...)
{
    va_list ap;
    fputs("vipmtactl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

/* The socket path from `config`: control_socket, else SPOOL_DIR/control.sock,
 * relative paths resolved against the config file's directory. */
static char *control_client_socket_from_config(const char *config, int explicit)
{
    json_error_t jerr;
    struct stat st;
    char *out = NULL;

    if (stat(config, &st) != 0) {
        if (!explicit)
            return strdup(DEFAULT_SOCKET);
        control_client_die("%s: cannot read the configuration: %s (give the right file with -c, or "
                           "the socket with -s)", config, strerror(errno));
    }
    if (S_ISDIR(st.st_mode))
        control_client_die("%s: is a directory, not the configuration file (give the file, e.g. "
                           "%s/vipmta.json, with -c)", config, config);
    json_t *root = json_load_file(config, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (jerr.line < 0)
            control_client_die("%s: cannot read the configuration: %s (give the socket with -s)",
                               config, jerr.text);
        control_client_die("%s:%d:%d: cannot read the configuration: %s (vipmta -t -c %s says more; "
                           "or give the socket with -s)", config, jerr.line, jerr.column, jerr.text,
                           config);
    }
    const char *sock = json_string_value(json_object_get(root, "control_socket"));
    const char *spool = json_string_value(json_object_get(root, "spool_dir"));
    if (sock && !*sock)
        control_client_die("%s: control_socket is \"\": the control socket is disabled; set it to a path "
                "and restart vipmta", config);
    const char *dirend = strrchr(config, '/');
    int dirlen = dirend ? (int)(dirend - config) : 1;
    const char *dir = dirend ? config : ".";
    if (dirend == config)
        dirlen = 1; /* "/vipmta.json" */
    int rc;
    if (sock)
        rc = sock[0] == '/' ? asprintf(&out, "%s", sock)
                            : asprintf(&out, "%.*s/%s", dirlen, dir, sock);
    else if (spool)
        rc = spool[0] == '/' ? asprintf(&out, "%s/control.sock", spool)
                             : asprintf(&out, "%.*s/%s/control.sock", dirlen, dir, spool);
    else
        rc = asprintf(&out, "%s", DEFAULT_SOCKET);
    json_decref(root);
    if (rc < 0)
        control_client_die("out of memory");
    return out;
}

static int control_client_connect(const char *path, const char *how)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sun.sun_path))
        control_client_die("%s: the socket path is too long (at most %zu bytes)", path,
                sizeof(sun.sun_path) - 1);
    memcpy(sun.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        control_client_die("socket: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
        int err = errno;
        if (err == EACCES || err == EPERM)
            control_client_die("cannot connect to %s: %s: the socket is owner-only (mode 0600): run "
                    "vipmtactl as the user vipmta runs as", path, strerror(err));
        control_client_die("cannot connect to %s: %s: is vipmta running? (%s)", path, strerror(err), how);
    }
    return fd;
}

static void control_client_write_all(int fd, const char *buf, size_t len, const char *path)
{
    while (len) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        /* the daemon may have refused us (too many clients) and closed: its
         * reason is waiting to be read, which says more than EPIPE */
        if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
            return;
        if (n <= 0)
            control_client_die("%s: cannot send the request: %s", path, strerror(errno));
        buf += n;
        len -= (size_t)n;
    }
}

/* Reads one line (the reply); malloc'd, without the newline. */
static char *control_client_read_line(int fd, const char *path)
{
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    time_t end = time(NULL) + CTL_TIMEOUT;
    if (!buf)
        control_client_die("out of memory");
    for (;;) {
        char *nl = memchr(buf, '\n', len);
        if (nl) {
            *nl = '\0';
            return buf;
        }
        if (len + 1 >= cap) {
            if (cap >= CTL_MAX_REPLY)
                control_client_die("%s: the reply is longer than %u bytes", path, CTL_MAX_REPLY);
            char *grown = realloc(buf, cap * 2);
            if (!grown)
                control_client_die("out of memory");
            buf = grown;
            cap *= 2;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left = (int)(end - time(NULL));
        if (left <= 0 || poll(&p, 1, left * 1000) == 0)
            control_client_die("%s: no reply within %d s", path, CTL_TIMEOUT);
        ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            control_client_die("%s: cannot read the reply: %s", path, strerror(errno));
        if (n == 0)
            control_client_die("%s: the daemon closed the connection without a reply", path);
        len += (size_t)n;
    }
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {"socket", required_argument, NULL, 's'},
        {"config", required_argument, NULL, 'c'},
        {NULL, 0, NULL, 0},
    };
    const char *socket_path = NULL, *config = NULL;
    int json_out = 0, opt;

    /* "+": options stop at the command (queue list --limit N is the command's) */
    while ((opt = getopt_long(argc, argv, "+s:c:jh", longopts, NULL)) != -1) {
        switch (opt) {
        case 's':
            socket_path = optarg;
            break;
        case 'c':
            config = optarg;
            break;
        case 'j':
            json_out = 1;
            break;
        case 'h':
            control_client_usage(stdout);
            return 0;
        default:
            fprintf(stderr, "vipmtactl: run vipmtactl -h for the usage\n");
            return 2;
        }
    }
    if (socket_path && config)
        control_client_die("give either -s SOCKET or -c CONFIG, not both");
    if (optind >= argc) {
        control_client_usage(stderr);
        return 2;
    }
    const char *command = argv[optind];
    int nargs = argc - optind - 1;
    char **args = argv + optind + 1;
    /* --json may also follow the command */
    for (int i = 0; i < nargs; i++)
        if (strcmp(args[i], "--json") == 0 || strcmp(args[i], "-j") == 0) {
            json_out = 1;
            memmove(&args[i], &args[i + 1], (size_t)(nargs - i - 1) * sizeof(*args));
            nargs--;
            i--;
        }

    char *path;
    const char *how;
    if (socket_path) {
        path = strdup(socket_path);
        how = "the socket given with -s";
    } else if (config) {
        path = control_client_socket_from_config(config, 1);
        how = "control_socket in the config";
    } else {
        path = control_client_socket_from_config(DEFAULT_CONFIG, 0);
        how = "control_socket in " DEFAULT_CONFIG "; use -s or -c";
    }
    if (!path)
        control_client_die("out of memory");

    json_t *argl = json_array();
    for (int i = 0; argl && i < nargs; i++)
        json_array_append_new(argl, json_string(args[i]));
    json_t *req = json_pack("{s:s, s:o*}", "command", command, "args", argl);
    char *text = req ? json_dumps(req, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(req);
    if (!text)
        control_client_die("cannot encode the request (arguments must be UTF-8)");

    int fd = control_client_connect(path, how);
    size_t len = strlen(text);
    text[len] = '\0';
    control_client_write_all(fd, text, len, path);
    control_client_write_all(fd, "\n", 1, path);
    free(text);
    char *line = control_client_read_line(fd, path);
    close(fd);

    json_error_t jerr;
    json_t *reply = json_loads(line, 0, &jerr);
    if (!json_is_object(reply))
        control_client_die("%s: the reply is not a JSON object: %s", path, jerr.text);
    int ok = json_is_true(json_object_get(reply, "ok"));
    if (json_out) {
        printf("%s\n", line);
    } else if (ok) {
        control_client_print_reply(stdout, command, nargs, args, reply);
    } else {
        const char *err = json_string_value(json_object_get(reply, "error"));
        fprintf(stderr, "vipmtactl: %s\n", err ? err : "the daemon answered with an error");
        json_t *errs = json_object_get(reply, "errors");
        for (size_t i = 1; i < json_array_size(errs); i++)
            fprintf(stderr, "vipmtactl: %s\n", json_string_value(json_array_get(errs, i)));
    }
    free(line);
    free(path);
    json_decref(reply);
    if (fflush(stdout) != 0)
        return 2;
    return ok ? 0 : 1;
}
