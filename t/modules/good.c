/* good.c: test module that loads cleanly and registers a connection_post_bind hook (option "veto"). */
#include "hooks/core/connection_post_bind.h"
#include "vipmta_module.h"

static int good_post_bind(void *closure, domain_record *dr, int binding_slot, int fd,
                          struct sockaddr *addr, int addr_len)
{
    const int *veto = vipmta_module_config(closure);
    (void)dr, (void)binding_slot, (void)fd, (void)addr, (void)addr_len;
    return *veto;
}

static void *good_parse(vipmta_module_ctx *m, const vipmta_value *options)
{
    static const char *const keys[] = {"veto", NULL};
    static int veto[64]; /* one per config entry, no allocation to free */
    int i = vipmta_module_index(m) & 63;
    veto[i] = 0;
    int errors = vipmta_module_check_keys(m, options, NULL, keys);
    errors += vipmta_option_bool(m, options, NULL, "veto", &veto[i]) < 0;
    return errors ? NULL : &veto[i];
}

static int good_configure(vipmta_module_ctx *m, const vipmta_value *options)
{
    return vipmta_module_keep_config(m, good_parse(m, options), NULL);
}

static int good_init(vipmta_module_ctx *m)
{
    register_core_connection_post_bind_hook_last(good_post_bind, m);
    return 0;
}

static const vipmta_module_descriptor good_descriptor = {
    VIPMTA_MODULE_HEADER("good", "1.2.3", "a test module that loads"),
    .configure = good_configure,
    .init = good_init,
    .reload = good_configure,
};
VIPMTA_MODULE_EXPORT(good_descriptor)
