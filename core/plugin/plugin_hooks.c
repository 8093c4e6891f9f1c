/* plugin_hooks.c: hook chains: the core's hook definitions, hooks modules declare, registration rules and attribution. */
#include "plugin_hooks.h"
#include "log/log.h"
#include "plugin_internal.h"
#include "plugin_momentum.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PLUGIN_HOOKS_MAX 128       /* chains: the core's and the declared ones */
#define PLUGIN_HOOKS_DECLARED 64   /* hooks modules may declare */

/* Calls of hooks in progress on this thread (local-exec: one instruction
 * on the hot path). Registration is refused while it is non-zero. */
static __thread int plugin_hooks_depth __attribute__((tls_model("local-exec")));

/* The instance initialising now, and the thread it runs on. */
static const struct vipmta_module_ctx *plugin_hooks_registering;
static const void *plugin_hooks_registering_tag;
static pthread_t plugin_hooks_registering_thread;

static struct vipmta_hook *plugin_hooks_known[PLUGIN_HOOKS_MAX];
static size_t plugin_hooks_known_count;
static struct vipmta_hook plugin_hooks_declared[PLUGIN_HOOKS_DECLARED];
static size_t plugin_hooks_declared_count;

static void plugin_hooks_know(struct vipmta_hook *h)
{
    if (plugin_hooks_known_count < PLUGIN_HOOKS_MAX)
        plugin_hooks_known[plugin_hooks_known_count++] = h;
}

static int plugin_hooks_add(struct vipmta_hook *h, vipmta_hook_fn fn, void *closure, int first,
                            const void *caller);

/* A Momentum instance's provider of a core hook: called through the hook's
 * as_instance, which names the instance while it runs. */
struct plugin_hooks_wrap {
    struct vipmta_hook_provider real;
    struct vipmta_module_ctx *instance;
};

/* The definitions of a core hook: its chain, has/register, and a call_ that
 * walks the chain directly. A provider that stops the chain is remembered
 * (plugin_hooks_last_stop_owner). */
#undef EC_HOOK_RETURN
#define EC_HOOK_RETURN(x)                                                                    \
    {                                                                                        \
        vipmta_hook_c_->last_stop = vipmta_hook_i_;                                          \
        return (x);                                                                          \
    }

