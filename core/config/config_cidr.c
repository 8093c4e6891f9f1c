/* config_cidr.c: parsing and matching CIDR networks (relay_from and friends). */
#include "config.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

int config_parse_cidr(const char *text, struct config_cidr *out)
{
    char addr[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(text, '/');
    size_t alen = slash ? (size_t)(slash - text) : strlen(text);

    if (alen == 0 || alen >= sizeof(addr))
        return -1;
    memcpy(addr, text, alen);
    addr[alen] = '\0';
    memset(out, 0, sizeof(*out));
    unsigned max;
    if (inet_pton(AF_INET, addr, out->addr) == 1) {
        out->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
        out->family = AF_INET6;
        max = 128;
    } else {
        return -1;
    }
    out->prefix = max;
    if (slash) {
        const char *p = slash + 1;
        if (*p < '0' || *p > '9' || strlen(p) > 3)
            return -1;
        char *end;
        unsigned long v = strtoul(p, &end, 10);
        if (*end || v > max)
            return -1;
        out->prefix = (unsigned)v;
    }
    return 0;
}

static int config_prefix_match(const unsigned char *net, const unsigned char *addr, unsigned prefix)
{
    unsigned full = prefix / 8, rest = prefix % 8;
    if (memcmp(net, addr, full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (net[full] & mask) == (addr[full] & mask);
}

int config_cidr_match(const struct config_cidr *cidr, const struct sockaddr *addr)
{
    static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    if (addr->sa_family == AF_INET) {
        const unsigned char *a = (const unsigned char *)&((const struct sockaddr_in *)addr)->sin_addr;
        return cidr->family == AF_INET && config_prefix_match(cidr->addr, a, cidr->prefix);
    }
    if (addr->sa_family == AF_INET6) {
        const unsigned char *a =
            (const unsigned char *)&((const struct sockaddr_in6 *)addr)->sin6_addr;
        if (cidr->family == AF_INET6)
            return config_prefix_match(cidr->addr, a, cidr->prefix);
        /* an IPv4 network also matches the IPv4-mapped IPv6 form (::ffff:a.b.c.d) */
        return memcmp(a, v4mapped, 12) == 0 && config_prefix_match(cidr->addr, a + 12, cidr->prefix);
    }
    return 0;
}
