/* vipmta_hook.h: the generic hook machinery (Momentum's EC_DECLARE_HOOK model): one declaration per hook yields its function type and its has/register/call functions. */
#ifndef VIPMTA_HOOK_H
#define VIPMTA_HOOK_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A hook is a chain of providers, {function, closure} pairs the core keeps
 * and walks front to back. The chain itself is the core's (opaque); modules
 * reach it through the functions below, which the declarations wrap.
 *
 * Rules (the core enforces them, refusing with a log line that names the
 * module):
 *  - providers are registered only while a module initialises (native
 *    init(); Momentum-style conf_setup and ext_init), on the loop thread,
 *    and are attributed to that module instance;
 *  - never while a hook runs (a provider cannot register providers);
 *  - the same function with the same closure from the same instance is kept
 *    once, so a callback that runs again never adds a second copy;
 *  - there is no unregistering: an instance's providers go when it goes. */

typedef void (*vipmta_hook_fn)(void); /* any provider, cast back by its call_ */

struct vipmta_hook; /* one hook's chain: opaque */

struct vipmta_hook_provider {
    vipmta_hook_fn fn;
    void *closure;
};

/* The hook called NAME ("SCOPE_HOOKNAME", e.g. "mymod_get_closure"), created
 * on first use. `proto` is the providers' parameter list as declared; a second
 * declaration with another one is refused (logged): NULL. */
struct vipmta_hook *vipmta_hook_lookup(const char *name, const char *proto);
/* Adds a provider at the front (first != 0) or at the back of the chain.
 * 0, or -1 when refused (see the rules above). */
int vipmta_hook_register(struct vipmta_hook *hook, vipmta_hook_fn fn, void *closure, int first);
/* Number of providers (0 for NULL). */
int vipmta_hook_count(const struct vipmta_hook *hook);
/* Brackets one call_: gives the providers in chain order and their number
 * (0 for NULL); no registration is accepted until the matching _end. */
int vipmta_hook_dispatch_begin(struct vipmta_hook *hook,
                               const struct vipmta_hook_provider **providers);
void vipmta_hook_dispatch_end(struct vipmta_hook *hook);

/* ---- declaring a hook ----
 *
 * EC_DECLARE_HOOK(scope, type, name, typedefargs, declargs, callargs, handleret)
 * EC_DECLARE_VOID_HOOK(scope, name, typedefargs, declargs, callargs)
 * EC_DECLARE_HOOK_NOARGS(scope, type, name, handleret)
 *
 * declare, for a hook `name` in `scope` (a module declaring hooks for other
 * modules picks a unique scope, e.g. its own name):
 *   typedef type ec_hook_<scope>_<name>_func_t typedefargs;   (a function type)
 *   int  has_<scope>_<name>_hook(void);                (0: no providers)
 *   void register_<scope>_<name>_hook_first(ec_hook_<scope>_<name>_func_t *hook, void *closure);
 *   void register_<scope>_<name>_hook_last(ec_hook_<scope>_<name>_func_t *hook, void *closure);
 *   type call_<scope>_<name>_hook declargs;
 * typedefargs is the providers' parameter list, starting with the closure
 * (`(void *, my_arg *)`); declargs the call_'s, typed and named, without the
 * closure (at least one: hooks without arguments use _NOARGS); callargs how
 * each provider is called: `(EC_HOOK_CLOSURE, names of declargs...)`.
 * handleret is a statement run after each provider, with its result in
 * EC_HOOK_RETVAL; EC_HOOK_RETURN(x) ends the call returning x, e.g.
 *   if (EC_HOOK_RETVAL != 0) EC_HOOK_RETURN(EC_HOOK_RETVAL)
 * A call that runs to the end returns the last provider's value; with no
 * providers it returns 0 (Momentum leaves that undefined; vipmta defines it).
 * These functions are static inline in the including file and find the
 * chain by name, so a module's hooks need nothing from the core's headers
 * but this one. */
#define EC_HOOK_CLOSURE (vipmta_hook_p_[vipmta_hook_i_].closure)
#define EC_HOOK_RETVAL vipmta_hook_ret_
#define EC_HOOK_RETURN(x) return (x)

