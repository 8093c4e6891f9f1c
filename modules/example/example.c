/* example.c: the template module: logs every outbound connection post-bind and can veto it. */

/*
 * Copy this file to start a module. It shows everything a module needs:
 *
 *   1. a descriptor (name, version, description, lifecycle callbacks),
 *      exported with VIPMTA_MODULE_EXPORT;
 *   2. configure(): read the options with the kit's checked readers
 *      (vipmta_option_*, vipmta_module_check_keys), which report every
 *      problem with its path, and keep the result with
 *      vipmta_module_keep_config() (no side effects: `vipmta -t` calls it
 *      too); reload() is the same line, so new options apply live;
 *   3. init(): register hooks (only there);
 *   4. the hook itself: runs on the event-loop thread, must not block.
 *
 * Options (the module's "options" object in the config):
 *   "veto": true | false (default false) - refuse every outbound connection.
 *
 * Build out of tree:
 *   cc -shared -fPIC -Wl,-z,now $(pkg-config --cflags vipmta) -o example.so example.c
 *
 * Only the public headers are included, as an out-of-tree module would.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>

#include "hooks/core/connection_post_bind.h"
#include "vipmta_module.h"

/* The parsed options. */
struct example_config {
    int veto; /* option "veto" */
};

/* "IP:PORT" ("[IPv6]:PORT") of a destination address. */
static void example_format_addr(const struct sockaddr *addr, int addr_len, char *buf,
                                size_t size)
{
    char ip[INET6_ADDRSTRLEN] = "?";

    if (addr && addr->sa_family == AF_INET && addr_len >= (int)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)addr;
        inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
        snprintf(buf, size, "%s:%u", ip, (unsigned)ntohs(sin->sin_port));
    } else if (addr && addr->sa_family == AF_INET6 &&
               addr_len >= (int)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)addr;
        inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
        snprintf(buf, size, "[%s]:%u", ip, (unsigned)ntohs(sin6->sin6_port));
    } else {
        snprintf(buf, size, "(unknown address)");
    }
}

/* The hook: called after the socket `fd` is bound to the binding in
 * `binding_slot` and before connect(). Same signature as Momentum's.
 * Return 0 to let the connection go ahead, non-zero to veto it (the core
 * closes the socket and retries the mail later). */
static int example_post_bind(void *closure, domain_record *dr, int binding_slot, int fd,
                             struct sockaddr *addr, int addr_len)
{
    vipmta_module_ctx *m = closure; /* what init passed to register_..._hook_last */
    const struct example_config *cfg = vipmta_module_config(m); /* the options in force */
    const char *binding = config_get_binding_name_from_id(binding_slot);
    char dest[INET6_ADDRSTRLEN + 16];

    example_format_addr(addr, addr_len, dest, sizeof(dest));
    vipmta_module_log(m, VIPMTA_LOG_INFO,
                      "post-bind: domain %s binding %s (slot %d) fd %d destination %s",
                      dr && dr->domain ? dr->domain : "?", binding ? binding : "?",
                      binding_slot, fd, dest);
    if (cfg->veto) {
        vipmta_module_log(m, VIPMTA_LOG_INFO, "vetoed");
        return 1;
    }
    return 0;
}

/* Reads the options; reports every problem (not just the first) with the
 * option's path, so `vipmta -t` shows them all at once. NULL when wrong. */
static void *example_parse(vipmta_module_ctx *m, const vipmta_value *options)
{
    static const char *const allowed[] = {"veto", NULL};
    struct example_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg) {
        vipmta_module_error(m, NULL, "out of memory");
        return NULL;
    }
    int errors = vipmta_module_check_keys(m, options, NULL, allowed);

    errors += vipmta_option_bool(m, options, NULL, "veto", &cfg->veto) < 0;
    if (errors) {
        free(cfg);
        return NULL;
    }
    return cfg;
}

/* configure and reload: parse, and keep the result as the options in force
 * (the core frees the previous one, and the last at unload). */
static int example_configure(vipmta_module_ctx *m, const vipmta_value *options)
{
    return vipmta_module_keep_config(m, example_parse(m, options), free);
}

/* Registers the hook. _last appends to the chain (modules listed earlier in
 * the config run first); _first would put it in front. */
static int example_init(vipmta_module_ctx *m)
{
    const struct example_config *cfg = vipmta_module_config(m);

    register_core_connection_post_bind_hook_last(example_post_bind, m);
    vipmta_module_log(m, VIPMTA_LOG_INFO, "ready (veto %s)", cfg->veto ? "on" : "off");
    return 0;
}

/* The descriptor: VIPMTA_MODULE_HEADER fills the ABI fields the loader
 * checks (magic, ABI version, struct size) and the name, which must be the
 * name the config lists the module under. */
static const vipmta_module_descriptor example_descriptor = {
    VIPMTA_MODULE_HEADER("example", "1.0.0",
                         "logs every outbound connection post-bind; can veto them all"),
    .configure = example_configure,
    .init = example_init,
    .reload = example_configure,
};

VIPMTA_MODULE_EXPORT(example_descriptor)
