/* example.c: the template module: logs every outbound connection post-bind and can veto it. */

/*
 * Copy this file to start a module. It shows everything a module needs:
 *
 *   1. a descriptor (name, version, description, lifecycle callbacks),
 *      exported with VIPMTA_MODULE_EXPORT;
 *   2. configure(): validate the options strictly, report every problem with
 *      vipmta_module_error(), keep what you need (no side effects: `vipmta -t`
 *      calls it too);
 *   3. init(): register hooks;
 *   4. the hook itself: runs on the event-loop thread, must not block;
 *   5. shutdown(): free what configure() and init() allocated.
 *
 * Options (the module's "options" object in the config):
 *   "veto": true | false (default false) - refuse every outbound connection.
 *
 * Build out of tree:
 *   cc -shared -fPIC $(pkg-config --cflags vipmta) -o example.so example.c
 *
 * Only the public headers are included, as an out-of-tree module would.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>

#include "hooks/core/connection_post_bind.h"
#include "vipmta_module.h"

/* Everything the module keeps between calls. One instance per load. */
struct example_state {
    vipmta_module_ctx *m; /* for vipmta_module_log() from the hook */
    int veto;             /* option "veto" */
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
    struct example_state *st = closure; /* what we passed to register_..._hook_last */
    const char *binding = config_get_binding_name_from_id(binding_slot);
    char dest[INET6_ADDRSTRLEN + 16];

    example_format_addr(addr, addr_len, dest, sizeof(dest));
    vipmta_module_log(st->m, VIPMTA_LOG_INFO,
                      "post-bind: domain %s binding %s (slot %d) fd %d destination %s",
                      dr && dr->domain ? dr->domain : "?", binding ? binding : "?",
                      binding_slot, fd, dest);
    if (st->veto) {
        vipmta_module_log(st->m, VIPMTA_LOG_INFO, "vetoed");
        return 1;
    }
    return 0;
}

/* Validates the options and keeps them. Reports every problem (not just the
 * first) with the option's path, so `vipmta -t` shows them all at once. */
static int example_configure(vipmta_module_ctx *m, const json_t *options)
{
    static const char *const allowed[] = {"veto", NULL};
    int errors = vipmta_module_check_keys(m, options, NULL, allowed);
    const json_t *veto = json_object_get(options, "veto");

    if (veto && !json_is_boolean(veto)) {
        vipmta_module_error(m, "veto", "must be true or false");
        errors++;
    }
    if (errors)
        return -1;

    struct example_state *st = calloc(1, sizeof(*st));
    if (!st) {
        vipmta_module_error(m, NULL, "out of memory");
        return -1;
    }
    st->m = m;
    st->veto = veto ? json_is_true(veto) : 0;
    vipmta_module_set_data(m, st);
    return 0;
}

/* Registers the hook. _last appends to the chain (modules listed earlier in
 * the config run first); _first would put it in front. */
static int example_init(vipmta_module_ctx *m)
{
    struct example_state *st = vipmta_module_get_data(m);

    register_core_connection_post_bind_hook_last(example_post_bind, st);
    vipmta_module_log(m, VIPMTA_LOG_INFO, "ready (veto %s)", st->veto ? "on" : "off");
    return 0;
}

/* Frees the state. Also called when configure() or init() failed halfway,
 * so it must cope with missing data. */
static void example_shutdown(vipmta_module_ctx *m)
{
    free(vipmta_module_get_data(m));
    vipmta_module_set_data(m, NULL);
}

/* The descriptor: VIPMTA_MODULE_HEADER fills the ABI fields the loader
 * checks (magic, ABI version, struct size) and the name, which must be the
 * name the config lists the module under. */
static const vipmta_module_descriptor example_descriptor = {
    VIPMTA_MODULE_HEADER("example", "1.0.0",
                         "logs every outbound connection post-bind; can veto them all"),
    .configure = example_configure,
    .init = example_init,
    .shutdown = example_shutdown,
};

VIPMTA_MODULE_EXPORT(example_descriptor)
