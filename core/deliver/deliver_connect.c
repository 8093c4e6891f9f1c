/* deliver_connect.c: the outbound connect path: socket, IP_BIND_ADDRESS_NO_PORT, bind, post-bind hooks, connect. */
#include "deliver_connect.h"
#include "deliver_internal.h"
#include "plugin/plugin_hooks.h"
#include "hooks/core/connection_post_bind.h"
#include "plugin/plugin_message.h"
#include "log/log.h"

#include <errno.h>
#include <stdint.h>
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

/* What the post-bind provider running now said with vipmta_veto (the loop
 * thread's; `open` while the chain runs). */
static __thread struct {
    int open;
    int set;
    int kind;
    unsigned retry;
    const void *caller;             /* the code that called vipmta_veto */
    char reply[PLUGIN_MESSAGE_REPLY_MAX];
} deliver_veto_said;

/* A retry_after longer than this is cut to it. */
#define DELIVER_VETO_RETRY_MAX 86400

int vipmta_veto(int kind, unsigned retry_after_seconds, const char *reply)
{
    if (!deliver_veto_said.open) {
        log_write("core", VIPMTA_LOG_WARNING, "vipmta_veto called outside a connection_post_bind "
                  "hook: ignored");
        errno = EPERM;
        return -1;
    }
    if ((kind != VIPMTA_VETO_TRANSIENT && kind != VIPMTA_VETO_PERMANENT &&
         kind != VIPMTA_VETO_OTHER_BINDING) ||
        (reply && !plugin_message_reply_ok(reply, kind == VIPMTA_VETO_PERMANENT ? '5' : '4'))) {
        errno = EINVAL;
        return -1;
    }
    deliver_veto_said.set = 1;
    deliver_veto_said.kind = kind;
    deliver_veto_said.retry =
        retry_after_seconds > DELIVER_VETO_RETRY_MAX ? DELIVER_VETO_RETRY_MAX : retry_after_seconds;
    deliver_veto_said.caller = __builtin_return_address(0);
    snprintf(deliver_veto_said.reply, sizeof(deliver_veto_said.reply), "%s", reply ? reply : "");
    return 0;
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
        deliver_veto_said.open = 1;
        deliver_veto_said.set = 0;
        int ret = call_core_connection_post_bind_hook(dr, slot, fd, (struct sockaddr *)dst,
                                                      (int)dst_len);
        deliver_veto_said.open = 0;
        if (ret != 0) {
            char to[DELIVER_ADDR_MAX];
            deliver_format_addr(dst, to, sizeof(to));
            res->veto_value = ret;
            res->veto_module =
                plugin_hooks_last_stop_owner(&plugin_hook_core_connection_post_bind);
            /* what the vetoing provider said (not another provider of the chain) */
            int said = deliver_veto_said.set &&
                       plugin_hooks_last_stop_from(&plugin_hook_core_connection_post_bind,
                                                   deliver_veto_said.caller);
            res->veto_kind = said ? deliver_veto_said.kind : VIPMTA_VETO_TRANSIENT;
            res->veto_retry = said ? deliver_veto_said.retry : 0;
            snprintf(res->veto_reply, sizeof(res->veto_reply), "%s",
                     said ? deliver_veto_said.reply : "");
            static const char *const kinds[] = {"", ", permanent", ", try another binding"};
            snprintf(res->message, sizeof(res->message),
                     "connection to %s from binding \"%s\" vetoed by module \"%s\" (returned %d%s)%s%s",
                     to, deliver_connect_binding_name(b), res->veto_module, ret,
                     kinds[res->veto_kind], res->veto_reply[0] ? ": " : "", res->veto_reply);
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
