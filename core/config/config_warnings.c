/* config_warnings.c: settings that are valid but probably not meant (an open relay), said at -t, start and reload. */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>

/* "0.0.0.0/0", "::/0" for messages. */
static void config_cidr_text(const struct config_cidr *c, char *out, size_t size)
{
    char addr[INET6_ADDRSTRLEN] = "?";
    inet_ntop(c->family, c->addr, addr, sizeof(addr));
    snprintf(out, size, "%s/%u", addr, c->prefix);
}

void config_check_warnings(const struct vipmta_config *cfg, struct config_errors *warnings)
{
    for (size_t i = 0; i < cfg->relay_from_count; i++) {
        const struct config_cidr *c = &cfg->relay_from[i];
        /* a prefix this short takes in a good part of the internet */
        if (c->prefix > (c->family == AF_INET ? 7u : 15u))
            continue;
        char text[INET6_ADDRSTRLEN + 8];
        config_cidr_text(c, text, sizeof(text));
        config_errors_add(warnings, "relay_from[%zu]: %s lets %s relay mail through vipmta to "
                          "any domain (an open relay, soon abused and listed): narrow it to your "
                          "own networks, or authenticate senders", i, text,
                          c->prefix == 0 ? "every client on the internet" : "a large part of the "
                          "internet");
    }
}
