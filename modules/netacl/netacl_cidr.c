/* netacl_cidr.c: the netacl module's own CIDR parsing and address matching (IPv4, IPv6, IPv4-mapped). */
#include "netacl.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static uint64_t load_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static void store_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static uint32_t mask32(unsigned prefix)
{
    return prefix ? UINT32_MAX << (32 - prefix) : 0;
}

static uint64_t mask64(unsigned prefix) /* prefix 0..64 */
{
    return prefix ? UINT64_MAX << (64 - prefix) : 0;
}

static void set_masks(struct netacl_cidr *c)
{
    if (c->net.family == AF_INET) {
        c->mask4 = mask32(c->prefix);
    } else {
        c->mask_hi = mask64(c->prefix > 64 ? 64 : c->prefix);
        c->mask_lo = mask64(c->prefix > 64 ? c->prefix - 64 : 0);
    }
}

/* The address with its host bits cleared, as text ("10.0.0.0"). */
static void format_network(const struct netacl_cidr *c, char *buf, size_t size)
{
    unsigned char bytes[16];
    if (c->net.family == AF_INET) {
        uint32_t n = htonl(c->net.v4 & c->mask4);
        inet_ntop(AF_INET, &n, buf, (socklen_t)size);
    } else {
        store_be64(bytes, c->net.hi & c->mask_hi);
        store_be64(bytes + 8, c->net.lo & c->mask_lo);
        inet_ntop(AF_INET6, bytes, buf, (socklen_t)size);
    }
}

/* An IPv4-mapped IPv6 address (::ffff:a.b.c.d) in hi/lo form. */
static int is_mapped(uint64_t hi, uint64_t lo)
{
    return hi == 0 && (lo >> 32) == 0xffffu;
}

int netacl_cidr_parse(const char *text, struct netacl_cidr *out, char *err, size_t errlen)
{
    char addr[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(text, '/');
    size_t alen = slash ? (size_t)(slash - text) : strlen(text);
    memset(out, 0, sizeof(*out));

    if (alen == 0 || alen >= sizeof(addr)) {
        snprintf(err, errlen,
                 "\"%s\" is not a network: expected ADDRESS/PREFIX such as 10.0.0.0/8 or "
                 "fc00::/7",
                 text);
        return -1;
    }
    memcpy(addr, text, alen);
    addr[alen] = '\0';

    unsigned char bytes[16];
    unsigned max;
    if (inet_pton(AF_INET, addr, bytes) == 1) {
        out->net.family = AF_INET;
        out->net.v4 = ((uint32_t)bytes[0] << 24) | ((uint32_t)bytes[1] << 16) |
                      ((uint32_t)bytes[2] << 8) | bytes[3];
        max = 32;
    } else if (inet_pton(AF_INET6, addr, bytes) == 1) {
        out->net.family = AF_INET6;
        out->net.hi = load_be64(bytes);
        out->net.lo = load_be64(bytes + 8);
        max = 128;
    } else {
        snprintf(err, errlen, "\"%s\" is not a network: \"%s\" is not an IPv4 or IPv6 address",
                 text, addr);
        return -1;
    }

    out->prefix = max;
    if (slash) {
        const char *p = slash + 1;
        size_t n = strlen(p);
        unsigned v = 0;
        int ok = n >= 1 && n <= 3;
        for (size_t i = 0; ok && i < n; i++) {
            if (p[i] < '0' || p[i] > '9')
                ok = 0;
            else
                v = v * 10 + (unsigned)(p[i] - '0');
        }
        if (!ok || v > max) {
            snprintf(err, errlen,
                     "\"%s\" is not a network: the prefix length must be a number from 0 to %u",
                     text, max);
            return -1;
        }
        out->prefix = v;
    }
    set_masks(out);

    int host_bits = out->net.family == AF_INET
                        ? (out->net.v4 & ~out->mask4) != 0
                        : (out->net.hi & ~out->mask_hi) != 0 || (out->net.lo & ~out->mask_lo) != 0;
    if (host_bits) {
        char net[INET6_ADDRSTRLEN];
        format_network(out, net, sizeof(net));
        snprintf(err, errlen, "\"%s\" is not a network: host bits are set (did you mean %s/%u?)",
                 text, net, out->prefix);
        return -1;
    }

    /* ::ffff:10.0.0.0/104 is 10.0.0.0/8: destinations are matched as IPv4 */
    if (out->net.family == AF_INET6 && out->prefix >= 96 && is_mapped(out->net.hi, out->net.lo)) {
        uint32_t v4 = (uint32_t)out->net.lo;
        unsigned prefix = out->prefix - 96;
        memset(out, 0, sizeof(*out));
        out->net.family = AF_INET;
        out->net.v4 = v4;
        out->prefix = prefix;
        set_masks(out);
    }
    return 0;
}

int netacl_addr_from_sockaddr(const struct sockaddr *sa, int len, struct netacl_addr *out)
{
    memset(out, 0, sizeof(*out));
    if (!sa || len < (int)sizeof(sa_family_t))
        return -1;
    if (sa->sa_family == AF_INET && len >= (int)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        out->family = AF_INET;
        out->v4 = ntohl(s4->sin_addr.s_addr);
        return 0;
    }
    if (sa->sa_family == AF_INET6 && len >= (int)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        uint64_t hi = load_be64(s6->sin6_addr.s6_addr);
        uint64_t lo = load_be64(s6->sin6_addr.s6_addr + 8);
        if (is_mapped(hi, lo)) {
            out->family = AF_INET;
            out->v4 = (uint32_t)lo;
        } else {
            out->family = AF_INET6;
            out->hi = hi;
            out->lo = lo;
        }
        return 0;
    }
    return -1;
}

int netacl_cidr_match(const struct netacl_cidr *net, const struct netacl_addr *a)
{
    if (net->net.family != a->family)
        return 0;
    if (a->family == AF_INET)
        return (a->v4 & net->mask4) == net->net.v4;
    return (a->hi & net->mask_hi) == net->net.hi && (a->lo & net->mask_lo) == net->net.lo;
}

void netacl_format_sockaddr(const struct sockaddr *sa, int len, char *buf, size_t size)
{
    char ip[INET6_ADDRSTRLEN];
    if (sa && sa->sa_family == AF_INET && len >= (int)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
        snprintf(buf, size, "%s:%u", ip, (unsigned)ntohs(s4->sin_port));
    } else if (sa && sa->sa_family == AF_INET6 && len >= (int)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
        snprintf(buf, size, "[%s]:%u", ip, (unsigned)ntohs(s6->sin6_port));
    } else {
        snprintf(buf, size, "?");
    }
}
