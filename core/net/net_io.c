/* net_io.c: buffered connection I/O: plain sockets on one persistent edge-triggered event with sized reads and direct writes, or a wrapped (TLS) bufferevent. */
#include "net_io.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* Bytes asked of the kernel per read, and reads per wake-up before the loop
 * lets other connections run (the rest is read in the next iteration). */
#define NET_IO_READ_SIZE 16384
#define NET_IO_READS_PER_WAKE 4
/* A marker for our own activations (event_active), never set by epoll. */
#define NET_IO_KICK EV_TIMEOUT

struct net_io {
    struct bufferevent *bev;       /* wrapped kind, else NULL */
    int fd;
    struct event *ev;              /* plain: read|write, edge-triggered, persistent */
    struct event *later;           /* plain: work left for the next loop iteration */
    struct evbuffer *in, *out;
    net_io_data_cb readcb, writecb;
    net_io_event_cb eventcb;
    void *arg;
    size_t read_high, write_low;
    int depth;                     /* callbacks of this connection running */
    unsigned read_on : 1;          /* the user wants input */
    unsigned write_on : 1;         /* the user lets output go out */
    unsigned connecting : 1;
    unsigned readable : 1;         /* the socket may hold unread data */
    unsigned closing : 1;          /* the peer closed its side (EPOLLRDHUP): read to the end */
    unsigned writable : 1;         /* the socket's send buffer is not known to be full */
    unsigned kicked : 1;           /* an activation is pending */
    unsigned dead : 1;             /* freed inside a callback: free at depth 0 */
};

/* ---- the wrapped kind: bufferevent callbacks passed on ---- */

static void net_io_bev_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct net_io *io = arg;
    if (io->readcb)
        io->readcb(io, io->arg);
}

static void net_io_bev_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct net_io *io = arg;
    if (io->writecb)
        io->writecb(io, io->arg);
}

static void net_io_bev_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct net_io *io = arg;
    if (io->eventcb)
        io->eventcb(io, what, io->arg);
}

/* ---- the plain kind ---- */

static void net_io_kick(struct net_io *io)
{
    if (io->kicked || io->dead)
        return;
    io->kicked = 1;
    event_active(io->ev, NET_IO_KICK, 0);
}

static void net_io_on_event(evutil_socket_t fd, short what, void *arg);

static void net_io_on_later(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    net_io_on_event(fd, NET_IO_KICK, arg);
}

/* Work was left (reads or writes stopped for fairness): go on in the next
 * loop iteration, after the others' events were collected. */
static void net_io_continue_later(struct net_io *io)
{
    static const struct timeval now = {0, 0};
    if (!io->later)
        io->later = evtimer_new(event_get_base(io->ev), net_io_on_later, io);
    if (io->later)
        evtimer_add(io->later, &now);
    else
        net_io_kick(io);
}

static int net_io_below_high(const struct net_io *io)
{
    return !io->read_high || evbuffer_get_length(io->in) < io->read_high;
}

/* Output was added outside our callbacks (a timer, a spool completion):
 * written once the loop gets to it, together with whatever follows. */
static void net_io_out_added(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg)
{
    (void)b;
    struct net_io *io = arg;
    if (info->n_added && !io->depth && io->write_on && !io->connecting)
        net_io_kick(io);
}

/* Input was consumed outside our callbacks: reading may go on. */
static void net_io_in_drained(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg)
{
    (void)b;
    struct net_io *io = arg;
    if (info->n_deleted && !io->depth && io->read_on && io->readable && net_io_below_high(io))
        net_io_kick(io);
}

static void net_io_fail(struct net_io *io, short what)
{
    io->read_on = io->write_on = 0;
    if (io->eventcb)
        io->eventcb(io, what, io->arg);
}

/* Writes the output until it is empty or the socket is full; the write
 * callback may add more (a body being streamed), which goes out in the same
 * pass up to a bound (the rest in the next iteration). 0, or -1 after
 * reporting an error (the connection may be gone). */
