/* sockopt_apply.c: sets a resolved sockopt_set on a bound, not yet connected socket. */
#include "sockopt.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <string.h>

static int set_int(int fd, int level, int name, int value, const char *key, const char *label,
                   sockopt_fail_fn fail, void *arg)
{
    if (setsockopt(fd, level, name, &value, sizeof(value)) == 0)
        return 0;
    if (fail)
        fail(arg, key, label, errno);
    return 1;
}

int sockopt_apply(int fd, const struct sockaddr *dst, int dst_len, const struct sockopt_set *s,
                  sockopt_fail_fn fail, void *arg)
{
    unsigned p = s->present;
    int failed = 0;
    int v6 = 0;

    /* IPv4-mapped destinations on an IPv6 socket leave as IPv4 packets:
     * those take IP_TOS, not the IPv6 traffic class */
    if (dst && dst_len >= (int)sizeof(struct sockaddr_in6) && dst->sa_family == AF_INET6) {
        const struct sockaddr_in6 *d6 = (const struct sockaddr_in6 *)dst;
        v6 = !IN6_IS_ADDR_V4MAPPED(&d6->sin6_addr);
    }

    if (v6) {
        /* traffic_class is the IPv6-specific value and wins over tos */
        if (p & SOCKOPT_TRAFFIC_CLASS)
            failed += set_int(fd, IPPROTO_IPV6, IPV6_TCLASS, s->traffic_class, "traffic_class",
                              "IPV6_TCLASS", fail, arg);
        else if (p & SOCKOPT_TOS)
            failed += set_int(fd, IPPROTO_IPV6, IPV6_TCLASS, s->tos, "tos", "IPV6_TCLASS", fail,
                              arg);
    } else if (p & SOCKOPT_TOS) {
        failed += set_int(fd, IPPROTO_IP, IP_TOS, s->tos, "tos", "IP_TOS", fail, arg);
    }
    if (p & SOCKOPT_MARK)
        failed += set_int(fd, SOL_SOCKET, SO_MARK, (int)s->mark, "mark", "SO_MARK", fail, arg);
    if (p & SOCKOPT_KEEPALIVE) {
        failed += set_int(fd, SOL_SOCKET, SO_KEEPALIVE, s->keepalive, "keepalive", "SO_KEEPALIVE",
                          fail, arg);
        if (s->keepalive) {
            if (p & SOCKOPT_KA_IDLE)
                failed += set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, s->ka_idle, "keepalive.idle",
                                  "TCP_KEEPIDLE", fail, arg);
            if (p & SOCKOPT_KA_INTERVAL)
                failed += set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, s->ka_interval,
                                  "keepalive.interval", "TCP_KEEPINTVL", fail, arg);
            if (p & SOCKOPT_KA_COUNT)
                failed += set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, s->ka_count, "keepalive.count",
                                  "TCP_KEEPCNT", fail, arg);
        }
    }
    if (p & SOCKOPT_USER_TIMEOUT)
        failed += set_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, s->user_timeout_ms,
                          "user_timeout_ms", "TCP_USER_TIMEOUT", fail, arg);
    if (p & SOCKOPT_NODELAY)
        failed += set_int(fd, IPPROTO_TCP, TCP_NODELAY, s->nodelay, "nodelay", "TCP_NODELAY",
                          fail, arg);
    if (p & SOCKOPT_CONGESTION) {
        if (setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, s->congestion,
                       (socklen_t)strlen(s->congestion)) != 0) {
            failed++;
            if (fail)
                fail(arg, "congestion", "TCP_CONGESTION", errno);
        }
    }
    /* buffer sizes before connect(): the window scale is fixed by the SYN */
    if (p & SOCKOPT_SNDBUF)
        failed += set_int(fd, SOL_SOCKET, SO_SNDBUF, s->sndbuf, "sndbuf", "SO_SNDBUF", fail, arg);
    if (p & SOCKOPT_RCVBUF)
        failed += set_int(fd, SOL_SOCKET, SO_RCVBUF, s->rcvbuf, "rcvbuf", "SO_RCVBUF", fail, arg);
    return failed;
}
