/* vipmta_hook.h: generic hook machinery; one declaration per hook yields its typedef and functions. */
#ifndef VIPMTA_HOOK_H
#define VIPMTA_HOOK_H

#ifdef __cplusplus
extern "C" {
#endif

/* A hook chain is a plain array of {function, closure} pairs walked front to
 * back on the event-loop thread: no locks, no allocation while calling.
 * Registration happens only while modules initialise. */
typedef void (*vipmta_hook_fn)(void);

struct vipmta_hook_entry {
    vipmta_hook_fn fn;
    void *closure;
};

struct vipmta_hook_chain {
    struct vipmta_hook_entry *entries;
    int count;
    int capacity;
    const char **owners;     /* module name that registered entries[i] ("core" if none) */
    const char *name;        /* "core_connection_post_bind" */
    int last_stop;           /* index of the entry that stopped the last call, -1 if none */
};

/* Registers fn/closure at the front (first != 0) or the back of the chain. */
void vipmta_hook_chain_register(struct vipmta_hook_chain *chain, vipmta_hook_fn fn,
                                void *closure, int first);

#define VIPMTA_HOOK_UNPAREN(...) __VA_ARGS__

/* EC_DECLARE_HOOK(scope, type, name, typedefargs, declargs, callargs, handleret)
 *
 * Declares, for a hook `name` in `scope`:
 *   typedef type (*ec_hook_<scope>_<name>_func_t) typedefargs;
 *   int  has_<scope>_<name>_hook(void);
 *   void register_<scope>_<name>_hook_first(ec_hook_<scope>_<name>_func_t, void *closure);
 *   void register_<scope>_<name>_hook_last(ec_hook_<scope>_<name>_func_t, void *closure);
 *   type call_<scope>_<name>_hook declargs;
 * typedefargs starts with `void *closure`; declargs are the same without it;
 * callargs are the parameter names of declargs; handleret is a statement run
 * after each hook with its result in `ret` (e.g. `if (ret) return ret;`).
 * The definitions live in the core (EC_DEFINE_HOOK), exported to modules. */
#define EC_DECLARE_HOOK(hs, ht, hn, htargs, hdargs, hcargs, hret) \
    typedef ht(*ec_hook_##hs##_##hn##_func_t) htargs;                      \
    extern struct vipmta_hook_chain vipmta_hook_chain_##hs##_##hn;                \
    int has_##hs##_##hn##_hook(void);                                             \
    void register_##hs##_##hn##_hook_first(ec_hook_##hs##_##hn##_func_t hook, \
                                                void *closure);                         \
    void register_##hs##_##hn##_hook_last(ec_hook_##hs##_##hn##_func_t hook,  \
                                               void *closure);                          \
    ht call_##hs##_##hn##_hook hdargs;

/* handleret for hooks where the first non-zero result stops the chain and is
 * returned; it remembers which entry stopped it, so the core can name the
 * module (vipmta_hook_chain.last_stop). */
#define VIPMTA_HOOK_STOP_ON_NONZERO      \
    if (ret) {                           \
        chain_->last_stop = i_;          \
        return ret;                      \
    }

/* Used once per hook inside the core to emit the definitions. With no
 * providers call_ returns 0. */
#define EC_DEFINE_HOOK(hs, ht, hn, htargs, hdargs, hcargs, hret)       \
    struct vipmta_hook_chain vipmta_hook_chain_##hs##_##hn = {                          \
        .name = #hs "_" #hn, .last_stop = -1};                                          \
    int has_##hs##_##hn##_hook(void)                                                    \
    {                                                                                        \
        return vipmta_hook_chain_##hs##_##hn.count != 0;                                \
    }                                                                                        \
    void register_##hs##_##hn##_hook_first(ec_hook_##hs##_##hn##_func_t hook,      \
                                                void *closure)                               \
    {                                                                                        \
        vipmta_hook_chain_register(&vipmta_hook_chain_##hs##_##hn, (vipmta_hook_fn)hook, \
                                   closure, 1);                                              \
    }                                                                                        \
    void register_##hs##_##hn##_hook_last(ec_hook_##hs##_##hn##_func_t hook,       \
                                               void *closure)                                \
    {                                                                                        \
        vipmta_hook_chain_register(&vipmta_hook_chain_##hs##_##hn, (vipmta_hook_fn)hook, \
                                   closure, 0);                                              \
    }                                                                                        \
    ht call_##hs##_##hn##_hook hdargs                                               \
    {                                                                                        \
        struct vipmta_hook_chain *chain_ = &vipmta_hook_chain_##hs##_##hn;              \
        const struct vipmta_hook_entry *entry_ = chain_->entries;                            \
        ht ret = 0;                                                                        \
        for (int i_ = 0, n_ = chain_->count; i_ < n_; i_++) {                                \
            ret = ((ec_hook_##hs##_##hn##_func_t)entry_[i_].fn)(                        \
                entry_[i_].closure, VIPMTA_HOOK_UNPAREN hcargs);                           \
            hret                                                                        \
        }                                                                                    \
        return ret;                                                                          \
    }

#ifdef __cplusplus
}
#endif
#endif