static int net_io_flush(struct net_io *io)
{
    for (int pass = 0; pass < 8 && io->write_on && !io->dead; pass++) {
        size_t left = evbuffer_get_length(io->out);
        int wrote = 0;
        while (left && io->writable) {
            int n = evbuffer_write_atmost(io->out, io->fd, -1);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    io->writable = 0; /* the edge of EV_WRITE says when there is room */
                    break;
                }
                net_io_fail(io, BEV_EVENT_ERROR | BEV_EVENT_WRITING);
                return -1;
            }
            wrote = 1;
            if ((size_t)n < left)
                io->writable = 0; /* a short write: the send buffer is full */
            left = evbuffer_get_length(io->out);
        }
        if (!wrote || left > io->write_low || !io->writecb)
            break;
        io->writecb(io, io->arg);
        if (io->dead || !io->writable || !evbuffer_get_length(io->out))
            break;
    }
    return 0;
}

/* Reads what the socket has, up to the high mark; runs the read callback for
 * new data, then the event callback at the end of the stream or on an error. */
static void net_io_fill(struct net_io *io)
{
    size_t total = 0;
    short end = 0;
    int saved = 0;
    for (int i = 0; i < NET_IO_READS_PER_WAKE && io->readable && net_io_below_high(io); i++) {
        size_t want = NET_IO_READ_SIZE;
        if (io->read_high) {
            size_t room = io->read_high - evbuffer_get_length(io->in);
            if (room < want)
                want = room;
        }
        struct evbuffer_iovec v[2];
        int nv = evbuffer_reserve_space(io->in, (ev_ssize_t)want, v, 2);
        if (nv <= 0)
            break;
        size_t offered = 0;
        for (int k = 0; k < nv; k++) {
            if (offered + v[k].iov_len > want)
                v[k].iov_len = want - offered;
            offered += v[k].iov_len;
        }
        ssize_t n = readv(io->fd, (struct iovec *)v, nv);
        if (n > 0) {
            size_t got = (size_t)n;
            int used = 0;
            for (; used < nv && got; used++) {
                if (v[used].iov_len > got)
                    v[used].iov_len = got;
                got -= v[used].iov_len;
            }
            evbuffer_commit_space(io->in, v, used);
            total += (size_t)n;
            /* a short read: the socket is empty, and a new edge comes with more
             * data or the peer's FIN (EPOLLRDHUP); saves the read that would
             * only say EAGAIN. (A FIN that arrives with data after our own
             * shutdown shows as EPOLLHUP, which libevent reports without
             * EV_CLOSED: the session then ends at its linger timer.) */
            if ((size_t)n < offered && !io->closing)
                io->readable = 0;
            continue;
        }
        if (n == 0) {
            io->readable = 0;
            end = BEV_EVENT_EOF | BEV_EVENT_READING;
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            io->readable = 0;
            break;
        }
        io->readable = 0;
        saved = errno;
        end = BEV_EVENT_ERROR | BEV_EVENT_READING;
        break;
    }
    if (total && io->readcb)
        io->readcb(io, io->arg);
    if (end && !io->dead) {
        io->read_on = 0;
        errno = saved;
        if (io->eventcb)
            io->eventcb(io, end, io->arg);
    }
}

static void net_io_really_free(struct net_io *io)
{
    if (io->ev)
        event_free(io->ev);
    if (io->later)
        event_free(io->later);
    if (io->in)
        evbuffer_free(io->in);
    if (io->out)
        evbuffer_free(io->out);
    free(io);
}

static void net_io_connected(struct net_io *io)
{
    int err = 0;
    socklen_t len = sizeof(err);
    io->connecting = 0;
    if (getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err) {
        io->writable = 0;
        errno = err;
        net_io_fail(io, BEV_EVENT_ERROR);
        return;
    }
    if (io->eventcb)
        io->eventcb(io, BEV_EVENT_CONNECTED, io->arg);
}

static void net_io_on_event(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct net_io *io = arg;
    io->depth++;
    if (what & NET_IO_KICK)
        io->kicked = 0;
    if (what & EV_READ)
        io->readable = 1;
    if (what & EV_CLOSED)
        io->closing = io->readable = 1;
    if (what & EV_WRITE)
        io->writable = 1;
    if (io->connecting) {
        if (what & (EV_WRITE | EV_READ))
            net_io_connected(io);
        if (io->connecting || io->dead)
            goto out;
    }
    if (io->write_on && io->writable && evbuffer_get_length(io->out) && net_io_flush(io) != 0)
        goto out;
    if (!io->dead && io->read_on && io->readable)
        net_io_fill(io);
    /* what the callbacks queued goes out now, in one write */
    if (!io->dead && io->write_on && io->writable && evbuffer_get_length(io->out))
        net_io_flush(io);
    /* reads or writes stopped early (fairness) go on in the next iteration */
    if (!io->dead && ((io->read_on && io->readable && net_io_below_high(io)) ||
                      (io->write_on && io->writable && evbuffer_get_length(io->out))))
        net_io_continue_later(io);
out:
    if (--io->depth == 0 && io->dead)
        net_io_really_free(io);
}

