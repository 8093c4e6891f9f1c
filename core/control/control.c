/* control.c: the control socket: a unix socket on the event loop, one JSON request and one JSON reply per line. */
#include "control.h"
#include "control_internal.h"
#include "daemon/daemon.h"
#include "log/log.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Clients connected at once; more are answered with an error and closed. */
#define CONTROL_MAX_CLIENTS 32
/* A client idle this long (seconds) is closed. */
#define CONTROL_IDLE_TIMEOUT 300

struct control_client {
    struct bufferevent *bev;
    struct control_client *prev, *next;
    enum control_after after; /* what to do once the reply is written */
    int closing;              /* close once the output is written */
};

static struct {
    struct evconnlistener *listener;
    char *path;
    dev_t dev;
    ino_t ino;
    struct control_client *clients;
    int nclients;
} ctl;

char *control_socket_path(const struct vipmta_config *cfg)
{
    char *p = NULL;
    if (cfg->control_socket) {
        if (!*cfg->control_socket)
            return NULL;
        return strdup(cfg->control_socket);
    }
    if (asprintf(&p, "%s/control.sock", cfg->spool_dir ? cfg->spool_dir : ".") < 0)
        return NULL;
    return p;
}

json_t *control_error(const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    json_t *reply = json_pack("{s:b, s:s}", "ok", 0, "error", msg ? msg : "out of memory");
    free(msg);
    return reply;
}

static void control_client_free(struct control_client *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        ctl.clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    bufferevent_free(c->bev);
    ctl.nclients--;
    free(c);
}

/* Writes `reply` (consumed) as one line. */
static void control_send(struct control_client *c, json_t *reply)
{
    char *text = reply ? json_dumps(reply, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (text)
        evbuffer_add_printf(out, "%s\n", text);
    else
        evbuffer_add_printf(out, "{\"ok\":false,\"error\":\"out of memory\"}\n");
    free(text);
    json_decref(reply);
}

static void control_handle_line(struct control_client *c, const char *line, size_t len)
{
    json_error_t jerr;
    /* a key given twice is refused, as in the configuration: which one would
     * count ({"command":"status","command":"shutdown"}) is not guessed */
    json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *reply;
    enum control_after after = CONTROL_AFTER_NOTHING;

    if (!req)
        reply = control_error("bad request: not JSON (column %d: %s); send one object per line "
                              "like {\"command\":\"status\"}", jerr.column, jerr.text);
    else if (!json_is_object(req))
        reply = control_error("bad request: expected a JSON object like "
                              "{\"command\":\"status\",\"args\":[]}");
    else
        reply = control_execute(req, &after);
    json_decref(req);
    control_send(c, reply);
    if (after != CONTROL_AFTER_NOTHING)
        c->after = after;
}

static void control_on_read(struct bufferevent *bev, void *arg)
{
    struct control_client *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    while (!c->closing) {
        size_t len;
        char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
        if (!line) {
            if (evbuffer_get_length(in) > CONTROL_MAX_REQUEST) {
                control_send(c, control_error("bad request: longer than %d bytes without a "
                                              "newline; closing", CONTROL_MAX_REQUEST));
                c->closing = 1;
                bufferevent_disable(bev, EV_READ);
            }
            break;
        }
        if (len > CONTROL_MAX_REQUEST) {
            control_send(c, control_error("bad request: longer than %d bytes; closing",
                                          CONTROL_MAX_REQUEST));
            c->closing = 1;
            bufferevent_disable(bev, EV_READ);
        } else if (len > 0 && !(len == 1 && line[0] == '\r')) {
            control_handle_line(c, line, len);
        }
        free(line);
        if (c->after != CONTROL_AFTER_NOTHING) {
            /* nothing more is read from a client that asked to stop */
            c->closing = 1;
            bufferevent_disable(bev, EV_READ);
        }
    }
}

static void control_on_write(struct bufferevent *bev, void *arg)
{
    struct control_client *c = arg;
    (void)bev;
    if (!c->closing)
        return;
    enum control_after after = c->after;
    control_client_free(c);
    if (after == CONTROL_AFTER_STOP)
        daemon_request_stop("vipmtactl shutdown");
}

static void control_on_event(struct bufferevent *bev, short what, void *arg)
{
    struct control_client *c = arg;
    (void)bev;
    if (what & BEV_EVENT_EOF) {
        /* the client is done sending: close once our replies are out */
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
            enum control_after after = c->after;
            control_client_free(c);
            if (after == CONTROL_AFTER_STOP)
                daemon_request_stop("vipmtactl shutdown");
        } else {
            c->closing = 1;
        }
        return;
    }
    /* errors and timeouts */
    enum control_after after = c->after;
    control_client_free(c);
    if (after == CONTROL_AFTER_STOP)
        daemon_request_stop("vipmtactl shutdown");
}

static void control_on_accept(struct evconnlistener *l, evutil_socket_t fd,
                              struct sockaddr *sa, int salen, void *arg)
{
    (void)l;
    (void)sa;
    (void)salen;
    (void)arg;
    struct event_base *base = evconnlistener_get_base(ctl.listener);
    struct control_client *c = calloc(1, sizeof(*c));
    struct bufferevent *bev = c ? bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE) : NULL;
    if (!bev) {
        log_write("control", VIPMTA_LOG_ERROR, "out of memory: control client dropped");
        free(c);
        close(fd);
        return;
    }
    c->bev = bev;
    c->next = ctl.clients;
    if (ctl.clients)
        ctl.clients->prev = c;
    ctl.clients = c;
    ctl.nclients++;
    bufferevent_setcb(bev, control_on_read, control_on_write, control_on_event, c);
    struct timeval idle = {CONTROL_IDLE_TIMEOUT, 0};
    bufferevent_set_timeouts(bev, &idle, &idle);
    if (ctl.nclients > CONTROL_MAX_CLIENTS) {
        control_send(c, control_error("too many control clients (at most %d at once); try "
                                      "again", CONTROL_MAX_CLIENTS));
        c->closing = 1;
        bufferevent_enable(bev, EV_WRITE);
        return;
    }
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* 1 when a daemon answers on the socket `path`, 0 when nobody does (no
 * file, or a dead socket: *stale set), -1 with errors appended. */
