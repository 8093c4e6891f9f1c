/* vipmta_connection.h: outbound connections as the outbound hooks see them: host_record, connection_handle, the CONN_ERROR_* codes. */
#ifndef VIPMTA_CONNECTION_H
#define VIPMTA_CONNECTION_H

#include <sys/socket.h>
#include "domain_record.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One exchanger (MX host, or a route's host) at one address, as a
 * connection tries it (opaque). Valid during the hook call. */
typedef struct _host_record host_record;
/* The host's name ("mx1.example.com"; the address for an address literal). */
const char *vipmta_host_name(const host_record *host);
/* Its address, with the port connect() uses, and the address's length. */
const struct sockaddr *vipmta_host_address(const host_record *host, socklen_t *len);
/* Its preference among the domain's hosts (the MX preference; 0 for a route). */
int vipmta_host_preference(const host_record *host);

/* The core's connection (opaque). */
typedef struct _connection connection;

/* An outbound SMTP connection, as inc_outbound_connections and
 * dec_outbound_connections get it. The first five members are Momentum's
 * documented ones, in its order; vipmta's follow. Valid during the hook
 * call; the core owns it. Layout rule: only grows at the end. */
typedef struct _connection_handle {
    host_record *host;    /* the host connected to */
    int binding_slot;     /* the binding it was connected from */
    int offset;           /* the host's position among the targets tried (0: the first) */
    void *user_data;      /* NULL (Momentum: set by initiate_connection) */
    connection *conn;     /* the core's connection (opaque) */
    domain_record *domain; /* the domain whose mail it carries */
    int fd;               /* its socket */
} connection_handle;

/* Why an outbound connection attempt failed: log_client_connection_failure's
 * `err`, and post_initiate_connection_smtp's negative `conn_fd` (-err).
 * Momentum's names; its documentation gives no values: these are vipmta's,
 * one bit each (CONN_ACTION_* are never set by vipmta). */
#define CONN_ACTION_REQUEUE1 0x0001
#define CONN_ACTION_PURGE_DOMAIN 0x0002
#define CONN_ERROR_MX_LOOKUP_FAILED 0x0010  /* the domain's route or MX lookup failed */
#define CONN_ERROR_MX_LOOKUP_PENDING 0x0020 /* (not used: vipmta waits for the lookup) */
#define CONN_ERROR_SMTP_NULL_MX 0x0040      /* the domain publishes a null MX (RFC 7505) */
#define CONN_ERROR_NO_MXS_REACHABLE 0x0080  /* (not used: each host's failure is reported) */
#define CONN_ERROR_PROHIBITED_IP 0x0100     /* a connection_post_bind hook vetoed it */
#define CONN_ERROR_HOST_MAX_REACHED 0x0200  /* (not used) */
#define CONN_ERROR_SOCKET 0x0400            /* socket() or its options failed */
#define CONN_ERROR_IOCTL 0x0800             /* (not used) */
#define CONN_ERROR_BIND 0x1000              /* bind() to the binding's address failed, or the
                                             * binding has no address of the host's family */
#define CONN_ERROR_CONNECT 0x2000           /* connect() failed (refused, reset...) */
#define CONN_ERROR_CONNECT_NETWORK 0x4000   /* connect(): network or host unreachable */
#define CONN_ERROR_CONNECT_TIMEOUT 0x8000   /* no connection within the connect timeout */
/* The CONN_ERROR_* bits of a value that may carry CONN_ACTION_* bits too. */
#define CONN_ERROR(x) ((x) & ~(CONN_ACTION_REQUEUE1 | CONN_ACTION_PURGE_DOMAIN))

#ifdef __cplusplus
}
#endif
#endif