#define VIPMTA_HOOK_UNPAREN(...) __VA_ARGS__
/* callargs without their first element (EC_HOOK_CLOSURE) */
#define VIPMTA_HOOK_ARGS(closure, ...) __VA_ARGS__

/* The chain of a declared hook, looked up once per file that calls it. */
#define VIPMTA_HOOK_CHAIN_OF(hs, hn, htargs)                                                  \
    static inline struct vipmta_hook *vipmta_hook_of_##hs##_##hn(void)                      \
    {                                                                                        \
        static struct vipmta_hook *vipmta_hook_h_;                                          \
        if (!vipmta_hook_h_)                                                                 \
            vipmta_hook_h_ = vipmta_hook_lookup(#hs "_" #hn, #htargs);                       \
        return vipmta_hook_h_;                                                               \
    }                                                                                        \
    static inline int has_##hs##_##hn##_hook(void)                                          \
    {                                                                                        \
        return vipmta_hook_count(vipmta_hook_of_##hs##_##hn()) != 0;                        \
    }                                                                                        \
    static inline void register_##hs##_##hn##_hook_first(ec_hook_##hs##_##hn##_func_t *hook, \
                                                          void *closure)                     \
    {                                                                                        \
        vipmta_hook_register(vipmta_hook_of_##hs##_##hn(), (vipmta_hook_fn)hook, closure, 1); \
    }                                                                                        \
    static inline void register_##hs##_##hn##_hook_last(ec_hook_##hs##_##hn##_func_t *hook,  \
                                                         void *closure)                      \
    {                                                                                        \
        vipmta_hook_register(vipmta_hook_of_##hs##_##hn(), (vipmta_hook_fn)hook, closure, 0); \
    }

#define EC_DECLARE_HOOK(hs, ht, hn, htargs, hdargs, hcargs, hret)                            \
    typedef ht ec_hook_##hs##_##hn##_func_t htargs;                                          \
    VIPMTA_HOOK_CHAIN_OF(hs, hn, htargs)                                                     \
    static inline ht vipmta_hook_walk_##hs##_##hn(                                           \
        const struct vipmta_hook_provider *vipmta_hook_p_, int vipmta_hook_n_,               \
        VIPMTA_HOOK_UNPAREN hdargs)                                                          \
    {                                                                                        \
        ht vipmta_hook_ret_ = (ht)0;                                                         \
        for (int vipmta_hook_i_ = 0; vipmta_hook_i_ < vipmta_hook_n_; vipmta_hook_i_++) {    \
            vipmta_hook_ret_ = ((ec_hook_##hs##_##hn##_func_t *)vipmta_hook_p_[vipmta_hook_i_].fn)hcargs; \
            hret;                                                                            \
        }                                                                                    \
        return vipmta_hook_ret_;                                                             \
    }                                                                                        \
    static inline ht call_##hs##_##hn##_hook hdargs                                          \
    {                                                                                        \
        struct vipmta_hook *vipmta_hook_h_ = vipmta_hook_of_##hs##_##hn();                   \
        const struct vipmta_hook_provider *vipmta_hook_p_ = NULL;                            \
        int vipmta_hook_n_ = vipmta_hook_dispatch_begin(vipmta_hook_h_, &vipmta_hook_p_);    \
        ht vipmta_hook_ret_ = vipmta_hook_walk_##hs##_##hn(vipmta_hook_p_, vipmta_hook_n_,   \
                                                           VIPMTA_HOOK_ARGS hcargs);        \
        vipmta_hook_dispatch_end(vipmta_hook_h_);                                            \
        return vipmta_hook_ret_;                                                             \
    }

#define EC_DECLARE_VOID_HOOK(hs, hn, htargs, hdargs, hcargs)                                 \
    typedef void ec_hook_##hs##_##hn##_func_t htargs;                                        \
    VIPMTA_HOOK_CHAIN_OF(hs, hn, htargs)                                                     \
    static inline void call_##hs##_##hn##_hook hdargs                                        \
    {                                                                                        \
        struct vipmta_hook *vipmta_hook_h_ = vipmta_hook_of_##hs##_##hn();                   \
        const struct vipmta_hook_provider *vipmta_hook_p_ = NULL;                            \
        int vipmta_hook_n_ = vipmta_hook_dispatch_begin(vipmta_hook_h_, &vipmta_hook_p_);    \
        for (int vipmta_hook_i_ = 0; vipmta_hook_i_ < vipmta_hook_n_; vipmta_hook_i_++)      \
            ((ec_hook_##hs##_##hn##_func_t *)vipmta_hook_p_[vipmta_hook_i_].fn)hcargs;       \
        vipmta_hook_dispatch_end(vipmta_hook_h_);                                            \
    }

#define EC_DECLARE_HOOK_NOARGS(hs, ht, hn, hret)                                             \
    typedef ht ec_hook_##hs##_##hn##_func_t(void *);                                         \
    VIPMTA_HOOK_CHAIN_OF(hs, hn, (void *))                                                   \
    static inline ht vipmta_hook_walk_##hs##_##hn(                                           \
        const struct vipmta_hook_provider *vipmta_hook_p_, int vipmta_hook_n_)               \
    {                                                                                        \
        ht vipmta_hook_ret_ = (ht)0;                                                         \
        for (int vipmta_hook_i_ = 0; vipmta_hook_i_ < vipmta_hook_n_; vipmta_hook_i_++) {    \
            vipmta_hook_ret_ = ((ec_hook_##hs##_##hn##_func_t *)vipmta_hook_p_[vipmta_hook_i_].fn)( \
                EC_HOOK_CLOSURE);                                                            \
            hret;                                                                            \
        }                                                                                    \
        return vipmta_hook_ret_;                                                             \
    }                                                                                        \
    static inline ht call_##hs##_##hn##_hook(void)                                           \
    {                                                                                        \
        struct vipmta_hook *vipmta_hook_h_ = vipmta_hook_of_##hs##_##hn();                   \
        const struct vipmta_hook_provider *vipmta_hook_p_ = NULL;                            \
        int vipmta_hook_n_ = vipmta_hook_dispatch_begin(vipmta_hook_h_, &vipmta_hook_p_);    \
        ht vipmta_hook_ret_ = vipmta_hook_walk_##hs##_##hn(vipmta_hook_p_, vipmta_hook_n_);  \
        vipmta_hook_dispatch_end(vipmta_hook_h_);                                            \
        return vipmta_hook_ret_;                                                             \
    }

/* ---- the core's own hooks ----
 * The core declares each of its hooks (hooks/core/NAME.h) with the same
 * arguments through VIPMTA_DECLARE_CORE_HOOK: the same typedef and names,
 * but real functions the daemon exports, whose call_ walks the chain
 * directly (the hot path). */
#define VIPMTA_DECLARE_CORE_HOOK(hs, ht, hn, htargs, hdargs, hcargs, hret)                   \
    typedef ht ec_hook_##hs##_##hn##_func_t htargs;                                          \
    int has_##hs##_##hn##_hook(void);                                                        \
    void register_##hs##_##hn##_hook_first(ec_hook_##hs##_##hn##_func_t *hook, void *closure); \
    void register_##hs##_##hn##_hook_last(ec_hook_##hs##_##hn##_func_t *hook, void *closure); \
    ht call_##hs##_##hn##_hook hdargs;
/* The same for a hook whose providers return nothing (each one runs). */
#define VIPMTA_DECLARE_CORE_VOID_HOOK(hs, hn, htargs, hdargs, hcargs)                        \
    typedef void ec_hook_##hs##_##hn##_func_t htargs;                                        \
    int has_##hs##_##hn##_hook(void);                                                        \
    void register_##hs##_##hn##_hook_first(ec_hook_##hs##_##hn##_func_t *hook, void *closure); \
    void register_##hs##_##hn##_hook_last(ec_hook_##hs##_##hn##_func_t *hook, void *closure); \
    void call_##hs##_##hn##_hook hdargs;

#ifdef __cplusplus
}
#endif
#endif