static int control_someone_there(const char *path, int *stale, struct config_errors *errs)
{
    struct stat st;
    *stale = 0;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        config_errors_add(errs, "control_socket: cannot check %s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISSOCK(st.st_mode)) {
        config_errors_add(errs, "control_socket: %s exists and is not a socket: refusing to replace it; "
                   "remove it or set control_socket to another path", path);
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        config_errors_add(errs, "control_socket: socket: %s", strerror(errno));
        return -1;
    }
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    int rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
    int err = errno;
    close(fd);
    if (rc == 0) {
        config_errors_add(errs, "control_socket: another vipmta answers on %s: stop it first, or give "
                   "this one its own control_socket (and spool_dir)", path);
        return 1;
    }
    if (err != ECONNREFUSED) {
        config_errors_add(errs, "control_socket: cannot check %s: %s", path, strerror(err));
        return -1;
    }
    *stale = 1;
    return 0;
}

int control_probe(const struct vipmta_config *cfg, struct config_errors *errs)
{
    struct sockaddr_un sun;
    int stale;
    char *path = control_socket_path(cfg);
    if (!path)
        return 0; /* disabled (or out of memory: control_start says so) */
    int rc = strlen(path) < sizeof(sun.sun_path) ? control_someone_there(path, &stale, errs) : 0;
    free(path);
    return rc == 0 ? 0 : -1;
}

/* Checks what is at `path` before binding: nothing or a dead socket (removed)
 * is fine; a live daemon or a non-socket is an error. */
static int control_check_stale(const char *path, struct config_errors *errs)
{
    int stale;
    if (control_someone_there(path, &stale, errs) != 0)
        return -1;
    if (!stale)
        return 0;
    if (unlink(path) != 0 && errno != ENOENT) {
        config_errors_add(errs, "control_socket: cannot remove the stale socket %s: %s", path,
                   strerror(errno));
        return -1;
    }
    log_write("control", VIPMTA_LOG_NOTICE, "removed the stale control socket %s", path);
    return 0;
}

int control_start(struct event_base *base, const struct vipmta_config *cfg,
                  struct config_errors *errs)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    char *path = control_socket_path(cfg);

    if (!path) {
        if (cfg->control_socket && !*cfg->control_socket) {
            log_write("control", VIPMTA_LOG_INFO, "control socket disabled (control_socket is "
                      "\"\"): vipmtactl cannot reach this daemon");
            return 0;
        }
        config_errors_add(errs, "control_socket: out of memory");
        return -1;
    }
    if (strlen(path) >= sizeof(sun.sun_path) && !cfg->control_socket) {
        /* only the default is too long: run without rather than refuse to start */
        log_write("control", VIPMTA_LOG_WARNING, "no control socket: the default path %s is "
                  "longer than %zu bytes (a unix socket limit); set control_socket to a "
                  "shorter path to use vipmtactl", path, sizeof(sun.sun_path) - 1);
        free(path);
        return 0;
    }
    if (strlen(path) >= sizeof(sun.sun_path)) {
        config_errors_add(errs, "control_socket: %s is %zu bytes long; a unix socket path has at "
                   "most %zu: set control_socket to a shorter path", path, strlen(path),
                   sizeof(sun.sun_path) - 1);
        free(path);
        return -1;
    }
    if (control_check_stale(path, errs) != 0) {
        free(path);
        return -1;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        config_errors_add(errs, "control_socket: socket: %s", strerror(errno));
        free(path);
        return -1;
    }
    /* created owner-only: never a moment with wider permissions */
    mode_t old = umask(0177);
    int rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    int err = errno;
    umask(old);
    if (rc != 0) {
        config_errors_add(errs, "control_socket: cannot create %s: %s (does its directory exist and "
                   "is it writable?)", path, strerror(err));
        close(fd);
        free(path);
        return -1;
    }
    /* created by the run user (the daemon has dropped root by now), mode 0600
     * through the umask above; remembered so that only this socket is removed */
    struct stat st;
    errno = 0;
    if (lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode)) {
        config_errors_add(errs, "control_socket: %s is not the socket just created: %s", path,
                          errno ? strerror(errno) : "replaced meanwhile");
        unlink(path);
        close(fd);
        free(path);
        return -1;
    }
    ctl.listener = evconnlistener_new(base, control_on_accept, NULL,
                                      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16, fd);
    if (!ctl.listener) {
        config_errors_add(errs, "control_socket: cannot listen on %s: %s", path, strerror(errno));
        unlink(path);
        close(fd);
        free(path);
        return -1;
    }
    ctl.path = path;
    ctl.dev = st.st_dev;
    ctl.ino = st.st_ino;
    log_write("control", VIPMTA_LOG_INFO, "control socket %s (mode 0600)", path);
    return 0;
}

void control_stop(void)
{
    while (ctl.clients)
        control_client_free(ctl.clients);
    if (ctl.listener)
        evconnlistener_free(ctl.listener);
    if (ctl.path) {
        /* only our own socket: another daemon may have replaced it since */
        struct stat st;
        if (lstat(ctl.path, &st) == 0 && st.st_dev == ctl.dev && st.st_ino == ctl.ino)
            unlink(ctl.path);
        free(ctl.path);
    }
    memset(&ctl, 0, sizeof(ctl));
}
