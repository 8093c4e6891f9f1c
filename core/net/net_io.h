/* net_io.h: one TCP connection's buffered I/O for both SMTP directions: plain sockets without per-event system calls, TLS through libevent's OpenSSL bufferevents. */
#ifndef VIPMTA_CORE_NET_IO_H
#define VIPMTA_CORE_NET_IO_H

#include <stddef.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

/* A connection with an input and an output buffer, used like a bufferevent
 * (the same callbacks and BEV_EVENT_* bits), in one of two kinds:
 *
 * - plain (net_io_socket_new): one persistent edge-triggered event watches
 *   the socket for reading and writing, registered once (no epoll_ctl per
 *   reply); reads are sized (16 KiB at a time into the input buffer, no
 *   FIONREAD before each); output is written as soon as the callback that
 *   produced it returns, with one writev for everything it queued, and the
 *   event is only waited on when the socket's send buffer is full;
 * - wrapped (net_io_bev_new): a bufferevent (TLS), every call passed on.
 *
 * Callbacks may free the connection (net_io_free) from inside. */
struct net_io;

typedef void (*net_io_data_cb)(struct net_io *io, void *arg);
typedef void (*net_io_event_cb)(struct net_io *io, short what, void *arg);

/* A plain connection on `fd` (non-blocking), closed by net_io_free. NULL on
 * out of memory (fd left open). */
struct net_io *net_io_socket_new(struct event_base *base, int fd);
/* Wraps `bev` (owned from now on: freed by net_io_free). NULL on out of memory
 * (bev left to the caller). */
struct net_io *net_io_bev_new(struct bufferevent *bev);
/* The socket is connecting (a non-blocking connect() was issued): the event
 * callback gets BEV_EVENT_CONNECTED, or BEV_EVENT_ERROR with errno set, when
 * it is done. Plain connections only; 0, or -1 with errno. */
int net_io_connect(struct net_io *io);

void net_io_setcb(struct net_io *io, net_io_data_cb readcb, net_io_data_cb writecb,
                  net_io_event_cb eventcb, void *arg);
/* No more reading while the input holds `high` bytes or more (0: no limit). */
void net_io_set_read_high(struct net_io *io, size_t high);
/* The write callback runs when the output drained to `low` bytes or fewer. */
void net_io_set_write_low(struct net_io *io, size_t low);
void net_io_enable(struct net_io *io, short what);
/* (NULL: nothing to do) */
void net_io_disable(struct net_io *io, short what);

struct evbuffer *net_io_input(struct net_io *io);
struct evbuffer *net_io_output(struct net_io *io);
int net_io_fd(const struct net_io *io);
/* The wrapped bufferevent, NULL for a plain connection. */
struct bufferevent *net_io_bev(const struct net_io *io);

/* Frees the connection without closing its socket (STARTTLS hands it to a
 * TLS bufferevent); returns the socket. Unsent output and unread input are
 * dropped. */
int net_io_release_fd(struct net_io *io);
/* Closes the socket and frees everything (deferred while a callback of this
 * connection runs); NULL: nothing to do. */
void net_io_free(struct net_io *io);

#endif
