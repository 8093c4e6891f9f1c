/* hooks/core/log_permanent_failure_v1.h: the log_permanent_failure_v1 hook: a recipient failed for good (Momentum's names and signature). */
#ifndef VIPMTA_HOOKS_CORE_LOG_PERMANENT_FAILURE_V1_H
#define VIPMTA_HOOKS_CORE_LOG_PERMANENT_FAILURE_V1_H

#include "module-hooks.h"
#include "vipmta_message.h"
#include <sys/time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Runs on the delivery loop once per recipient that fails permanently (a
 * 5xx, expiry, a permanent veto), when the delivery log line is written,
 * before its DSN is made: `msg` shows that recipient; `note` is the remote
 * reply or vipmta's reason (what the DSN says). Every provider runs.
 *
 *   typedef void ec_hook_core_log_permanent_failure_v1_func_t(void *closure,
 *           ec_message *msg, domain_record *dr, struct timeval *now, const char *note, int note_len);
 *   int  has_core_log_permanent_failure_v1_hook(void);
 *   void register_core_log_permanent_failure_v1_hook_first(ec_hook_core_log_permanent_failure_v1_func_t *hook, void *closure);
 *   void register_core_log_permanent_failure_v1_hook_last(ec_hook_core_log_permanent_failure_v1_func_t *hook, void *closure);
 *   void call_core_log_permanent_failure_v1_hook(msg, dr, now, note, note_len);
 */
#define VIPMTA_HOOK_CORE_LOG_PERMANENT_FAILURE_V1(X)                                        \
    X(core, log_permanent_failure_v1,                                                       \
      (void *closure, ec_message *msg, domain_record *dr, struct timeval *now, const char *note, int note_len), \
      (ec_message * msg, domain_record * dr, struct timeval * now, const char * note, int note_len), \
      (EC_HOOK_CLOSURE, msg, dr, now, note, note_len))

VIPMTA_HOOK_CORE_LOG_PERMANENT_FAILURE_V1(VIPMTA_DECLARE_CORE_VOID_HOOK)

#ifdef __cplusplus
}
#endif
#endif
