/* deliver_connect.h: the outbound connect path: socket, IP_BIND_ADDRESS_NO_PORT, bind, post-bind hooks, connect. */
#ifndef VIPMTA_CORE_DELIVER_CONNECT_H
#define VIPMTA_CORE_DELIVER_CONNECT_H

#include <sys/socket.h>
#include "domain_record.h"

enum deliver_connect_status {
    DELIVER_CONNECT_OK = 0,        /* fd returned, connect() in progress or done */
    DELIVER_CONNECT_SOCKET_FAILED, /* socket() failed */
    DELIVER_CONNECT_BIND_FAILED,   /* bind() to the binding's source address failed */
    DELIVER_CONNECT_NO_ADDRESS,    /* the binding has no address of the destination's family */
    DELIVER_CONNECT_VETOED,        /* a connection_post_bind hook returned non-zero */
    DELIVER_CONNECT_CONNECT_FAILED,/* connect() failed at once */
};

struct deliver_connect_result {
    enum deliver_connect_status status;
    int error;               /* errno for socket/bind/connect failures */
    int veto_value;          /* the hook's return value */
    const char *veto_module; /* the module whose hook vetoed */
    int veto_kind;           /* VIPMTA_VETO_*: what it said with vipmta_veto (else TRANSIENT) */
    unsigned veto_retry;     /* its retry_after (0: the domain's veto_retry) */
    char veto_reply[512];    /* its reply ("": the default; PLUGIN_MESSAGE_REPLY_MAX) */
    char message[768];       /* a sentence naming the binding/address/module (and a veto's reply) */
};

/* Opens a non-blocking TCP connection from binding `slot` to `dst`. Returns
 * the fd (connect may still be in progress: wait for writability), or -1 with
 * `res` saying why; the socket is closed in that case. */
int deliver_connect(domain_record *dr, ec_binding_slot slot, const struct sockaddr *dst,
                     socklen_t dst_len, struct deliver_connect_result *res);

#endif
