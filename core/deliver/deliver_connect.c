/* deliver_connect.c: the outbound connect path: socket, IP_BIND_ADDRESS_NO_PORT, bind, post-bind hooks, connect. */
#include "deliver_connect.h"
#include "deliver_internal.h"
#include "plugin/plugin_hooks.h"
#include "hooks/core/connection_post_bind.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* Everything below the success path is cold: failures format a message. */
static int deliver_connect_fail(struct deliver_connect_result *res, enum deliver_connect_status status, int fd,
                         int error) __attribute__((cold));

static int deliver_connect_fail(struct deliver_connect_result *res, enum deliver_connect_status status, int fd,
                         int error)
{
    if (fd >= 0)
        close(fd);
    res->status = status;
    res->error = error;
    return -1;
}

static const char *deliver_connect_binding_name(const vipmta_binding *b)
{
    return b && b->name ? b->name : "?";
}

int deliver_connect(domain_record *dr, ec_binding_slot slot, const struct sockaddr *dst,
                     socklen_t dst_len, struct deliver_connect_result *res)
{
    const vipmta_binding *b = vipmta_binding_by_slot(slot);
    const struct sockaddr *src = NULL;
    socklen_t src_len = 0;
    int family = dst->sa_family;

    if (family == AF_INET && b && b->has_addr4) {
        src = (const struct sockaddr *)&b->addr4;
        src_len = sizeof(b->addr4);
    } else if (family == AF_INET6 && b && b->has_addr6) {
        src = (const struct sockaddr *)&b->addr6;
        src_len = sizeof(b->addr6);
    } else if (!b || slot != VIPMTA_BINDING_DEFAULT_SLOT) {
        char to[DELIVER_ADDR_MAX];
        deliver_format_addr(dst, to, sizeof(to));
        if (!b)
            snprintf(res->message, sizeof(res->message), "no binding in slot %d", slot);
        else
            snprintf(res->message, sizeof(res->message),
                     "binding \"%s\" (slot %d) has no %s source address for destination %s",
                     deliver_connect_binding_name(b), slot, family == AF_INET6 ? "IPv6" : "IPv4", to);
        return deliver_connect_fail(res, DELIVER_CONNECT_NO_ADDRESS, -1, 0);
    }

    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        snprintf(res->message, sizeof(res->message), "socket(): %s", strerror(e));
        return deliver_connect_fail(res, DELIVER_CONNECT_SOCKET_FAILED, -1, e);
    }

    if (src) {
        /* the port is chosen at connect() time, per destination: no
         * ephemeral-port exhaustion across many source addresses */
        int one = 1;
        if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)) != 0 &&
            errno != ENOPROTOOPT) {
            int e = errno;
            snprintf(res->message, sizeof(res->message),
                     "binding \"%s\" (slot %d): setsockopt(IP_BIND_ADDRESS_NO_PORT): %s",
                     deliver_connect_binding_name(b), slot, strerror(e));
            return deliver_connect_fail(res, DELIVER_CONNECT_SOCKET_FAILED, fd, e);
        }
        if (bind(fd, src, src_len) != 0) {
            int e = errno;
            char from[DELIVER_ADDR_MAX];
            deliver_format_ip(src, from, sizeof(from));
            snprintf(res->message, sizeof(res->message),
                     "binding \"%s\" (slot %d): cannot bind source address %s: %s%s",
                     deliver_connect_binding_name(b), slot, from, strerror(e),
                     e == EADDRNOTAVAIL ? " (is the address configured on this host?)" : "");
            return deliver_connect_fail(res, DELIVER_CONNECT_BIND_FAILED, fd, e);
        }
    }

    if (has_core_connection_post_bind_hook()) {
        int ret = call_core_connection_post_bind_hook(dr, slot, fd, (struct sockaddr *)dst,
                                                      (int)dst_len);
        if (ret != 0) {
            char to[DELIVER_ADDR_MAX];
            deliver_format_addr(dst, to, sizeof(to));
            res->veto_value = ret;
            res->veto_module =
                plugin_hooks_last_stop_owner(&plugin_hook_core_connection_post_bind);
            snprintf(res->message, sizeof(res->message),
                     "connection to %s from binding \"%s\" vetoed by module \"%s\" (returned %d)",
                     to, deliver_connect_binding_name(b), res->veto_module, ret);
            return deliver_connect_fail(res, DELIVER_CONNECT_VETOED, fd, 0);
        }
    }

    if (connect(fd, dst, dst_len) != 0 && errno != EINPROGRESS) {
        int e = errno;
        char to[DELIVER_ADDR_MAX];
        deliver_format_addr(dst, to, sizeof(to));
        snprintf(res->message, sizeof(res->message),
                 "connect to %s from binding \"%s\" failed: %s", to, deliver_connect_binding_name(b),
                 strerror(e));
        return deliver_connect_fail(res, DELIVER_CONNECT_CONNECT_FAILED, fd, e);
    }
    res->status = DELIVER_CONNECT_OK;
    return fd;
}
