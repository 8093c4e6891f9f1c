/* plugin_hooks.c: hook chain registration, module attribution and the core's hook definitions. */
#include "plugin_hooks.h"
#include "log/log.h"
#include "hooks/core/connection_post_bind.h"
#include "vipmta_tls.h"

#include <stdlib.h>
#include <string.h>

/* The definitions of every hook the core offers: one line each. */
VIPMTA_HOOK_CORE_CONNECTION_POST_BIND(EC_DEFINE_HOOK)
VIPMTA_HOOK_VIPMTA_OUTBOUND_TLS(EC_DEFINE_HOOK)

static struct vipmta_hook_chain *const all_chains[] = {
    &vipmta_hook_chain_core_connection_post_bind,
    &vipmta_hook_chain_vipmta_outbound_tls,
};

static const char *registering_module = "core";

void plugin_hooks_set_registering_module(const char *module_name)
{
    registering_module = module_name ? module_name : "core";
}

void vipmta_hook_chain_register(struct vipmta_hook_chain *chain, vipmta_hook_fn fn, void *closure,
                                int first)
{
    if (!chain || !fn) {
        vipmta_log(VIPMTA_LOG_ERROR, "%s: refusing to register a NULL hook for %s",
                   registering_module, chain ? chain->name : "(null chain)");
        return;
    }
    if (chain->count == chain->capacity) {
        int cap = chain->capacity ? chain->capacity * 2 : 4;
        struct vipmta_hook_entry *entries = realloc(chain->entries, (size_t)cap * sizeof(*entries));
        if (!entries)
            abort(); /* registration happens at start only: out of memory here is fatal */
        chain->entries = entries;
        const char **owners = realloc(chain->owners, (size_t)cap * sizeof(*owners));
        if (!owners)
            abort();
        chain->owners = owners;
        chain->capacity = cap;
    }
    if (first) {
        memmove(chain->entries + 1, chain->entries, (size_t)chain->count * sizeof(*chain->entries));
        memmove(chain->owners + 1, chain->owners, (size_t)chain->count * sizeof(*chain->owners));
        chain->entries[0] = (struct vipmta_hook_entry){fn, closure};
        chain->owners[0] = registering_module;
    } else {
        chain->entries[chain->count] = (struct vipmta_hook_entry){fn, closure};
        chain->owners[chain->count] = registering_module;
    }
    chain->count++;
    log_write("core", VIPMTA_LOG_DEBUG, "hook %s: %s registered (%s), chain length %d",
              chain->name, registering_module, first ? "first" : "last", chain->count);
}

const char *plugin_hooks_owner(const struct vipmta_hook_chain *chain, int index)
{
    if (!chain || index < 0 || index >= chain->count)
        return "unknown";
    return chain->owners[index];
}

const char *plugin_hooks_last_stop_owner(const struct vipmta_hook_chain *chain)
{
    return plugin_hooks_owner(chain, chain ? chain->last_stop : -1);
}

struct vipmta_hook_chain *const *plugin_hooks_all(size_t *count)
{
    *count = sizeof(all_chains) / sizeof(all_chains[0]);
    return all_chains;
}

void plugin_hooks_describe_module(FILE *out, const char *module_name)
{
    size_t n;
    struct vipmta_hook_chain *const *chains = plugin_hooks_all(&n);
    int any = 0;

    for (size_t c = 0; c < n; c++) {
        for (int i = 0; i < chains[c]->count; i++) {
            if (strcmp(chains[c]->owners[i], module_name) != 0)
                continue;
            fprintf(out, "    hook %s (position %d of %d)\n", chains[c]->name, i + 1,
                    chains[c]->count);
            any = 1;
        }
    }
    if (!any)
        fprintf(out, "    (no hooks registered)\n");
}

void plugin_hooks_reset_all(void)
{
    size_t n;
    struct vipmta_hook_chain *const *chains = plugin_hooks_all(&n);

    for (size_t c = 0; c < n; c++) {
        free(chains[c]->entries);
        free(chains[c]->owners);
        chains[c]->entries = NULL;
        chains[c]->owners = NULL;
        chains[c]->count = chains[c]->capacity = 0;
        chains[c]->last_stop = -1;
    }
    registering_module = "core";
}

void plugin_hooks_remove_owner(const char *module_name)
{
    size_t n;
    struct vipmta_hook_chain *const *chains = plugin_hooks_all(&n);

    for (size_t c = 0; c < n; c++) {
        struct vipmta_hook_chain *ch = chains[c];
        int kept = 0;
        for (int i = 0; i < ch->count; i++) {
            if (strcmp(ch->owners[i], module_name) == 0)
                continue;
            ch->entries[kept] = ch->entries[i];
            ch->owners[kept] = ch->owners[i];
            kept++;
        }
        ch->count = kept;
        ch->last_stop = -1;
    }
}
