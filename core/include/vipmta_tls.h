/* vipmta_tls.h: the TLS state of outbound connections for modules: a lookup by socket and a hook when it is settled. */
#ifndef VIPMTA_TLS_H
#define VIPMTA_TLS_H

#include "vipmta_hook.h"
#include "domain_record.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What an outbound connection negotiated. The strings belong to the core and
 * stay valid while the connection is open (within a hook: during the call). */
typedef struct vipmta_tls_info {
    int settled;              /* 0: STARTTLS not decided yet (the fields below are empty) */
    int encrypted;            /* 1: TLS is in use */
    const char *version;      /* "TLSv1.3"; "" in clear */
    const char *cipher;       /* "TLS_AES_256_GCM_SHA384"; "" in clear */
    int cipher_bits;
    int verified;             /* the chain verified against the trust store and the name matched */
    int resumed;              /* a cached session was resumed */
    const char *verify_error; /* why not verified ("" when verified or in clear) */
    const char *peer_name;    /* the MX (or route) host name sent as SNI and verified against */
    const char *policy;       /* "none", "opportunistic", "required", "verify" */
} vipmta_tls_info;

/* The TLS state of the live outbound connection on socket `fd` (the fd the
 * connection_post_bind hook was given). 0 with *out filled, -1 when `fd` is no
 * open outbound connection. Event-loop thread (as every outbound hook). */
int vipmta_outbound_tls_info(int fd, vipmta_tls_info *out);

/* Runs once per outbound SMTP connection when its TLS state is settled: after
 * the STARTTLS handshake (and the policy's certificate check), or when the
 * connection goes on in clear. Every registered hook runs; the return value
 * is ignored (return 0). Delivery-loop thread.
 *
 *   typedef int ec_hook_vipmta_outbound_tls_func_t(void *closure,
 *           domain_record *dr, int binding_slot, int fd, const vipmta_tls_info *tls);
 *   int  has_vipmta_outbound_tls_hook(void);
 *   void register_vipmta_outbound_tls_hook_first(hook, closure);
 *   void register_vipmta_outbound_tls_hook_last(hook, closure);
 *   int  call_vipmta_outbound_tls_hook(dr, binding_slot, fd, tls);
 */
#define VIPMTA_HOOK_VIPMTA_OUTBOUND_TLS(X)                                                   \
    X(vipmta, int, outbound_tls,                                                            \
      (void *closure, domain_record *dr, int binding_slot, int fd, const vipmta_tls_info *tls), \
      (domain_record * dr, int binding_slot, int fd, const vipmta_tls_info *tls),           \
      (EC_HOOK_CLOSURE, dr, binding_slot, fd, tls), (void)EC_HOOK_RETVAL;)

VIPMTA_HOOK_VIPMTA_OUTBOUND_TLS(VIPMTA_DECLARE_CORE_HOOK)

#ifdef __cplusplus
}
#endif
#endif