struct net_io *net_io_socket_new(struct event_base *base, int fd)
{
    struct net_io *io = calloc(1, sizeof(*io));
    if (!io)
        return NULL;
    io->fd = fd;
    io->in = evbuffer_new();
    io->out = evbuffer_new();
    io->ev = event_new(base, fd, EV_READ | EV_WRITE | EV_CLOSED | EV_PERSIST | EV_ET,
                       net_io_on_event, io);
    if (!io->in || !io->out || !io->ev || !evbuffer_add_cb(io->out, net_io_out_added, io) ||
        !evbuffer_add_cb(io->in, net_io_in_drained, io) || event_add(io->ev, NULL) != 0) {
        net_io_really_free(io);
        return NULL;
    }
    io->writable = 1;
    io->write_on = 1;
    return io;
}

struct net_io *net_io_bev_new(struct bufferevent *bev)
{
    struct net_io *io = calloc(1, sizeof(*io));
    if (!io)
        return NULL;
    io->bev = bev;
    io->fd = bufferevent_getfd(bev);
    bufferevent_setcb(bev, net_io_bev_read, net_io_bev_write, net_io_bev_event, io);
    return io;
}

int net_io_connect(struct net_io *io)
{
    if (io->bev) {
        errno = EINVAL;
        return -1;
    }
    io->connecting = 1;
    io->writable = 0;
    return 0;
}

void net_io_setcb(struct net_io *io, net_io_data_cb readcb, net_io_data_cb writecb,
                  net_io_event_cb eventcb, void *arg)
{
    io->readcb = readcb;
    io->writecb = writecb;
    io->eventcb = eventcb;
    io->arg = arg;
}

void net_io_set_read_high(struct net_io *io, size_t high)
{
    if (io->bev) {
        bufferevent_setwatermark(io->bev, EV_READ, 0, high);
        return;
    }
    io->read_high = high;
}

void net_io_set_write_low(struct net_io *io, size_t low)
{
    if (io->bev) {
        bufferevent_setwatermark(io->bev, EV_WRITE, low, 0);
        return;
    }
    io->write_low = low;
}

void net_io_enable(struct net_io *io, short what)
{
    if (io->bev) {
        bufferevent_enable(io->bev, what);
        return;
    }
    if (what & EV_READ) {
        io->read_on = 1;
        if (io->readable && !io->depth)
            net_io_kick(io);
    }
    if (what & EV_WRITE) {
        io->write_on = 1;
        if (evbuffer_get_length(io->out) && !io->depth && !io->connecting)
            net_io_kick(io);
    }
}

void net_io_disable(struct net_io *io, short what)
{
    if (!io)
        return;
    if (io->bev) {
        bufferevent_disable(io->bev, what);
        return;
    }
    if (what & EV_READ)
        io->read_on = 0;
    if (what & EV_WRITE)
        io->write_on = 0;
}

struct evbuffer *net_io_input(struct net_io *io)
{
    return io->bev ? bufferevent_get_input(io->bev) : io->in;
}

struct evbuffer *net_io_output(struct net_io *io)
{
    return io->bev ? bufferevent_get_output(io->bev) : io->out;
}

int net_io_fd(const struct net_io *io)
{
    return io->bev ? bufferevent_getfd(io->bev) : io->fd;
}

struct bufferevent *net_io_bev(const struct net_io *io)
{
    return io->bev;
}

int net_io_release_fd(struct net_io *io)
{
    int fd = net_io_fd(io);
    if (io->bev) {
        bufferevent_disable(io->bev, EV_READ | EV_WRITE);
        bufferevent_setfd(io->bev, -1);
        bufferevent_free(io->bev);
        free(io);
        return fd;
    }
    io->fd = -1;
    io->read_on = io->write_on = 0;
    event_del(io->ev);
    if (io->later)
        event_del(io->later);
    if (io->depth)
        io->dead = 1;
    else
        net_io_really_free(io);
    return fd;
}

void net_io_free(struct net_io *io)
{
    if (!io)
        return;
    if (io->bev) {
        bufferevent_free(io->bev);
        free(io);
        return;
    }
    int fd = net_io_release_fd(io);
    if (fd >= 0)
        close(fd);
}
