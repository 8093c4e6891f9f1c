/* good.c: test module that loads cleanly and registers a connection_post_bind hook (option "veto"). */
#include "hooks/core/connection_post_bind.h"
#include "vipmta_module.h"

static int good_veto;

static int good_post_bind(void *closure, domain_record *dr, int binding_slot, int fd,
                          struct sockaddr *addr, int addr_len)
{
    (void)closure, (void)dr, (void)binding_slot, (void)fd, (void)addr, (void)addr_len;
    return good_veto;
}

static int good_configure(vipmta_module_ctx *m, const json_t *options)
{
    static const char *const keys[] = {"veto", NULL};
    int errors = vipmta_module_check_keys(m, options, NULL, keys);
    const json_t *veto = json_object_get(options, "veto");

    good_veto = 0;
    if (veto && !json_is_boolean(veto)) {
        vipmta_module_error(m, "veto", "expected true or false");
        errors++;
    } else if (veto) {
        good_veto = json_is_true(veto);
    }
    return errors ? -1 : 0;
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
};
VIPMTA_MODULE_EXPORT(good_descriptor)