#define PLUGIN_DEFINE_CHAIN(hs, hn)                                                          \
    struct vipmta_hook plugin_hook_##hs##_##hn = {                                           \
        .name = #hs "_" #hn, .last_stop = -1,                                                \
        .as_instance = (vipmta_hook_fn)plugin_hooks_as_##hs##_##hn};                         \
    __attribute__((constructor)) static void plugin_hooks_know_##hs##_##hn(void)             \
    {                                                                                        \
        plugin_hooks_know(&plugin_hook_##hs##_##hn);                                         \
    }                                                                                        \
    int has_##hs##_##hn##_hook(void)                                                         \
    {                                                                                        \
        return plugin_hook_##hs##_##hn.count != 0;                                           \
    }                                                                                        \
    void register_##hs##_##hn##_hook_first(ec_hook_##hs##_##hn##_func_t *hook, void *closure) \
    {                                                                                        \
        plugin_hooks_add(&plugin_hook_##hs##_##hn, (vipmta_hook_fn)hook, closure, 1,         \
                         __builtin_return_address(0));                                       \
    }                                                                                        \
    void register_##hs##_##hn##_hook_last(ec_hook_##hs##_##hn##_func_t *hook, void *closure) \
    {                                                                                        \
        plugin_hooks_add(&plugin_hook_##hs##_##hn, (vipmta_hook_fn)hook, closure, 0,         \
                         __builtin_return_address(0));                                       \
    }

/* Each core hook's as_instance (below) calls a wrapped provider with its
 * real closure, the instance named while it runs: the hook's declaration
 * names every parameter, the first `closure`, so callargs name the others,
 * and EC_HOOK_CLOSURE reads the real closure there. This opens one. */
#define PLUGIN_AS_INSTANCE(wrap)                                                             \
    const struct plugin_hooks_wrap *vipmta_hook_w_ = (wrap);                                 \
    const struct vipmta_hook_provider *vipmta_hook_p_ = &vipmta_hook_w_->real;               \
    const int vipmta_hook_i_ = 0;                                                            \
    struct vipmta_module_ctx *vipmta_hook_was_ = plugin_momentum_enter(vipmta_hook_w_->instance)
#define PLUGIN_DEFINE_CORE_HOOK(hs, ht, hn, htargs, hdargs, hcargs, hret)                    \
    static ht plugin_hooks_as_##hs##_##hn htargs                                            \
    {                                                                                        \
        PLUGIN_AS_INSTANCE(closure);                                                         \
        ht vipmta_hook_ret_ = ((ec_hook_##hs##_##hn##_func_t *)vipmta_hook_p_->fn)hcargs;   \
        plugin_momentum_leave(vipmta_hook_was_);                                             \
        return vipmta_hook_ret_;                                                             \
    }                                                                                        \
    PLUGIN_DEFINE_CHAIN(hs, hn)                                                              \
    static inline ht plugin_hooks_walk_##hs##_##hn(struct vipmta_hook *vipmta_hook_c_,       \
                                                   VIPMTA_HOOK_UNPAREN hdargs)               \
    {                                                                                        \
        const struct vipmta_hook_provider *vipmta_hook_p_ = vipmta_hook_c_->providers;       \
        ht vipmta_hook_ret_ = 0;                                                             \
        for (int vipmta_hook_i_ = 0, vipmta_hook_n_ = vipmta_hook_c_->count;                 \
             vipmta_hook_i_ < vipmta_hook_n_; vipmta_hook_i_++) {                            \
            vipmta_hook_ret_ = ((ec_hook_##hs##_##hn##_func_t *)vipmta_hook_p_[vipmta_hook_i_].fn)hcargs; \
            hret;                                                                            \
        }                                                                                    \
        return vipmta_hook_ret_;                                                             \
    }                                                                                        \
    ht call_##hs##_##hn##_hook hdargs                                                        \
    {                                                                                        \
        plugin_hooks_depth++;                                                                \
        ht vipmta_hook_ret_ =                                                                \
            plugin_hooks_walk_##hs##_##hn(&plugin_hook_##hs##_##hn, VIPMTA_HOOK_ARGS hcargs); \
        plugin_hooks_depth--;                                                                \
        return vipmta_hook_ret_;                                                             \
    }

/* The same for a hook whose providers return nothing (every one runs). */
#define PLUGIN_DEFINE_CORE_VOID_HOOK(hs, hn, htargs, hdargs, hcargs)                         \
    static void plugin_hooks_as_##hs##_##hn htargs                                          \
    {                                                                                        \
        PLUGIN_AS_INSTANCE(closure);                                                         \
        ((ec_hook_##hs##_##hn##_func_t *)vipmta_hook_p_->fn)hcargs;                         \
        plugin_momentum_leave(vipmta_hook_was_);                                             \
    }                                                                                        \
    PLUGIN_DEFINE_CHAIN(hs, hn)                                                              \
    void call_##hs##_##hn##_hook hdargs                                                      \
    {                                                                                        \
        const struct vipmta_hook *vipmta_hook_c_ = &plugin_hook_##hs##_##hn;                 \
        const struct vipmta_hook_provider *vipmta_hook_p_ = vipmta_hook_c_->providers;       \
        plugin_hooks_depth++;                                                                \
        for (int vipmta_hook_i_ = 0, vipmta_hook_n_ = vipmta_hook_c_->count;                 \
             vipmta_hook_i_ < vipmta_hook_n_; vipmta_hook_i_++)                              \
            ((ec_hook_##hs##_##hn##_func_t *)vipmta_hook_p_[vipmta_hook_i_].fn)hcargs;       \
        plugin_hooks_depth--;                                                                \
    }

/* Every hook the core offers (the list in plugin_hooks.h). */
PLUGIN_CORE_HOOKS(PLUGIN_DEFINE_CORE_HOOK, PLUGIN_DEFINE_CORE_VOID_HOOK)

int plugin_hooks_dispatching(void)
{
    return plugin_hooks_depth != 0;
}

void plugin_hooks_begin_generation(const struct vipmta_module_ctx *m, const void *generation)
{
    plugin_hooks_registering = m;
    plugin_hooks_registering_tag = generation;
    plugin_hooks_registering_thread = pthread_self();
}

void plugin_hooks_begin_init(const struct vipmta_module_ctx *m)
{
    plugin_hooks_begin_generation(m, NULL);
}

void plugin_hooks_end_init(void)
{
    plugin_hooks_registering = NULL;
    plugin_hooks_registering_tag = NULL;
}

/* Who is calling: the loaded instance whose code holds `caller`, else the
 * file it is in. */
static void plugin_hooks_caller(const void *caller, char *buf, size_t size)
{
    const struct vipmta_module_ctx *m = plugin_loader_instance_at(caller);
    Dl_info info;
    if (m)
        snprintf(buf, size, "module \"%s\"", m->label);
    else if (caller && dladdr(caller, &info) && info.dli_fname)
        snprintf(buf, size, "code in %s (not a loaded module)", info.dli_fname);
    else
        snprintf(buf, size, "an unknown caller");
}

static int plugin_hooks_refuse(const struct vipmta_hook *h, const void *caller, const char *why)
{
    char who[600];
    plugin_hooks_caller(caller, who, sizeof(who));
    log_write("core", VIPMTA_LOG_ERROR, "hook %s: registration by %s refused: %s",
              h ? h->name : "(none)", who, why);
    return -1;
}

static int plugin_hooks_grow(struct vipmta_hook *h)
{
    if (h->count < h->capacity)
        return 0;
    int cap = h->capacity ? h->capacity * 2 : 4;
    struct vipmta_hook_provider *p = realloc(h->providers, (size_t)cap * sizeof(*p));
    if (!p)
        return -1;
    h->providers = p;
    const struct vipmta_module_ctx **ids = realloc(h->owner_ids, (size_t)cap * sizeof(*ids));
    if (!ids)
        return -1;
    h->owner_ids = ids;
    const char **owners = realloc(h->owners, (size_t)cap * sizeof(*owners));
    if (!owners)
        return -1;
    h->owners = owners;
    const void **tags = realloc(h->tags, (size_t)cap * sizeof(*tags));
    if (!tags)
        return -1;
    h->tags = tags;
    unsigned char *wrapped = realloc(h->wrapped, (size_t)cap);
    if (!wrapped)
        return -1;
    h->wrapped = wrapped;
    h->capacity = cap;
    return 0;
}

static int plugin_hooks_add(struct vipmta_hook *h, vipmta_hook_fn fn, void *closure, int first,
                            const void *caller)
{
    const struct vipmta_module_ctx *who = plugin_hooks_registering;

    if (!h)
        return plugin_hooks_refuse(h, caller, "no such hook (its declaration was refused)");
    if (!fn)
        return plugin_hooks_refuse(h, caller, "the function is NULL");
    if (plugin_hooks_depth)
        return plugin_hooks_refuse(h, caller, "called while a hook runs (a hook cannot "
                                              "register hooks)");
    if (!who || !pthread_equal(pthread_self(), plugin_hooks_registering_thread))
        return plugin_hooks_refuse(h, caller, "outside the module's initialisation (hooks are "
                                              "registered from init(); Momentum modules from "
                                              "conf_setup or ext_init)");
    for (int i = 0; i < h->count; i++) {
        const struct vipmta_hook_provider *p = &h->providers[i];
        if (h->wrapped[i])
            p = &((const struct plugin_hooks_wrap *)p->closure)->real;
        if (h->owner_ids[i] == who && h->tags[i] == plugin_hooks_registering_tag &&
            p->fn == fn && p->closure == closure) {
            log_write("core", VIPMTA_LOG_DEBUG, "hook %s: %s registered the same function and "
                      "closure again: kept once", h->name, who->label);
            return 0;
        }
    }
    int wrap = who->ec && h->as_instance; /* a Momentum instance: called as itself */
    if (wrap) {
        struct plugin_hooks_wrap *w = malloc(sizeof(*w));
        if (!w)
            abort();
        w->real = (struct vipmta_hook_provider){fn, closure};
        w->instance = (struct vipmta_module_ctx *)who;
        fn = h->as_instance;
        closure = w;
    }
    if (plugin_hooks_grow(h) != 0)
        abort(); /* registration happens while modules start: out of memory here is fatal */
    int at = first ? 0 : h->count;
    if (first) {
        memmove(h->providers + 1, h->providers, (size_t)h->count * sizeof(*h->providers));
        memmove(h->owner_ids + 1, h->owner_ids, (size_t)h->count * sizeof(*h->owner_ids));
        memmove(h->owners + 1, h->owners, (size_t)h->count * sizeof(*h->owners));
        memmove(h->tags + 1, h->tags, (size_t)h->count * sizeof(*h->tags));
        memmove(h->wrapped + 1, h->wrapped, (size_t)h->count);
    }
    h->providers[at] = (struct vipmta_hook_provider){fn, closure};
    h->owner_ids[at] = who;
    h->owners[at] = who->label;
    h->tags[at] = plugin_hooks_registering_tag;
    h->wrapped[at] = (unsigned char)wrap;
    h->count++;
    h->last_stop = -1;
    log_write("core", VIPMTA_LOG_DEBUG, "hook %s: %s registered (%s), chain length %d", h->name,
              who->label, first ? "first" : "last", h->count);
    return 0;
}

/* ---- hooks modules declare (EC_DECLARE_HOOK) ---- */

/* FNV-1a over the prototype without white space. */
static unsigned long plugin_hooks_proto_hash(const char *proto)
{
    unsigned long h = 2166136261u;
    for (const char *p = proto ? proto : ""; *p; p++) {
        if (*p == ' ' || *p == '\t' || *p == '\n')
            continue;
        h = (h ^ (unsigned char)*p) * 16777619u;
    }
    return h;
}

struct vipmta_hook *vipmta_hook_lookup(const char *name, const char *proto)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < plugin_hooks_known_count; i++) {
        struct vipmta_hook *h = plugin_hooks_known[i];
        if (strcmp(h->name, name) != 0)
            continue;
        if (h->proto_hash && h->proto_hash != plugin_hooks_proto_hash(proto)) {
            log_write("core", VIPMTA_LOG_ERROR, "hook %s: declared again with other arguments "
                      "%s: refused (every declaration of a hook must be the same)", name,
                      proto ? proto : "()");
            return NULL;
        }
        return h;
    }
    if (plugin_hooks_declared_count == PLUGIN_HOOKS_DECLARED ||
        strlen(name) >= PLUGIN_HOOK_NAME_MAX) {
        log_write("core", VIPMTA_LOG_ERROR, "hook %s: cannot declare it (%s)", name,
                  strlen(name) >= PLUGIN_HOOK_NAME_MAX ? "name too long" : "too many hooks");
        return NULL;
    }
    struct vipmta_hook *h = &plugin_hooks_declared[plugin_hooks_declared_count++];
    snprintf(h->declared_name, sizeof(h->declared_name), "%s", name);
    h->name = h->declared_name;
    h->proto_hash = plugin_hooks_proto_hash(proto);
    h->last_stop = -1;
    plugin_hooks_know(h);
    return h;
}

int vipmta_hook_register(struct vipmta_hook *hook, vipmta_hook_fn fn, void *closure, int first)
{
    return plugin_hooks_add(hook, fn, closure, first, __builtin_return_address(0));
}

int vipmta_hook_count(const struct vipmta_hook *hook)
{
    return hook ? hook->count : 0;
}

int vipmta_hook_dispatch_begin(struct vipmta_hook *hook,
                               const struct vipmta_hook_provider **providers)
{
    plugin_hooks_depth++;
    *providers = hook ? hook->providers : NULL;
    return hook ? hook->count : 0;
}

void vipmta_hook_dispatch_end(struct vipmta_hook *hook)
{
    (void)hook;
    plugin_hooks_depth--;
}

/* ---- the registry's reports ---- */

const char *plugin_hooks_owner(const struct vipmta_hook *chain, int index)
{
    if (!chain || index < 0 || index >= chain->count)
        return "unknown";
    return chain->owners[index];
}

const char *plugin_hooks_last_stop_owner(const struct vipmta_hook *chain)
{
    return plugin_hooks_owner(chain, chain ? chain->last_stop : -1);
}

struct vipmta_hook *const *plugin_hooks_all(size_t *count)
{
    *count = plugin_hooks_known_count;
    return plugin_hooks_known;
}

void plugin_hooks_describe_module(FILE *out, const struct vipmta_module_ctx *m)
{
    int any = 0;

    for (size_t c = 0; c < plugin_hooks_known_count; c++) {
        const struct vipmta_hook *h = plugin_hooks_known[c];
        for (int i = 0; i < h->count; i++) {
            if (h->owner_ids[i] != m)
                continue;
            fprintf(out, "    hook %s (position %d of %d)\n", h->name, i + 1, h->count);
            any = 1;
        }
    }
    if (!any)
        fprintf(out, "    (no hooks registered)\n");
}

void plugin_hooks_reset_all(void)
{
    for (size_t c = 0; c < plugin_hooks_known_count; c++) {
        struct vipmta_hook *h = plugin_hooks_known[c];
        for (int i = 0; i < h->count; i++)
            if (h->wrapped[i])
                free(h->providers[i].closure);
        free(h->providers);
        free(h->owner_ids);
        free(h->owners);
        free(h->tags);
        free(h->wrapped);
        h->wrapped = NULL;
        h->providers = NULL;
        h->owner_ids = NULL;
        h->owners = NULL;
        h->tags = NULL;
        h->count = h->capacity = 0;
        h->last_stop = -1;
    }
    plugin_hooks_end_init();
}

/* Removes m's providers of generation `tag`, or all of m's with `all`. */
static void plugin_hooks_remove(const struct vipmta_module_ctx *m, const void *tag, int all)
{
    for (size_t c = 0; c < plugin_hooks_known_count; c++) {
        struct vipmta_hook *h = plugin_hooks_known[c];
        int kept = 0;
        for (int i = 0; i < h->count; i++) {
            if (h->owner_ids[i] == m && (all || h->tags[i] == tag)) {
                if (h->wrapped[i])
                    free(h->providers[i].closure);
                continue;
            }
            h->providers[kept] = h->providers[i];
            h->owner_ids[kept] = h->owner_ids[i];
            h->owners[kept] = h->owners[i];
            h->tags[kept] = h->tags[i];
            h->wrapped[kept] = h->wrapped[i];
            kept++;
        }
        h->count = kept;
        h->last_stop = -1;
    }
}

void plugin_hooks_remove_owner(const struct vipmta_module_ctx *m)
{
    plugin_hooks_remove(m, NULL, 1);
}

void plugin_hooks_remove_generation(const struct vipmta_module_ctx *m, const void *generation)
{
    plugin_hooks_remove(m, generation, 0);
}
